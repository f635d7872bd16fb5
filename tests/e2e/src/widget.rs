//! What a viewer would notice, read from the page over WebDriver: is the video
//! there, is it playing (currentTime and decoded frames growing), what status the
//! widget shows (`data-status` on `.lucarne-host`), how far behind live it is.
//!
//! Owns the JavaScript probes and the [`Watch`] summaries tests assert on. It only
//! reads the page; it never clicks, seeks or changes the player.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::engine::{Browser, Engine};
use crate::wait::{wait_until, Check, POLL};

/// Where the `<video>` is on the page.
#[derive(Clone, Debug)]
pub enum Probe {
    /// Inside the open shadow root of the `index`-th `.lucarne-host` (0 = first).
    Widget {
        /// Which widget on the page.
        index: usize,
    },
    /// A plain `<video>` matched by a CSS selector (pages without lucarne).
    Selector(String),
}

/// Collects the state and, on first sight of a lucarne host, installs a
/// MutationObserver logging every `data-status` change (so a status that lasts
/// less than a poll interval is still seen).
const STATE_JS: &str = r#"
const spec = arguments[0];
let host = null, video = null;
if (spec.widget !== undefined) {
  host = document.querySelectorAll('.lucarne-host')[spec.widget] || null;
  video = host && host.shadowRoot ? host.shadowRoot.querySelector('video') : null;
} else {
  video = document.querySelector(spec.selector);
}
if (host && !host.__e2eStatusLog) {
  const log = host.__e2eStatusLog = [];
  const record = () => {
    const s = host.getAttribute('data-status');
    if (!log.length || log[log.length - 1] !== s) log.push(s);
  };
  record();
  new MutationObserver(record).observe(host, { attributes: true, attributeFilter: ['data-status'] });
}
const q = video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
// Frames decoded since the first probe of this <video>. WebKitGTK restarts
// totalVideoFrames at every pipeline flush (seek, rate change): a drop in the counter
// is a restart, and what it shows since is added.
let frames = 0;
if (q) {
  const f = video.__e2eFrames || (video.__e2eFrames = { last: 0, total: 0 });
  const n = q.totalVideoFrames;
  f.total += n >= f.last ? n - f.last : n;
  f.last = n;
  frames = f.total;
}
const b = video ? video.buffered : null;
return {
  host: !!host,
  status: host ? host.getAttribute('data-status') : null,
  statuses: host ? host.__e2eStatusLog.slice() : [],
  video: !!video,
  currentTime: video ? video.currentTime : 0,
  frames: frames,
  dropped: q ? q.droppedVideoFrames : 0,
  paused: video ? video.paused : true,
  readyState: video ? video.readyState : 0,
  bufferedEnd: b && b.length ? b.end(b.length - 1) : null,
  error: video && video.error ? (video.error.code + ' ' + video.error.message) : null,
  backend: video ? video.getAttribute('data-backend') : null,
  sources: video ? Array.from(video.querySelectorAll('source'), s => [s.type, s.getAttribute('src')]) : [],
  remotePlaybackDisabled: !!(video && video.disableRemotePlayback),
  wall: Date.now() / 1000,
};
"#;

/// One snapshot of the player, as the page reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlaybackState {
    /// A `.lucarne-host` exists (always false for [`Probe::Selector`]).
    pub host: bool,
    /// Its `data-status`.
    pub status: Option<String>,
    /// Every `data-status` value shown since the first probe, in order.
    pub statuses: Vec<String>,
    /// A `<video>` exists.
    pub video: bool,
    /// `video.currentTime`, seconds (unix time on lucarne's demo stream).
    pub current_time: f64,
    /// Frames decoded since the first probe (`getVideoPlaybackQuality().totalVideoFrames`,
    /// added up across the counter's restarts).
    pub frames: u64,
    /// `getVideoPlaybackQuality().droppedVideoFrames`.
    pub dropped: u64,
    /// `video.paused`.
    pub paused: bool,
    /// `video.readyState` (4 = enough data).
    pub ready_state: u64,
    /// End of the last buffered range, if any.
    pub buffered_end: Option<f64>,
    /// `video.error`, as "code message".
    pub error: Option<String>,
    /// The widget's `data-backend` on the `<video>`: `managed-media-source`,
    /// `media-source` or `native-hls`.
    pub backend: Option<String>,
    /// The `<video>`'s `<source>` children, as (type, src).
    pub sources: Vec<(String, String)>,
    /// `video.disableRemotePlayback`.
    pub remote_playback_disabled: bool,
    /// The page's `Date.now()` in seconds when the snapshot was taken.
    pub wall: f64,
}

impl PlaybackState {
    fn from_json(v: &Value) -> Self {
        let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Self {
            host: v["host"].as_bool().unwrap_or(false),
            status: s("status"),
            statuses: v["statuses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_str().unwrap_or("(none)").to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            video: v["video"].as_bool().unwrap_or(false),
            current_time: f("currentTime"),
            frames: v["frames"].as_u64().unwrap_or(0),
            dropped: v["dropped"].as_u64().unwrap_or(0),
            paused: v["paused"].as_bool().unwrap_or(true),
            ready_state: v["readyState"].as_u64().unwrap_or(0),
            buffered_end: v["bufferedEnd"].as_f64(),
            error: s("error"),
            backend: s("backend"),
            sources: v["sources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            let part = |i: usize| p[i].as_str().unwrap_or_default().to_owned();
                            (part(0), part(1))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            remote_playback_disabled: v["remotePlaybackDisabled"].as_bool().unwrap_or(false),
            wall: f("wall"),
        }
    }

    /// Seconds behind live, valid when media time is unix time (lucarne's demo
    /// stream): the page's wall clock minus currentTime.
    pub fn latency_s(&self) -> f64 {
        self.wall - self.current_time
    }

    /// Fails unless the widget plays through the MediaSource flavour `engine` should
    /// use: Safari's ManagedMediaSource where the engine has it (WebKit), attached as
    /// Apple's pattern wants (with `hls`, the stream's playlist, as a second `<source>`
    /// for AirPlay; without, remote playback disabled); a plain MediaSource elsewhere.
    pub fn expect_backend(&self, engine: Engine, hls: Option<&str>) -> Result<()> {
        let expected = if engine.has_managed_media_source() {
            "managed-media-source"
        } else {
            "media-source"
        };
        if self.backend.as_deref() != Some(expected) {
            bail!(
                "on {} the widget should play through {expected}, it reports {:?}",
                engine.name(),
                self.backend
            );
        }
        if !engine.has_managed_media_source() {
            return Ok(());
        }
        match hls {
            Some(hls) => {
                let kinds: Vec<&str> = self.sources.iter().map(|(t, _)| t.as_str()).collect();
                let ok = kinds == ["video/mp4", "application/x-mpegURL"]
                    && self.sources[0].1.starts_with("blob:")
                    && self.sources[1].1 == hls
                    && !self.remote_playback_disabled;
                if !ok {
                    bail!(
                        "a ManagedMediaSource with an HLS alternative should be the first of two \
                         <source>s, the second {hls} (AirPlay), remote playback allowed; \
                         sources {:?}, disableRemotePlayback {}",
                        self.sources,
                        self.remote_playback_disabled
                    );
                }
            }
            None if !self.remote_playback_disabled => {
                bail!("a ManagedMediaSource without an HLS alternative needs disableRemotePlayback")
            }
            None => {}
        }
        Ok(())
    }

    /// One line for failure messages.
    pub fn describe(&self) -> String {
        if !self.video {
            return format!(
                "no <video> (host present: {}, status {:?})",
                self.host, self.status
            );
        }
        format!(
            "status {:?}, backend {:?}, currentTime {:.2}, frames {} ({} dropped), paused {}, \
             readyState {}, buffered to {}, behind wall clock {:.2} s, error {:?}, statuses seen {:?}",
            self.status,
            self.backend,
            self.current_time,
            self.frames,
            self.dropped,
            self.paused,
            self.ready_state,
            self.buffered_end
                .map_or("nothing".to_owned(), |e| format!("{e:.2}")),
            self.latency_s(),
            self.error,
            self.statuses,
        )
    }
}

impl Probe {
    /// The first lucarne widget on the page.
    pub fn widget() -> Self {
        Self::Widget { index: 0 }
    }

    /// A plain `<video>` matched by `selector`.
    pub fn selector(selector: &str) -> Self {
        Self::Selector(selector.to_owned())
    }

    fn spec(&self) -> Value {
        match self {
            Self::Widget { index } => json!({ "widget": index }),
            Self::Selector(s) => json!({ "selector": s }),
        }
    }

    /// The player's state now.
    pub async fn state(&self, browser: &Browser) -> Result<PlaybackState> {
        let v = browser.execute(STATE_JS, vec![self.spec()]).await?;
        Ok(PlaybackState::from_json(&v))
    }

    /// Waits until the video is actually playing: currentTime moved forward
    /// between two probes and frames were decoded. Returns the state then.
    pub async fn wait_playing(
        &self,
        browser: &Browser,
        deadline: Duration,
    ) -> Result<PlaybackState> {
        let previous: RefCell<Option<PlaybackState>> = RefCell::new(None);
        let previous = &previous;
        wait_until("the video to play", deadline, move || async move {
            let now = self.state(browser).await?;
            let moving = previous
                .borrow()
                .as_ref()
                .is_some_and(|p| now.current_time > p.current_time + 0.01);
            let check = if now.video && moving && now.frames > 0 && !now.paused {
                Check::Done(now.clone())
            } else {
                Check::NotYet(now.describe())
            };
            *previous.borrow_mut() = Some(now);
            Ok(check)
        })
        .await
    }

    /// Waits until `data-status` equals `status`.
    pub async fn wait_status(
        &self,
        browser: &Browser,
        status: &str,
        deadline: Duration,
    ) -> Result<PlaybackState> {
        wait_until(
            &format!("status {status:?}"),
            deadline,
            move || async move {
                let now = self.state(browser).await?;
                Ok(if now.status.as_deref() == Some(status) {
                    Check::Done(now)
                } else {
                    Check::NotYet(now.describe())
                })
            },
        )
        .await
    }

    /// Samples the player for `duration` (this is a wall-time observation, the
    /// one place a test waits on purpose).
    pub async fn watch(&self, browser: &Browser, duration: Duration) -> Result<Watch> {
        let start = Instant::now();
        let mut samples = vec![self.state(browser).await?];
        while start.elapsed() < duration {
            tokio::time::sleep(POLL).await;
            samples.push(self.state(browser).await?);
        }
        Ok(Watch { samples })
    }
}

/// Marks the page, so that [`expect_not_reloaded`] can tell a reload happened since.
pub async fn mark_page(browser: &Browser) -> Result<()> {
    browser
        .execute("window.__e2eNotReloaded = true;", vec![])
        .await?;
    Ok(())
}

/// Fails if the page was reloaded since [`mark_page`] (recovery must not reload it).
pub async fn expect_not_reloaded(browser: &Browser) -> Result<()> {
    let marker = browser
        .execute("return window.__e2eNotReloaded === true;", vec![])
        .await?;
    if marker != Value::Bool(true) {
        bail!("the page was reloaded during recovery (marker lost)");
    }
    Ok(())
}

impl Probe {
    /// After an outage, waits up to 20 s for the widget to play again near live: 30
    /// frames past `frames_before`, status `playing`, under 3 s behind (the demo's
    /// media time is unix time), not paused.
    pub async fn wait_playing_again(
        &self,
        browser: &Browser,
        frames_before: u64,
    ) -> Result<PlaybackState> {
        wait_until(
            "frames to grow again near live with status 'playing' after the origin came back",
            Duration::from_secs(20),
            || async {
                let s = self.state(browser).await?;
                Ok(
                    if s.frames > frames_before + 30
                        && s.status.as_deref() == Some("playing")
                        && s.latency_s() < 3.0
                        && !s.paused
                    {
                        Check::Done(s)
                    } else {
                        Check::NotYet(s.describe())
                    },
                )
            },
        )
        .await
    }
}

/// Samples taken over a stretch of wall time.
#[derive(Clone, Debug)]
pub struct Watch {
    /// In time order; never empty.
    pub samples: Vec<PlaybackState>,
}

impl Watch {
    /// First sample.
    pub fn first(&self) -> &PlaybackState {
        &self.samples[0]
    }

    /// Last sample.
    pub fn last(&self) -> &PlaybackState {
        &self.samples[self.samples.len() - 1]
    }

    /// Wall seconds covered.
    pub fn wall_s(&self) -> f64 {
        self.last().wall - self.first().wall
    }

    /// How far currentTime moved.
    pub fn advanced_s(&self) -> f64 {
        self.last().current_time - self.first().current_time
    }

    /// How many frames were decoded meanwhile.
    pub fn frames_grown(&self) -> i64 {
        self.last().frames as i64 - self.first().frames as i64
    }

    /// Whether playback ended the watch paused: the last two samples paused with no
    /// frame presented between them. One sample alone is not enough: WebKitGTK has been
    /// seen to report `paused` for a moment while frames went on being presented (a
    /// full run's cluster test, frames +167 over 5.9 s, no freeze, the next look
    /// playing).
    pub fn ends_paused(&self) -> bool {
        match self.samples.as_slice() {
            [.., a, b] => a.paused && b.paused && b.frames <= a.frames,
            [b] => b.paused,
            [] => false,
        }
    }

    /// The longest wall-time stretch during which currentTime did not move (a freeze).
    pub fn longest_freeze_s(&self) -> f64 {
        let mut longest = 0.0_f64;
        let mut since = self.samples[0].wall;
        for pair in self.samples.windows(2) {
            if pair[1].current_time > pair[0].current_time {
                since = pair[1].wall;
            } else {
                longest = longest.max(pair[1].wall - since);
            }
        }
        longest
    }

    /// Every status seen during the watch (sampled, plus the page's status log).
    pub fn statuses(&self) -> Vec<String> {
        let mut seen: Vec<String> = self.last().statuses.clone();
        for s in self.samples.iter().filter_map(|s| s.status.clone()) {
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        seen
    }

    /// Largest latency (wall clock minus currentTime) among the samples.
    pub fn max_latency_s(&self) -> f64 {
        self.samples
            .iter()
            .map(PlaybackState::latency_s)
            .fold(f64::MIN, f64::max)
    }

    /// Fails unless playback looked smooth to a viewer: currentTime advanced by at
    /// least 80 % of the wall time, at least 10 frames per second were decoded,
    /// and it never froze for more than 1.5 s.
    pub fn expect_smooth(&self) -> Result<()> {
        let wall = self.wall_s();
        let advanced = self.advanced_s();
        let frames = self.frames_grown();
        let freeze = self.longest_freeze_s();
        if advanced < 0.8 * wall || (frames as f64) < 10.0 * wall || freeze > 1.5 {
            bail!(
                "playback was not smooth over {wall:.1} s: currentTime advanced {advanced:.2} s, \
                 {frames} frames decoded, longest freeze {freeze:.1} s; first: {}; last: {}",
                self.first().describe(),
                self.last().describe()
            );
        }
        Ok(())
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        format!(
            "over {:.1} s: currentTime +{:.2} s, frames +{}, longest freeze {:.1} s, statuses {:?}; last: {}",
            self.wall_s(),
            self.advanced_s(),
            self.frames_grown(),
            self.longest_freeze_s(),
            self.statuses(),
            self.last().describe()
        )
    }
}

/// The text of the first widget's status overlay ("Cannot play", why, "Retry"; ""
/// when none is shown).
pub async fn overlay_text(browser: &Browser) -> Result<String> {
    const OVERLAY_JS: &str = r#"
const h = document.querySelector('.lucarne-host');
const o = h && h.shadowRoot ? h.shadowRoot.querySelector('.overlay') : null;
return o ? o.textContent : '';
"#;
    let v = browser.execute(OVERLAY_JS, vec![]).await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// A third-party page embedding lucarne with one script tag, the way a blog
/// would: `loader` is `{SERVER}/lucarne.js`, `stream` the HLS URL, `ll` the
/// optional low-latency push URL.
pub fn embed_page(title: &str, loader: &str, stream: &str, ll: Option<&str>) -> String {
    let ll = ll.map_or(String::new(), |u| format!(" data-ll=\"{u}\""));
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body>\n<h1>{title}</h1>\n<p>A page on another origin embedding a live stream.</p>\n\
         <script src=\"{loader}\" data-stream=\"{stream}\"{ll}></script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(wall: f64, current_time: f64, frames: u64) -> PlaybackState {
        PlaybackState {
            video: true,
            wall,
            current_time,
            frames,
            ..Default::default()
        }
    }

    #[test]
    fn a_watch_ends_paused_only_when_two_looks_agree_and_no_frame_came() {
        let paused = |mut s: PlaybackState| {
            s.paused = true;
            s
        };
        let w = |samples: Vec<PlaybackState>| Watch { samples };
        assert!(!w(vec![at(0.0, 1.0, 10), paused(at(0.25, 1.25, 18))]).ends_paused());
        assert!(!w(vec![paused(at(0.0, 1.0, 10)), paused(at(0.25, 1.25, 18))]).ends_paused());
        assert!(w(vec![paused(at(0.0, 1.0, 10)), paused(at(0.25, 1.0, 10))]).ends_paused());
        assert!(w(vec![paused(at(0.0, 1.0, 10))]).ends_paused());
        assert!(!w(vec![]).ends_paused());
    }

    #[test]
    fn smooth_playback_passes_and_freeze_is_measured() {
        let smooth = Watch {
            samples: (0..=20)
                .map(|i| at(i as f64 * 0.25, 100.0 + i as f64 * 0.25, i * 8))
                .collect(),
        };
        smooth.expect_smooth().unwrap();
        assert!(smooth.longest_freeze_s() < 0.01);

        let frozen = Watch {
            samples: (0..=20)
                .map(|i| {
                    at(
                        i as f64 * 0.25,
                        100.0 + (i.min(8)) as f64 * 0.25,
                        i.min(8) * 8,
                    )
                })
                .collect(),
        };
        assert!((frozen.longest_freeze_s() - 3.0).abs() < 1e-9);
        let err = frozen.expect_smooth().unwrap_err().to_string();
        assert!(err.contains("longest freeze 3.0 s"), "{err}");
    }

    #[test]
    fn parses_the_probe_result() {
        let v = json!({"host": true, "status": "playing", "statuses": ["connecting", "playing"],
                       "video": true, "currentTime": 1764072000.5, "frames": 42, "dropped": 1,
                       "paused": false, "readyState": 4, "bufferedEnd": 1764072001.5,
                       "error": null, "wall": 1764072001.7, "backend": "managed-media-source",
                       "sources": [["video/mp4", "blob:x"], ["application/x-mpegURL", "https://h/i.m3u8"]],
                       "remotePlaybackDisabled": false});
        let s = PlaybackState::from_json(&v);
        assert_eq!(s.status.as_deref(), Some("playing"));
        assert_eq!(s.statuses, ["connecting", "playing"]);
        assert_eq!(s.frames, 42);
        assert_eq!(s.backend.as_deref(), Some("managed-media-source"));
        assert_eq!(s.sources[1].1, "https://h/i.m3u8");
        s.expect_backend(Engine::Webkit, Some("https://h/i.m3u8"))
            .unwrap();
        assert!(s.expect_backend(Engine::Chromium, None).is_err());
        assert!((s.latency_s() - 1.2).abs() < 1e-6);
    }
}
