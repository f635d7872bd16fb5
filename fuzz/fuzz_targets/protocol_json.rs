//! The protocol's serde JSON (`lucarne-protocol`): every client frame the server reads,
//! every server frame a native client reads.
//!
//! Beyond "no panic": whatever decodes encodes to JSON that decodes to the same value,
//! and that encoding is stable (decode, encode, decode, encode gives the same text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucarne_protocol::{ClientMessage, ServerMessage};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fn stable<T: Serialize + DeserializeOwned + PartialEq + Debug>(frame: &[u8]) {
    let Ok(first) = serde_json::from_slice::<T>(frame) else {
        return;
    };
    let text = serde_json::to_string(&first).expect("encodes");
    let second: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(first, second, "{text}");
    assert_eq!(serde_json::to_string(&second).expect("encodes"), text);
}

fuzz_target!(|data: &[u8]| {
    stable::<ClientMessage>(data);
    stable::<ServerMessage>(data);
});
