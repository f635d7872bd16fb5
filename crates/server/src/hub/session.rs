//! One chat WebSocket, from `hello` to close: identity, role and name, joining the room
//! (welcome, resume backlog), then one loop that forwards the room's fan-out to the
//! socket and handles what the client sends. It enforces the per-connection limits:
//! frame size, malformed input, hearts rate, idle timeout, send deadline.
//!
//! It is written against any [`Transport`]: tungstenite's socket in production, an
//! in-memory pair in its tests, which run with no network.
//!
//! A single task per connection (no split, no per-viewer queue besides the room's
//! broadcast ring) keeps an idle viewer to a few KB. Frames waiting in the ring are
//! written in batches: a viewer whose task runs late catches up with one syscall.

use super::fanout::{encode, Outbound};
use super::moderation::{self, Action};
use super::room::{Author, JoinError, Joined, Posted, Room};
use super::rules::{self, Refusal};
use super::window::Snapshot;
use super::{ClientKey, Hub};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lucarne_protocol::{
    close, ClientMessage, ErrorCode, ErrorFrame, Hello, Limits, Notice, NoticeCode, Ping, Profile,
    Role, Seq, ServerMessage, Welcome, MAX_CHAT_CHARS, MAX_FRAME_BYTES, PROTOCOL_VERSION,
};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, Utf8Bytes};

/// tungstenite reads at most this much per syscall; it grows the buffer for a larger
/// frame. Its whole read buffer is touched, so it must stay small for idle viewers.
pub(super) const READ_BUFFER: usize = 1024;
/// Frames are written once this much is buffered (or at the end of a batch).
pub(super) const WRITE_BUFFER: usize = 4096;
/// A guard only: the send deadline drops a stuck viewer long before this.
pub(super) const MAX_WRITE_BUFFER: usize = 1 << 20;
/// The first frame must be a `hello` within this time.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames longer than this (the welcome) go out in fragments of this size, each written
/// at once: tungstenite's write buffer keeps the capacity of its largest write for the
/// connection's life, and a 12 KB welcome would double an idle viewer's footprint.
const FRAGMENT: usize = 1024;
/// How long to wait for the client's reply to our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Frames written per batch at most, so one viewer's catch-up stays short.
const BATCH: usize = 64;
/// Hearts counted per second per connection (burst of the same size).
const HEARTS_PER_SEC: u32 = 10;

/// Votes taken per second per connection (burst of the same size); more are refused
/// `rate_limited` (a person does not +1 five questions a second).
const VOTES_PER_SEC: u32 = 5;
/// Longest `clientId` kept for dedup.
const MAX_CLIENT_ID: usize = 64;
/// RFC 6455's "try again later": the hub is full, or this address spent its budget.
const TRY_AGAIN_LATER: u16 = 1013;
/// Oldest protocol version this server still speaks.
const MIN_PROTOCOL_VERSION: u32 = 1;

/// What a session runs on: WebSocket messages both ways.
pub(super) trait Transport:
    Sink<Message, Error = tungstenite::Error>
    + Stream<Item = Result<Message, tungstenite::Error>>
    + Unpin
    + Send
{
}

impl<T> Transport for T where
    T: Sink<Message, Error = tungstenite::Error>
        + Stream<Item = Result<Message, tungstenite::Error>>
        + Unpin
        + Send
{
}

/// What to do with the connection.
enum Flow {
    Continue,
    /// Send a close frame with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone or stuck: just drop it.
    Gone,
}

/// A classified client frame.
enum Inbound {
    Message(ClientMessage),
    Ignore,
    Refuse(ErrorCode, String),
    Close(u16, &'static str),
    Gone,
}

type Received = Option<Result<Message, tungstenite::Error>>;

fn classify(next: Received) -> Inbound {
    match next {
        None | Some(Ok(Message::Close(_))) => Inbound::Gone,
        Some(Ok(Message::Text(t))) if t.len() > MAX_FRAME_BYTES => {
            Inbound::Close(close::FRAME_TOO_LARGE, "frame too large")
        }
        Some(Ok(Message::Binary(b))) if b.len() > MAX_FRAME_BYTES => {
            Inbound::Close(close::FRAME_TOO_LARGE, "frame too large")
        }
        Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientMessage>(t.as_str()) {
            Ok(ClientMessage::Unknown) => {
                Inbound::Refuse(ErrorCode::UnknownType, "Unknown message type.".into())
            }
            Ok(m) => Inbound::Message(m),
            Err(e) => Inbound::Refuse(ErrorCode::BadJson, format!("Malformed message: {e}")),
        },
        Some(Ok(Message::Binary(_))) => Inbound::Refuse(
            ErrorCode::BinaryUnsupported,
            "Send JSON text frames.".into(),
        ),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Inbound::Ignore,
        Some(Err(tungstenite::Error::Capacity(_))) => {
            Inbound::Close(close::FRAME_TOO_LARGE, "frame too large")
        }
        Some(Err(tungstenite::Error::Utf8(_))) => {
            Inbound::Close(close::INVALID_UTF8, "invalid UTF-8")
        }
        Some(Err(e)) => {
            tracing::debug!("chat socket error: {e}");
            Inbound::Gone
        }
    }
}

fn error_frame(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error(ErrorFrame {
        code,
        message: message.into(),
        client_id: None,
        retry_after_ms: None,
    })
}

fn refusal_frame(
    r: Refusal,
    client_id: Option<String>,
    retry_after_ms: Option<u64>,
) -> ServerMessage {
    ServerMessage::Error(ErrorFrame {
        code: r.code,
        message: r.message,
        client_id,
        retry_after_ms,
    })
}

/// Runs `fut` with a deadline, without arming a timer when it completes at once (the
/// common case: the socket buffer has room). Saves a timer per frame per viewer.
async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    if let Poll::Ready(out) = futures_util::poll!(fut.as_mut()) {
        return Some(out);
    }
    tokio::time::timeout(limit, fut).await.ok()
}

/// Sends a close frame, then waits briefly for the client's reply so that the TCP close
/// is orderly (closing with unread input would reset the connection, and the client
/// might never see the code).
async fn close_socket(socket: &mut impl Transport, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if socket.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}

/// Sends one text message, in fragments when it is long (see [`FRAGMENT`]).
async fn send_text(socket: &mut impl Transport, text: Utf8Bytes) -> Result<(), tungstenite::Error> {
    if text.len() <= FRAGMENT {
        return socket.send(Message::Text(text)).await;
    }
    let bytes = Bytes::from(text);
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + FRAGMENT).min(bytes.len());
        let op = if start == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let part = Frame::message(
            bytes.slice(start..end),
            OpCode::Data(op),
            end == bytes.len(),
        );
        socket.send(Message::Frame(part)).await?;
        start = end;
    }
    Ok(())
}

/// Serves one chat connection.
pub(super) async fn run(
    mut socket: impl Transport,
    hub: Arc<Hub>,
    room_id: String,
    client: ClientKey,
) {
    let mut closing = hub.closing.subscribe();
    let send_timeout = Duration::from_millis(hub.config.chat_send_timeout_ms);
    let hello = match read_hello(&mut socket, &mut closing, send_timeout).await {
        Ok(h) => h,
        Err(Flow::Close(code, reason)) => return close_socket(&mut socket, code, reason).await,
        Err(_) => return,
    };
    let (mut session, joined, greeting) = match join(&hub, &room_id, hello, client).await {
        Ok(j) => j,
        Err((frame, code, reason)) => {
            let _ = within(send_timeout, send_text(&mut socket, encode(&frame))).await;
            return close_socket(&mut socket, code, reason).await;
        }
    };
    drop(closing);
    let flow = session.serve(&mut socket, joined, greeting).await;
    session.room.leave(session.backstage);
    if let Flow::Close(code, reason) = flow {
        close_socket(&mut socket, code, reason).await;
    }
}

/// Waits for the `hello`, answering anything else with `hello_required`.
async fn read_hello(
    socket: &mut impl Transport,
    closing: &mut watch::Receiver<bool>,
    send_timeout: Duration,
) -> Result<Hello, Flow> {
    let deadline = Instant::now() + HELLO_TIMEOUT;
    loop {
        let next = tokio::select! {
            next = socket.next() => next,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Flow::Close(close::HELLO_REQUIRED, "hello required"));
            }
            _ = closing.changed() => return Err(Flow::Close(close::GOING_AWAY, "server stopping")),
        };
        let reply = match classify(next) {
            Inbound::Message(ClientMessage::Hello(h)) => {
                if h.protocol_version < MIN_PROTOCOL_VERSION {
                    let frame = error_frame(
                        ErrorCode::UnsupportedProtocol,
                        format!("Protocol {} is no longer supported.", h.protocol_version),
                    );
                    let _ = within(send_timeout, send_text(socket, encode(&frame))).await;
                    return Err(Flow::Close(
                        close::UNSUPPORTED_PROTOCOL,
                        "unsupported protocol",
                    ));
                }
                return Ok(h);
            }
            Inbound::Message(_) => error_frame(ErrorCode::HelloRequired, "Say hello first."),
            Inbound::Refuse(code, message) => error_frame(code, message),
            Inbound::Ignore => continue,
            Inbound::Close(code, reason) => return Err(Flow::Close(code, reason)),
            Inbound::Gone => return Err(Flow::Gone),
        };
        if within(send_timeout, send_text(socket, encode(&reply)))
            .await
            .is_none_or(|r| r.is_err())
        {
            return Err(Flow::Gone);
        }
    }
}

/// The state of a joined connection.
struct Session {
    hub: Arc<Hub>,
    room: Arc<Room>,
    viewer_id: Arc<str>,
    viewer_token: String,
    name: Option<String>,
    colour: &'static str,
    role: Role,
    /// Highest seq sent to this socket: later duplicates are skipped.
    last_seq: Seq,
    hearts: DefaultDirectRateLimiter,
    /// The broadcast's own connection (console, overlay): not counted as a viewer.
    backstage: bool,
    /// Votes this connection may send (each may cost a Redis round trip).
    votes: DefaultDirectRateLimiter,
    send_timeout: Duration,
}

type JoinFailure = (ServerMessage, u16, &'static str);

/// Identity, role, name, then the room. Returns the errors to send before the welcome.
async fn join(
    hub: &Arc<Hub>,
    room_id: &str,
    hello: Hello,
    client: ClientKey,
) -> Result<(Session, Joined, Vec<ServerMessage>), JoinFailure> {
    let mut greeting = Vec::new();
    // Too many of either from one address: come back later (1013), as for a full hub.
    let later = |what: &str, wait: Duration| {
        let secs = wait.as_secs() + 1;
        let frame = ServerMessage::Error(ErrorFrame {
            code: ErrorCode::RateLimited,
            message: format!("Too many {what} from your network; retry in {secs} s."),
            client_id: None,
            retry_after_ms: Some(secs * 1000),
        });
        (frame, TRY_AGAIN_LATER, "try again later")
    };
    let role = match hello.auth_token.as_deref() {
        None => Role::Viewer,
        Some(t) => match hub.staff_role(t, client).await {
            Ok(Some(role)) => role,
            Ok(None) => {
                greeting.push(error_frame(
                    ErrorCode::BadToken,
                    "That moderator token is not valid; you are a viewer.",
                ));
                Role::Viewer
            }
            Err(wait) => return Err(later("wrong tokens", wait)),
        },
    };
    let (viewer_id, viewer_token) = match (hello.viewer_id, hello.viewer_token) {
        (Some(id), Some(token)) if hub.identities.verify(&id, &token) => (id, token),
        _ if !role.is_viewer() => hub.identities.issue(),
        _ => {
            hub.new_viewer(client)
                .await
                .map_err(|wait| later("new viewers", wait))?;
            hub.identities.issue()
        }
    };
    let name = if role == Role::Broadcaster {
        Some(hub.config.broadcaster_name.clone())
    } else {
        match hello
            .name
            .map(|n| rules::display_name(&n, &hub.config.broadcaster_name))
        {
            Some(Ok(n)) => Some(n),
            Some(Err(r)) => {
                greeting.push(refusal_frame(r, None, None));
                None
            }
            None => None,
        }
    };
    let unavailable = |e: super::HubError| {
        tracing::warn!(room = room_id, "chat room unavailable: {e}");
        (
            error_frame(
                ErrorCode::Unavailable,
                "The chat is unavailable; retry later.",
            ),
            TRY_AGAIN_LATER,
            "try again later",
        )
    };
    // A room unloaded between lookup and join is looked up again.
    let (room, joined) = loop {
        let room = hub.room_for(room_id, client).await.map_err(unavailable)?;
        room.caught_up()
            .await
            .map_err(|e| unavailable(super::HubError::Cluster(e)))?;
        match room.join(&viewer_id, role, hello.resume.as_ref(), hello.backstage) {
            Ok(j) => break (room, j),
            Err(JoinError::Retired) => continue,
            Err(JoinError::Banned) => {
                return Err((
                    error_frame(ErrorCode::Banned, "You are banned from this chat."),
                    close::BANNED,
                    "banned",
                ))
            }
        }
    };
    let hearts_quota = Quota::per_second(NonZeroU32::new(HEARTS_PER_SEC).expect("non-zero"));
    let session = Session {
        hub: hub.clone(),
        colour: rules::colour_for(&viewer_id),
        viewer_id: Arc::from(viewer_id),
        viewer_token,
        name,
        role,
        last_seq: joined.seq,
        room,
        hearts: RateLimiter::direct(hearts_quota),
        backstage: hello.backstage,
        votes: RateLimiter::direct(Quota::per_second(
            NonZeroU32::new(VOTES_PER_SEC).expect("non-zero"),
        )),
        send_timeout: Duration::from_millis(hub.config.chat_send_timeout_ms),
    };
    Ok((session, joined, greeting))
}

/// What woke the loop.
enum Wake {
    Room(Result<Outbound, RecvError>),
    Client(Received),
    Idle,
}

impl Session {
    fn limits(&self) -> Limits {
        let c = &self.hub.config;
        Limits {
            chat_max_chars: MAX_CHAT_CHARS as u32,
            chat_burst: c.chat_burst,
            chat_window_ms: c.chat_window_ms,
            hearts_per_sec: HEARTS_PER_SEC,
            idle_timeout_ms: c.chat_idle_timeout_secs * 1000,
        }
    }

    async fn send(&self, socket: &mut impl Transport, msg: &ServerMessage) -> Result<(), Flow> {
        match within(self.send_timeout, send_text(socket, encode(msg))).await {
            Some(Ok(())) => Ok(()),
            _ => Err(Flow::Gone),
        }
    }

    async fn serve(
        &mut self,
        socket: &mut impl Transport,
        joined: Joined,
        greeting: Vec<ServerMessage>,
    ) -> Flow {
        let Joined {
            mut rx,
            epoch,
            seq,
            snapshot:
                Snapshot {
                    recovered,
                    history,
                    backlog,
                },
            viewer_count,
            hearts_total,
            stream_state,
            settings,
            pinned,
            votes,
        } = joined;
        for msg in &greeting {
            if let Err(flow) = self.send(socket, msg).await {
                return flow;
            }
        }
        let welcome = ServerMessage::Welcome(Welcome {
            protocol_version: PROTOCOL_VERSION,
            viewer_id: self.viewer_id.to_string(),
            viewer_token: self.viewer_token.clone(),
            name: self.name.clone(),
            colour: self.colour.to_owned(),
            role: self.role,
            epoch,
            seq,
            recovered,
            history,
            viewer_count,
            hearts_total,
            stream_state,
            settings,
            limits: self.limits(),
            pinned,
            votes,
        });
        if let Err(flow) = self.send(socket, &welcome).await {
            return flow;
        }
        drop(welcome);
        // The token is only needed for the welcome.
        self.viewer_token = String::new();
        for chunk in backlog.chunks(BATCH) {
            let sent = within(self.send_timeout, async {
                for (_, frame) in chunk {
                    socket.feed(Message::Text(frame.clone())).await?;
                }
                socket.flush().await
            })
            .await;
            if !matches!(sent, Some(Ok(()))) {
                return Flow::Gone;
            }
        }
        drop(backlog);

        let idle = Duration::from_secs(self.hub.config.chat_idle_timeout_secs);
        let mut last_heard = Instant::now();
        // One timer for the connection's life, moved only when it fires.
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);
        // Shutdown arrives through the room (`Outbound::Shutdown`): one branch less to
        // poll on every wake-up of every viewer.
        loop {
            let wake = tokio::select! {
                out = rx.recv() => Wake::Room(out),
                next = socket.next() => Wake::Client(next),
                _ = &mut idle_timer => Wake::Idle,
            };
            let flow = match wake {
                Wake::Room(out) => self.forward(out, &mut rx, socket).await,
                Wake::Idle => {
                    if last_heard.elapsed() >= idle {
                        Flow::Close(close::IDLE_TIMEOUT, "idle timeout")
                    } else {
                        idle_timer.as_mut().reset(last_heard + idle);
                        Flow::Continue
                    }
                }
                Wake::Client(next) => {
                    last_heard = Instant::now();
                    match classify(next) {
                        Inbound::Message(m) => match self.handle(m, socket).await {
                            Ok(()) => Flow::Continue,
                            Err(flow) => flow,
                        },
                        Inbound::Refuse(code, message) => {
                            match self.send(socket, &error_frame(code, message)).await {
                                Ok(()) => Flow::Continue,
                                Err(flow) => flow,
                            }
                        }
                        Inbound::Ignore => Flow::Continue,
                        Inbound::Close(code, reason) => Flow::Close(code, reason),
                        Inbound::Gone => {
                            // Let tungstenite flush its reply to the client's close.
                            let _ = within(CLOSE_GRACE, socket.flush()).await;
                            Flow::Gone
                        }
                    }
                }
            };
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
    }

    /// Writes `first` and whatever else is already waiting, in one flush.
    async fn forward(
        &mut self,
        first: Result<Outbound, RecvError>,
        rx: &mut broadcast::Receiver<Outbound>,
        socket: &mut impl Transport,
    ) -> Flow {
        let staff = !self.role.is_viewer();
        let viewer_id = self.viewer_id.clone();
        let last_seq = &mut self.last_seq;
        let sent = within(self.send_timeout, async {
            let mut next = Some(first);
            let mut n = 0;
            while let Some(item) = next.take() {
                let frame = match item {
                    Ok(Outbound::Event { seq, frame }) => {
                        if seq <= *last_seq {
                            None
                        } else {
                            *last_seq = seq;
                            Some(frame)
                        }
                    }
                    Ok(Outbound::State(frame)) => Some(frame),
                    Ok(Outbound::Staff(frame)) => staff.then_some(frame),
                    Ok(Outbound::Kick {
                        viewer_id: who,
                        frame,
                    }) => {
                        if who == viewer_id {
                            let _ = socket.feed(Message::Text(frame)).await;
                            let _ = socket.flush().await;
                            return Flow::Close(close::BANNED, "banned");
                        }
                        None
                    }
                    Ok(Outbound::Shutdown) => {
                        let _ = socket.flush().await;
                        return Flow::Close(close::GOING_AWAY, "server stopping");
                    }
                    Ok(Outbound::Unavailable) => {
                        let _ = socket.flush().await;
                        return Flow::Close(TRY_AGAIN_LATER, "chat unavailable: resume later");
                    }
                    Err(RecvError::Lagged(_)) => {
                        return Flow::Close(close::SLOW_CONSUMER, "too slow: resume")
                    }
                    Err(RecvError::Closed) => return Flow::Gone,
                };
                if let Some(frame) = frame {
                    if socket.feed(Message::Text(frame)).await.is_err() {
                        return Flow::Gone;
                    }
                }
                n += 1;
                if n < BATCH {
                    next = match rx.try_recv() {
                        Ok(o) => Some(Ok(o)),
                        Err(TryRecvError::Empty) => None,
                        Err(TryRecvError::Lagged(k)) => Some(Err(RecvError::Lagged(k))),
                        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                    };
                }
            }
            match socket.flush().await {
                Ok(()) => Flow::Continue,
                Err(_) => Flow::Gone,
            }
        })
        .await;
        // Past the deadline the client is not reading: drop it, it will resume.
        sent.unwrap_or(Flow::Gone)
    }

    async fn handle(
        &mut self,
        msg: ClientMessage,
        socket: &mut impl Transport,
    ) -> Result<(), Flow> {
        let action = match msg {
            ClientMessage::Chat(chat) => return self.chat(chat, socket).await,
            ClientMessage::Hearts(h) => {
                // Beyond the allowance, taps are ignored (not an error: the widget
                // already showed them locally).
                let mut accepted = 0;
                while accepted < h.count.min(HEARTS_PER_SEC) && self.hearts.check().is_ok() {
                    accepted += 1;
                }
                let colour = rules::heart_colour(h.colour.as_deref(), self.colour);
                self.room.add_hearts(colour, accepted);
                return Ok(());
            }
            ClientMessage::Vote(v) => {
                if self.votes.check().is_err() {
                    let r = Refusal {
                        code: ErrorCode::RateLimited,
                        message: "Too many votes; wait a moment.".into(),
                    };
                    return self.send(socket, &refusal_frame(r, None, Some(1000))).await;
                }
                // A vote that does not count (already cast, not an open question) is
                // not an error: the widget shows the total the room sends.
                return match self.room.vote(&v.id, &self.viewer_id).await {
                    Ok(_) => Ok(()),
                    Err(r) => self.send(socket, &refusal_frame(r, None, None)).await,
                };
            }
            ClientMessage::Ping(Ping { t }) => {
                return self.send(socket, &ServerMessage::Pong(Ping { t })).await
            }
            ClientMessage::SetName(s) => {
                let reply = if self.role == Role::Broadcaster {
                    error_frame(ErrorCode::NameReserved, "The broadcaster's name is fixed.")
                } else {
                    match rules::display_name(&s.name, &self.hub.config.broadcaster_name) {
                        Ok(name) => {
                            self.name = Some(name);
                            ServerMessage::Profile(Profile {
                                name: self.name.clone(),
                                colour: self.colour.to_owned(),
                                role: self.role,
                            })
                        }
                        Err(r) => refusal_frame(r, None, None),
                    }
                };
                return self.send(socket, &reply).await;
            }
            ClientMessage::Hello(_) => {
                let reply = error_frame(ErrorCode::InvalidRequest, "Already said hello.");
                return self.send(socket, &reply).await;
            }
            ClientMessage::Unknown => {
                let reply = error_frame(ErrorCode::UnknownType, "Unknown message type.");
                return self.send(socket, &reply).await;
            }
            ClientMessage::Delete(d) => Action::Delete { id: d.id },
            ClientMessage::Ban(b) => Action::Ban(b),
            ClientMessage::Unban(u) => Action::Unban {
                viewer_id: u.viewer_id,
            },
            ClientMessage::SlowMode(s) => Action::SlowMode(s.seconds),
            ClientMessage::BlockedWords(w) => Action::BlockedWords(w.words),
            ClientMessage::Pin(p) => Action::Pin { id: p.id },
            ClientMessage::Answer(a) => Action::Answer { id: a.id },
        };
        let reply = if self.role.is_viewer() {
            Some(error_frame(
                ErrorCode::Forbidden,
                "Moderation needs a moderator token.",
            ))
        } else {
            match moderation::apply(&self.room, action).await {
                Ok(notice) => notice.map(ServerMessage::Notice),
                Err(r) => Some(refusal_frame(r, None, None)),
            }
        };
        match reply {
            Some(reply) => self.send(socket, &reply).await,
            None => Ok(()),
        }
    }

    async fn chat(
        &mut self,
        chat: lucarne_protocol::SendChat,
        socket: &mut impl Transport,
    ) -> Result<(), Flow> {
        let client_id = chat.client_id;
        if client_id.as_ref().is_some_and(|c| c.len() > MAX_CLIENT_ID) {
            let r = Refusal {
                code: ErrorCode::InvalidRequest,
                message: format!("clientId has at most {MAX_CLIENT_ID} bytes."),
            };
            return self.send(socket, &refusal_frame(r, None, None)).await;
        }
        let Some(name) = self.name.clone() else {
            let r = Refusal {
                code: ErrorCode::NameRequired,
                message: "Pick a name first.".into(),
            };
            return self.send(socket, &refusal_frame(r, client_id, None)).await;
        };
        let text = match rules::chat_text(&chat.text) {
            Ok(t) => t,
            Err(r) => return self.send(socket, &refusal_frame(r, client_id, None)).await,
        };
        let author = Author {
            viewer_id: self.viewer_id.clone(),
            name,
            colour: self.colour,
            role: self.role,
        };
        match self
            .room
            .submit(&author, text, client_id.clone(), chat.question)
            .await
        {
            // The event comes back through the room like everyone else's; a duplicate
            // was already delivered (or is in this viewer's resume backlog).
            Ok(Posted::New(_) | Posted::Duplicate(_)) => Ok(()),
            Err(refused) => {
                let until = refused.muted_until_ms;
                let error = refusal_frame(refused.refusal, client_id, refused.retry_after_ms);
                self.send(socket, &error).await?;
                if let Some(until) = until {
                    let notice = ServerMessage::Notice(Notice {
                        code: NoticeCode::Muted,
                        message: format!(
                            "You posted too fast: muted for {} s.",
                            self.hub.config.mute_secs
                        ),
                        until: Some(until),
                    });
                    self.send(socket, &notice).await?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::store::memory::MemoryStore;
    use crate::hub::HubConfig;
    use lucarne_protocol::{ChatMessage, SendChat};
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role as Side;
    use tokio_tungstenite::WebSocketStream;

    type Peer = WebSocketStream<DuplexStream>;

    fn hub() -> Arc<Hub> {
        let config = HubConfig {
            free_rooms: true,
            ..HubConfig::default()
        };
        Hub::new(config, Arc::new(MemoryStore::new()), Arc::default())
    }

    /// A session on one end of an in-memory pipe, the client's end returned.
    async fn connect(hub: &Arc<Hub>) -> Peer {
        let (server, client) = tokio::io::duplex(1 << 16);
        let server = WebSocketStream::from_raw_socket(server, Side::Server, None).await;
        let key = hub.keyer.key(std::net::Ipv4Addr::LOCALHOST.into());
        tokio::spawn(run(server, hub.clone(), "room".into(), key));
        WebSocketStream::from_raw_socket(client, Side::Client, None).await
    }

    async fn send(peer: &mut Peer, msg: &ClientMessage) {
        let text = serde_json::to_string(msg).unwrap();
        peer.send(Message::text(text)).await.unwrap();
    }

    /// The next server message (pings and the like skipped), within a few seconds.
    async fn next(peer: &mut Peer) -> ServerMessage {
        let read = async {
            loop {
                match peer.next().await {
                    Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                    Some(Ok(Message::Close(c))) => panic!("closed: {c:?}"),
                    Some(Ok(_)) => continue,
                    other => panic!("socket ended: {other:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("a server message within 5 s")
    }

    /// Skips frames until one `pick` accepts.
    async fn next_where<T>(peer: &mut Peer, pick: impl Fn(ServerMessage) -> Option<T>) -> T {
        loop {
            if let Some(t) = pick(next(peer).await) {
                return t;
            }
        }
    }

    async fn joined(hub: &Arc<Hub>, name: &str) -> (Peer, Welcome) {
        let mut peer = connect(hub).await;
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            name: Some(name.into()),
            ..Hello::default()
        };
        send(&mut peer, &ClientMessage::Hello(hello)).await;
        match next(&mut peer).await {
            ServerMessage::Welcome(w) => (peer, w),
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    fn chat(text: &str, client_id: &str) -> ClientMessage {
        ClientMessage::Chat(SendChat {
            text: text.into(),
            client_id: Some(client_id.into()),
            question: false,
        })
    }

    fn chat_of(m: ServerMessage) -> Option<ChatMessage> {
        match m {
            ServerMessage::Chat(c) => Some(c),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_hello_is_answered_with_a_welcome_and_anything_else_first_with_an_error() {
        let hub = hub();
        let mut peer = connect(&hub).await;
        send(&mut peer, &ClientMessage::Ping(Ping { t: Some(1) })).await;
        assert!(matches!(
            next(&mut peer).await,
            ServerMessage::Error(e) if e.code == ErrorCode::HelloRequired
        ));
        let (_peer, welcome) = joined(&hub, "Ana").await;
        assert_eq!(welcome.name.as_deref(), Some("Ana"));
        assert_eq!((welcome.role, welcome.seq), (Role::Viewer, 0));
        assert_eq!(welcome.protocol_version, PROTOCOL_VERSION);
        assert!(!welcome.viewer_token.is_empty());
    }

    #[tokio::test]
    async fn a_chat_message_reaches_the_other_session_in_the_room() {
        let hub = hub();
        let (mut ana, _) = joined(&hub, "Ana").await;
        let (mut bob, _) = joined(&hub, "Bob").await;
        send(&mut ana, &chat("hello Bob", "c1")).await;
        let got = next_where(&mut bob, chat_of).await;
        assert_eq!((got.name.as_str(), got.text.as_str()), ("Ana", "hello Bob"));
        assert_eq!(got.seq, 1);
        // The author gets it back through the room too, with its clientId.
        let own = next_where(&mut ana, chat_of).await;
        assert_eq!((own.id, own.client_id.as_deref()), (got.id, Some("c1")));
    }

    #[tokio::test]
    async fn a_malformed_frame_gets_an_error_frame_and_the_session_goes_on() {
        let hub = hub();
        let (mut ana, _) = joined(&hub, "Ana").await;
        ana.send(Message::text("{\"type\": \"chat\", \"text\":"))
            .await
            .unwrap();
        let code = next_where(&mut ana, |m| match m {
            ServerMessage::Error(e) => Some(e.code),
            _ => None,
        })
        .await;
        assert_eq!(code, ErrorCode::BadJson);
        send(&mut ana, &ClientMessage::Ping(Ping { t: Some(7) })).await;
        let pong = next_where(&mut ana, |m| match m {
            ServerMessage::Pong(p) => Some(p.t),
            _ => None,
        })
        .await;
        assert_eq!(pong, Some(7));
    }

    #[tokio::test]
    async fn a_flood_gets_muted_and_told_so() {
        let hub = hub();
        let (mut ana, _) = joined(&hub, "Ana").await;
        // The allowance is 3 messages per 2 s: of 6 sent at once, the 4th is refused
        // (a later one only if this machine took over 667 ms for the first four).
        for i in 0..6 {
            send(&mut ana, &chat("spam", &format!("c{i}"))).await;
        }
        let error = next_where(&mut ana, |m| match m {
            ServerMessage::Error(e) => Some(e),
            _ => None,
        })
        .await;
        assert_eq!(error.code, ErrorCode::RateLimited);
        assert!(error.client_id.as_deref() >= Some("c3"), "{error:?}");
        assert_eq!(error.retry_after_ms, Some(30_000));
        let notice = next_where(&mut ana, |m| match m {
            ServerMessage::Notice(n) => Some(n),
            _ => None,
        })
        .await;
        assert_eq!(notice.code, NoticeCode::Muted);
        assert!(notice.until.is_some());
        // What came after the mute is refused as muted, and nothing of it is posted.
        let error = next_where(&mut ana, |m| match m {
            ServerMessage::Error(e) => Some(e),
            _ => None,
        })
        .await;
        assert_eq!(error.code, ErrorCode::Muted);
        let posted = hub.room("room").await.unwrap().info().seq;
        assert!((3..6).contains(&posted), "{posted}");
    }
}
