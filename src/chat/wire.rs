//! The chat wire format in the browser: `lucarne-protocol`'s types, read from and
//! written to JSON through the browser's own `JSON.parse`/`JSON.stringify`.
//!
//! Why not serde here: `serde_json` plus the derived visitors for every message type
//! would add more WebAssembly than the whole chat UI, in a widget whose download budget
//! is that of hls.js's light build. The browser already has a JSON parser; this module
//! only walks the parsed object into the same Rust types the server serialises. The
//! wasm test suite decodes the protocol's JSON examples here and with serde and checks
//! they agree. Unknown fields are ignored and unknown types decode to `Unknown`, as
//! the protocol requires.
//!
//! The widget reads frames with [`decode_frame`], which hands a `hearts` frame's
//! per-colour counts back as a list in the frame's order (the server writes them
//! sorted by colour): the map type the protocol declares for them is never built in
//! the browser, where its code would only be download weight.

use js_sys::{Array, JsString, Object, Reflect, JSON};
use lucarne_protocol::*;
use wasm_bindgen::{JsCast, JsValue};

fn get(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}
fn string(o: &JsValue, k: &str) -> Option<String> {
    get(o, k).as_string()
}
fn text(o: &JsValue, k: &str) -> String {
    string(o, k).unwrap_or_default()
}
fn number(o: &JsValue, k: &str) -> u64 {
    get(o, k)
        .as_f64()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map_or(0, |n| n as u64)
}
fn opt_number(o: &JsValue, k: &str) -> Option<u64> {
    get(o, k)
        .as_f64()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n as u64)
}
fn list(o: &JsValue, k: &str) -> Vec<JsValue> {
    get(o, k)
        .dyn_into::<Array>()
        .map(|a| a.to_vec())
        .unwrap_or_default()
}

fn role(o: &JsValue) -> Role {
    match string(o, "role").as_deref() {
        Some("moderator") => Role::Moderator,
        Some("broadcaster") => Role::Broadcaster,
        _ => Role::Viewer,
    }
}

fn stream_state(v: Option<String>) -> StreamState {
    match v.as_deref() {
        Some("live") => StreamState::Live,
        Some("ended") => StreamState::Ended,
        _ => StreamState::Offline,
    }
}

fn chat(o: &JsValue) -> ChatMessage {
    ChatMessage {
        seq: number(o, "seq"),
        id: text(o, "id"),
        viewer_id: text(o, "viewerId"),
        name: text(o, "name"),
        colour: text(o, "colour"),
        text: text(o, "text"),
        ts: number(o, "ts"),
        role: role(o),
        client_id: string(o, "clientId"),
    }
}

fn deleted(o: &JsValue) -> Deleted {
    Deleted {
        seq: number(o, "seq"),
        id: text(o, "id"),
    }
}

fn room_event(o: &JsValue) -> RoomEvent {
    match string(o, "type").as_deref() {
        Some("chat") => RoomEvent::Chat(chat(o)),
        Some("deleted") => RoomEvent::Deleted(deleted(o)),
        _ => RoomEvent::Unknown,
    }
}

fn settings(o: &JsValue) -> RoomSettings {
    let words = get(o, "blockedWords");
    RoomSettings {
        slow_mode_secs: number(o, "slowModeSecs") as u32,
        blocked_words: words.is_object().then(|| {
            list(o, "blockedWords")
                .iter()
                .filter_map(JsValue::as_string)
                .collect()
        }),
    }
}

fn limits(o: &JsValue) -> Limits {
    let d = Limits::default();
    if !o.is_object() {
        return d;
    }
    Limits {
        chat_max_chars: opt_number(o, "chatMaxChars").map_or(d.chat_max_chars, |n| n as u32),
        chat_burst: opt_number(o, "chatBurst").map_or(d.chat_burst, |n| n as u32),
        chat_window_ms: opt_number(o, "chatWindowMs").unwrap_or(d.chat_window_ms),
        hearts_per_sec: opt_number(o, "heartsPerSec").map_or(d.hearts_per_sec, |n| n as u32),
        idle_timeout_ms: opt_number(o, "idleTimeoutMs").unwrap_or(d.idle_timeout_ms),
    }
}

fn error_code(v: Option<String>) -> ErrorCode {
    use ErrorCode::*;
    match v.as_deref().unwrap_or("") {
        "bad_json" => BadJson,
        "unknown_type" => UnknownType,
        "binary_unsupported" => BinaryUnsupported,
        "hello_required" => HelloRequired,
        "unsupported_protocol" => UnsupportedProtocol,
        "invalid_name" => InvalidName,
        "name_reserved" => NameReserved,
        "name_required" => NameRequired,
        "text_empty" => TextEmpty,
        "text_too_long" => TextTooLong,
        "rate_limited" => RateLimited,
        "muted" => Muted,
        "slow_mode" => SlowMode,
        "blocked_word" => BlockedWord,
        "banned" => Banned,
        "bad_token" => BadToken,
        "forbidden" => Forbidden,
        "not_found" => NotFound,
        "invalid_request" => InvalidRequest,
        "unavailable" => Unavailable,
        _ => Unknown,
    }
}

/// Per-colour heart counts of a `hearts` frame, in the frame's order.
pub type HeartCounts = Vec<(String, u32)>;

/// Decodes one text frame; `None` when it is not a JSON object with a `type`.
pub fn decode(frame: &str) -> Option<ServerMessage> {
    let (mut message, counts) = decode_frame(frame)?;
    if let ServerMessage::Hearts(h) = &mut message {
        h.counts = counts.into_iter().collect();
    }
    Some(message)
}

/// [`decode`], except that a `hearts` frame's counts come back beside the message
/// (whose own `counts` stay empty); empty for every other frame.
pub fn decode_frame(frame: &str) -> Option<(ServerMessage, HeartCounts)> {
    let o = JSON::parse(frame).ok().filter(JsValue::is_object)?;
    let kind = string(&o, "type")?;
    let mut counts = Vec::new();
    let message = match kind.as_str() {
        "welcome" => {
            let s = get(&o, "settings");
            ServerMessage::Welcome(Welcome {
                protocol_version: number(&o, "protocolVersion") as u32,
                viewer_id: text(&o, "viewerId"),
                viewer_token: text(&o, "viewerToken"),
                name: string(&o, "name"),
                colour: text(&o, "colour"),
                role: role(&o),
                epoch: number(&o, "epoch"),
                seq: number(&o, "seq"),
                recovered: get(&o, "recovered").is_truthy(),
                history: list(&o, "history").iter().map(room_event).collect(),
                viewer_count: number(&o, "viewerCount") as u32,
                hearts_total: number(&o, "heartsTotal"),
                stream_state: stream_state(string(&o, "streamState")),
                settings: if s.is_object() {
                    settings(&s)
                } else {
                    RoomSettings::default()
                },
                limits: limits(&get(&o, "limits")),
            })
        }
        "chat" => ServerMessage::Chat(chat(&o)),
        "deleted" => ServerMessage::Deleted(deleted(&o)),
        "hearts" => {
            let map = get(&o, "counts");
            if map.is_object() {
                // JSON.parse keeps one entry per key, so this is a map's content.
                for entry in Object::entries(map.unchecked_ref()).iter() {
                    let pair: Array = entry.unchecked_into();
                    if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_f64()) {
                        counts.push((k, v.clamp(0.0, f64::from(u32::MAX)) as u32));
                    }
                }
            }
            ServerMessage::Hearts(Hearts {
                counts: Default::default(),
                total: number(&o, "total"),
            })
        }
        "viewerCount" => ServerMessage::ViewerCount(ViewerCount {
            count: number(&o, "count") as u32,
        }),
        "streamState" => ServerMessage::StreamState(StreamStateChange {
            state: stream_state(string(&o, "state")),
        }),
        "settings" => ServerMessage::Settings(settings(&o)),
        "profile" => ServerMessage::Profile(Profile {
            name: string(&o, "name"),
            colour: text(&o, "colour"),
            role: role(&o),
        }),
        "notice" => ServerMessage::Notice(Notice {
            code: match string(&o, "code").as_deref() {
                Some("muted") => NoticeCode::Muted,
                Some("banned") => NoticeCode::Banned,
                Some("unbanned") => NoticeCode::Unbanned,
                _ => NoticeCode::Unknown,
            },
            message: text(&o, "message"),
            until: opt_number(&o, "until"),
        }),
        "error" => ServerMessage::Error(ErrorFrame {
            code: error_code(string(&o, "code")),
            message: text(&o, "message"),
            client_id: string(&o, "clientId"),
            retry_after_ms: opt_number(&o, "retryAfterMs"),
        }),
        "pong" => ServerMessage::Pong(Ping {
            t: opt_number(&o, "t"),
        }),
        _ => ServerMessage::Unknown,
    };
    Some((message, counts))
}

/// Builds `{"type": kind, k: v, ...}` and serialises it with `JSON.stringify`, which
/// escapes the viewer's text correctly.
pub fn encode(kind: &str, fields: &[(&str, JsValue)]) -> String {
    let o = Object::new();
    let _ = Reflect::set(&o, &"type".into(), &kind.into());
    for (k, v) in fields {
        if !v.is_undefined() {
            let _ = Reflect::set(&o, &(*k).into(), v);
        }
    }
    JSON::stringify(&o)
        .map(String::from)
        .unwrap_or_else(|_| String::from(JsString::from("{}")))
}

/// `Option<String>` as a JS value (`undefined` when absent: the field is left out).
pub fn opt(v: &Option<String>) -> JsValue {
    v.as_deref().map_or(JsValue::UNDEFINED, JsValue::from_str)
}
