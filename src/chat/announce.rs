//! Which confirmed messages the page has not heard about yet: the view fires one
//! `lucarne:chat` event per message, and this decides which. Pure; the view owns it.
//!
//! A seq is only comparable within one epoch: when the room's history is lost (a
//! server restarted on a fresh store), seqs start again from 1, so the high mark of the
//! old epoch would silence every new message until the new seqs passed it. A new epoch
//! therefore starts the mark again from zero. Within an epoch the mark only grows, so a
//! resume that replays messages already announced announces nothing twice.

use super::state::ChatState;
use lucarne_protocol::{ChatMessage, Epoch, Seq};

/// The announcement watermark: the highest seq announced, in the epoch it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    /// The epoch `seen` counts in (none before the first welcome).
    epoch: Option<Epoch>,
    /// Every confirmed message at or below this seq has been announced.
    seen: Seq,
}

impl Announced {
    /// Nothing announced yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The confirmed messages of `state` not announced yet, oldest first; they count
    /// as announced from now on.
    pub fn fresh<'a>(&mut self, state: &'a ChatState) -> Vec<&'a ChatMessage> {
        if state.epoch != self.epoch {
            self.epoch = state.epoch;
            self.seen = 0;
        }
        let seen = self.seen;
        self.seen = seen.max(state.last_seq);
        state
            .lines
            .iter()
            .filter(|l| !l.pending && l.message.seq > seen)
            .map(|l| &l.message)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::state::Action;
    use lucarne_protocol::{
        Limits, Role, RoomEvent, RoomSettings, ServerMessage, StreamState, Welcome,
    };

    fn msg(seq: u64, text: &str) -> ChatMessage {
        ChatMessage {
            seq,
            id: format!("m{seq}-{text}"),
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

    fn welcome(epoch: u64, recovered: bool, history: Vec<ChatMessage>) -> Action {
        let seq = history.last().map_or(0, |m| m.seq);
        Action::Frame(
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
                history: history.into_iter().map(RoomEvent::Chat).collect(),
                viewer_count: 2,
                hearts_total: 0,
                stream_state: StreamState::Live,
                settings: RoomSettings::default(),
                limits: Limits::default(),
                pinned: None,
                votes: Default::default(),
            }),
            0.0,
        )
    }

    fn chat(m: ChatMessage) -> Action {
        Action::Frame(ServerMessage::Chat(m), 0.0)
    }

    /// Applies `action` and returns the texts announced after it.
    fn step(s: &mut ChatState, a: &mut Announced, action: Action) -> Vec<String> {
        s.apply(action);
        a.fresh(s).into_iter().map(|m| m.text.clone()).collect()
    }

    #[test]
    fn each_new_message_is_announced_once() {
        let (mut s, mut a) = (ChatState::new(), Announced::new());
        assert_eq!(
            step(&mut s, &mut a, welcome(1, false, vec![msg(1, "one")])),
            ["one"]
        );
        assert_eq!(step(&mut s, &mut a, chat(msg(2, "two"))), ["two"]);
        assert!(step(&mut s, &mut a, Action::Disconnected).is_empty());
        assert!(a.fresh(&s).is_empty(), "asking again announces nothing");
    }

    #[test]
    fn a_resume_within_the_epoch_does_not_announce_again() {
        let (mut s, mut a) = (ChatState::new(), Announced::new());
        step(
            &mut s,
            &mut a,
            welcome(1, false, vec![msg(1, "one"), msg(2, "two")]),
        );
        step(&mut s, &mut a, Action::Disconnected);
        // Recovered: the server replays 2 (already seen) and adds 3.
        assert_eq!(
            step(
                &mut s,
                &mut a,
                welcome(1, true, vec![msg(2, "two"), msg(3, "three")])
            ),
            ["three"]
        );
        // Too far behind: the history is replaced, still in the same epoch.
        assert_eq!(
            step(
                &mut s,
                &mut a,
                welcome(1, false, vec![msg(3, "three"), msg(4, "four")])
            ),
            ["four"]
        );
    }

    #[test]
    fn a_new_epoch_restarts_the_watermark() {
        // Regression: the old epoch's high mark (50) silenced the new epoch's 1, 2, 3.
        let (mut s, mut a) = (ChatState::new(), Announced::new());
        step(&mut s, &mut a, welcome(7, false, vec![msg(50, "old")]));
        step(&mut s, &mut a, Action::Disconnected);
        assert!(step(&mut s, &mut a, welcome(8, false, vec![])).is_empty());
        assert_eq!(step(&mut s, &mut a, chat(msg(1, "first"))), ["first"]);
        assert_eq!(step(&mut s, &mut a, chat(msg(2, "second"))), ["second"]);
        // And the new epoch's own resume does not repeat them.
        step(&mut s, &mut a, Action::Disconnected);
        assert_eq!(
            step(
                &mut s,
                &mut a,
                welcome(8, true, vec![msg(2, "second"), msg(3, "third")])
            ),
            ["third"]
        );
    }

    #[test]
    fn own_messages_are_announced_when_confirmed_not_while_pending() {
        let (mut s, mut a) = (ChatState::new(), Announced::new());
        step(&mut s, &mut a, welcome(1, false, vec![]));
        let sent = Action::Sent {
            client_id: "c1".into(),
            text: "mine".into(),
            now_ms: 0.0,
            question: false,
        };
        assert!(step(&mut s, &mut a, sent).is_empty());
        let mut echo = msg(1, "mine");
        echo.viewer_id = "v-me".into();
        echo.client_id = Some("c1".into());
        assert_eq!(step(&mut s, &mut a, chat(echo)), ["mine"]);
    }
}
