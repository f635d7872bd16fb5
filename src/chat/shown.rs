//! What the chat layer shows, decided in one place from the chat's state: the viewer
//! count, the broadcast's state word, the note under the messages and whether the send
//! box is offered. Pure; the view renders a [`Shown`] and decides nothing itself.
//!
//! The video and the chat are separate sources of truth and are shown apart: the
//! player says what the video does (its overlay and badge), the chat says whether it is
//! connected. So that they never contradict each other:
//! - With a video, the hub's word on the broadcast is not shown: the player already
//!   says live, offline or ended from the media itself, and the hub may not know a
//!   stream it does not serve (a third-party HLS stream with a lucarne chat). The one
//!   exception is "unsupported", which explains why the video shows "offline".
//! - A count is shown only while connected; unknown is "—", never a stale or default
//!   0 while someone watches.
//! - A refusal the server will repeat (the page's origin, no such room, a ban) is said
//!   once, for good, and the send box goes away; anything else is "reconnecting".

use super::state::ChatState;
use crate::i18n::Text;
use lucarne_protocol::{ErrorCode, Refusal, StreamState};

/// The note under the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// Not connected yet, or connection lost: it retries.
    Reconnecting,
    /// Refused for good: it does not retry.
    Refused(Text),
    /// The viewer's last message was refused (too long, too fast...).
    Problem(Text),
}

/// Everything the chat layer shows that depends on state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// People watching; `None` when unknown (shown "—").
    pub count: Option<u32>,
    /// The broadcast's state as the hub says it, when it is to be shown.
    pub stream: Option<Text>,
    /// The note under the messages.
    pub note: Option<Note>,
    /// The name prompt / send box and its buttons.
    pub composer: bool,
}

/// What to show of `state`; `has_video` when the widget also shows the video.
pub fn shown(state: &ChatState, has_video: bool) -> Shown {
    let refusal = if state.banned {
        Some(Text::ChatRefusedBanned)
    } else {
        state.refused.map(|r| match r {
            Refusal::Room => Text::ChatRefusedRoom,
            Refusal::Private => Text::Private,
            Refusal::Origin | Refusal::Unknown => Text::ChatRefusedOrigin,
        })
    };
    let stream = match state.stream_state {
        _ if !state.online => None,
        StreamState::Unsupported => Some(Text::StateUnsupported),
        _ if has_video => None,
        StreamState::Offline => Some(Text::StateOffline),
        StreamState::Ended => Some(Text::StateEnded),
        StreamState::Live | StreamState::Unknown => None,
    };
    let note = if let Some(text) = refusal {
        Some(Note::Refused(text))
    } else if !state.online {
        Some(Note::Reconnecting)
    } else {
        state
            .problem
            .as_ref()
            .map(|c| Note::Problem(problem_text(c)))
    };
    Shown {
        count: state.online.then_some(state.viewer_count),
        stream,
        note,
        composer: refusal.is_none(),
    }
}

/// Why a message was refused, in words.
fn problem_text(code: &ErrorCode) -> Text {
    match code {
        ErrorCode::TextTooLong => Text::ErrTooLong,
        ErrorCode::RateLimited | ErrorCode::Muted => Text::ErrTooFast,
        ErrorCode::SlowMode => Text::ErrSlowMode,
        ErrorCode::BlockedWord => Text::ErrBlockedWord,
        ErrorCode::InvalidName | ErrorCode::NameReserved => Text::ErrName,
        ErrorCode::Banned => Text::ErrBanned,
        _ => Text::ErrOther,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(stream_state: StreamState, viewers: u32) -> ChatState {
        ChatState {
            online: true,
            stream_state,
            viewer_count: viewers,
            ..ChatState::new()
        }
    }

    #[test]
    fn a_private_broadcasts_chat_says_it_is_private() {
        let mut s = ChatState::new();
        s.apply(super::super::state::Action::Refused(Refusal::Private));
        let shown = shown(&s, true);
        assert_eq!(shown.note, Some(Note::Refused(Text::Private)));
        assert!(!shown.composer);
    }

    /// Regression: a page whose chat was refused showed "LIVE" on the video and
    /// "Offline" in the chat, "0 watching" while watching, and "reconnecting" forever.
    #[test]
    fn a_refused_page_says_so_once_shows_no_count_no_state_and_no_send_box() {
        let mut s = ChatState::new();
        s.apply(super::super::state::Action::Refused(Refusal::Origin));
        let shown = shown(&s, true);
        assert_eq!(
            shown,
            Shown {
                count: None,
                stream: None,
                note: Some(Note::Refused(Text::ChatRefusedOrigin)),
                composer: false,
            }
        );
    }

    #[test]
    fn before_the_welcome_the_count_is_unknown_and_the_chat_reconnecting() {
        let s = ChatState::new();
        let shown = shown(&s, true);
        assert_eq!(shown.count, None);
        assert_eq!(shown.stream, None);
        assert_eq!(shown.note, Some(Note::Reconnecting));
        assert!(shown.composer);
    }

    #[test]
    fn a_lost_connection_forgets_the_count_until_welcomed_again() {
        let mut s = online(StreamState::Live, 7);
        assert_eq!(shown(&s, true).count, Some(7));
        s.apply(super::super::state::Action::Disconnected);
        assert_eq!(shown(&s, true).count, None);
        assert_eq!(shown(&s, true).note, Some(Note::Reconnecting));
    }

    #[test]
    fn with_a_video_the_hub_never_contradicts_the_player() {
        for state in [
            StreamState::Live,
            StreamState::Offline,
            StreamState::Ended,
            StreamState::Unknown,
        ] {
            assert_eq!(shown(&online(state, 2), true).stream, None, "{state:?}");
        }
        // The one word the player cannot say: why the video shows nothing.
        assert_eq!(
            shown(&online(StreamState::Unsupported, 2), true).stream,
            Some(Text::StateUnsupported)
        );
    }

    #[test]
    fn without_a_video_the_hub_says_what_the_broadcast_does() {
        assert_eq!(
            shown(&online(StreamState::Offline, 1), false).stream,
            Some(Text::StateOffline)
        );
        assert_eq!(
            shown(&online(StreamState::Ended, 1), false).stream,
            Some(Text::StateEnded)
        );
        assert_eq!(shown(&online(StreamState::Live, 1), false).stream, None);
        assert_eq!(shown(&online(StreamState::Unknown, 1), false).stream, None);
    }

    #[test]
    fn banned_and_no_such_room_are_refusals_too() {
        let mut s = online(StreamState::Live, 3);
        s.apply(super::super::state::Action::Banned);
        let b = shown(&s, true);
        assert_eq!(b.note, Some(Note::Refused(Text::ChatRefusedBanned)));
        assert!(!b.composer);
        let mut s = ChatState::new();
        s.apply(super::super::state::Action::Refused(Refusal::Room));
        assert_eq!(
            shown(&s, false).note,
            Some(Note::Refused(Text::ChatRefusedRoom))
        );
    }

    #[test]
    fn a_refused_message_is_explained_while_connected() {
        let mut s = online(StreamState::Live, 3);
        s.problem = Some(ErrorCode::SlowMode);
        assert_eq!(shown(&s, true).note, Some(Note::Problem(Text::ErrSlowMode)));
        assert!(shown(&s, true).composer);
    }
}
