//! Decoding of the small vectors entries keep inline (a context's replicas,
//! a key's values): like a `Vec`, but reserving no more room than a few
//! elements for the length a sequence claims, since a claim from the
//! network could be anything; the elements are stored as they decode.

use core::fmt;
use core::marker::PhantomData;

use serde::Deserializer;
use serde::de::{Deserialize, SeqAccess, Visitor};
use smallvec::{Array, SmallVec};

/// Most elements reserved ahead of decoding them.
const MAX_RESERVED: usize = 16;

/// Decode a sequence into a `SmallVec` (for `#[serde(deserialize_with)]`).
pub(crate) fn deserialize<'de, D, A>(deserializer: D) -> Result<SmallVec<A>, D::Error>
where
    D: Deserializer<'de>,
    A: Array,
    A::Item: Deserialize<'de>,
{
    struct Seq<A>(PhantomData<A>);
    impl<'de, A> Visitor<'de> for Seq<A>
    where
        A: Array,
        A::Item: Deserialize<'de>,
    {
        type Value = SmallVec<A>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<SmallVec<A>, S::Error> {
            let mut out = SmallVec::new();
            out.reserve(seq.size_hint().unwrap_or(0).min(MAX_RESERVED));
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(Seq(PhantomData))
}

#[cfg(test)]
mod tests {
    use smallvec::SmallVec;

    #[derive(serde::Deserialize, Debug)]
    struct Held(#[serde(deserialize_with = "super::deserialize")] SmallVec<[u64; 1]>);

    #[test]
    fn decodes_what_a_vec_encodes_and_refuses_a_false_length() {
        let bytes = postcard::to_allocvec(&vec![3u64, 1, 4]).unwrap();
        let held: Held = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(held.0.as_slice(), &[3, 1, 4]);
        // A sequence claiming 2^28 elements and holding one.
        let mut lie = postcard::to_allocvec(&(1u32 << 28)).unwrap();
        lie.extend(postcard::to_allocvec(&7u64).unwrap());
        assert!(postcard::from_bytes::<Held>(&lie).is_err());
    }
}
