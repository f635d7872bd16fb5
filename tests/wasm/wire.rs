//! The widget's browser-JSON chat codec against the protocol's own serde encoding: every
//! server frame decodes to the same value both ways, and what the widget sends is what
//! the server's types read.
#![cfg(target_arch = "wasm32")]

use lucarne::chat::wire;
use lucarne_protocol::{ClientMessage, ServerMessage};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER_FRAMES: &[&str] = &[
    r##"{"type":"welcome","protocolVersion":1,"viewerId":"v1","viewerToken":"t","name":"Ana","colour":"#ff6b6b","role":"moderator","epoch":3,"seq":12,"recovered":true,"history":[{"type":"chat","seq":11,"id":"m11","viewerId":"v2","name":"Bo","colour":"#00aaff","text":"hi <b>","ts":1700000000000},{"type":"deleted","seq":12,"id":"m10"},{"type":"future","seq":13}],"viewerCount":2,"heartsTotal":40,"streamState":"live","settings":{"slowModeSecs":5,"blockedWords":["spam"]},"limits":{"chatMaxChars":500,"chatBurst":3,"chatWindowMs":2000,"heartsPerSec":10,"idleTimeoutMs":60000}}"##,
    r##"{"type":"welcome","protocolVersion":1,"viewerId":"v1","viewerToken":"t","colour":"#ff6b6b","epoch":1,"seq":0,"recovered":false,"viewerCount":1,"heartsTotal":0}"##,
    r##"{"type":"chat","seq":7,"id":"1f-7","viewerId":"v..","name":"Ana","colour":"#ff6b6b","text":"hi","ts":1700000000000}"##,
    r##"{"type":"chat","seq":8,"id":"1f-8","viewerId":"v1","name":"Host","colour":"#fff","text":"x","ts":1,"role":"broadcaster","clientId":"c9","unknownField":true}"##,
    r##"{"type":"deleted","seq":9,"id":"1f-7"}"##,
    r##"{"type":"hearts","counts":{"#ff6b6b":3,"#00aaff":1},"total":1234}"##,
    r##"{"type":"viewerCount","count":42}"##,
    r##"{"type":"streamState","state":"ended"}"##,
    r##"{"type":"settings","slowModeSecs":10}"##,
    r##"{"type":"profile","name":"Ana","colour":"#ff6b6b","role":"viewer"}"##,
    r##"{"type":"notice","code":"muted","message":"Too fast","until":1700000030000}"##,
    r##"{"type":"error","code":"slow_mode","message":"Slow mode","clientId":"c2","retryAfterMs":4000}"##,
    r##"{"type":"error","code":"something_new","message":"m"}"##,
    r##"{"type":"pong","t":5}"##,
    r##"{"type":"poll","options":[1,2]}"##,
];

#[wasm_bindgen_test]
fn every_server_frame_decodes_like_serde() {
    for frame in SERVER_FRAMES {
        let expected: ServerMessage = serde_json::from_str(frame).expect("valid protocol JSON");
        assert_eq!(wire::decode(frame), Some(expected), "{frame}");
    }
}

#[wasm_bindgen_test]
fn garbage_is_none_not_a_panic() {
    for frame in [
        "",
        "null",
        "[1,2]",
        "{\"no\":\"type\"}",
        "{not json",
        "\"chat\"",
    ] {
        assert_eq!(wire::decode(frame), None, "{frame}");
    }
}

#[wasm_bindgen_test]
fn what_the_widget_sends_is_what_the_server_reads() {
    let resume = js_sys::JSON::parse(r#"{"epoch":3,"lastSeq":12}"#).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            wire::encode(
                "chat",
                &[
                    ("text", "a \"quoted\" <b>\n".into()),
                    ("clientId", "c1".into()),
                ],
            ),
            r#"{"type":"chat","text":"a \"quoted\" <b>\n","clientId":"c1"}"#,
        ),
        (
            wire::encode(
                "hello",
                &[
                    ("protocolVersion", 1.into()),
                    ("resume", resume),
                    ("name", JsValue::UNDEFINED),
                ],
            ),
            r#"{"type":"hello","protocolVersion":1,"resume":{"epoch":3,"lastSeq":12}}"#,
        ),
        (
            wire::encode("hearts", &[("count", 4.into())]),
            r#"{"type":"hearts","count":4}"#,
        ),
        (
            wire::encode("ban", &[("viewerId", "v2".into())]),
            r#"{"type":"ban","viewerId":"v2"}"#,
        ),
    ];
    for (sent, expected) in cases {
        let got: ClientMessage =
            serde_json::from_str(&sent).unwrap_or_else(|e| panic!("{sent}: {e}"));
        let want: ClientMessage = serde_json::from_str(expected).unwrap();
        assert_eq!(got, want, "{sent}");
    }
}
