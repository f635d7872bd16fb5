//! The widget's chat frame decoder (`lucarne::chat::wire`): every text frame the chat
//! socket receives. Natively the walk runs over `serde_json` where the browser has
//! `JSON.parse`; the walk itself is the code the widget ships.
//!
//! Beyond "no panic": `decode` and `decode_frame` agree; a frame the protocol's serde
//! types accept decodes to the same message here (numbers within JavaScript's exact
//! integers, which are all the browser can read); and what the decoder returns, encoded
//! by the server's serde, decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucarne::chat::wire;
use lucarne_protocol::ServerMessage;
use serde_json::Value;

/// 2^53: above it a JSON number is not an exact integer in JavaScript.
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

fn safe_numbers(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(|f| f.abs() <= MAX_SAFE),
        Value::Array(a) => a.iter().all(safe_numbers),
        Value::Object(o) => o.values().all(safe_numbers),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    // A WebSocket text frame is valid UTF-8, or the browser closes the socket.
    let Ok(frame) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = wire::decode(frame);
    let framed = wire::decode_frame(frame);
    assert_eq!(decoded.is_some(), framed.is_some());
    if let (Some(decoded), Some((_, counts))) = (&decoded, &framed) {
        let map = match decoded {
            ServerMessage::Hearts(h) => Some(&h.counts),
            ServerMessage::Votes(v) => Some(&v.counts),
            ServerMessage::Welcome(w) => Some(&w.votes),
            _ => None,
        };
        match map {
            Some(map) => assert!(counts.iter().all(|(k, v)| map.get(k) == Some(v))),
            None => assert!(counts.is_empty()),
        }
    }
    if let Ok(expected) = serde_json::from_str::<ServerMessage>(frame) {
        let value: Value = serde_json::from_str(frame).expect("serde read it once");
        // Only objects: serde also reads an internally tagged enum from an array whose
        // first element is the tag (`["chat", ...]`), a form no server sends and the
        // widget rightly ignores.
        if value.is_object() && safe_numbers(&value) {
            assert_eq!(decoded.as_ref(), Some(&expected), "{frame}");
        }
    }
    if let Some(m) = decoded {
        let again = serde_json::to_string(&m).expect("server messages serialise");
        assert_eq!(wire::decode(&again), Some(m), "{again}");
    }
});
