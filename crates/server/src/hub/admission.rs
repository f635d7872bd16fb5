//! Which chat rooms are held in memory, and which one is unloaded to make room. Pure
//! bookkeeping over room slots; the hub decides what a room is and loads it.
//!
//! A room is a stream's (`demo`, every `--stream-key` stream: the origin knows them) or
//! made up (any other valid id, only with `--free-rooms`). Stream rooms are always
//! admitted and never counted: there are as many as the configuration says. Made-up
//! rooms share their own bound (`--max-rooms`); at the bound an empty made-up room is
//! unloaded, and when every one has viewers the newcomer is refused. So made-up rooms,
//! however many clients open them, can never evict or block a stream's room (before,
//! 1,000 sockets to made-up ids filled the only bound and `demo` answered 503).

use std::collections::HashMap;

/// What a room is to the admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A stream's room: always admitted.
    Stream,
    /// A made-up room: bounded.
    Free,
}

/// Every made-up slot holds a room with viewers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// The slots, by room id.
#[derive(Debug)]
pub(crate) struct Table<T> {
    slots: HashMap<String, (Kind, T)>,
    free: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: HashMap::new(),
            free: 0,
        }
    }
}

impl<T: Clone> Table<T> {
    /// The slot of `id`, if it is held.
    pub(crate) fn get(&self, id: &str) -> Option<T> {
        self.slots.get(id).map(|(_, t)| t.clone())
    }

    /// Holds a new slot for `id` (not held yet). A made-up room beyond `max_free` first
    /// unloads another made-up room: `retire` unloads a slot's room and says whether it
    /// could (it must refuse one with viewers).
    pub(crate) fn insert(
        &mut self,
        id: &str,
        kind: Kind,
        max_free: usize,
        slot: T,
        mut retire: impl FnMut(&T) -> bool,
    ) -> Result<T, Full> {
        if kind == Kind::Free {
            if self.free >= max_free {
                let idle = self
                    .slots
                    .iter()
                    .find(|(_, (k, t))| *k == Kind::Free && retire(t))
                    .map(|(id, _)| id.clone())
                    .ok_or(Full)?;
                self.slots.remove(&idle);
                self.free -= 1;
            }
            self.free += 1;
        }
        self.slots.insert(id.to_owned(), (kind, slot.clone()));
        Ok(slot)
    }

    /// Lets go of the slot of `id`, if it is held.
    pub(crate) fn remove(&mut self, id: &str) {
        if let Some((Kind::Free, _)) = self.slots.remove(id) {
            self.free -= 1;
        }
    }

    /// Lets go of every slot.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        self.free = 0;
        self.slots.drain().map(|(_, (_, t))| t).collect()
    }

    /// Every slot.
    pub(crate) fn slots(&self) -> impl Iterator<Item = &T> {
        self.slots.values().map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot: (name, has viewers).
    type Slot = (&'static str, bool);

    #[test]
    fn made_up_rooms_never_evict_or_block_stream_rooms() {
        let mut t: Table<Slot> = Table::default();
        let busy = |s: &Slot| !s.1;
        t.insert("a", Kind::Free, 2, ("a", true), busy).unwrap();
        t.insert("b", Kind::Free, 2, ("b", true), busy).unwrap();
        assert_eq!(t.insert("c", Kind::Free, 2, ("c", false), busy), Err(Full));
        // Streams are admitted past the bound, and do not count towards it.
        for id in ["demo", "live1", "live2"] {
            t.insert(id, Kind::Stream, 2, (id, false), busy).unwrap();
        }
        assert_eq!(t.insert("c", Kind::Free, 2, ("c", false), busy), Err(Full));
        assert!(t.get("demo").is_some() && t.get("a").is_some());
    }

    #[test]
    fn at_the_bound_an_empty_made_up_room_makes_room_and_never_a_stream_room() {
        let mut t: Table<Slot> = Table::default();
        let mut asked = Vec::new();
        t.insert("demo", Kind::Stream, 1, ("demo", false), |_| true)
            .unwrap();
        t.insert("a", Kind::Free, 1, ("a", false), |_| true)
            .unwrap();
        t.insert("b", Kind::Free, 1, ("b", false), |s| {
            asked.push(s.0);
            !s.1
        })
        .unwrap();
        assert_eq!(asked, ["a"]);
        assert!(t.get("a").is_none());
        assert!(t.get("demo").is_some() && t.get("b").is_some());
        assert_eq!(t.drain().len(), 2);
        assert!(t.slots().next().is_none());
    }
}
