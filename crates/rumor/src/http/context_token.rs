//! The causal context of a read, as an opaque token for HTTP clients.
//!
//! A read returns the key's version vector encoded as URL-safe base64 of its
//! compact binary form; a write that passes the token back replaces exactly
//! the values that read had seen. Clients must not build or edit tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rumor_proto::state::VersionVector;

/// Longest token accepted, in characters (a context names at most one
/// counter per node that ever wrote the key).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A token that does not decode to a causal context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid causal context {shown:?}: {reason}; pass back the context a read returned, unchanged"
)]
pub struct InvalidToken {
    /// The token, cut to 32 characters.
    pub shown: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Encode a causal context as a token.
pub fn encode(context: &VersionVector) -> String {
    // A version vector is a list of integer pairs: it always serializes.
    let bytes = postcard::to_allocvec(context).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode a token made by [`encode`].
pub fn decode(token: &str) -> Result<VersionVector, InvalidToken> {
    let fail = |reason| InvalidToken {
        shown: token.chars().take(32).collect(),
        reason,
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(fail("too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| fail("not URL-safe base64"))?;
    let context: VersionVector =
        postcard::from_bytes(&bytes).map_err(|_| fail("not a causal context"))?;
    if !context.is_valid() {
        return Err(fail("not a causal context"));
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rumor_proto::state::{Dot, ReplicaId};

    proptest! {
        #[test]
        fn a_token_decodes_to_the_context_it_was_made_from(dots in proptest::collection::vec((0u64..50, 1u64..1000), 0..20)) {
            let mut vv = VersionVector::new();
            for (r, c) in dots {
                vv.add(Dot { replica: ReplicaId(r), counter: c });
            }
            prop_assert_eq!(decode(&encode(&vv)), Ok(vv));
        }

        #[test]
        fn arbitrary_text_is_refused_or_decodes_without_panic(s in ".{0,200}") {
            if let Ok(vv) = decode(&s) {
                prop_assert!(vv.is_valid());
            }
        }
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let e = decode("not a token!").unwrap_err();
        assert_eq!(e.reason, "not URL-safe base64");
        assert!(decode(&"A".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }
}
