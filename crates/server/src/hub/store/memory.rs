//! A [`Store`] that keeps rooms in memory only: for tests, and for `--chat-db :memory:`
//! where a restart starts every room afresh (a new epoch tells the widgets so).

use super::{Change, Store, StoreError, StoredRoom, KEEP_EVENTS};
use futures_util::future::BoxFuture;
use lucarne_protocol::RoomEvent;
use std::collections::HashMap;
use std::sync::Mutex;

/// Rooms in a map; applies changes at once.
#[derive(Debug)]
pub struct MemoryStore {
    secret: [u8; 32],
    rooms: Mutex<HashMap<String, StoredRoom>>,
}

impl MemoryStore {
    /// An empty store with a random secret.
    pub fn new() -> Self {
        MemoryStore {
            secret: rand::random(),
            rooms: Mutex::default(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Store for MemoryStore {
    fn secret(&self) -> [u8; 32] {
        self.secret
    }

    fn load_room(
        &self,
        room: &str,
        recent: usize,
    ) -> BoxFuture<'static, Result<Option<StoredRoom>, StoreError>> {
        let mut found = self
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(room)
            .cloned();
        if let Some(r) = &mut found {
            // As every backend: bans still in force only.
            let now = crate::hub::now_ms();
            r.bans.retain(|b| b.until_ms.is_none_or(|u| u > now));
            if r.events.len() > recent {
                let cut = r.events.len() - recent;
                r.floor_seq = r.events[cut - 1].event.seq();
                r.events.drain(..cut);
            }
        }
        Box::pin(async move { Ok(found) })
    }

    fn record(&self, room: &str, change: Change) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let r = rooms.entry(room.to_owned()).or_default();
        match change {
            Change::Created { epoch } => {
                *r = StoredRoom {
                    epoch,
                    ..StoredRoom::default()
                }
            }
            Change::Appended(e) => {
                r.last_seq = r.last_seq.max(e.event.seq());
                r.events.push(e);
                if r.events.len() > KEEP_EVENTS {
                    let cut = r.events.len() - KEEP_EVENTS;
                    r.floor_seq = r.events[cut - 1].event.seq();
                    r.events.drain(..cut);
                }
            }
            Change::Removed { id } => {
                r.events
                    .retain(|e| !matches!(&e.event, RoomEvent::Chat(m) if m.id == id));
                r.votes.retain(|(q, _)| *q != id);
            }
            Change::Voted {
                question,
                viewer_id,
            } => {
                let vote = (question, viewer_id);
                if !r.votes.contains(&vote) {
                    r.votes.push(vote);
                }
            }
            Change::Banned(ban) => {
                r.bans.retain(|b| b.viewer_id != ban.viewer_id);
                r.bans.push(ban);
            }
            Change::Unbanned { viewer_id } => r.bans.retain(|b| b.viewer_id != viewer_id),
            Change::Settings {
                slow_mode_secs,
                blocked_words,
            } => {
                r.slow_mode_secs = slow_mode_secs;
                r.blocked_words = blocked_words;
            }
            Change::HeartsTotal(total) => r.hearts_total = total,
        }
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    fn ping(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_store_contract() {
        super::super::contract::keeps_the_contract(&MemoryStore::new()).await;
    }
}
