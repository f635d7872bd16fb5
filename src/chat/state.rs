//! Chat state as a reducer: what the viewer sees (messages, counts, their own profile,
//! what they are waiting for) as a pure function of the frames received and the
//! actions taken. No web-sys here; the socket and the views feed it [`Action`]s.
//!
//! Resume rules (see `lucarne-protocol`): events at or below `last_seq` are ignored, so
//! a replay never shows a message twice; a `welcome` with `recovered: false` replaces
//! the history.

use lucarne_protocol::{
    ChatMessage, ErrorCode, Hearts, NoticeCode, Refusal, Role, RoomEvent, ServerMessage,
    StreamState, Welcome,
};
use std::collections::VecDeque;

/// Messages kept for display; older ones scroll away.
pub const KEEP_MESSAGES: usize = 200;

/// One line of chat as the widget shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The message.
    pub message: ChatMessage,
    /// Sent by this viewer and not yet confirmed by the server.
    pub pending: bool,
    /// Client time (ms) it was received, for the fading overlay.
    pub received_ms: f64,
}

/// Everything the chat views render.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatState {
    /// Connected and welcomed.
    pub online: bool,
    /// Oldest first.
    pub lines: VecDeque<Line>,
    /// The room's epoch, once welcomed.
    pub epoch: Option<u64>,
    /// Highest seq applied.
    pub last_seq: u64,
    /// This viewer's id and token (kept in localStorage by the socket).
    pub viewer_id: Option<String>,
    /// Proof of `viewer_id`.
    pub viewer_token: Option<String>,
    /// Accepted display name.
    pub name: Option<String>,
    /// This viewer's colour.
    pub colour: String,
    /// Viewer, moderator or broadcaster.
    pub role: Role,
    /// People watching.
    pub viewer_count: u32,
    /// Hearts ever sent in the room.
    pub hearts_total: u64,
    /// Live, offline, ended.
    pub stream_state: StreamState,
    /// Slow mode interval, seconds.
    pub slow_mode_secs: u32,
    /// Longest message the server accepts.
    pub max_chars: u32,
    /// Muted (or slowed) until this time, unix ms.
    pub muted_until: Option<f64>,
    /// The last refusal, for the send box to explain.
    pub problem: Option<ErrorCode>,
    /// Banned: the socket will not reconnect.
    pub banned: bool,
    /// The server refuses this page for good (its origin, no such room): the socket
    /// will not reconnect.
    pub refused: Option<Refusal>,
    /// The question pinned over the video.
    pub pinned: Option<ChatMessage>,
    /// Open questions' vote totals, by message id ([`ChatState::total`]): a list searched
    /// in order (a room has a handful of open questions), which keeps B-tree code out
    /// of the download (see `wire`).
    pub votes: Vec<(String, u32)>,
    /// Questions this viewer +1'd (the button is shown pressed).
    pub voted: Vec<String>,
}

/// What can happen to the chat.
// A frame is the large variant; an action is a short-lived value handed once to
// `apply`, so boxing frames would only add an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A frame from the server, at client time `now_ms`.
    Frame(ServerMessage, f64),
    /// The viewer sent a message (shown at once, marked pending).
    Sent {
        /// The message's `clientId`.
        client_id: String,
        /// Text.
        text: String,
        /// Sent as a question.
        question: bool,
        /// Client time, ms.
        now_ms: f64,
    },
    /// The viewer +1'd a question.
    Voted(String),
    /// A frame whose vote totals were decoded beside it (`wire::decode_frame`: a
    /// `welcome`'s `votes`, a `votes` frame's counts), at client time `now_ms`: as
    /// `Frame`, with these totals as if they were in the frame.
    Counted(ServerMessage, Vec<(String, u32)>, f64),
    /// The connection dropped (it will resume).
    Disconnected,
    /// The server refused us for good (banned).
    Banned,
    /// The server refuses this page's handshakes for good (see [`Refusal`]).
    Refused(Refusal),
}

impl ChatState {
    /// A state before any connection.
    pub fn new() -> Self {
        ChatState {
            max_chars: lucarne_protocol::MAX_CHAT_CHARS as u32,
            ..Default::default()
        }
    }

    /// Applies one action.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Frame(frame, now) => self.frame(frame, Vec::new(), now),
            Action::Counted(frame, totals, now) => self.frame(frame, totals, now),
            Action::Voted(id) => self.voted.push(id),
            Action::Sent {
                client_id,
                text,
                question,
                now_ms,
            } => {
                self.problem = None;
                self.push(Line {
                    message: ChatMessage {
                        seq: 0,
                        id: String::new(),
                        viewer_id: self.viewer_id.clone().unwrap_or_default(),
                        name: self.name.clone().unwrap_or_default(),
                        colour: self.colour.clone(),
                        text,
                        ts: now_ms as u64,
                        role: self.role,
                        client_id: Some(client_id),
                        question,
                    },
                    pending: true,
                    received_ms: now_ms,
                });
            }
            Action::Disconnected => self.online = false,
            Action::Banned => {
                self.online = false;
                self.banned = true;
            }
            Action::Refused(why) => {
                self.online = false;
                self.refused = Some(why);
            }
        }
    }

    /// The vote total of the question `id` (0: none known).
    pub fn total(&self, id: &str) -> u32 {
        self.votes
            .iter()
            .find(|(q, _)| q == id)
            .map_or(0, |&(_, n)| n)
    }

    fn set_totals(&mut self, totals: impl IntoIterator<Item = (String, u32)>) {
        for (id, n) in totals {
            match self.votes.iter_mut().find(|(q, _)| *q == id) {
                Some((_, total)) => *total = n,
                None => self.votes.push((id, n)),
            }
        }
    }

    fn push(&mut self, line: Line) {
        self.lines.push_back(line);
        while self.lines.len() > KEEP_MESSAGES {
            self.lines.pop_front();
        }
    }

    fn welcome(&mut self, w: Welcome, totals: Vec<(String, u32)>, now: f64) {
        let same_room = self.epoch == Some(w.epoch);
        self.online = true;
        self.viewer_id = Some(w.viewer_id);
        self.viewer_token = Some(w.viewer_token);
        self.name = w.name;
        self.colour = w.colour;
        self.role = w.role;
        self.viewer_count = w.viewer_count;
        self.hearts_total = w.hearts_total;
        self.stream_state = w.stream_state;
        self.slow_mode_secs = w.settings.slow_mode_secs;
        self.max_chars = w.limits.chat_max_chars;
        self.pinned = w.pinned.map(|p| *p);
        self.votes.clear();
        self.set_totals(w.votes);
        self.set_totals(totals);
        if !(w.recovered && same_room) {
            // Another epoch, or too far behind: what we show is replaced. Pending
            // messages stay; they are re-sent and confirmed by clientId.
            self.lines.retain(|l| l.pending);
            self.last_seq = 0;
        }
        self.epoch = Some(w.epoch);
        for event in w.history {
            self.event(event, now);
        }
        self.last_seq = self.last_seq.max(w.seq);
    }

    fn event(&mut self, event: RoomEvent, now: f64) {
        let seq = event.seq();
        if seq <= self.last_seq {
            return;
        }
        self.last_seq = seq;
        match event {
            RoomEvent::Chat(m) => self.chat(m, now),
            RoomEvent::Deleted(d) => {
                self.unpin(&d.id);
                self.lines.retain(|l| l.pending || l.message.id != d.id)
            }
            RoomEvent::Pinned(p) => self.pinned = p.question,
            RoomEvent::Answered(a) => {
                self.unpin(&a.id);
                self.votes.retain(|(q, _)| *q != a.id);
            }
            RoomEvent::Unknown => {}
        }
    }

    fn unpin(&mut self, id: &str) {
        if self.pinned.as_ref().is_some_and(|p| p.id == id) {
            self.pinned = None;
        }
    }

    fn chat(&mut self, m: ChatMessage, now: f64) {
        let mine =
            m.client_id.is_some() && m.viewer_id == self.viewer_id.clone().unwrap_or_default();
        if mine {
            if let Some(line) = self
                .lines
                .iter_mut()
                .find(|l| l.pending && l.message.client_id == m.client_id)
            {
                line.message = m;
                line.pending = false;
                return;
            }
        }
        self.push(Line {
            message: m,
            pending: false,
            received_ms: now,
        });
    }

    fn frame(&mut self, frame: ServerMessage, totals: Vec<(String, u32)>, now: f64) {
        match frame {
            ServerMessage::Welcome(w) => self.welcome(w, totals, now),
            ServerMessage::Chat(m) => self.event(RoomEvent::Chat(m), now),
            ServerMessage::Deleted(d) => self.event(RoomEvent::Deleted(d), now),
            ServerMessage::Pinned(p) => self.event(RoomEvent::Pinned(p), now),
            ServerMessage::Answered(a) => self.event(RoomEvent::Answered(a), now),
            ServerMessage::Votes(v) => {
                self.set_totals(v.counts);
                self.set_totals(totals);
            }
            ServerMessage::Hearts(Hearts { total, .. }) => {
                self.hearts_total = self.hearts_total.max(total)
            }
            ServerMessage::ViewerCount(v) => self.viewer_count = v.count,
            ServerMessage::StreamState(s) => self.stream_state = s.state,
            ServerMessage::Settings(s) => self.slow_mode_secs = s.slow_mode_secs,
            ServerMessage::Profile(p) => {
                self.name = p.name;
                self.colour = p.colour;
                self.role = p.role;
            }
            ServerMessage::Notice(n) => {
                if n.code == NoticeCode::Muted {
                    // `until` is unix ms, like the client's `now` (Date.now()).
                    self.muted_until = Some(n.until.map_or(now, |u| u as f64));
                    self.problem = Some(ErrorCode::RateLimited);
                }
            }
            ServerMessage::Error(e) => {
                if let Some(id) = &e.client_id {
                    // The refused message never posts: take it off the screen.
                    self.lines
                        .retain(|l| !(l.pending && l.message.client_id.as_ref() == Some(id)));
                }
                if let (ErrorCode::Muted | ErrorCode::SlowMode, Some(ms)) =
                    (&e.code, e.retry_after_ms)
                {
                    self.muted_until = Some(now + ms as f64);
                }
                if e.code == ErrorCode::Banned {
                    self.banned = true;
                }
                self.problem = Some(e.code);
            }
            ServerMessage::Pong(_) | ServerMessage::Unknown => {}
        }
    }

    /// Messages not yet confirmed, oldest first (re-sent after a reconnect).
    pub fn pending(&self) -> impl Iterator<Item = &ChatMessage> {
        self.lines.iter().filter(|l| l.pending).map(|l| &l.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucarne_protocol::{Deleted, ErrorFrame, Limits, RoomSettings, ViewerCount};

    fn msg(seq: u64, id: &str, text: &str) -> ChatMessage {
        ChatMessage {
            seq,
            id: id.into(),
            viewer_id: "v-other".into(),
            name: "Ana".into(),
            colour: "#ff6b6b".into(),
            text: text.into(),
            ts: 0,
            role: Role::Viewer,
            client_id: None,
            question: false,
        }
    }

    fn welcome(epoch: u64, seq: u64, recovered: bool, history: Vec<RoomEvent>) -> ServerMessage {
        ServerMessage::Welcome(Welcome {
            protocol_version: 1,
            viewer_id: "v-me".into(),
            viewer_token: "tok".into(),
            name: Some("Me".into()),
            colour: "#00aaff".into(),
            role: Role::Viewer,
            epoch,
            seq,
            recovered,
            history,
            viewer_count: 2,
            hearts_total: 10,
            stream_state: StreamState::Live,
            settings: RoomSettings::default(),
            limits: Limits::default(),
            pinned: None,
            votes: Default::default(),
        })
    }

    fn texts(s: &ChatState) -> Vec<&str> {
        s.lines.iter().map(|l| l.message.text.as_str()).collect()
    }

    #[test]
    fn replayed_events_are_applied_once_in_order() {
        let mut s = ChatState::new();
        s.apply(Action::Frame(
            welcome(
                1,
                2,
                false,
                vec![
                    RoomEvent::Chat(msg(1, "a", "one")),
                    RoomEvent::Chat(msg(2, "b", "two")),
                ],
            ),
            0.0,
        ));
        s.apply(Action::Frame(
            ServerMessage::Chat(msg(3, "c", "three")),
            0.0,
        ));
        s.apply(Action::Disconnected);
        // Resume: the server replays from 3 (already seen) and adds 4.
        s.apply(Action::Frame(
            welcome(
                1,
                4,
                true,
                vec![
                    RoomEvent::Chat(msg(3, "c", "three")),
                    RoomEvent::Chat(msg(4, "d", "four")),
                ],
            ),
            0.0,
        ));
        s.apply(Action::Frame(ServerMessage::Chat(msg(4, "d", "four")), 0.0));
        assert_eq!(texts(&s), ["one", "two", "three", "four"]);
        assert_eq!(s.last_seq, 4);
        assert!(s.online);
    }

    #[test]
    fn a_new_epoch_replaces_the_history() {
        let mut s = ChatState::new();
        s.apply(Action::Frame(
            welcome(1, 9, false, vec![RoomEvent::Chat(msg(9, "x", "old"))]),
            0.0,
        ));
        s.apply(Action::Frame(
            welcome(2, 1, false, vec![RoomEvent::Chat(msg(1, "y", "new"))]),
            0.0,
        ));
        assert_eq!(texts(&s), ["new"]);
        assert_eq!(s.last_seq, 1);
    }

    #[test]
    fn own_message_is_pending_then_confirmed_by_client_id() {
        let mut s = ChatState::new();
        s.apply(Action::Frame(welcome(1, 0, false, vec![]), 0.0));
        s.apply(Action::Sent {
            client_id: "c1".into(),
            text: "hello".into(),
            now_ms: 5.0,
            question: false,
        });
        assert!(s.lines[0].pending);
        assert_eq!(s.pending().count(), 1);
        let mut echo = msg(1, "m1", "hello");
        echo.viewer_id = "v-me".into();
        echo.client_id = Some("c1".into());
        s.apply(Action::Frame(ServerMessage::Chat(echo), 6.0));
        assert_eq!(s.lines.len(), 1, "confirmed in place, not duplicated");
        assert!(!s.lines[0].pending);
        assert_eq!(s.lines[0].message.id, "m1");
    }

    #[test]
    fn refused_message_disappears_and_the_reason_is_kept() {
        let mut s = ChatState::new();
        s.apply(Action::Frame(welcome(1, 0, false, vec![]), 0.0));
        s.apply(Action::Sent {
            client_id: "c1".into(),
            text: "x".repeat(600),
            now_ms: 0.0,
            question: false,
        });
        s.apply(Action::Frame(
            ServerMessage::Error(ErrorFrame {
                code: ErrorCode::TextTooLong,
                message: "too long".into(),
                client_id: Some("c1".into()),
                retry_after_ms: None,
            }),
            1.0,
        ));
        assert!(s.lines.is_empty());
        assert_eq!(s.problem, Some(ErrorCode::TextTooLong));
        s.apply(Action::Frame(
            ServerMessage::Error(ErrorFrame {
                code: ErrorCode::SlowMode,
                message: "wait".into(),
                client_id: None,
                retry_after_ms: Some(3000),
            }),
            10.0,
        ));
        assert_eq!(s.muted_until, Some(3010.0));
    }

    #[test]
    fn deletions_counts_and_the_display_cap() {
        let mut s = ChatState::new();
        s.apply(Action::Frame(welcome(1, 0, false, vec![]), 0.0));
        for i in 1..=(KEEP_MESSAGES as u64 + 10) {
            s.apply(Action::Frame(
                ServerMessage::Chat(msg(i, &format!("m{i}"), "t")),
                0.0,
            ));
        }
        assert_eq!(s.lines.len(), KEEP_MESSAGES);
        let last = s.lines.back().unwrap().message.clone();
        s.apply(Action::Frame(
            ServerMessage::Deleted(Deleted {
                seq: last.seq + 1,
                id: last.id.clone(),
            }),
            0.0,
        ));
        assert!(s.lines.iter().all(|l| l.message.id != last.id));
        s.apply(Action::Frame(
            ServerMessage::ViewerCount(ViewerCount { count: 7 }),
            0.0,
        ));
        s.apply(Action::Frame(
            ServerMessage::Hearts(Hearts {
                counts: Default::default(),
                total: 99,
            }),
            0.0,
        ));
        assert_eq!((s.viewer_count, s.hearts_total), (7, 99));
    }

    #[test]
    fn the_pin_follows_pinned_answered_and_deleted_events_and_votes_add_up() {
        let mut s = ChatState::new();
        s.apply(Action::Frame(welcome(1, 0, false, vec![]), 0.0));
        let q = ChatMessage {
            question: true,
            ..msg(1, "q", "Which lens?")
        };
        let frame = |m| Action::Frame(m, 0.0);
        s.apply(frame(ServerMessage::Chat(q.clone())));
        s.apply(frame(ServerMessage::Pinned(lucarne_protocol::Pinned {
            seq: 2,
            question: Some(q.clone()),
        })));
        assert_eq!(
            s.pinned.as_ref().map(|p| p.text.as_str()),
            Some("Which lens?")
        );
        s.apply(frame(ServerMessage::Votes(lucarne_protocol::Votes {
            counts: [("q".to_owned(), 3)].into(),
        })));
        assert_eq!(s.total("q"), 3);
        s.apply(Action::Counted(
            ServerMessage::Votes(Default::default()),
            vec![("q".to_owned(), 4), ("r".to_owned(), 1)],
            0.0,
        ));
        assert_eq!((s.total("q"), s.total("r"), s.total("s")), (4, 1, 0));
        s.apply(frame(ServerMessage::Answered(lucarne_protocol::Answered {
            seq: 3,
            id: "q".into(),
        })));
        assert!(s.pinned.is_none() && s.total("q") == 0 && s.total("r") == 1);
        s.apply(frame(ServerMessage::Pinned(lucarne_protocol::Pinned {
            seq: 4,
            question: Some(q.clone()),
        })));
        s.apply(frame(ServerMessage::Deleted(Deleted {
            seq: 5,
            id: "q".into(),
        })));
        assert!(s.pinned.is_none(), "a deleted question is unpinned");
        assert!(texts(&s).is_empty());
    }
}
