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
//! The widget reads frames with [`decode_frame`], which hands the `{key: number}`
//! objects of a frame back as a list in the frame's order (the server writes them
//! sorted by key): a `hearts` frame's per-colour counts, a `votes` frame's totals and
//! a `welcome`'s `votes`. The map type the protocol declares for them (a `BTreeMap`)
//! is never built in the browser, where its insertion and rebalancing code was about
//! 7 KB of wasm (2.4 KB brotli) of download weight.
//!
//! What the widget sends is built by one function per frame ([`hello`], [`set_name`],
//! [`chat_message`], [`hearts`], [`ping`], [`delete`], [`ban`]) from the protocol's own
//! structs; the socket sends nothing else, so the tests that decode these functions'
//! output with serde (natively here, and in the browser in `tests/wasm/wire.rs`) check
//! the frames that actually go out.
//!
//! The walk asks a parsed value only the questions of [`Json`]. In the browser the value
//! is a `JsValue` from `JSON.parse`; in native builds (unit tests, the corpus replay and
//! the fuzz target in `fuzz/`) it is a `serde_json::Value` answered with the browser's
//! rules (an array is an object, `null` is not), so the decoder that ships is fuzzed
//! without a browser. The widget has one implementation, so the generic walk costs no
//! WebAssembly.

#[cfg(target_arch = "wasm32")]
use js_sys::{Array, Object, Reflect, JSON};
use lucarne_protocol::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen::{JsCast, JsValue};

/// What the decoder asks of a parsed JSON value, with JavaScript's answers.
pub trait Json: Sized {
    /// The member `k` (undefined, i.e. `null`-like, when absent or not an object).
    fn field(&self, k: &str) -> Self;
    /// The value if it is a string.
    fn text(&self) -> Option<String>;
    /// The value if it is a number.
    fn number(&self) -> Option<f64>;
    /// `typeof v === "object" && v !== null` (arrays included).
    fn is_object(&self) -> bool;
    /// JavaScript truthiness.
    fn truthy(&self) -> bool;
    /// The elements if it is an array, else none.
    fn items(&self) -> Vec<Self>;
    /// `Object.entries` of an object, keeping the entries whose value is a number.
    fn numeric_entries(&self) -> Vec<(String, f64)>;
}

#[cfg(target_arch = "wasm32")]
impl Json for JsValue {
    fn field(&self, k: &str) -> Self {
        Reflect::get(self, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
    }
    fn text(&self) -> Option<String> {
        self.as_string()
    }
    fn number(&self) -> Option<f64> {
        self.as_f64()
    }
    fn is_object(&self) -> bool {
        JsValue::is_object(self)
    }
    fn truthy(&self) -> bool {
        self.is_truthy()
    }
    fn items(&self) -> Vec<Self> {
        self.dyn_ref::<Array>()
            .map(Array::to_vec)
            .unwrap_or_default()
    }
    fn numeric_entries(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        // JSON.parse keeps one entry per key, so this is a map's content.
        for entry in Object::entries(self.unchecked_ref()).iter() {
            let pair: Array = entry.unchecked_into();
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_f64()) {
                out.push((k, v));
            }
        }
        out
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Json for &serde_json::Value {
    fn field(&self, k: &str) -> Self {
        static UNDEFINED: serde_json::Value = serde_json::Value::Null;
        self.get(k).unwrap_or(&UNDEFINED)
    }
    fn text(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }
    fn number(&self) -> Option<f64> {
        self.as_f64()
    }
    fn is_object(&self) -> bool {
        // Not `self.is_object()`: that would be this method.
        serde_json::Value::is_object(self) || serde_json::Value::is_array(self)
    }
    fn truthy(&self) -> bool {
        use serde_json::Value::*;
        match self {
            Null => false,
            Bool(b) => *b,
            Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
            String(s) => !s.is_empty(),
            Array(_) | Object(_) => true,
        }
    }
    fn items(&self) -> Vec<Self> {
        self.as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }
    fn numeric_entries(&self) -> Vec<(String, f64)> {
        self.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn get<J: Json>(o: &J, k: &str) -> J {
    o.field(k)
}
fn string<J: Json>(o: &J, k: &str) -> Option<String> {
    get(o, k).text()
}
fn text<J: Json>(o: &J, k: &str) -> String {
    string(o, k).unwrap_or_default()
}
fn number<J: Json>(o: &J, k: &str) -> u64 {
    get(o, k)
        .number()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map_or(0, |n| n as u64)
}
fn opt_number<J: Json>(o: &J, k: &str) -> Option<u64> {
    get(o, k)
        .number()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n as u64)
}
fn list<J: Json>(o: &J, k: &str) -> Vec<J> {
    get(o, k).items()
}

fn role<J: Json>(o: &J) -> Role {
    match string(o, "role").as_deref() {
        Some("moderator") => Role::Moderator,
        Some("broadcaster") => Role::Broadcaster,
        _ => Role::Viewer,
    }
}

fn stream_state(v: Option<String>) -> StreamState {
    v.as_deref()
        .map_or(StreamState::Offline, StreamState::parse)
}

fn chat<J: Json>(o: &J) -> ChatMessage {
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
        question: get(o, "question").truthy(),
    }
}

fn pinned<J: Json>(o: &J) -> Pinned {
    let q = get(o, "question");
    Pinned {
        seq: number(o, "seq"),
        question: q.is_object().then(|| chat(&q)),
    }
}

fn answered<J: Json>(o: &J) -> Answered {
    Answered {
        seq: number(o, "seq"),
        id: text(o, "id"),
    }
}

/// A `{key: count}` object (`welcome.votes`, a `votes` or `hearts` frame's counts), in
/// the frame's order.
fn counts<J: Json>(o: &J, k: &str) -> Counts {
    let map = get(o, k);
    let mut counts = Vec::new();
    if map.is_object() {
        for (k, v) in map.numeric_entries() {
            counts.push((k, v.clamp(0.0, f64::from(u32::MAX)) as u32));
        }
    }
    counts
}

fn deleted<J: Json>(o: &J) -> Deleted {
    Deleted {
        seq: number(o, "seq"),
        id: text(o, "id"),
    }
}

fn room_event<J: Json>(o: &J) -> RoomEvent {
    match string(o, "type").as_deref() {
        Some("chat") => RoomEvent::Chat(chat(o)),
        Some("deleted") => RoomEvent::Deleted(deleted(o)),
        Some("pinned") => RoomEvent::Pinned(pinned(o)),
        Some("answered") => RoomEvent::Answered(answered(o)),
        _ => RoomEvent::Unknown,
    }
}

fn settings<J: Json>(o: &J) -> RoomSettings {
    let words = get(o, "blockedWords");
    RoomSettings {
        slow_mode_secs: number(o, "slowModeSecs") as u32,
        blocked_words: words.is_object().then(|| {
            list(o, "blockedWords")
                .iter()
                .filter_map(Json::text)
                .collect()
        }),
    }
}

fn limits<J: Json>(o: &J) -> Limits {
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

/// The `{key: count}` object of a frame, in the frame's order: a `hearts` frame's
/// per-colour counts, a `votes` frame's totals by question, a `welcome`'s `votes`.
pub type Counts = Vec<(String, u32)>;

/// Decodes one text frame; `None` when it is not a JSON object with a `type`.
pub fn decode(frame: &str) -> Option<ServerMessage> {
    let (mut message, counts) = decode_frame(frame)?;
    let map = counts.into_iter().collect();
    match &mut message {
        ServerMessage::Hearts(h) => h.counts = map,
        ServerMessage::Votes(v) => v.counts = map,
        ServerMessage::Welcome(w) => w.votes = map,
        _ => {}
    }
    Some(message)
}

/// [`decode`], except that the frame's [`Counts`] come back beside the message (whose
/// own map stays empty); empty for a frame without one.
#[cfg(target_arch = "wasm32")]
pub fn decode_frame(frame: &str) -> Option<(ServerMessage, Counts)> {
    let o = JSON::parse(frame).ok()?;
    decode_value(&o)
}

/// [`decode_frame`] natively: `serde_json` stands in for `JSON.parse`.
#[cfg(not(target_arch = "wasm32"))]
pub fn decode_frame(frame: &str) -> Option<(ServerMessage, Counts)> {
    let o: serde_json::Value = serde_json::from_str(frame).ok()?;
    decode_value(&&o)
}

/// [`decode_frame`] of an already parsed value; `None` unless it is an object with a
/// string `type`.
pub fn decode_value<J: Json>(o: &J) -> Option<(ServerMessage, Counts)> {
    if !o.is_object() {
        return None;
    }
    let kind = string(o, "type")?;
    let mut found = Vec::new();
    let message = match kind.as_str() {
        "welcome" => {
            let s = get(o, "settings");
            ServerMessage::Welcome(Welcome {
                protocol_version: number(o, "protocolVersion") as u32,
                viewer_id: text(o, "viewerId"),
                viewer_token: text(o, "viewerToken"),
                name: string(o, "name"),
                colour: text(o, "colour"),
                role: role(o),
                epoch: number(o, "epoch"),
                seq: number(o, "seq"),
                recovered: get(o, "recovered").truthy(),
                history: list(o, "history").iter().map(room_event).collect(),
                viewer_count: number(o, "viewerCount") as u32,
                hearts_total: number(o, "heartsTotal"),
                stream_state: stream_state(string(o, "streamState")),
                settings: if s.is_object() {
                    settings(&s)
                } else {
                    RoomSettings::default()
                },
                limits: limits(&get(o, "limits")),
                pinned: {
                    let q = get(o, "pinned");
                    q.is_object().then(|| Box::new(chat(&q)))
                },
                votes: {
                    found = counts(o, "votes");
                    Default::default()
                },
            })
        }
        "chat" => ServerMessage::Chat(chat(o)),
        "deleted" => ServerMessage::Deleted(deleted(o)),
        "pinned" => ServerMessage::Pinned(pinned(o)),
        "answered" => ServerMessage::Answered(answered(o)),
        "votes" => {
            found = counts(o, "counts");
            ServerMessage::Votes(Votes::default())
        }
        "hearts" => {
            found = counts(o, "counts");
            ServerMessage::Hearts(Hearts {
                counts: Default::default(),
                total: number(o, "total"),
            })
        }
        "viewerCount" => ServerMessage::ViewerCount(ViewerCount {
            count: number(o, "count") as u32,
        }),
        "streamState" => ServerMessage::StreamState(StreamStateChange {
            state: stream_state(string(o, "state")),
        }),
        "settings" => ServerMessage::Settings(settings(o)),
        "profile" => ServerMessage::Profile(Profile {
            name: string(o, "name"),
            colour: text(o, "colour"),
            role: role(o),
        }),
        "notice" => ServerMessage::Notice(Notice {
            code: match string(o, "code").as_deref() {
                Some("muted") => NoticeCode::Muted,
                Some("banned") => NoticeCode::Banned,
                Some("unbanned") => NoticeCode::Unbanned,
                _ => NoticeCode::Unknown,
            },
            message: text(o, "message"),
            until: opt_number(o, "until"),
        }),
        "error" => ServerMessage::Error(ErrorFrame {
            code: error_code(string(o, "code")),
            message: text(o, "message"),
            client_id: string(o, "clientId"),
            retry_after_ms: opt_number(o, "retryAfterMs"),
        }),
        "pong" => ServerMessage::Pong(Ping {
            t: opt_number(o, "t"),
        }),
        _ => ServerMessage::Unknown,
    };
    Some((message, found))
}

/// A field of a frame the widget sends.
enum Field<'a> {
    Text(&'a str),
    Number(f64),
    /// A nested object of numbers (`resume`).
    Numbers(&'a [(&'a str, f64)]),
    /// `true` (a flag that is left out when false).
    True,
}

/// `{"type": kind, k: v, ...}`, leaving out the `None` fields, serialised with
/// `JSON.stringify` (which escapes the viewer's text correctly).
#[cfg(target_arch = "wasm32")]
fn encode(kind: &str, fields: &[(&str, Option<Field<'_>>)]) -> String {
    fn set(o: &Object, k: &str, v: &JsValue) {
        let _ = Reflect::set(o, &k.into(), v);
    }
    let o = Object::new();
    set(&o, "type", &kind.into());
    for (k, f) in fields {
        let v = match f {
            None => continue,
            Some(Field::Text(t)) => JsValue::from_str(t),
            Some(Field::Number(n)) => JsValue::from_f64(*n),
            Some(Field::Numbers(n)) => {
                let inner = Object::new();
                for (k, v) in n.iter() {
                    set(&inner, k, &JsValue::from_f64(*v));
                }
                inner.into()
            }
            Some(Field::True) => JsValue::TRUE,
        };
        set(&o, k, &v);
    }
    JSON::stringify(&o).map_or_else(|_| "{}".into(), String::from)
}

/// [`encode`] natively, with `JSON.stringify`'s output for the same values (an integral
/// number has no decimal point), so the native tests check what the browser sends.
#[cfg(not(target_arch = "wasm32"))]
fn encode(kind: &str, fields: &[(&str, Option<Field<'_>>)]) -> String {
    use serde_json::{Map, Value};
    fn number(n: f64) -> Value {
        if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            Value::from(n as i64)
        } else {
            Value::from(n)
        }
    }
    let mut o = Map::new();
    o.insert("type".into(), kind.into());
    for (k, f) in fields {
        let v = match f {
            None => continue,
            Some(Field::Text(t)) => Value::from(*t),
            Some(Field::Number(n)) => number(*n),
            Some(Field::Numbers(n)) => {
                Value::Object(n.iter().map(|(k, v)| ((*k).into(), number(*v))).collect())
            }
            Some(Field::True) => Value::Bool(true),
        };
        o.insert((*k).into(), v);
    }
    Value::Object(o).to_string()
}

fn text_of(v: &Option<String>) -> Option<Field<'_>> {
    v.as_deref().map(Field::Text)
}

/// The first frame on every connection.
pub fn hello(h: &Hello) -> String {
    let resume = h
        .resume
        .map(|r| [("epoch", r.epoch as f64), ("lastSeq", r.last_seq as f64)]);
    encode(
        "hello",
        &[
            (
                "protocolVersion",
                Some(Field::Number(h.protocol_version.into())),
            ),
            ("viewerId", text_of(&h.viewer_id)),
            ("viewerToken", text_of(&h.viewer_token)),
            ("name", text_of(&h.name)),
            ("resume", resume.as_ref().map(|r| Field::Numbers(r))),
            ("authToken", text_of(&h.auth_token)),
            ("backstage", h.backstage.then_some(Field::True)),
        ],
    )
}

/// Picks the display name.
pub fn set_name(m: &SetName) -> String {
    encode("setName", &[("name", Some(Field::Text(&m.name)))])
}

/// Posts a chat message.
pub fn chat_message(m: &SendChat) -> String {
    encode(
        "chat",
        &[
            ("text", Some(Field::Text(&m.text))),
            ("clientId", text_of(&m.client_id)),
            ("question", m.question.then_some(Field::True)),
        ],
    )
}

/// +1 on a question.
pub fn vote(m: &Vote) -> String {
    encode("vote", &[("id", Some(Field::Text(&m.id)))])
}

/// Staff: pins a question (or unpins, without an id).
pub fn pin(m: &Pin) -> String {
    encode("pin", &[("id", text_of(&m.id))])
}

/// Staff: marks a question answered.
pub fn answer(m: &Answer) -> String {
    encode("answer", &[("id", Some(Field::Text(&m.id)))])
}

/// A batch of heart taps.
pub fn hearts(m: &SendHearts) -> String {
    encode(
        "hearts",
        &[
            ("count", Some(Field::Number(m.count.into()))),
            ("colour", text_of(&m.colour)),
        ],
    )
}

/// Keeps the connection alive.
pub fn ping(m: &Ping) -> String {
    encode("ping", &[("t", m.t.map(|t| Field::Number(t as f64)))])
}

/// Moderation: removes a message for everyone.
pub fn delete(m: &DeleteMessage) -> String {
    encode("delete", &[("id", Some(Field::Text(&m.id)))])
}

/// Moderation: bans a viewer.
pub fn ban(m: &BanViewer) -> String {
    encode(
        "ban",
        &[
            ("viewerId", Some(Field::Text(&m.viewer_id))),
            (
                "durationSecs",
                m.duration_secs.map(|d| Field::Number(d as f64)),
            ),
            ("reason", text_of(&m.reason)),
        ],
    )
}

#[cfg(target_arch = "wasm32")]
/// `Option<String>` as a JS value (`undefined` when absent: the field is left out).
pub fn opt(v: &Option<String>) -> JsValue {
    v.as_deref().map_or(JsValue::UNDEFINED, JsValue::from_str)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn the_native_walk_reads_frames_as_serde_does() {
        for frame in [
            r##"{"type":"welcome","protocolVersion":1,"viewerId":"v1","viewerToken":"t","colour":"#fff","epoch":3,"seq":12,"recovered":true,"history":[{"type":"deleted","seq":12,"id":"m10"},{"type":"future"}],"viewerCount":2,"heartsTotal":40,"settings":{"slowModeSecs":5,"blockedWords":["spam"]}}"##,
            r##"{"type":"hearts","counts":{"#ff6b6b":3,"#00aaff":1},"total":1234}"##,
            r##"{"type":"error","code":"something_new","message":"m","retryAfterMs":4000}"##,
            r##"{"type":"poll","options":[1,2]}"##,
            r##"{"type":"welcome","protocolVersion":1,"viewerId":"v1","viewerToken":"t","colour":"#fff","epoch":3,"seq":14,"recovered":false,"history":[{"type":"chat","seq":12,"id":"3-12","viewerId":"v2","name":"Ana","colour":"#fff","text":"Which lens?","ts":1,"question":true},{"type":"pinned","seq":13,"question":{"type":"chat","seq":12,"id":"3-12","viewerId":"v2","name":"Ana","colour":"#fff","text":"Which lens?","ts":1,"question":true}},{"type":"answered","seq":14,"id":"3-12"}],"viewerCount":2,"heartsTotal":40,"pinned":{"seq":12,"id":"3-12","viewerId":"v2","name":"Ana","colour":"#fff","text":"Which lens?","ts":1,"question":true},"votes":{"3-12":7}}"##,
            r##"{"type":"votes","counts":{"3-12":8,"3-15":1}}"##,
            r##"{"type":"pinned","seq":16}"##,
        ] {
            let expected: ServerMessage = serde_json::from_str(frame).unwrap();
            assert_eq!(decode(frame), Some(expected), "{frame}");
        }
    }

    /// What the widget reads: the counts beside the frame, in its order; the frame's
    /// own maps left empty.
    #[test]
    fn counts_come_beside_the_frame() {
        let counts = |frame| decode_frame(frame).unwrap();
        let (m, c) = counts(r##"{"type":"votes","counts":{"3-12":8,"3-15":1}}"##);
        assert_eq!(m, ServerMessage::Votes(Votes::default()));
        assert_eq!(c, [("3-12".to_owned(), 8), ("3-15".to_owned(), 1)]);
        let (m, c) = counts(r##"{"type":"welcome","epoch":1,"votes":{"3-12":7}}"##);
        assert!(matches!(m, ServerMessage::Welcome(w) if w.votes.is_empty()));
        assert_eq!(c, [("3-12".to_owned(), 7)]);
        let (m, c) = counts(r##"{"type":"hearts","counts":{"#ff6b6b":3},"total":4}"##);
        assert!(matches!(m, ServerMessage::Hearts(h) if h.counts.is_empty() && h.total == 4));
        assert_eq!(c, [("#ff6b6b".to_owned(), 3)]);
        let (_, c) = counts(r##"{"type":"viewerCount","count":3,"counts":{"a":1}}"##);
        assert!(c.is_empty());
    }

    /// Every frame the widget sends, built by the functions the socket calls, read back
    /// with the server's serde types.
    #[test]
    fn the_frames_the_widget_sends_are_what_the_server_reads() {
        let text = "a \"quoted\" <b>\n\u{2028}é 🎉 \\ end";
        let cases: Vec<(String, ClientMessage)> = vec![
            {
                let h = Hello {
                    protocol_version: PROTOCOL_VERSION,
                    ..Hello::default()
                };
                (hello(&h), ClientMessage::Hello(h))
            },
            {
                let h = Hello {
                    protocol_version: PROTOCOL_VERSION,
                    viewer_id: Some("v1".into()),
                    viewer_token: Some("tok".into()),
                    name: Some("Ana \"A\"".into()),
                    resume: Some(Resume {
                        epoch: 1_764_000_000_123,
                        last_seq: 9_007_199_254_740_991,
                    }),
                    auth_token: Some("mod-secret".into()),
                    backstage: true,
                };
                (hello(&h), ClientMessage::Hello(h))
            },
            {
                let m = SetName { name: text.into() };
                (set_name(&m), ClientMessage::SetName(m))
            },
            {
                let m = SendChat {
                    text: text.into(),
                    client_id: Some("1764000000000-3".into()),
                    question: false,
                };
                (chat_message(&m), ClientMessage::Chat(m))
            },
            {
                let m = SendChat {
                    text: "x".into(),
                    client_id: None,
                    question: false,
                };
                (chat_message(&m), ClientMessage::Chat(m))
            },
            {
                let m = SendChat {
                    text: "Which lens?".into(),
                    client_id: Some("c9".into()),
                    question: true,
                };
                (chat_message(&m), ClientMessage::Chat(m))
            },
            {
                let m = Vote { id: "3-12".into() };
                (vote(&m), ClientMessage::Vote(m))
            },
            {
                let m = Pin {
                    id: Some("3-12".into()),
                };
                (pin(&m), ClientMessage::Pin(m))
            },
            {
                let m = Pin { id: None };
                (pin(&m), ClientMessage::Pin(m))
            },
            {
                let m = Answer { id: "3-12".into() };
                (answer(&m), ClientMessage::Answer(m))
            },
            {
                let m = SendHearts {
                    count: 4,
                    colour: None,
                };
                (hearts(&m), ClientMessage::Hearts(m))
            },
            {
                let m = SendHearts {
                    count: u32::MAX,
                    colour: Some("#ff6b6b".into()),
                };
                (hearts(&m), ClientMessage::Hearts(m))
            },
            (ping(&Ping::default()), ClientMessage::Ping(Ping::default())),
            {
                let m = Ping { t: Some(123) };
                (ping(&m), ClientMessage::Ping(m))
            },
            {
                let m = DeleteMessage { id: "1f-7".into() };
                (delete(&m), ClientMessage::Delete(m))
            },
            {
                let m = BanViewer {
                    viewer_id: "v2".into(),
                    duration_secs: None,
                    reason: None,
                };
                (ban(&m), ClientMessage::Ban(m))
            },
            {
                let m = BanViewer {
                    viewer_id: "v2".into(),
                    duration_secs: Some(600),
                    reason: Some(text.into()),
                };
                (ban(&m), ClientMessage::Ban(m))
            },
        ];
        for (sent, expected) in cases {
            let got: ClientMessage =
                serde_json::from_str(&sent).unwrap_or_else(|e| panic!("{sent}: {e}"));
            assert_eq!(got, expected, "{sent}");
        }
        // Absent fields are left out, not sent as null.
        assert_eq!(ping(&Ping::default()), r#"{"type":"ping"}"#);
    }

    #[test]
    fn the_native_walk_answers_as_javascript_does() {
        // Arrays are objects, null is not; empty containers are truthy.
        let v: serde_json::Value = serde_json::from_str(r#"[null,[],{},0,"",1]"#).unwrap();
        let items = (&v).items();
        let objects: Vec<bool> = items.iter().map(Json::is_object).collect();
        let truthy: Vec<bool> = items.iter().map(Json::truthy).collect();
        assert_eq!(objects, [false, true, true, false, false, false]);
        assert_eq!(truthy, [false, true, true, false, false, true]);
        for garbage in [
            "",
            "null",
            "[1,2]",
            "{\"no\":\"type\"}",
            "{not json",
            "\"chat\"",
        ] {
            assert_eq!(decode(garbage), None, "{garbage}");
        }
    }
}
