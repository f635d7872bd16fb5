//! lucarne-protocol: the messages the widget and lucarne-server exchange over the chat
//! WebSocket (`GET /chat/{room}`), and the HTTP moderation bodies.
//!
//! This crate owns the wire format and nothing else: no I/O, no validation, no policy.
//! It compiles into the WebAssembly widget, so it depends on `serde` (derive) only.
//!
//! # Framing
//! One JSON object per WebSocket **text** frame, tagged by `"type"`, fields in
//! camelCase. A client frame larger than [`MAX_FRAME_BYTES`] closes the socket with
//! [`close::FRAME_TOO_LARGE`].
//!
//! # Forward compatibility
//! Unknown fields are ignored and an unknown `"type"` decodes to an `Unknown` variant,
//! so an old widget keeps working against a newer server and the reverse. Optional
//! fields are omitted when absent. [`PROTOCOL_VERSION`] is sent in `hello` and echoed in
//! `welcome`; a server answers with the version it speaks, which is at most the one the
//! client announced.
//!
//! # Ordering and resume
//! A room has an **epoch** (it changes only when the room's history was lost) and a
//! **seq**: every durable room event ([`RoomEvent`]: a chat message, a deletion, a
//! pin, an answer) carries the room's next seq. Seqs strictly increase but may have gaps (a deleted message's seq
//! is never sent again). State frames (`hearts`, `votes`, `viewerCount`,
//! `streamState`, `settings`) are snapshots, carry no seq and are never replayed.
//!
//! A client keeps `(epoch, lastSeq)`: it ignores any event whose seq is not above
//! `lastSeq`, and raises `lastSeq` to each event's seq. On reconnect it sends
//! `hello.resume`. If the welcome says `recovered: true`, `history` holds the first
//! missed events (at most [`WELCOME_HISTORY`]) and the rest follow as ordinary frames:
//! every missed event arrives exactly once, in order. If it says `recovered: false` (new
//! epoch, or the gap is older than the server's window), `history` holds the last
//! messages of the room: the client replaces what it shows and sets `lastSeq` to
//! `welcome.seq`.
//!
//! # Messages
//! Client → server ([`ClientMessage`]): `hello`, `setName`, `chat`, `hearts`, `ping`,
//! `vote`, and for moderators and the broadcaster `delete`, `ban`, `unban`, `slowMode`,
//! `blockedWords`, `pin`, `answer`.
//!
//! Server → client ([`ServerMessage`]): `welcome`, `chat`, `deleted`, `pinned`,
//! `answered`, `hearts`, `votes`, `viewerCount`, `streamState`, `settings`, `profile`,
//! `notice`, `error`, `pong`.
//!
//! # Questions
//! A question is a chat message sent with `question: true`: it is sequenced, kept,
//! resumed and moderated like any message (a deleted question is gone everywhere).
//! Votes are not durable events (a vote storm would push messages out of the resume
//! window): each viewer's +1 counts once, and totals go out as a `votes` state frame per
//! tick, with the open questions' totals in the `welcome`. Pinning and answering are
//! durable events (`pinned` carries the question itself, so a viewer who never saw it
//! can show it), and the `welcome` says what is pinned.
//!
//! The broadcaster console's ingest socket speaks [`studio`]'s messages.
//!
//! Errors carry an [`ErrorCode`] (stable snake_case strings) and leave the socket open;
//! the faults that end a connection use the [`close`] codes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod push;
pub mod studio;

/// The protocol version this crate describes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest client frame the server accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 4096;

/// Longest chat text the server accepts, in characters (Unicode scalar values).
pub const MAX_CHAT_CHARS: usize = 500;

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 24;

/// Events carried inside a `welcome` at most; the rest follow as ordinary frames.
pub const WELCOME_HISTORY: usize = 50;

/// A room's sequence number for durable events.
pub type Seq = u64;

/// A room's epoch: a new value means the room's history was lost.
pub type Epoch = u64;

/// WebSocket close codes the server uses.
pub mod close {
    /// The server is stopping or restarting: reconnect with resume.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame was not valid UTF-8.
    pub const INVALID_UTF8: u16 = 1007;
    /// A frame was larger than [`crate::MAX_FRAME_BYTES`].
    pub const FRAME_TOO_LARGE: u16 = 1009;
    /// The client speaks an older protocol than the server supports.
    pub const UNSUPPORTED_PROTOCOL: u16 = 4000;
    /// No `hello` arrived in time.
    pub const HELLO_REQUIRED: u16 = 4001;
    /// The viewer is banned from the room: do not reconnect.
    pub const BANNED: u16 = 4003;
    /// The client did not read fast enough: reconnect with resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Nothing arrived from the client for too long: reconnect with resume.
    pub const IDLE_TIMEOUT: u16 = 4009;
}

// ---------------------------------------------------------------------------------------
// Client → server

/// Everything a client may send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// First frame on every connection.
    Hello(Hello),
    /// Picks (or changes) the display name.
    SetName(SetName),
    /// Posts a chat message.
    Chat(SendChat),
    /// Taps on the hearts button since the last batch.
    Hearts(SendHearts),
    /// Keeps the connection alive; answered by `pong`.
    Ping(Ping),
    /// Moderation: removes a message for everyone.
    Delete(DeleteMessage),
    /// Moderation: bans a viewer.
    Ban(BanViewer),
    /// Moderation: lifts a ban.
    Unban(UnbanViewer),
    /// Moderation: sets slow mode.
    SlowMode(SlowMode),
    /// Moderation: replaces the blocked-words list.
    BlockedWords(BlockedWords),
    /// +1 on an open question (once per viewer; more are ignored).
    Vote(Vote),
    /// The broadcaster or a moderator pins a question over the video (or unpins).
    Pin(Pin),
    /// The broadcaster or a moderator marks a question answered (it leaves the open
    /// questions, and the pin if it was pinned).
    Answer(Answer),
    /// A type this version does not know.
    #[serde(other)]
    Unknown,
}

/// `{"type":"hello","protocolVersion":1,...}`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// The version the client speaks.
    pub protocol_version: u32,
    /// The identity the server gave in an earlier `welcome` (kept in localStorage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_id: Option<String>,
    /// Proof of `viewerId`, from the same `welcome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_token: Option<String>,
    /// Display name, if the viewer already picked one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the client stopped, to receive only what it missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    /// A moderator or broadcaster token configured on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// The connection is the broadcast's own (the broadcaster's console, an overlay for
    /// OBS): it gets the room like a viewer but is not counted among the viewers.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backstage: bool,
}

/// The last event a client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    /// The room's epoch when that event was seen.
    pub epoch: Epoch,
    /// Its seq.
    pub last_seq: Seq,
}

/// `{"type":"setName","name":"Ana"}`, answered by `profile` or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetName {
    /// The wanted display name.
    pub name: String,
}

/// `{"type":"chat","text":"hello","clientId":"c1"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendChat {
    /// The message, shown as plain text.
    pub text: String,
    /// Chosen by the client, unique per message: a message re-sent after a reconnect with
    /// the same `clientId` is posted once. Echoed in the resulting `chat` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Sent as a question to the broadcaster (viewers +1 it; staff pin and answer it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub question: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `{"type":"vote","id":"1f-7"}`: +1 on the question with that message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vote {
    /// The question's message id.
    pub id: String,
}

/// `{"type":"pin","id":"1f-7"}` pins that question; `{"type":"pin"}` unpins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    /// The question's message id; none to unpin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `{"type":"answer","id":"1f-7"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The question's message id.
    pub id: String,
}

/// `{"type":"hearts","count":3,"colour":"#ff6b6b"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendHearts {
    /// Taps in this batch.
    pub count: u32,
    /// One of the server's palette colours; the viewer's own colour otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
}

/// `{"type":"ping","t":123}`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ping {
    /// Any number; echoed in the `pong` (round-trip time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<u64>,
}

/// `{"type":"delete","id":"..."}`; also the body of nothing (HTTP uses the path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteMessage {
    /// The message's `id`.
    pub id: String,
}

/// `{"type":"ban","viewerId":"v...","durationSecs":600}`; the body of `POST .../bans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BanViewer {
    /// Who.
    pub viewer_id: String,
    /// How long; forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
    /// Why, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `{"type":"unban","viewerId":"v..."}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnbanViewer {
    /// Who.
    pub viewer_id: String,
}

/// `{"type":"slowMode","seconds":10}`; the body of `POST .../slow-mode`. 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowMode {
    /// Minimum interval between two messages of one viewer.
    pub seconds: u32,
}

/// `{"type":"blockedWords","words":["spam"]}`; the body of `PUT .../blocked-words`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedWords {
    /// Words or phrases, matched case-insensitively on word boundaries.
    #[serde(default)]
    pub words: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Server → client

/// Everything the server may send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    /// Answer to `hello`.
    Welcome(Welcome),
    /// A chat message (durable, has a seq).
    Chat(ChatMessage),
    /// A message was removed by a moderator (durable, has a seq).
    Deleted(Deleted),
    /// Hearts tapped in the room since the last `hearts` frame.
    Hearts(Hearts),
    /// How many are watching.
    ViewerCount(ViewerCount),
    /// The broadcast went live, offline or ended.
    StreamState(StreamStateChange),
    /// Room settings changed.
    Settings(RoomSettings),
    /// The viewer's own name or role changed (answer to `setName`).
    Profile(Profile),
    /// Something the viewer should be told (mute, moderation done).
    Notice(Notice),
    /// A request was refused.
    Error(ErrorFrame),
    /// Answer to `ping`.
    Pong(Ping),
    /// Questions' vote totals that changed (at most one frame per tick).
    Votes(Votes),
    /// A question was pinned over the video, or the pin removed (durable, has a seq).
    Pinned(Pinned),
    /// A question was answered (durable, has a seq).
    Answered(Answered),
    /// A type this version does not know.
    #[serde(other)]
    Unknown,
}

/// A durable room event: what `welcome.history` holds and what resume replays.
///
/// It encodes exactly like the matching [`ServerMessage`] variant, so a client handles a
/// history entry and a live frame with the same code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RoomEvent {
    /// See [`ServerMessage::Chat`].
    Chat(ChatMessage),
    /// See [`ServerMessage::Deleted`].
    Deleted(Deleted),
    /// See [`ServerMessage::Pinned`].
    Pinned(Pinned),
    /// See [`ServerMessage::Answered`].
    Answered(Answered),
    /// A kind this version does not know.
    #[serde(other)]
    Unknown,
}

impl RoomEvent {
    /// The event's seq (0 for an unknown kind).
    pub fn seq(&self) -> Seq {
        match self {
            RoomEvent::Chat(m) => m.seq,
            RoomEvent::Deleted(d) => d.seq,
            RoomEvent::Pinned(p) => p.seq,
            RoomEvent::Answered(a) => a.seq,
            RoomEvent::Unknown => 0,
        }
    }
}

/// What a viewer may do in a room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Anyone.
    #[default]
    Viewer,
    /// Holder of a moderator token: may moderate.
    Moderator,
    /// Holder of the broadcaster token: may moderate, posts under the broadcaster's name.
    Broadcaster,
}

impl Role {
    /// True for the plain viewer role.
    pub fn is_viewer(&self) -> bool {
        *self == Role::Viewer
    }
}

/// State of a live broadcast: the chat's `streamState` and `welcome.streamState`, the
/// low-latency push socket's text messages and `/api/streams/{id}`'s `state` all say it
/// with these words.
///
/// A client that meets a state it does not know treats it as [`StreamState::Offline`]:
/// the widget's older versions did, so a new state must be one that makes sense shown
/// as "offline" (nobody is broadcasting, media follows when someone does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StreamState {
    /// Playing now.
    Live,
    /// Not (yet) broadcasting.
    #[default]
    Offline,
    /// The broadcast is over.
    Ended,
    /// Nobody is broadcasting: the last publisher was refused because its media cannot
    /// be played without transcoding (a video codec other than H.264). Viewers are told
    /// why the stream does not start; media follows when a publisher sends H.264.
    Unsupported,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

impl StreamState {
    /// The word on the wire: `live`, `offline`, `ended`, `unsupported` (`unknown` for
    /// [`StreamState::Unknown`], which no server sends).
    pub fn as_str(&self) -> &'static str {
        match self {
            StreamState::Live => "live",
            StreamState::Offline => "offline",
            StreamState::Ended => "ended",
            StreamState::Unsupported => "unsupported",
            StreamState::Unknown => "unknown",
        }
    }

    /// Reads the word on the wire (the push socket's text messages); a word this
    /// version does not know is [`StreamState::Unknown`].
    pub fn parse(word: &str) -> StreamState {
        match word {
            "live" => StreamState::Live,
            "offline" => StreamState::Offline,
            "ended" => StreamState::Ended,
            "unsupported" => StreamState::Unsupported,
            _ => StreamState::Unknown,
        }
    }
}

/// Answer to `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    /// The version the server speaks on this connection.
    pub protocol_version: u32,
    /// The viewer's identity: keep it (with the token) to be recognised next time.
    pub viewer_id: String,
    /// Proof of `viewerId`, to send back in the next `hello`.
    pub viewer_token: String,
    /// The accepted display name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The viewer's colour (`#rrggbb`), for its name and hearts.
    pub colour: String,
    /// What the viewer may do.
    #[serde(default)]
    pub role: Role,
    /// The room's epoch.
    pub epoch: Epoch,
    /// The room's latest seq when the viewer joined.
    pub seq: Seq,
    /// True when `history` starts right after `hello.resume.lastSeq`.
    pub recovered: bool,
    /// Missed events (recovered) or the last messages of the room (not recovered).
    #[serde(default)]
    pub history: Vec<RoomEvent>,
    /// How many are watching.
    pub viewer_count: u32,
    /// Hearts ever sent in this room.
    pub hearts_total: u64,
    /// Is the broadcast live.
    #[serde(default)]
    pub stream_state: StreamState,
    /// Room settings.
    #[serde(default)]
    pub settings: RoomSettings,
    /// The server's limits, so the widget can explain them.
    #[serde(default)]
    pub limits: Limits,
    /// The question pinned over the video, if any (boxed: it would double the size of
    /// every [`ServerMessage`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<Box<ChatMessage>>,
    /// Vote totals of the room's open questions (those with at least one vote).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub votes: BTreeMap<String, u32>,
}

/// `{"type":"chat","seq":7,"id":"1f-7","viewerId":"v..","name":"Ana","colour":"#ff6b6b","text":"hi","ts":1700000000000}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Room seq.
    pub seq: Seq,
    /// Message id (what `delete` names).
    pub id: String,
    /// Author.
    pub viewer_id: String,
    /// Author's display name at the time.
    pub name: String,
    /// Author's colour.
    pub colour: String,
    /// The text: render as text, never as HTML.
    pub text: String,
    /// Server time, unix milliseconds.
    pub ts: u64,
    /// Author's role when not a plain viewer (for a badge).
    #[serde(default, skip_serializing_if = "Role::is_viewer")]
    pub role: Role,
    /// The author's `clientId`, so the author can match its pending message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Asked as a question (see [`SendChat::question`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub question: bool,
}

/// `{"type":"deleted","seq":9,"id":"1f-7"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// Room seq of the deletion.
    pub seq: Seq,
    /// Id of the removed message.
    pub id: String,
}

/// `{"type":"votes","counts":{"1f-7":12}}`: the new totals of the questions that got
/// votes since the last frame (at most 5 frames a second, like `hearts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Votes {
    /// Question id to its total.
    #[serde(default)]
    pub counts: BTreeMap<String, u32>,
}

/// `{"type":"pinned","seq":12,"question":{...chat...}}`; without `question`: unpinned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pinned {
    /// Room seq.
    pub seq: Seq,
    /// The pinned question as it was posted; none when the pin was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<ChatMessage>,
}

/// `{"type":"answered","seq":13,"id":"1f-7"}`: the question is answered; if it was
/// pinned, the pin goes too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answered {
    /// Room seq.
    pub seq: Seq,
    /// The question's message id.
    pub id: String,
}

/// `{"type":"hearts","counts":{"#ff6b6b":3},"total":1234}`, at most 5 per second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hearts {
    /// Hearts since the previous frame, per colour.
    #[serde(default)]
    pub counts: BTreeMap<String, u32>,
    /// Hearts ever sent in this room.
    pub total: u64,
}

/// `{"type":"viewerCount","count":42}`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerCount {
    /// Open connections in the room.
    pub count: u32,
}

/// `{"type":"streamState","state":"live"}`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStateChange {
    /// The new state.
    pub state: StreamState,
}

/// `{"type":"settings","slowModeSecs":10}` (staff also get `blockedWords`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSettings {
    /// Slow mode interval; 0 when off.
    #[serde(default)]
    pub slow_mode_secs: u32,
    /// The blocked words; sent to moderators and the broadcaster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_words: Option<Vec<String>>,
}

/// The limits the server enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Longest chat text, in characters.
    pub chat_max_chars: u32,
    /// Messages allowed in a burst ...
    pub chat_burst: u32,
    /// ... per this many milliseconds, before a mute.
    pub chat_window_ms: u64,
    /// Hearts counted per second per viewer; more are ignored.
    pub hearts_per_sec: u32,
    /// Close after this long without any frame from the client: ping more often.
    pub idle_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            chat_max_chars: MAX_CHAT_CHARS as u32,
            chat_burst: 3,
            chat_window_ms: 2000,
            hearts_per_sec: 10,
            idle_timeout_ms: 60_000,
        }
    }
}

/// `{"type":"profile","name":"Ana","colour":"#ff6b6b","role":"viewer"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The accepted display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The viewer's colour.
    pub colour: String,
    /// The viewer's role.
    #[serde(default)]
    pub role: Role,
}

/// Why the server tells the viewer something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeCode {
    /// The viewer posted too fast and cannot post until `until`.
    Muted,
    /// (to staff) The ban was applied.
    Banned,
    /// (to staff) The ban was lifted.
    Unbanned,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

/// `{"type":"notice","code":"muted","message":"...","until":1700000030000}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// What happened.
    pub code: NoticeCode,
    /// Human-readable, English.
    pub message: String,
    /// End of the mute, unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// Stable error codes (snake_case on the wire). A client shows its own text for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON, or not the shape its `type` requires.
    BadJson,
    /// The `type` is not one the server knows.
    UnknownType,
    /// Binary frames are not part of the protocol.
    BinaryUnsupported,
    /// The first frame must be `hello`.
    HelloRequired,
    /// The client's protocol version is too old (the socket closes with 4000).
    UnsupportedProtocol,
    /// The display name is empty, too long or has control characters.
    InvalidName,
    /// The display name belongs to the broadcaster or the service.
    NameReserved,
    /// Pick a name (`setName`) before posting.
    NameRequired,
    /// The chat text is empty.
    TextEmpty,
    /// The chat text is longer than `limits.chatMaxChars`.
    TextTooLong,
    /// Too many messages too fast: the viewer is now muted (see the `notice`).
    RateLimited,
    /// The viewer is muted; `retryAfterMs` says for how long.
    Muted,
    /// Slow mode: wait `retryAfterMs`.
    SlowMode,
    /// The text contains a blocked word.
    BlockedWord,
    /// The viewer is banned from this room (the socket closes with 4003).
    Banned,
    /// The moderator/broadcaster token (or HTTP bearer token) is not valid.
    BadToken,
    /// Moderation needs a moderator or broadcaster token.
    Forbidden,
    /// No such message or viewer.
    NotFound,
    /// A request field is out of range.
    InvalidRequest,
    /// The server could not do it; try again later.
    Unavailable,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

/// Why a page cannot join a room's chat, for good: the same handshake would be
/// refused again, so the widget stops retrying and says why.
///
/// A refused WebSocket handshake shows a page only "the connection failed" (a 403 and a
/// network error look the same to `WebSocket`), so the server also answers a plain
/// `GET /chat/{room}` (no `Upgrade`) with a [`ChatDoor`], which CORS lets any page read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Refusal {
    /// The page's origin is not among the server's `--embed-origin`s.
    Origin,
    /// The server has no chat room by that name.
    Room,
    /// The broadcast is private and the page has no valid playback token (the door of
    /// private broadcasts answers `403 {"refused":"private"}`).
    Private,
    /// A reason this version does not know (still for good).
    #[serde(other)]
    Unknown,
}

impl Refusal {
    /// The word on the wire: `origin`, `room`, `private` (`unknown` for
    /// [`Refusal::Unknown`]).
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::Origin => "origin",
            Refusal::Room => "room",
            Refusal::Private => "private",
            Refusal::Unknown => "unknown",
        }
    }

    /// Reads the word on the wire; a word this version does not know is
    /// [`Refusal::Unknown`].
    pub fn parse(word: &str) -> Refusal {
        match word {
            "origin" => Refusal::Origin,
            "room" => Refusal::Room,
            "private" => Refusal::Private,
            _ => Refusal::Unknown,
        }
    }

    /// The refusal a door's HTTP status says (the body says the same, for people):
    /// `403` the origin, `404` the room; anything else is not a refusal for good (an
    /// older server's `426`, a proxy's `502`, no answer at all as `0`).
    pub fn from_status(status: u16) -> Option<Refusal> {
        match status {
            403 => Some(Refusal::Origin),
            404 => Some(Refusal::Room),
            _ => None,
        }
    }
}

/// The answer to a plain `GET /chat/{room}`: would this page's chat handshake be
/// accepted? `{"refused":null}` when nothing stops it (a failure was transient: retry),
/// `{"refused":"origin","origin":"https://blog.example"}` when the page's origin is not
/// allowed (with the origin the server saw, for the page author's fix), `{"refused":"room"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatDoor {
    /// Why a handshake from this page is refused; `None` when it would be accepted.
    pub refused: Option<Refusal>,
    /// The page's `Origin` as the server read it, when it is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// `{"type":"error","code":"text_too_long","message":"...","clientId":"c1"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorFrame {
    /// What went wrong.
    pub code: ErrorCode,
    /// Human-readable, English.
    pub message: String,
    /// The `clientId` of the refused chat message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// When a retry may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}
