//! A room's gate: whether a viewer's chat message may be published now (mutes, slow
//! mode, blocked words, the flood limit), and the per-identity marks that decide it; and
//! whom bans keep out. It does not publish, persist or fan out; staff posts bypass it
//! (the room decides that).
//!
//! Flood control is a GCRA limiter (`governor`) keyed by viewer identity, so extra tabs
//! or reconnects do not buy a fresh allowance; posting past it mutes the identity.
//! Mutes and slow mode are timestamps per identity, pruned when many accumulate. The
//! limiter reads its own clock; the marks take the time as an argument.
//!
//! With `--redis` the marks and the limiter live in Redis instead (see `cluster`, whose
//! script keeps the same order: mute, slow mode, blocked word, flood), so one identity
//! on several nodes is limited as one; this gate then only holds the room's settings
//! and bans, kept in step by the room's stream, and words the refusals.

use super::rules::{self, Refusal};
use super::store::Ban;
use super::HubConfig;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lucarne_protocol::{ErrorCode, RoomSettings};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-identity marks are pruned when this many accumulate.
const PRUNE_MARKS_AT: usize = 4096;

/// A refused post; `muted_until_ms` is set when this post started a mute.
#[derive(Debug)]
pub(crate) struct PostRefusal {
    pub(crate) refusal: Refusal,
    pub(crate) retry_after_ms: Option<u64>,
    pub(crate) muted_until_ms: Option<u64>,
}

impl PostRefusal {
    /// Muted (by an earlier flood) for `retry_after_ms` more.
    pub(crate) fn muted(retry_after_ms: u64) -> PostRefusal {
        PostRefusal {
            refusal: Refusal {
                code: ErrorCode::Muted,
                message: "You are muted for posting too fast.".into(),
            },
            retry_after_ms: Some(retry_after_ms),
            muted_until_ms: None,
        }
    }

    /// Slow mode of `secs`: the next post in `retry_after_ms`.
    pub(crate) fn slow(secs: u32, retry_after_ms: u64) -> PostRefusal {
        PostRefusal {
            refusal: Refusal {
                code: ErrorCode::SlowMode,
                message: format!("Slow mode: one message every {secs} s."),
            },
            retry_after_ms: Some(retry_after_ms),
            muted_until_ms: None,
        }
    }

    /// The text has the blocked `word`.
    pub(crate) fn blocked(word: &str) -> PostRefusal {
        PostRefusal {
            refusal: Refusal {
                code: ErrorCode::BlockedWord,
                message: format!("\"{word}\" is not allowed here."),
            },
            retry_after_ms: None,
            muted_until_ms: None,
        }
    }

    /// Too fast: muted for `mute` from now, until `muted_until_ms` (unix ms).
    pub(crate) fn flooded(mute: Duration, muted_until_ms: u64) -> PostRefusal {
        PostRefusal {
            refusal: Refusal {
                code: ErrorCode::RateLimited,
                message: format!("Too many messages: muted for {} s.", mute.as_secs()),
            },
            retry_after_ms: Some(ms(mute)),
            muted_until_ms: Some(muted_until_ms),
        }
    }
}

/// Per-identity timestamps (mute, slow mode).
#[derive(Debug, Default, Clone, Copy)]
struct Marks {
    muted_until: Option<Instant>,
    last_post: Option<Instant>,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Gate {
    flood: DefaultKeyedRateLimiter<Arc<str>>,
    mute: Duration,
    slow_mode_secs: u32,
    /// Normalised (see [`rules::blocked_words`]).
    blocked_words: Vec<String>,
    marks: HashMap<Arc<str>, Marks>,
    bans: HashMap<String, Ban>,
}

impl Gate {
    /// `--chat-burst` posts per `--chat-window-ms` (then evenly), muted `--mute-secs`
    /// past it; no slow mode, no blocked words.
    pub(crate) fn new(config: &HubConfig) -> Gate {
        let burst = NonZeroU32::new(config.chat_burst.max(1)).expect("non-zero");
        let period = Duration::from_millis(config.chat_window_ms.max(1)) / burst.get();
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("non-zero period")
            .allow_burst(burst);
        Gate {
            flood: RateLimiter::keyed(quota),
            mute: Duration::from_secs(config.mute_secs),
            slow_mode_secs: 0,
            blocked_words: Vec::new(),
            marks: HashMap::new(),
            bans: HashMap::new(),
        }
    }

    pub(crate) fn slow_mode_secs(&self) -> u32 {
        self.slow_mode_secs
    }

    /// Slow mode interval, 0 = off.
    pub(crate) fn set_slow_mode(&mut self, secs: u32) {
        self.slow_mode_secs = secs;
    }

    pub(crate) fn blocked_words(&self) -> &[String] {
        &self.blocked_words
    }

    /// The settings frame; the blocked words only `with_words` (staff see the list,
    /// viewers learn of a word when they use it).
    pub(crate) fn settings(&self, with_words: bool) -> RoomSettings {
        RoomSettings {
            slow_mode_secs: self.slow_mode_secs,
            blocked_words: with_words.then(|| self.blocked_words.clone()),
        }
    }

    /// Replaces the list; `words` are already normalised.
    pub(crate) fn set_blocked_words(&mut self, words: Vec<String>) {
        self.blocked_words = words;
    }

    /// The first blocked word `text` has, if any.
    pub(crate) fn blocked_word(&self, text: &str) -> Option<&str> {
        rules::find_blocked(text, &self.blocked_words)
    }

    /// The mute a flood earns.
    pub(crate) fn mute(&self) -> Duration {
        self.mute
    }

    /// Whether `viewer_id` is banned at `now_ms` (unix ms).
    pub(crate) fn banned(&self, viewer_id: &str, now_ms: u64) -> bool {
        self.bans
            .get(viewer_id)
            .is_some_and(|b| b.until_ms.is_none_or(|u| u > now_ms))
    }

    /// Places (or replaces) a ban.
    pub(crate) fn ban(&mut self, ban: Ban) {
        self.bans.insert(ban.viewer_id.clone(), ban);
    }

    /// Lifts a ban; false if there was none.
    pub(crate) fn unban(&mut self, viewer_id: &str) -> bool {
        self.bans.remove(viewer_id).is_some()
    }

    /// Lets a viewer's post through (and counts it) or says why not. `now_ms` is the
    /// same instant as `now` in unix time, for the mute's end on the wire.
    pub(crate) fn admit(
        &mut self,
        viewer_id: &Arc<str>,
        text: &str,
        now: Instant,
        now_ms: u64,
    ) -> Result<(), PostRefusal> {
        let marks = self.marks.get(viewer_id).copied().unwrap_or_default();
        if let Some(until) = marks.muted_until.filter(|u| *u > now) {
            return Err(PostRefusal::muted(ms(until - now)));
        }
        let slow = Duration::from_secs(u64::from(self.slow_mode_secs));
        if let Some(next) = marks.last_post.map(|t| t + slow).filter(|n| *n > now) {
            return Err(PostRefusal::slow(self.slow_mode_secs, ms(next - now)));
        }
        if let Some(word) = self.blocked_word(text) {
            return Err(PostRefusal::blocked(word));
        }
        if self.flood.check_key(viewer_id).is_err() {
            self.marks.entry(viewer_id.clone()).or_default().muted_until = Some(now + self.mute);
            return Err(PostRefusal::flooded(self.mute, now_ms + ms(self.mute)));
        }
        self.marks.entry(viewer_id.clone()).or_default().last_post = Some(now);
        if self.marks.len() > PRUNE_MARKS_AT {
            self.marks.retain(|_, m| {
                m.muted_until.is_some_and(|u| u > now)
                    || m.last_post.is_some_and(|t| t + slow > now)
            });
        }
        if self.flood.len() > PRUNE_MARKS_AT {
            self.flood.retain_recent();
        }
        Ok(())
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        // The hub's defaults: 3 posts per 2 s, then muted 30 s.
        Gate::new(&HubConfig::default())
    }

    fn code(r: Result<(), PostRefusal>) -> Option<ErrorCode> {
        r.err().map(|r| r.refusal.code)
    }

    #[test]
    fn flooding_mutes_that_identity_only() {
        let mut g = gate();
        let (ana, bob): (Arc<str>, Arc<str>) = (Arc::from("v1"), Arc::from("v2"));
        let now = Instant::now();
        for _ in 0..3 {
            g.admit(&ana, "hi", now, 1_000).unwrap();
        }
        let refused = g.admit(&ana, "hi", now, 1_000).unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::RateLimited);
        assert_eq!(refused.muted_until_ms, Some(31_000));
        let later = now + Duration::from_secs(5);
        let refused = g.admit(&ana, "hi", later, 6_000).unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::Muted);
        assert_eq!(refused.retry_after_ms, Some(25_000));
        assert_eq!(refused.muted_until_ms, None, "the mute started earlier");
        assert!(g.admit(&bob, "hi", later, 6_000).is_ok());
    }

    #[test]
    fn slow_mode_spaces_posts_and_blocked_words_are_refused() {
        let mut g = gate();
        g.set_slow_mode(30);
        g.set_blocked_words(rules::blocked_words(&["spam".into()]).unwrap());
        let ana: Arc<str> = Arc::from("v1");
        let now = Instant::now();
        assert_eq!(
            code(g.admit(&ana, "SPAM!", now, 0)),
            Some(ErrorCode::BlockedWord)
        );
        g.admit(&ana, "hello", now, 0).unwrap();
        let refused = g
            .admit(&ana, "again", now + Duration::from_secs(1), 0)
            .unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::SlowMode);
        assert_eq!(refused.retry_after_ms, Some(29_000));
        assert!(g
            .admit(&ana, "again", now + Duration::from_secs(30), 0)
            .is_ok());
    }

    #[test]
    fn bans_keep_out_until_they_expire_or_are_lifted() {
        let mut g = gate();
        let ban = |viewer_id: &str, until_ms| Ban {
            viewer_id: viewer_id.into(),
            until_ms,
            reason: None,
        };
        g.ban(ban("v1", None));
        g.ban(ban("v2", Some(5_000)));
        assert!(g.banned("v1", u64::MAX) && g.banned("v2", 4_999));
        assert!(!g.banned("v2", 5_000) && !g.banned("v3", 0));
        assert!(g.unban("v1") && !g.unban("v1"));
        assert!(!g.banned("v1", 0));
    }
}
