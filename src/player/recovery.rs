//! The recovery policy: which source to (re)connect to after failures, how long to wait
//! before reconnecting, how many MediaSource rebuilds a minute may cost before giving up,
//! what status the viewer sees while waiting, and what follows the end of a broadcast.
//! Pure (clocks and randomness passed in); the engine carries its answers out.

use super::Status;
use crate::net::backoff::Backoff;

/// Decode errors and hung pipelines tolerated per minute before giving up.
pub const MAX_REBUILDS_PER_MINUTE: usize = 3;
/// Push connections that never delivered media before HLS is used instead.
const PUSH_TRIES: u32 = 3;

/// A kind of source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SourceKind {
    /// The low-latency WebSocket push.
    Push,
    /// HLS (playlists and segments over HTTP).
    Hls,
}

/// What the embed offers, and what the viewer asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offered {
    /// A push URL exists.
    pub push: bool,
    /// An HLS URL exists.
    pub hls: bool,
    /// The viewer asked for the replay (HLS only).
    pub replay: bool,
}

/// What the engine does once a source says the broadcast ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterEnd {
    /// Let go of the source: nothing more will come from it.
    Release,
    /// Keep the source: it watches for the stream's next broadcast
    /// (`SourceEvent::NewBroadcast` follows when one starts).
    WatchForNext,
}

/// Failure history across reconnections and rebuilds.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The push delivered media at least once (so it is worth reconnecting to).
    push_worked: bool,
    /// Push connections that went down before delivering anything.
    push_failures: u32,
    /// Delay before the next push reconnection.
    backoff: Backoff,
    /// When recent rebuilds happened (ms).
    rebuilds: Vec<f64>,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            push_worked: false,
            push_failures: 0,
            backoff: Backoff::new(250.0, 8_000.0),
            rebuilds: Vec::new(),
        }
    }
}

impl Recovery {
    /// The source to connect to: the push unless it failed [`PUSH_TRIES`] times without
    /// ever delivering and HLS exists; HLS for a replay; `None` with no URL at all.
    pub fn source(&self, offered: Offered) -> Option<SourceKind> {
        let push = offered.push
            && !(offered.replay && offered.hls)
            && (self.push_worked || self.push_failures < PUSH_TRIES || !offered.hls);
        if push {
            Some(SourceKind::Push)
        } else if offered.hls {
            Some(SourceKind::Hls)
        } else {
            None
        }
    }

    /// The push delivered media: it works, and the backoff starts over.
    pub fn push_delivered(&mut self) {
        self.push_worked = true;
        self.backoff.reset();
    }

    /// The push connection went down; returns the delay before reconnecting (ms).
    /// `unit` is a uniform random number in `[0, 1)` (jitter).
    pub fn push_down(&mut self, unit: f64) -> f64 {
        if !self.push_worked {
            self.push_failures += 1;
        }
        self.backoff.next_delay(unit)
    }

    /// Whether one more MediaSource rebuild fits the budget at `now_ms`; counts it if so.
    pub fn may_rebuild(&mut self, now_ms: f64) -> bool {
        self.rebuilds.retain(|t| now_ms - t < 60_000.0);
        if self.rebuilds.len() >= MAX_REBUILDS_PER_MINUTE {
            return false;
        }
        self.rebuilds.push(now_ms);
        true
    }

    /// What follows the end of a broadcast on `source`: a push socket closes, an HLS
    /// loader of a live stream keeps polling for the next broadcast.
    pub fn after_end(source: SourceKind, replay: bool) -> AfterEnd {
        match source {
            SourceKind::Hls if !replay => AfterEnd::WatchForNext,
            _ => AfterEnd::Release,
        }
    }
}

/// The status while the playhead advances.
pub fn playing_status(vod: bool, timeshift: bool) -> Status {
    if vod {
        Status::Replay
    } else if timeshift {
        Status::BehindLive
    } else {
        Status::Playing
    }
}

/// The status while the playhead is stalled, or `None` to keep `current`: "offline" if
/// nobody broadcasts, "buffering" while the source is reachable, else "reconnecting"
/// (kept until the source is back, so a stall does not hide a lost connection).
pub fn waiting_status(current: &Status, offline: bool, source_up: bool) -> Option<Status> {
    let waiting = if offline {
        Status::Offline
    } else if source_up {
        Status::Buffering
    } else {
        Status::Reconnecting
    };
    (!matches!(current, Status::Reconnecting) || source_up).then_some(waiting)
}

/// The status once the source is reachable again (`None`: keep `current`).
pub fn status_on_up(current: &Status) -> Option<Status> {
    matches!(current, Status::Reconnecting | Status::Offline).then_some(Status::Buffering)
}

/// The status when nobody broadcasts: what is buffered still plays out (the stall then
/// shows "offline").
pub fn status_on_offline(current: &Status) -> Option<Status> {
    let keep = matches!(
        current,
        Status::Playing | Status::BehindLive | Status::Error { fatal: true, .. }
    );
    (!keep).then_some(Status::Offline)
}

/// The status when the source goes down: "reconnecting", unless it is over anyway.
pub fn status_on_down(current: &Status) -> Option<Status> {
    let over = matches!(current, Status::Error { fatal: true, .. } | Status::Ended);
    (!over).then_some(Status::Reconnecting)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Offered = Offered {
        push: true,
        hls: true,
        replay: false,
    };

    #[test]
    fn the_push_is_preferred_until_it_fails_three_times_without_media() {
        let mut r = Recovery::default();
        for _ in 0..3 {
            assert_eq!(r.source(BOTH), Some(SourceKind::Push));
            r.push_down(0.5);
        }
        assert_eq!(r.source(BOTH), Some(SourceKind::Hls), "falls back to HLS");
        let push_only = Offered { hls: false, ..BOTH };
        assert_eq!(
            r.source(push_only),
            Some(SourceKind::Push),
            "no HLS: keep trying the push"
        );
    }

    #[test]
    fn a_push_that_worked_once_is_always_reconnected() {
        let mut r = Recovery::default();
        r.push_delivered();
        for _ in 0..10 {
            r.push_down(0.5);
        }
        assert_eq!(r.source(BOTH), Some(SourceKind::Push));
    }

    #[test]
    fn a_replay_is_played_from_hls() {
        let r = Recovery::default();
        let replay = Offered {
            replay: true,
            ..BOTH
        };
        assert_eq!(r.source(replay), Some(SourceKind::Hls));
        let none = Offered {
            push: false,
            hls: false,
            replay: false,
        };
        assert_eq!(r.source(none), None);
    }

    #[test]
    fn reconnect_delays_grow_and_start_over_once_media_flows() {
        let mut r = Recovery::default();
        let first = r.push_down(0.0);
        let second = r.push_down(0.0);
        assert!(second > first, "{first} then {second}");
        r.push_delivered();
        assert_eq!(r.push_down(0.0), first);
    }

    #[test]
    fn three_rebuilds_a_minute_then_the_player_gives_up() {
        let mut r = Recovery::default();
        assert!(r.may_rebuild(0.0));
        assert!(r.may_rebuild(1_000.0));
        assert!(r.may_rebuild(2_000.0));
        assert!(
            !r.may_rebuild(3_000.0),
            "a fourth within the minute is fatal"
        );
        assert!(
            r.may_rebuild(61_000.0),
            "the budget refills as rebuilds age"
        );
    }

    #[test]
    fn an_ended_hls_stream_is_watched_for_its_next_broadcast() {
        assert_eq!(
            Recovery::after_end(SourceKind::Hls, false),
            AfterEnd::WatchForNext
        );
        assert_eq!(
            Recovery::after_end(SourceKind::Hls, true),
            AfterEnd::Release,
            "the end of a replay is the end"
        );
        assert_eq!(
            Recovery::after_end(SourceKind::Push, false),
            AfterEnd::Release
        );
    }

    #[test]
    fn the_waiting_status_says_why() {
        let buffering = &Status::Buffering;
        assert_eq!(waiting_status(buffering, true, true), Some(Status::Offline));
        assert_eq!(
            waiting_status(buffering, false, true),
            Some(Status::Buffering)
        );
        assert_eq!(
            waiting_status(buffering, false, false),
            Some(Status::Reconnecting)
        );
        assert_eq!(
            waiting_status(&Status::Reconnecting, false, false),
            None,
            "reconnecting stays until the source is back"
        );
        assert_eq!(
            waiting_status(&Status::Reconnecting, false, true),
            Some(Status::Buffering)
        );
    }

    #[test]
    fn source_state_changes_do_not_hide_playback_nor_an_end() {
        assert_eq!(status_on_up(&Status::Offline), Some(Status::Buffering));
        assert_eq!(status_on_up(&Status::Playing), None);
        assert_eq!(
            status_on_offline(&Status::Playing),
            None,
            "buffered media plays out first"
        );
        assert_eq!(
            status_on_offline(&Status::Connecting),
            Some(Status::Offline)
        );
        assert_eq!(status_on_down(&Status::Ended), None);
        assert_eq!(status_on_down(&Status::Playing), Some(Status::Reconnecting));
    }

    #[test]
    fn the_playing_status_tells_replay_and_timeshift_apart() {
        assert_eq!(playing_status(true, false), Status::Replay);
        assert_eq!(playing_status(false, true), Status::BehindLive);
        assert_eq!(playing_status(false, false), Status::Playing);
    }
}
