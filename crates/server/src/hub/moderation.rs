//! Moderation actions, shared by the WebSocket (staff connections) and the HTTP API:
//! checks the request, applies it to the room, says what to tell the moderator.

use super::now_ms;
use super::room::Room;
use super::rules::Refusal;
use super::store::Ban;
use lucarne_protocol::{ErrorCode, Notice, NoticeCode};

/// Longest slow mode interval (one hour).
pub const MAX_SLOW_MODE_SECS: u32 = 3600;

/// One moderation request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Remove a message for everyone.
    Delete {
        /// Its id.
        id: String,
    },
    /// Ban an identity (closes its connections).
    Ban(lucarne_protocol::BanViewer),
    /// Lift a ban.
    Unban {
        /// Who.
        viewer_id: String,
    },
    /// Set slow mode (0 = off).
    SlowMode(u32),
    /// Replace the blocked-words list.
    BlockedWords(Vec<String>),
    /// Pin an open question over the video (`None`: unpin).
    Pin {
        /// The question's message id.
        id: Option<String>,
    },
    /// Mark an open question answered.
    Answer {
        /// The question's message id.
        id: String,
    },
}

fn invalid(message: &str) -> Refusal {
    Refusal {
        code: ErrorCode::InvalidRequest,
        message: message.into(),
    }
}

/// Applies `action`; returns a notice for the moderator when there is no other visible
/// effect to confirm it. With `--redis` it holds on every node (see `cluster`), and is
/// refused `unavailable` when Redis does not answer.
pub async fn apply(room: &Room, action: Action) -> Result<Option<Notice>, Refusal> {
    match action {
        Action::Delete { id } => room.delete(&id).await.map(|_| None),
        Action::Ban(b) => {
            if b.viewer_id.is_empty() || b.viewer_id.len() > 64 {
                return Err(invalid("viewerId must have 1 to 64 characters."));
            }
            if b.reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
                return Err(invalid("The reason has at most 200 characters."));
            }
            let until_ms = b
                .duration_secs
                .map(|d| now_ms().saturating_add(d.saturating_mul(1000)));
            let message = format!("{} is banned.", b.viewer_id);
            room.ban(Ban {
                viewer_id: b.viewer_id,
                until_ms,
                reason: b.reason,
            })
            .await?;
            Ok(Some(Notice {
                code: NoticeCode::Banned,
                message,
                until: until_ms,
            }))
        }
        Action::Unban { viewer_id } => {
            if room.unban(&viewer_id).await? {
                Ok(Some(Notice {
                    code: NoticeCode::Unbanned,
                    message: format!("{viewer_id} is no longer banned."),
                    until: None,
                }))
            } else {
                Err(Refusal {
                    code: ErrorCode::NotFound,
                    message: "That viewer is not banned.".into(),
                })
            }
        }
        Action::SlowMode(secs) => {
            if secs > MAX_SLOW_MODE_SECS {
                return Err(invalid("Slow mode is at most 3600 s."));
            }
            room.set_slow_mode(secs).await?;
            Ok(None)
        }
        Action::BlockedWords(words) => room.set_blocked_words(&words).await.map(|_| None),
        Action::Pin { id } => room.pin(id.as_deref()).await.map(|_| None),
        Action::Answer { id } => room.answer(&id).await.map(|_| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::fanout::Outbound;
    use crate::hub::room::JoinError;
    use lucarne_protocol::{BanViewer, Role};

    fn ban(viewer_id: &str, duration_secs: Option<u64>) -> Action {
        Action::Ban(BanViewer {
            viewer_id: viewer_id.into(),
            duration_secs,
            reason: None,
        })
    }

    #[tokio::test]
    async fn bans_refuse_joins_and_kick() {
        let room = crate::hub::room::tests::room(Default::default());
        let mut rx = room.join("v2", Role::Viewer, None, false).unwrap().rx;
        apply(&room, ban("v1", None)).await.unwrap();
        assert_eq!(
            room.join("v1", Role::Viewer, None, false).unwrap_err(),
            JoinError::Banned
        );
        assert!(
            matches!(rx.try_recv(), Ok(Outbound::Kick { viewer_id, .. }) if &*viewer_id == "v1")
        );
        let unban = || Action::Unban {
            viewer_id: "v1".into(),
        };
        assert!(apply(&room, unban()).await.unwrap().is_some());
        assert_eq!(
            apply(&room, unban()).await.unwrap_err().code,
            ErrorCode::NotFound
        );
        assert!(room.join("v1", Role::Viewer, None, false).is_ok());
        // Expired bans do not count.
        apply(&room, ban("v3", Some(0))).await.unwrap();
        assert!(room.join("v3", Role::Viewer, None, false).is_ok());
    }
}
