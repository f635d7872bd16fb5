//! The widget's browser-JSON chat codec against the protocol's own serde encoding: every
//! server frame decodes to the same value both ways, and the frames the widget's socket
//! builds (with the same functions) are what the server's types read.
#![cfg(target_arch = "wasm32")]

use lucarne::chat::wire;
use lucarne_protocol::{
    BanViewer, ClientMessage, DeleteMessage, Hello, Ping, Resume, SendChat, SendHearts,
    ServerMessage, SetName, PROTOCOL_VERSION,
};
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

/// The frames the widget sends, built by the same functions its socket calls (here on
/// `JSON.stringify`, as in production), read back with the server's serde types.
#[wasm_bindgen_test]
fn what_the_widget_sends_is_what_the_server_reads() {
    let text = "a \"quoted\" <b>\n\u{2028}é 🎉 \\ end";
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        viewer_id: Some("v1".into()),
        viewer_token: Some("tok".into()),
        name: Some("Ana".into()),
        resume: Some(Resume {
            epoch: 1_764_000_000_123,
            last_seq: 9_007_199_254_740_991,
        }),
        auth_token: Some("mod-secret".into()),
        backstage: true,
    };
    let first = Hello {
        protocol_version: PROTOCOL_VERSION,
        ..Hello::default()
    };
    let chat = SendChat {
        text: text.into(),
        client_id: Some("1764000000000-3".into()),
        question: true,
    };
    let name = SetName { name: text.into() };
    let hearts = SendHearts {
        count: 4,
        colour: None,
    };
    let delete = DeleteMessage { id: "1f-7".into() };
    let ban = BanViewer {
        viewer_id: "v2".into(),
        duration_secs: Some(600),
        reason: Some(text.into()),
    };
    let cases: Vec<(String, ClientMessage)> = vec![
        (wire::hello(&hello), ClientMessage::Hello(hello)),
        (wire::hello(&first), ClientMessage::Hello(first)),
        (wire::set_name(&name), ClientMessage::SetName(name)),
        (wire::chat_message(&chat), ClientMessage::Chat(chat)),
        (wire::hearts(&hearts), ClientMessage::Hearts(hearts)),
        (
            wire::ping(&Ping::default()),
            ClientMessage::Ping(Ping::default()),
        ),
        (wire::delete(&delete), ClientMessage::Delete(delete)),
        (wire::ban(&ban), ClientMessage::Ban(ban)),
    ];
    for (sent, expected) in cases {
        let got: ClientMessage =
            serde_json::from_str(&sent).unwrap_or_else(|e| panic!("{sent}: {e}"));
        assert_eq!(got, expected, "{sent}");
    }
    // Absent fields are left out, not sent as null.
    assert_eq!(wire::ping(&Ping::default()), r#"{"type":"ping"}"#);
}
