//! A room's questions: which chat messages are open questions, their vote totals, who
//! voted (on one node), and the pinned one. Pure: it reads the room's durable events in
//! seq order ([`Questions::see`]) and takes votes; the room sends the frames, records
//! the votes and, with `--redis`, lets Redis count them.
//!
//! # Why votes are not durable events
//! The resume window is bounded in count ([`super::window::MAX_EVENTS`]): a vote storm
//! as events would push the messages themselves out of it. Votes are counted here (or in
//! Redis, shared by every node), shown as one `votes` state frame per tick with the
//! totals that changed, and each viewer's vote is recorded once (the store keeps who
//! voted, so a restart neither forgets a total nor lets a viewer vote twice).
//!
//! # Bounds
//! At most [`MAX_OPEN`] questions are open: past it the oldest closes (it can no longer
//! be voted on, nor pinned). Voters are kept as keyed 64-bit hashes of
//! `(question, viewer)` (16 bytes each in the set), only for open questions: 20,000
//! viewers each voting on 10 questions take about 3 MB. A collision would refuse one
//! viewer's first vote on one question: about one chance in 10^10 per vote at that size.
//!
//! # The pin
//! The pinned question is what the last `pinned` event says, until the question is
//! answered or deleted. It is rebuilt from the room's events when the room loads, so a
//! pin survives a restart while its `pinned` event is among the events the room loads
//! (the last [`super::window::MAX_EVENTS`]).

use lucarne_protocol::{ChatMessage, RoomEvent, ServerMessage, Votes};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};

/// Open questions per room at most.
pub(crate) const MAX_OPEN: usize = 200;

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Questions {
    /// Open questions, oldest first.
    open: VecDeque<String>,
    /// Totals of open questions that have votes.
    totals: HashMap<String, u32>,
    /// `(question, viewer)` hashes of the votes counted here (one node).
    voters: HashSet<u64>,
    hasher: RandomState,
    /// Totals changed since the last `votes` frame.
    changed: BTreeMap<String, u32>,
    pinned: Option<ChatMessage>,
}

impl Questions {
    pub(crate) fn new() -> Questions {
        Questions {
            open: VecDeque::new(),
            totals: HashMap::new(),
            voters: HashSet::new(),
            hasher: RandomState::new(),
            changed: BTreeMap::new(),
            pinned: None,
        }
    }

    /// Follows the room's durable events, in seq order.
    pub(crate) fn see(&mut self, event: &RoomEvent) {
        match event {
            RoomEvent::Chat(m) if m.question => {
                if self.open.len() == MAX_OPEN {
                    if let Some(oldest) = self.open.pop_front() {
                        self.close(&oldest);
                    }
                }
                self.open.push_back(m.id.clone());
            }
            RoomEvent::Deleted(d) => self.close(&d.id),
            RoomEvent::Answered(a) => self.close(&a.id),
            RoomEvent::Pinned(p) => self.pinned = p.question.clone(),
            _ => {}
        }
    }

    fn close(&mut self, id: &str) {
        if let Some(at) = self.open.iter().position(|q| q == id) {
            self.open.remove(at);
        }
        self.totals.remove(id);
        self.changed.remove(id);
        if self.pinned.as_ref().is_some_and(|p| p.id == id) {
            self.pinned = None;
        }
        // Voter hashes of a closed question stay until the room reloads: they cannot be
        // told apart, and a closed question takes no votes anyway.
    }

    /// Whether `id` is an open question.
    pub(crate) fn is_open(&self, id: &str) -> bool {
        self.open.iter().any(|q| q == id)
    }

    /// One node: counts `viewer`'s vote on `id` if it is open and the viewer's first;
    /// returns whether it counted.
    pub(crate) fn vote(&mut self, id: &str, viewer: &str) -> bool {
        if !self.is_open(id) || !self.voters.insert(self.hasher.hash_one((id, viewer))) {
            return false;
        }
        let total = self.totals.entry(id.to_owned()).or_default();
        *total += 1;
        self.changed.insert(id.to_owned(), *total);
        true
    }

    /// A vote already counted (loaded from the store): remembered, not announced.
    pub(crate) fn voted(&mut self, id: &str, viewer: &str) {
        if self.is_open(id) && self.voters.insert(self.hasher.hash_one((id, viewer))) {
            *self.totals.entry(id.to_owned()).or_default() += 1;
        }
    }

    /// Shared (`--redis`): Redis counted `total` votes on `id` (totals only grow, so an
    /// older total read late is ignored).
    pub(crate) fn set_total(&mut self, id: &str, total: u32) {
        if !self.is_open(id) {
            return;
        }
        let t = self.totals.entry(id.to_owned()).or_default();
        if total > *t {
            *t = total;
            self.changed.insert(id.to_owned(), total);
        }
    }

    /// Whether a `votes` frame is due at the next tick.
    pub(crate) fn changed(&self) -> bool {
        !self.changed.is_empty()
    }

    /// The `votes` frame with the totals changed since the last one, if any.
    pub(crate) fn frame(&mut self) -> Option<ServerMessage> {
        self.changed().then(|| {
            ServerMessage::Votes(Votes {
                counts: std::mem::take(&mut self.changed),
            })
        })
    }

    /// The open questions' totals, for a `welcome`.
    pub(crate) fn totals(&self) -> BTreeMap<String, u32> {
        self.totals.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The pinned question, if any.
    pub(crate) fn pinned(&self) -> Option<&ChatMessage> {
        self.pinned.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lucarne_protocol::{Answered, Deleted, Pinned, Role};

    fn question(seq: u64, question: bool) -> RoomEvent {
        RoomEvent::Chat(ChatMessage {
            seq,
            id: format!("1-{seq}"),
            viewer_id: "v1".into(),
            name: "Ana".into(),
            colour: "#ff6b6b".into(),
            text: "Which lens?".into(),
            ts: 0,
            role: Role::Viewer,
            client_id: None,
            question,
        })
    }

    fn frame(q: &mut Questions) -> Vec<(String, u32)> {
        match q.frame() {
            Some(ServerMessage::Votes(v)) => v.counts.into_iter().collect(),
            other => panic!("no votes frame: {other:?}"),
        }
    }

    #[test]
    fn a_viewer_votes_once_on_an_open_question_and_the_frame_has_the_new_totals() {
        let mut q = Questions::new();
        q.see(&question(1, true));
        q.see(&question(2, false));
        assert!(q.vote("1-1", "v2"));
        assert!(!q.vote("1-1", "v2"), "a second vote of the same viewer");
        assert!(q.vote("1-1", "v3"));
        assert!(!q.vote("1-2", "v2"), "not a question");
        assert!(!q.vote("1-9", "v2"), "unknown");
        assert_eq!(frame(&mut q), [("1-1".into(), 2)]);
        assert!(q.frame().is_none(), "nothing new");
        assert_eq!(q.totals(), BTreeMap::from([("1-1".into(), 2)]));
    }

    #[test]
    fn answered_and_deleted_questions_close_and_unpin() {
        let mut q = Questions::new();
        q.see(&question(1, true));
        q.see(&question(2, true));
        q.vote("1-1", "v2");
        let pin = |seq, of: Option<u64>| {
            RoomEvent::Pinned(Pinned {
                seq,
                question: of.map(|s| match question(s, true) {
                    RoomEvent::Chat(m) => m,
                    _ => unreachable!(),
                }),
            })
        };
        q.see(&pin(3, Some(1)));
        assert_eq!(q.pinned().map(|m| m.id.as_str()), Some("1-1"));
        q.see(&RoomEvent::Answered(Answered {
            seq: 4,
            id: "1-1".into(),
        }));
        assert!(q.pinned().is_none() && !q.is_open("1-1"));
        assert!(q.frame().is_none(), "a closed question's total is not sent");
        assert!(q.totals().is_empty());
        q.see(&pin(5, Some(2)));
        q.see(&RoomEvent::Deleted(Deleted {
            seq: 6,
            id: "1-2".into(),
        }));
        assert!(q.pinned().is_none() && !q.is_open("1-2"));
        q.see(&question(7, true));
        q.see(&pin(8, Some(7)));
        q.see(&pin(9, None));
        assert!(q.pinned().is_none(), "unpinned");
        assert!(q.is_open("1-7"), "unpinning does not answer");
    }

    #[test]
    fn past_the_bound_the_oldest_question_closes() {
        let mut q = Questions::new();
        for seq in 1..=(MAX_OPEN as u64 + 1) {
            q.see(&question(seq, true));
        }
        assert!(!q.is_open("1-1"));
        assert!(q.is_open("1-2") && q.is_open(&format!("1-{}", MAX_OPEN + 1)));
        assert!(!q.vote("1-1", "v2"));
    }

    #[test]
    fn shared_totals_only_grow_and_loaded_votes_are_not_announced() {
        let mut q = Questions::new();
        q.see(&question(1, true));
        q.voted("1-1", "v2");
        assert!(q.frame().is_none());
        assert!(!q.vote("1-1", "v2"), "the loaded vote counts as cast");
        q.set_total("1-1", 5);
        q.set_total("1-1", 4);
        assert_eq!(frame(&mut q), [("1-1".into(), 5)]);
        q.set_total("1-9", 3);
        assert!(q.frame().is_none(), "not an open question");
    }
}
