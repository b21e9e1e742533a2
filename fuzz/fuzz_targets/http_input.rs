//! The HTTP API's parsing of outside input: causal context tokens, keys,
//! and value documents. None may panic; a token that decodes re-encodes to
//! one that decodes to the same context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rumor::http::api::{KeyView, Value};
use rumor::http::context_token;
use rumor_proto::state::store::check_key;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(context) = context_token::decode(text) {
            let again = context_token::decode(&context_token::encode(&context))
                .expect("an encoded context decodes");
            assert_eq!(again, context, "a context survives encode and decode");
        }
        let _ = check_key(text, 512);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        if let Some(bytes) = v.bytes() {
            assert_eq!(Value::new(&bytes).bytes(), Some(bytes));
        }
    }
    let _ = serde_json::from_slice::<KeyView>(data);
});
