//! The player's single backend task: owns the MediaSource, the active source and the
//! timers, and reacts to one stream of [`Event`]s. Its decisions come from the pure
//! policies in `latency` and `buffer`; this file wires them to the browser.
//!
//! Recovery decided here: the low-latency socket reconnects with backoff and jitter
//! (falling back to HLS if it never worked), a decode error rebuilds the MediaSource,
//! a stall at a hole jumps it, a stall inside buffered media nudges the playhead, and a
//! playhead that nudges do not move rebuilds the MediaSource (WebKitGTK's pipeline has
//! been seen to hang before its first frame with seconds of media buffered ahead).

use super::buffer::{self, Range};
use super::channel;
use super::hls::{self, HlsSource};
use super::latency::{LatencyAction, LatencyPolicy, Observation};
use super::mp4::{self, InitInfo};
use super::mse::{Mse, MseError};
use super::push::PushSource;
use super::{Control, Sources, Status};
use crate::net::backoff::Backoff;
use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use js_sys::Uint8Array;
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::HtmlVideoElement;

/// Sender side of the engine's event queue.
pub type Tx = channel::Sender<Event>;

/// How often the engine re-evaluates latency, stalls and the back buffer.
const TICK_MS: u32 = 200;
/// Media kept behind the playhead (seconds).
const BACK_BUFFER: f64 = 30.0;
/// Largest hole the engine jumps over by itself (a missing segment).
const MAX_GAP_JUMP: f64 = 6.0;
/// How far behind live a viewer may resume after a pause (the rest is evicted).
const MAX_TIMESHIFT: f64 = 25.0;
/// Smallest playbackRate change worth making while catching up.
const RATE_STEP: f64 = 0.05;
/// Decode errors (and hung pipelines) tolerated per minute before giving up.
const MAX_REBUILDS_PER_MINUTE: usize = 3;
/// Ticks stalled with media ahead before a nudge, and between nudges.
const NUDGE_AFTER_TICKS: u32 = 4;
/// Nudges that did not get playback going before the MediaSource is rebuilt.
const MAX_NUDGES: u32 = 3;

/// Everything the engine reacts to.
pub enum Event {
    /// From the frontend handle.
    Control(Control),
    /// Periodic evaluation.
    Tick,
    /// The page became visible again.
    Visible,
    /// From the source of the given generation.
    Source(u32, SourceEvent),
    /// An MSE operation failed.
    MseFailed(String),
    /// Playback does not move with media buffered ahead, nudges or not.
    Hung,
    /// The `<video>` element reported an error.
    MediaError,
    /// The append queue drained: new media is buffered.
    Buffered,
    /// `play()` was refused (autoplay policy).
    PlayRefused,
    /// The reconnect timer fired.
    Reconnect,
    /// The `<video>`'s muted state or volume changed.
    VolumeChanged,
    /// The page is being frozen (back/forward cache) or unloaded: let go of the network.
    PageHide,
    /// The page came back from the back/forward cache.
    PageShow,
    /// The handle was dropped.
    Close,
}

/// What a source reports.
pub enum SourceEvent {
    /// An init segment.
    Init(Uint8Array),
    /// A media fragment or segment.
    Media(Uint8Array),
    /// Media time of the live edge (HLS; the push source's edge is its newest chunk).
    Edge(f64),
    /// Latency policy suited to the source (HLS target duration).
    Policy(LatencyPolicy),
    /// Connected / reachable again.
    Up,
    /// Unreachable.
    Down,
    /// The broadcast ended.
    Ended,
    /// Nobody is broadcasting; media follows when someone does (push source).
    Offline,
    /// The playlist is a finished recording: media time `start` (applied as a
    /// timestamp offset, so the replay runs from 0) and total `duration`, seconds.
    Vod {
        /// Decode time of the first segment.
        start: f64,
        /// Sum of the segments' durations.
        duration: f64,
    },
    /// A VOD source has loaded its last segment.
    VodComplete,
    /// Something was skipped or retried; playback goes on.
    Warning(String),
    /// The source cannot go on.
    Fatal(String),
}

/// The running source; held for its `Drop`, which closes it.
#[allow(dead_code)]
enum Active {
    Push(PushSource),
    Hls(HlsSource),
}

/// The frontend's handle: sends controls; dropping it stops the player and frees the
/// MediaSource, the sockets, the timers and the listeners.
pub struct PlayerHandle {
    tx: Tx,
}

impl PlayerHandle {
    /// Starts playing `sources` in `video`, reporting to `on_status`. `early_socket` is
    /// a low-latency socket the loader opened while the widget loaded, if any.
    pub fn new(
        video: HtmlVideoElement,
        sources: Sources,
        on_status: Rc<dyn Fn(Status)>,
        early_socket: Option<wasm_bindgen::JsValue>,
    ) -> PlayerHandle {
        let (tx, rx) = channel::unbounded();
        let mut engine = Engine::new(video, sources, on_status, tx.clone());
        engine.early_socket = early_socket;
        wasm_bindgen_futures::spawn_local(engine.run(rx));
        PlayerHandle { tx }
    }

    /// Sends a control.
    pub fn send(&self, control: Control) {
        let _ = self.tx.unbounded_send(Event::Control(control));
    }
}

impl Drop for PlayerHandle {
    fn drop(&mut self) {
        let _ = self.tx.unbounded_send(Event::Close);
    }
}

struct Engine {
    video: HtmlVideoElement,
    sources: Sources,
    on_status: Rc<dyn Fn(Status)>,
    tx: Tx,
    status: Status,
    mse: Option<Mse>,
    init: Option<InitInfo>,
    active: Option<Active>,
    /// Tags source events; bumped whenever the source is replaced.
    generation: u32,
    policy: LatencyPolicy,
    /// Live edge reported by an HLS source.
    hls_edge: Option<f64>,
    /// The first seek to the live edge has been done.
    started: bool,
    last_position: f64,
    stalled_ticks: u32,
    /// Nudges since the playhead last moved by itself.
    nudges: u32,
    source_up: bool,
    /// The push source delivered media at least once (else fall back to HLS).
    push_worked: bool,
    push_failures: u32,
    backoff: Backoff,
    reconnect: Option<Timeout>,
    rebuilds: Vec<f64>,
    user_paused: bool,
    /// Muted as the viewer chose (muted at start, as autoplay needs). The browser's own
    /// changes are undone: WebKitGTK's media pipeline reports itself unmuted when it
    /// starts, and WebKit then pauses what has become an unmuted autoplay.
    muted: bool,
    /// The loader's early low-latency socket, adopted by the first connect.
    early_socket: Option<wasm_bindgen::JsValue>,
    /// Playing behind live on purpose (resumed after a pause); latency control is off.
    timeshift: bool,
    /// No MediaSource: the browser plays the HLS URL itself.
    native: bool,
    /// The push source said nobody is broadcasting.
    offline: bool,
    /// The viewer asked for the replay: HLS only, from the start.
    replay: bool,
    /// The source is a finished recording (no live edge, no latency control).
    vod: bool,
    vod_complete: bool,
    /// Shared with a VOD loader: the playhead, and where the viewer jumped to outside
    /// what is buffered (NaN: nowhere).
    playhead: Rc<Cell<f64>>,
    seek_to: Rc<Cell<f64>>,
    became_visible: bool,
    _timers: Vec<Interval>,
    _listeners: Vec<EventListener>,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn log(msg: &str) {
    web_sys::console::warn_1(&format!("lucarne: {msg}").into());
}

impl Engine {
    fn new(
        video: HtmlVideoElement,
        sources: Sources,
        on_status: Rc<dyn Fn(Status)>,
        tx: Tx,
    ) -> Engine {
        let mut listeners = Vec::new();
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            let (t, d) = (tx.clone(), doc.clone());
            listeners.push(EventListener::new(&doc, "visibilitychange", move |_| {
                if d.visibility_state() == web_sys::VisibilityState::Visible {
                    let _ = t.unbounded_send(Event::Visible);
                }
            }));
        }
        if let Some(window) = web_sys::window() {
            let t = tx.clone();
            listeners.push(EventListener::new(&window, "pagehide", move |_| {
                let _ = t.unbounded_send(Event::PageHide);
            }));
            let t = tx.clone();
            listeners.push(EventListener::new(&window, "pageshow", move |e| {
                let persisted =
                    js_sys::Reflect::get(e, &"persisted".into()).is_ok_and(|p| p.is_truthy());
                if persisted {
                    let _ = t.unbounded_send(Event::PageShow);
                }
            }));
        }
        let t = tx.clone();
        listeners.push(EventListener::new(&video, "error", move |_| {
            let _ = t.unbounded_send(Event::MediaError);
        }));
        let t = tx.clone();
        listeners.push(EventListener::new(&video, "volumechange", move |_| {
            let _ = t.unbounded_send(Event::VolumeChanged);
        }));
        let t = tx.clone();
        let tick = Interval::new(TICK_MS, move || {
            let _ = t.unbounded_send(Event::Tick);
        });
        let policy = if sources.low_latency.is_some() {
            LatencyPolicy::low_latency()
        } else {
            LatencyPolicy::hls(1.0)
        };
        // As the embed asked (`data-muted`): the view sets it before the player starts.
        let muted = video.muted();
        Engine {
            video,
            sources,
            on_status,
            tx,
            status: Status::Connecting,
            mse: None,
            init: None,
            active: None,
            generation: 0,
            policy,
            hls_edge: None,
            started: false,
            last_position: 0.0,
            stalled_ticks: 0,
            nudges: 0,
            source_up: false,
            push_worked: false,
            push_failures: 0,
            backoff: Backoff::new(250.0, 8_000.0),
            reconnect: None,
            rebuilds: Vec::new(),
            user_paused: false,
            muted,
            early_socket: None,
            timeshift: false,
            native: false,
            offline: false,
            replay: false,
            vod: false,
            vod_complete: false,
            playhead: Rc::new(Cell::new(0.0)),
            seek_to: Rc::new(Cell::new(f64::NAN)),
            became_visible: false,
            _timers: vec![tick],
            _listeners: listeners,
        }
    }

    fn set_status(&mut self, status: Status) {
        if self.status != status {
            self.status = status.clone();
            (self.on_status)(status);
        }
    }

    fn fatal(&mut self, message: String) {
        log(&message);
        self.active = None;
        self.reconnect = None;
        self.set_status(Status::Error {
            message,
            fatal: true,
        });
    }

    async fn run(mut self, mut rx: channel::Receiver<Event>) {
        self.video.set_muted(self.muted);
        (self.on_status)(Status::Connecting);
        self.rebuild().await;
        while let Some(event) = rx.next().await {
            if matches!(event, Event::Close) {
                break;
            }
            self.handle(event).await;
        }
        // Dropping self releases the source, the MediaSource, timers and listeners.
    }

    /// (Re)creates the MediaSource and (re)starts the source.
    async fn rebuild(&mut self) {
        self.active = None;
        self.mse = None;
        self.init = None;
        self.started = false;
        self.stalled_ticks = 0;
        self.nudges = 0;
        self.hls_edge = None;
        self.vod = false;
        self.vod_complete = false;
        self.offline = false;
        if !super::mse::supported() {
            return self.play_natively();
        }
        match Mse::open(&self.video, self.tx.clone(), self.sources.hls.as_deref()).await {
            Ok(mse) => self.mse = Some(mse),
            Err(e) => return self.fatal(e.to_string()),
        }
        self.connect();
    }

    /// Without MediaSource, hands the HLS URL to the browser if it plays HLS itself
    /// (older iOS Safari); latency is then the browser's business.
    fn play_natively(&mut self) {
        let hls = self.sources.hls.clone();
        let plays_hls = !self
            .video
            .can_play_type("application/vnd.apple.mpegurl")
            .is_empty();
        match hls {
            Some(url) if plays_hls => {
                self.native = true;
                let _ = self.video.set_attribute("data-backend", "native-hls");
                self.video.set_src(&url);
                self.started = true;
                self.source_up = true;
                self.play();
            }
            _ => self.fatal(
                "this browser cannot play live video (no MediaSource, no native HLS)".into(),
            ),
        }
    }

    /// Starts the preferred source: low-latency push unless it never worked.
    fn connect(&mut self) {
        self.reconnect = None;
        self.generation += 1;
        let use_push = self.sources.low_latency.is_some()
            && !(self.replay && self.sources.hls.is_some())
            && (self.push_worked || self.push_failures < 3 || self.sources.hls.is_none());
        if use_push {
            let url = self.sources.low_latency.clone().unwrap_or_default();
            if let Some(p) = self
                .early_socket
                .take()
                .and_then(|e| PushSource::adopt(&e, self.generation, self.tx.clone()))
            {
                self.active = Some(Active::Push(p));
                return;
            }
            match PushSource::open(&url, self.generation, self.tx.clone()) {
                Ok(p) => self.active = Some(Active::Push(p)),
                Err(e) => self.fatal(e),
            }
        } else if let Some(url) = self.sources.hls.clone() {
            // The push is live and at most a target latency ahead, so it is not throttled;
            // HLS loads segments only while the browser wants media.
            let wanted = self
                .mse
                .as_ref()
                .map_or_else(|| Rc::new(std::cell::Cell::new(true)), Mse::wanted);
            self.active = Some(Active::Hls(hls::start(
                url,
                self.generation,
                self.tx.clone(),
                wanted,
                hls::Playhead {
                    position: self.playhead.clone(),
                    seek_to: self.seek_to.clone(),
                },
            )));
        } else {
            self.fatal("no stream URL".into());
        }
    }

    fn schedule_reconnect(&mut self) {
        let delay = self.backoff.next_delay(js_sys::Math::random());
        let tx = self.tx.clone();
        self.reconnect = Some(Timeout::new(delay as u32, move || {
            let _ = tx.unbounded_send(Event::Reconnect);
        }));
    }

    async fn handle(&mut self, event: Event) {
        match event {
            Event::Control(Control::Replay) => {
                self.replay = true;
                self.set_status(Status::Connecting);
                self.rebuild().await;
            }
            Event::Control(c) => self.control(c),
            Event::Tick => self.tick(),
            Event::Buffered => {
                if !self.started {
                    self.try_start();
                }
            }
            Event::Visible => self.became_visible = true,
            Event::Source(generation, e) if generation == self.generation => self.source_event(e),
            Event::Source(..) => {}
            Event::Reconnect => {
                if matches!(self.active, Some(Active::Push(_)) | None) {
                    self.connect();
                }
            }
            Event::MseFailed(m) => {
                log(&format!("media buffer error: {m}"));
                self.recover_decode().await;
            }
            Event::Hung => {
                log("playback is stuck with media buffered ahead: rebuilding the player");
                self.recover_decode().await;
            }
            Event::MediaError => {
                let code = self.video.error().map_or(0, |e| e.code());
                log(&format!("media element error {code}"));
                self.recover_decode().await;
            }
            Event::VolumeChanged => {
                if self.video.muted() != self.muted {
                    self.video.set_muted(self.muted);
                }
            }
            Event::PlayRefused => {
                if !self.video.paused() {
                    return;
                }
                if !self.video.muted() {
                    // Refused with sound: the embed asked to start unmuted and the
                    // browser's autoplay policy said no, or the browser unmuted it by
                    // itself (see `muted`). Autoplay policies allow it muted; the viewer
                    // gets the "tap to unmute" badge.
                    self.muted = true;
                    self.video.set_muted(true);
                    return self.play();
                }
                self.set_status(Status::Paused);
            }
            Event::PageHide => {
                // A frozen page must not keep a socket open (the origin would keep
                // pushing to it) nor count as a viewer.
                self.active = None;
                self.reconnect = None;
            }
            Event::PageShow => self.rebuild().await,
            Event::Close => {}
        }
    }

    async fn recover_decode(&mut self) {
        let now = now_ms();
        self.rebuilds.retain(|t| now - t < 60_000.0);
        if self.rebuilds.len() >= MAX_REBUILDS_PER_MINUTE {
            return self.fatal("the stream cannot be decoded".into());
        }
        self.rebuilds.push(now);
        self.rebuild().await;
    }

    fn source_event(&mut self, e: SourceEvent) {
        match e {
            SourceEvent::Init(data) => self.on_init(data),
            SourceEvent::Media(data) => {
                if matches!(self.active, Some(Active::Push(_))) {
                    self.push_worked = true;
                    self.backoff.reset();
                }
                self.source_up = true;
                if let (Some(mse), Some(_)) = (&self.mse, &self.init) {
                    mse.append(data);
                }
            }
            SourceEvent::Edge(edge) => self.hls_edge = Some(edge),
            SourceEvent::Policy(p) => {
                if matches!(self.active, Some(Active::Hls(_))) {
                    self.policy = p;
                }
            }
            SourceEvent::Up => {
                self.source_up = true;
                self.offline = false;
                if matches!(self.status, Status::Reconnecting | Status::Offline) {
                    self.set_status(Status::Buffering);
                }
            }
            SourceEvent::Offline => {
                self.offline = true;
                self.source_up = true;
                // What is buffered still plays out; the stall then shows "offline".
                if !matches!(
                    self.status,
                    Status::Playing | Status::BehindLive | Status::Error { fatal: true, .. }
                ) {
                    self.set_status(Status::Offline);
                }
            }
            SourceEvent::Vod { start, duration } => {
                self.vod = true;
                if let Some(mse) = &self.mse {
                    mse.set_timestamp_offset(-start);
                    mse.set_duration(duration);
                }
            }
            SourceEvent::VodComplete => self.vod_complete = true,
            SourceEvent::Down => {
                self.source_up = false;
                if matches!(self.active, Some(Active::Push(_))) {
                    if !self.push_worked {
                        self.push_failures += 1;
                    }
                    self.active = None;
                    self.schedule_reconnect();
                }
                if !matches!(
                    self.status,
                    Status::Error { fatal: true, .. } | Status::Ended
                ) {
                    self.set_status(Status::Reconnecting);
                }
            }
            SourceEvent::Ended => {
                if let Some(mse) = &self.mse {
                    mse.end_of_stream();
                }
                // Nothing more will come: let go of the socket (no reconnection).
                self.active = None;
                self.reconnect = None;
                self.set_status(Status::Ended);
            }
            SourceEvent::Warning(m) => log(&m),
            SourceEvent::Fatal(m) => self.fatal(m),
        }
    }

    fn on_init(&mut self, data: Uint8Array) {
        let Some(info) = mp4::parse_init(&data.to_vec()) else {
            return self.fatal("the stream's init segment is not a supported fMP4 header".into());
        };
        let Some(mse) = self.mse.as_mut() else { return };
        if !mse.has_buffer() {
            if let Err(e) = mse.add_source_buffer(&info.mime()) {
                let msg = match e {
                    MseError::Codec(m) => format!("this browser cannot play this stream ({m})"),
                    other => other.to_string(),
                };
                return self.fatal(msg);
            }
        }
        mse.append(data);
        self.init = Some(info);
    }

    fn control(&mut self, c: Control) {
        match c {
            Control::Play => {
                self.user_paused = false;
                if self.started {
                    let behind = self.edge().map_or(0.0, |e| e - self.video.current_time());
                    let buffered = buffer::ahead(&self.ranges(), self.video.current_time()) > 0.0;
                    // Resume where the viewer paused if that media is still here.
                    self.timeshift = !self.native
                        && buffered
                        && behind > self.policy.target + 1.0
                        && behind < MAX_TIMESHIFT;
                    if !self.timeshift {
                        self.go_live_if_behind();
                    }
                    self.play();
                }
            }
            Control::Pause => {
                self.user_paused = true;
                self.video.pause().ok();
                self.set_status(Status::Paused);
            }
            Control::Mute(m) => {
                self.muted = m;
                self.video.set_muted(m);
            }
            Control::Volume(v) => self.video.set_volume(v.clamp(0.0, 1.0)),
            // Needs a rebuild: handled with the events.
            Control::Replay => {}
            Control::GoLive => {
                self.timeshift = false;
                if self.user_paused {
                    self.user_paused = false;
                    self.play();
                }
                if let Some(edge) = self.edge() {
                    self.seek(edge - self.policy.target);
                }
            }
        }
    }

    fn go_live_if_behind(&mut self) {
        if let Some(edge) = self.edge() {
            if edge - self.video.current_time() > self.policy.target + 1.0 {
                self.seek(edge - self.policy.target);
            }
        }
    }

    fn play(&self) {
        let Ok(promise) = self.video.play() else {
            return;
        };
        let tx = self.tx.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = wasm_bindgen_futures::JsFuture::from(promise).await {
                // Only the autoplay policy's refusal needs the viewer. A play() cut short
                // by a pause, seek or load (AbortError; WebKitGTK pauses internally at
                // every rate change) is retried by the next tick.
                let refused = e
                    .dyn_ref::<web_sys::DomException>()
                    .is_none_or(|d| d.name() == "NotAllowedError");
                if refused {
                    let _ = tx.unbounded_send(Event::PlayRefused);
                }
            }
        });
    }

    fn ranges(&self) -> Vec<Range> {
        self.mse.as_ref().map(Mse::buffered).unwrap_or_default()
    }

    fn edge(&self) -> Option<f64> {
        self.edge_in(&self.ranges())
    }

    /// The live edge given ranges already read (TimeRanges are read once per tick).
    fn edge_in(&self, ranges: &[Range]) -> Option<f64> {
        match self.active {
            Some(Active::Hls(_)) => self.hls_edge.or_else(|| buffer::newest(ranges)),
            _ => buffer::newest(ranges),
        }
    }

    /// Moves the playhead to `t`. An engine's decision, not playback: the stall watch
    /// in `tick` measures progress from where the playhead was put.
    fn move_playhead(&mut self, t: f64) {
        self.video.set_current_time(t);
        self.last_position = self.video.current_time();
    }

    /// Seeks to `t`, clamped into buffered media.
    fn seek(&mut self, t: f64) {
        let ranges = self.ranges();
        let target = ranges
            .iter()
            .find(|r| r.end > t)
            .map(|r| t.max(r.start).min(r.end - 0.05))
            .or_else(|| ranges.last().map(|r| (r.end - 0.05).max(r.start)));
        // A seek where the playhead already is still flushes WebKitGTK's pipeline, and
        // one while it starts up has been seen to hang the page: skip it.
        if let Some(t) = target.filter(|t| (t - self.video.current_time()).abs() > 0.01) {
            self.move_playhead(t);
        }
    }

    /// First frame: position the playhead and play.
    fn try_start(&mut self) {
        let ranges = self.ranges();
        if self.vod {
            // A replay starts at its beginning.
            let Some(first) = ranges.first() else { return };
            self.started = true;
            let pos = self.video.current_time();
            if !(first.start <= pos && pos < first.end) {
                self.move_playhead(first.start);
            }
            self.last_position = self.video.current_time();
            if !self.user_paused {
                self.play();
            }
            return;
        }
        let (Some(last), Some(edge)) = (ranges.last(), self.edge_in(&ranges)) else {
            return;
        };
        self.started = true;
        if matches!(self.active, Some(Active::Push(_))) {
            // The push starts on a keyframe less than a segment behind live: show it at
            // once (no decoding up to a seek point) and let the catch-up rate close the
            // remaining fraction of a second.
            if (last.start - self.video.current_time()).abs() > 0.01 {
                self.move_playhead(last.start);
            }
        } else {
            self.seek(edge - self.policy.target);
        }
        self.last_position = self.video.current_time();
        if !self.user_paused {
            self.play();
        }
    }

    fn tick(&mut self) {
        if self.native {
            return self.tick_native();
        }
        let Some(mse) = &self.mse else { return };
        let ranges = mse.buffered();
        let pos = self.video.current_time();

        if !self.started {
            return self.try_start();
        }

        if self.vod {
            self.playhead.set(pos);
            // The viewer jumped outside what is buffered: the loader moves there.
            // (Only on a seek: re-appending what plays makes some browsers stall.)
            let buffered = ranges
                .iter()
                .any(|r| r.start <= pos + 0.1 && pos <= r.end + 0.1);
            if self.video.seeking() && !buffered {
                self.seek_to.set(pos);
                self.vod_complete = false;
            }
            // Once everything is appended: ends cleanly at the last frame.
            if self.vod_complete && mse.pending() == 0 {
                mse.end_of_stream();
                self.vod_complete = false;
            }
        }
        // While paused the playhead stays put but live media keeps coming: keep only
        // what a resume could still use. A replay keeps what lies behind the playhead.
        let newest = buffer::newest(&ranges).unwrap_or(pos);
        let anchor = if self.vod {
            pos
        } else {
            pos.max(newest - MAX_TIMESHIFT)
        };
        if let Some(cut) = buffer::back_buffer_eviction(&ranges, anchor, BACK_BUFFER) {
            mse.remove(cut.start, cut.end);
        }

        if self.user_paused
            || matches!(
                self.status,
                Status::Ended | Status::Error { fatal: true, .. }
            )
        {
            return;
        }

        if self.vod && self.video.ended() {
            return self.set_status(Status::Ended);
        }
        // Back within reach of live (or never really behind: WebKitGTK can report a stale
        // currentTime while paused): live again, with latency control.
        if self.timeshift
            && self
                .edge_in(&ranges)
                .is_some_and(|edge| edge - pos <= self.policy.target + 1.0)
        {
            self.timeshift = false;
        }
        let ahead = buffer::ahead(&ranges, pos);
        if let Some(edge) = self
            .edge_in(&ranges)
            .filter(|_| !self.timeshift && !self.vod)
        {
            let obs = Observation {
                position: pos,
                edge,
                ahead,
                beyond_hole: buffer::newest(&ranges)
                    .is_some_and(|n| n > pos + ahead + buffer::MAX_HOLE),
                became_visible: std::mem::take(&mut self.became_visible),
                rate: self.video.playback_rate(),
            };
            match self.policy.decide(&obs) {
                LatencyAction::Rate(r) => {
                    // Rate changes in steps, not by the hundredth every tick: on some
                    // engines (WebKitGTK) each change flushes the pipeline and costs
                    // more playback time than the catch-up gains.
                    let step = (obs.rate - r).abs();
                    if step >= RATE_STEP || (r <= 1.0 && step > 0.001) {
                        self.video.set_playback_rate(r);
                    }
                }
                LatencyAction::Seek(t) => {
                    self.video.set_playback_rate(1.0);
                    // Progress is measured from the new position, next tick.
                    return self.seek(t);
                }
            }
        }

        if self.video.paused() {
            // Paused by the browser, not the viewer (an autoplay policy, an interrupted
            // pipeline): play again; a refusal shows the play button.
            if !matches!(self.status, Status::Paused) {
                self.play();
            }
            return;
        }
        let advanced = (pos - self.last_position).abs() > 0.01;
        self.last_position = pos;
        if advanced {
            self.stalled_ticks = 0;
            self.nudges = 0;
            if self.source_up || matches!(self.active, Some(Active::Hls(_))) {
                self.set_status(if self.vod {
                    Status::Replay
                } else if self.timeshift {
                    Status::BehindLive
                } else {
                    Status::Playing
                });
            }
            return;
        }
        self.stalled_ticks += 1;
        if self.stalled_ticks < 2 {
            return;
        }
        if let Some(t) = buffer::gap_jump(&ranges, pos, MAX_GAP_JUMP) {
            log("jumping a hole in the buffer");
            self.move_playhead(t);
        } else if ahead >= buffer::STUCK_AT_END && self.stalled_ticks >= NUDGE_AFTER_TICKS {
            self.stalled_ticks = 0;
            if self.nudges < MAX_NUDGES {
                // Stuck with media ahead (a decoder hiccup): nudge, as players do.
                self.nudges += 1;
                self.move_playhead(pos + 0.1);
            } else {
                // Nudges did not help, nor did the seeks they made: the pipeline hangs.
                self.nudges = 0;
                let _ = self.tx.unbounded_send(Event::Hung);
            }
        }
        let waiting = if self.offline {
            Status::Offline
        } else if self.source_up {
            Status::Buffering
        } else {
            Status::Reconnecting
        };
        if !matches!(self.status, Status::Reconnecting) || self.source_up {
            self.set_status(waiting);
        }
    }
}

impl Engine {
    fn tick_native(&mut self) {
        let pos = self.video.current_time();
        if self.user_paused {
            return;
        }
        if self.video.paused() {
            return self.play();
        }
        let advanced = (pos - self.last_position).abs() > 0.01;
        self.last_position = pos;
        self.set_status(if advanced {
            Status::Playing
        } else {
            Status::Buffering
        });
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.active = None;
        self.mse = None;
        let _ = self.video.pause();
        // Native HLS has no Mse to detach the source.
        let _ = self
            .video
            .dyn_ref::<web_sys::Element>()
            .map(|e| e.remove_attribute("src"));
    }
}
