//! Every message against a literal JSON text: decoding the literal gives the value, and
//! encoding the value gives the literal (compared as JSON, so key order does not matter).
//! These literals are the documentation the widget is written against.

use lucarne_protocol::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(json: &str, value: T) {
    let decoded: T = serde_json::from_str(json).expect("literal decodes");
    assert_eq!(decoded, value, "decoding {json}");
    let encoded = serde_json::to_value(&value).unwrap();
    let literal: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(encoded, literal, "encoding {value:?}");
}

fn chat_message() -> ChatMessage {
    ChatMessage {
        seq: 7,
        id: "1f-7".into(),
        viewer_id: "v0123456789abcdef".into(),
        name: "Ana".into(),
        colour: "#ff6b6b".into(),
        text: "<b>hi</b>".into(),
        ts: 1_700_000_000_000,
        role: Role::Viewer,
        client_id: Some("c1".into()),
        question: false,
    }
}

#[test]
fn hello_minimal_and_full() {
    round_trip(
        r#"{"type":"hello","protocolVersion":1}"#,
        ClientMessage::Hello(Hello {
            protocol_version: 1,
            ..Hello::default()
        }),
    );
    round_trip(
        r#"{"type":"hello","protocolVersion":1,"viewerId":"v0123456789abcdef",
            "viewerToken":"tok","name":"Ana","resume":{"epoch":31,"lastSeq":41},
            "authToken":"mod-secret","backstage":true}"#,
        ClientMessage::Hello(Hello {
            protocol_version: 1,
            viewer_id: Some("v0123456789abcdef".into()),
            viewer_token: Some("tok".into()),
            name: Some("Ana".into()),
            resume: Some(Resume {
                epoch: 31,
                last_seq: 41,
            }),
            auth_token: Some("mod-secret".into()),
            backstage: true,
        }),
    );
}

#[test]
fn client_messages() {
    round_trip(
        r#"{"type":"setName","name":"Ana"}"#,
        ClientMessage::SetName(SetName { name: "Ana".into() }),
    );
    round_trip(
        r#"{"type":"chat","text":"hello","clientId":"c1"}"#,
        ClientMessage::Chat(SendChat {
            text: "hello".into(),
            client_id: Some("c1".into()),
            question: false,
        }),
    );
    round_trip(
        r##"{"type":"hearts","count":3,"colour":"#ff6b6b"}"##,
        ClientMessage::Hearts(SendHearts {
            count: 3,
            colour: Some("#ff6b6b".into()),
        }),
    );
    round_trip(
        r#"{"type":"hearts","count":1}"#,
        ClientMessage::Hearts(SendHearts {
            count: 1,
            colour: None,
        }),
    );
    round_trip(
        r#"{"type":"ping","t":5}"#,
        ClientMessage::Ping(Ping { t: Some(5) }),
    );
    round_trip(r#"{"type":"ping"}"#, ClientMessage::Ping(Ping { t: None }));
    round_trip(
        r#"{"type":"delete","id":"1f-7"}"#,
        ClientMessage::Delete(DeleteMessage { id: "1f-7".into() }),
    );
    round_trip(
        r#"{"type":"ban","viewerId":"v1","durationSecs":600,"reason":"spam"}"#,
        ClientMessage::Ban(BanViewer {
            viewer_id: "v1".into(),
            duration_secs: Some(600),
            reason: Some("spam".into()),
        }),
    );
    round_trip(
        r#"{"type":"unban","viewerId":"v1"}"#,
        ClientMessage::Unban(UnbanViewer {
            viewer_id: "v1".into(),
        }),
    );
    round_trip(
        r#"{"type":"slowMode","seconds":10}"#,
        ClientMessage::SlowMode(SlowMode { seconds: 10 }),
    );
    round_trip(
        r#"{"type":"blockedWords","words":["spam","buy now"]}"#,
        ClientMessage::BlockedWords(BlockedWords {
            words: vec!["spam".into(), "buy now".into()],
        }),
    );
}

#[test]
fn welcome() {
    round_trip(
        r##"{"type":"welcome","protocolVersion":1,"viewerId":"v0123456789abcdef",
            "viewerToken":"tok","name":"Ana","colour":"#ff6b6b","role":"viewer",
            "epoch":31,"seq":42,"recovered":true,
            "history":[
              {"type":"chat","seq":42,"id":"1f-42","viewerId":"v0123456789abcdef","name":"Ana",
               "colour":"#ff6b6b","text":"<b>hi</b>","ts":1700000000000,"clientId":"c1"},
              {"type":"deleted","seq":43,"id":"1f-42"}],
            "viewerCount":2,"heartsTotal":1234,"streamState":"live",
            "settings":{"slowModeSecs":0},
            "limits":{"chatMaxChars":500,"chatBurst":3,"chatWindowMs":2000,
                      "heartsPerSec":10,"idleTimeoutMs":60000}}"##,
        ServerMessage::Welcome(Welcome {
            protocol_version: 1,
            viewer_id: "v0123456789abcdef".into(),
            viewer_token: "tok".into(),
            name: Some("Ana".into()),
            colour: "#ff6b6b".into(),
            role: Role::Viewer,
            epoch: 31,
            seq: 42,
            recovered: true,
            history: vec![
                RoomEvent::Chat(ChatMessage {
                    seq: 42,
                    id: "1f-42".into(),
                    ..chat_message()
                }),
                RoomEvent::Deleted(Deleted {
                    seq: 43,
                    id: "1f-42".into(),
                }),
            ],
            viewer_count: 2,
            hearts_total: 1234,
            stream_state: StreamState::Live,
            settings: RoomSettings::default(),
            limits: Limits::default(),
            pinned: None,
            votes: Default::default(),
        }),
    );
}

#[test]
fn server_events() {
    round_trip(
        r##"{"type":"chat","seq":7,"id":"1f-7","viewerId":"v0123456789abcdef","name":"Ana",
            "colour":"#ff6b6b","text":"<b>hi</b>","ts":1700000000000,"clientId":"c1"}"##,
        ServerMessage::Chat(chat_message()),
    );
    round_trip(
        r##"{"type":"chat","seq":8,"id":"1f-8","viewerId":"vb","name":"Broadcaster",
            "colour":"#ffffff","text":"welcome all","ts":1700000000001,"role":"broadcaster"}"##,
        ServerMessage::Chat(ChatMessage {
            seq: 8,
            id: "1f-8".into(),
            viewer_id: "vb".into(),
            name: "Broadcaster".into(),
            colour: "#ffffff".into(),
            text: "welcome all".into(),
            ts: 1_700_000_000_001,
            role: Role::Broadcaster,
            client_id: None,
            question: false,
        }),
    );
    round_trip(
        r#"{"type":"deleted","seq":9,"id":"1f-7"}"#,
        ServerMessage::Deleted(Deleted {
            seq: 9,
            id: "1f-7".into(),
        }),
    );
    round_trip(
        r##"{"type":"hearts","counts":{"#ff6b6b":3,"#48dbfb":1},"total":1238}"##,
        ServerMessage::Hearts(Hearts {
            counts: BTreeMap::from([("#ff6b6b".into(), 3), ("#48dbfb".into(), 1)]),
            total: 1238,
        }),
    );
    round_trip(
        r#"{"type":"viewerCount","count":42}"#,
        ServerMessage::ViewerCount(ViewerCount { count: 42 }),
    );
    for (text, state) in [
        ("live", StreamState::Live),
        ("offline", StreamState::Offline),
        ("ended", StreamState::Ended),
        ("unsupported", StreamState::Unsupported),
    ] {
        round_trip(
            &format!(r#"{{"type":"streamState","state":"{text}"}}"#),
            ServerMessage::StreamState(StreamStateChange { state }),
        );
        // The push socket and the API say the same word, bare.
        assert_eq!(state.as_str(), text);
        assert_eq!(StreamState::parse(text), state);
    }
    round_trip(
        r#"{"type":"settings","slowModeSecs":10}"#,
        ServerMessage::Settings(RoomSettings {
            slow_mode_secs: 10,
            blocked_words: None,
        }),
    );
    round_trip(
        r#"{"type":"settings","slowModeSecs":0,"blockedWords":["spam"]}"#,
        ServerMessage::Settings(RoomSettings {
            slow_mode_secs: 0,
            blocked_words: Some(vec!["spam".into()]),
        }),
    );
    round_trip(
        r##"{"type":"profile","name":"Ana","colour":"#ff6b6b","role":"moderator"}"##,
        ServerMessage::Profile(Profile {
            name: Some("Ana".into()),
            colour: "#ff6b6b".into(),
            role: Role::Moderator,
        }),
    );
    round_trip(
        r#"{"type":"notice","code":"muted","message":"Too fast: muted for 30 s","until":1700000030000}"#,
        ServerMessage::Notice(Notice {
            code: NoticeCode::Muted,
            message: "Too fast: muted for 30 s".into(),
            until: Some(1_700_000_030_000),
        }),
    );
    round_trip(
        r#"{"type":"error","code":"slow_mode","message":"Slow mode","clientId":"c2","retryAfterMs":4000}"#,
        ServerMessage::Error(ErrorFrame {
            code: ErrorCode::SlowMode,
            message: "Slow mode".into(),
            client_id: Some("c2".into()),
            retry_after_ms: Some(4000),
        }),
    );
    round_trip(
        r#"{"type":"pong","t":5}"#,
        ServerMessage::Pong(Ping { t: Some(5) }),
    );
}

#[test]
fn every_error_code_is_stable_snake_case() {
    let codes = [
        (ErrorCode::BadJson, "bad_json"),
        (ErrorCode::UnknownType, "unknown_type"),
        (ErrorCode::BinaryUnsupported, "binary_unsupported"),
        (ErrorCode::HelloRequired, "hello_required"),
        (ErrorCode::UnsupportedProtocol, "unsupported_protocol"),
        (ErrorCode::InvalidName, "invalid_name"),
        (ErrorCode::NameReserved, "name_reserved"),
        (ErrorCode::NameRequired, "name_required"),
        (ErrorCode::TextEmpty, "text_empty"),
        (ErrorCode::TextTooLong, "text_too_long"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::Muted, "muted"),
        (ErrorCode::SlowMode, "slow_mode"),
        (ErrorCode::BlockedWord, "blocked_word"),
        (ErrorCode::Banned, "banned"),
        (ErrorCode::BadToken, "bad_token"),
        (ErrorCode::Forbidden, "forbidden"),
        (ErrorCode::NotFound, "not_found"),
        (ErrorCode::InvalidRequest, "invalid_request"),
        (ErrorCode::Unavailable, "unavailable"),
    ];
    for (code, text) in codes {
        assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{text}\""));
        assert_eq!(
            serde_json::from_str::<ErrorCode>(&format!("\"{text}\"")).unwrap(),
            code
        );
    }
}

#[test]
fn newer_peers_are_understood() {
    // Unknown fields are ignored.
    let m: ClientMessage =
        serde_json::from_str(r#"{"type":"chat","text":"x","clientId":"c","sticker":"cat"}"#)
            .unwrap();
    assert_eq!(
        m,
        ClientMessage::Chat(SendChat {
            text: "x".into(),
            client_id: Some("c".into()),
            question: false,
        })
    );
    // Unknown types and codes decode to Unknown instead of failing.
    let m: ClientMessage = serde_json::from_str(r#"{"type":"poll","options":[1,2]}"#).unwrap();
    assert_eq!(m, ClientMessage::Unknown);
    let m: ServerMessage = serde_json::from_str(r#"{"type":"reaction","emoji":"x"}"#).unwrap();
    assert_eq!(m, ServerMessage::Unknown);
    let m: ServerMessage =
        serde_json::from_str(r#"{"type":"error","code":"quota_exceeded","message":"m"}"#).unwrap();
    assert!(matches!(
        m,
        ServerMessage::Error(ErrorFrame {
            code: ErrorCode::Unknown,
            ..
        })
    ));
    let m: ServerMessage =
        serde_json::from_str(r#"{"type":"notice","code":"raid","message":"m"}"#).unwrap();
    assert!(matches!(
        m,
        ServerMessage::Notice(Notice {
            code: NoticeCode::Unknown,
            ..
        })
    ));
    // A stream state from a newer server is Unknown, on the chat and on the push socket.
    let m: ServerMessage =
        serde_json::from_str(r#"{"type":"streamState","state":"rehearsal"}"#).unwrap();
    assert_eq!(
        m,
        ServerMessage::StreamState(StreamStateChange {
            state: StreamState::Unknown
        })
    );
    assert_eq!(StreamState::parse("rehearsal"), StreamState::Unknown);
    // A welcome from a server with fewer fields still decodes (defaults).
    let m: ServerMessage = serde_json::from_str(
        r##"{"type":"welcome","protocolVersion":1,"viewerId":"v","viewerToken":"t",
            "colour":"#fff","epoch":1,"seq":0,"recovered":false,"viewerCount":1,
            "heartsTotal":0,"history":[{"type":"poll","seq":3}],"future":{"x":1}}"##,
    )
    .unwrap();
    let ServerMessage::Welcome(w) = m else {
        panic!("not a welcome")
    };
    assert_eq!(w.history, vec![RoomEvent::Unknown]);
    assert_eq!(w.role, Role::Viewer);
    assert_eq!(w.limits, Limits::default());
}

#[test]
fn history_entries_encode_like_live_frames() {
    let live = serde_json::to_value(ServerMessage::Chat(chat_message())).unwrap();
    let history = serde_json::to_value(RoomEvent::Chat(chat_message())).unwrap();
    assert_eq!(live, history);
}

#[test]
fn malformed_frames_are_errors_not_panics() {
    for text in [
        "",
        "{",
        "null",
        "[]",
        r#"{"text":"no type"}"#,
        r#"{"type":"chat"}"#,
        r#"{"type":"hearts","count":-1}"#,
        r#"{"type":"hello","protocolVersion":"one"}"#,
    ] {
        assert!(
            serde_json::from_str::<ClientMessage>(text).is_err(),
            "{text:?} should not decode"
        );
    }
}

#[test]
fn the_chat_door_says_why_a_page_is_refused() {
    round_trip(
        r#"{"refused":null}"#,
        ChatDoor {
            refused: None,
            origin: None,
        },
    );
    round_trip(
        r#"{"refused":"origin","origin":"https://blog.example"}"#,
        ChatDoor {
            refused: Some(Refusal::Origin),
            origin: Some("https://blog.example".into()),
        },
    );
    round_trip(
        r#"{"refused":"room"}"#,
        ChatDoor {
            refused: Some(Refusal::Room),
            origin: None,
        },
    );
    // The door of a private broadcast (the access guard's 403 body; the widget reads it).
    round_trip(
        r#"{"refused":"private"}"#,
        ChatDoor {
            refused: Some(Refusal::Private),
            origin: None,
        },
    );
    // A newer server's reason is still a refusal.
    let door: ChatDoor = serde_json::from_str(r#"{"refused":"paywall"}"#).unwrap();
    assert_eq!(door.refused, Some(Refusal::Unknown));
    // The status alone says it too (what the widget reads).
    assert_eq!(Refusal::from_status(403), Some(Refusal::Origin));
    assert_eq!(Refusal::from_status(404), Some(Refusal::Room));
    for transient in [0, 200, 426, 502, 503] {
        assert_eq!(Refusal::from_status(transient), None, "{transient}");
    }
    for r in [
        Refusal::Origin,
        Refusal::Room,
        Refusal::Private,
        Refusal::Unknown,
    ] {
        assert_eq!(Refusal::parse(r.as_str()), r);
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
}
