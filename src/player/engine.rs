//! The player's single backend task: owns the MediaSource, the active source, the
//! `<video>` glue and the playback controller, and reacts to one stream of
//! [`Event`]s. It wires; the decisions are the controllers' and the pure policies'
//! (`recovery` for reconnects, rebuilds and the end of a broadcast; `stall`, `latency`
//! and `buffer` through `playback`).
//!
//! Recovery carried out here: the low-latency socket reconnects with backoff and jitter
//! (falling back to HLS if it never worked), a decode error or a hung pipeline rebuilds
//! the MediaSource (within the rebuild budget), and an HLS stream that ended is watched
//! until its next broadcast starts, which is then played from scratch.

use super::channel;
use super::events::{Event, SourceEvent, Tx};
use super::hls::{self, HlsSource};
use super::latency::LatencyPolicy;
use super::mp4::InitInfo;
use super::mse::Mse;
use super::playback::{Env, Playback};
use super::push::PushSource;
use super::recovery::{self, AfterEnd, Offered, Recovery, SourceKind};
use super::unplayable::Reason;
use super::video::{log, Video};
use super::{Control, Sources, Status};
use gloo_timers::callback::{Interval, Timeout};
use std::rc::Rc;
use web_sys::HtmlVideoElement;

/// How often the engine re-evaluates latency, stalls and the back buffer.
const TICK_MS: u32 = 200;
/// Ticks between latency reports on the push socket.
const REPORT_TICKS: u32 = lucarne_protocol::push::REPORT_EVERY_MS / TICK_MS;

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
    /// Starts playing `sources` in `video`, reporting to `on_status`, and the heights a
    /// multivariant stream offers (and the viewer's pick in force) to `on_heights`. `early_socket` is a low-latency
    /// socket the loader opened while the widget loaded, if any.
    pub fn new(
        video: HtmlVideoElement,
        sources: Sources,
        on_status: Rc<dyn Fn(Status)>,
        on_heights: Rc<dyn Fn(Vec<u32>, u32)>,
        early_socket: Option<wasm_bindgen::JsValue>,
    ) -> PlayerHandle {
        let (tx, rx) = channel::unbounded();
        let mut engine = Engine::new(video, sources, on_status, tx.clone(), early_socket);
        engine.on_heights = on_heights;
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
    video: Video,
    sources: Sources,
    on_status: Rc<dyn Fn(Status)>,
    on_heights: Rc<dyn Fn(Vec<u32>, u32)>,
    tx: Tx,
    status: Status,
    mse: Option<Mse>,
    init: Option<InitInfo>,
    active: Option<Active>,
    /// Tags source events; bumped whenever the source is replaced.
    generation: u32,
    playback: Playback,
    recovery: Recovery,
    source_up: bool,
    reconnect: Option<Timeout>,
    /// The loader's early low-latency socket, adopted by the first connect.
    early_socket: Option<wasm_bindgen::JsValue>,
    /// No MediaSource: the browser plays the HLS URL itself.
    native: bool,
    /// The push source said nobody is broadcasting.
    offline: bool,
    /// The viewer asked for the replay: HLS only, from the start.
    replay: bool,
    _tick: Interval,
    /// Ticks since the last latency report (or since it was due, while paused).
    ticks: u32,
}

impl Engine {
    fn new(
        video: HtmlVideoElement,
        sources: Sources,
        on_status: Rc<dyn Fn(Status)>,
        tx: Tx,
        early_socket: Option<wasm_bindgen::JsValue>,
    ) -> Engine {
        let t = tx.clone();
        let tick = Interval::new(TICK_MS, move || {
            let _ = t.unbounded_send(Event::Tick);
        });
        let policy = LatencyPolicy::for_sources(sources.low_latency.is_some());
        let playback = Playback::new(policy);
        playback.tell(|c| c.max_height = sources.max_height);
        Engine {
            video: Video::new(video, tx.clone()),
            sources,
            on_status,
            on_heights: Rc::new(|_, _| {}),
            tx,
            status: Status::Connecting,
            mse: None,
            init: None,
            active: None,
            generation: 0,
            playback,
            recovery: Recovery::default(),
            source_up: false,
            reconnect: None,
            early_socket,
            native: false,
            offline: false,
            replay: false,
            _tick: tick,
            ticks: 0,
        }
    }

    fn set_status(&mut self, status: Status) {
        if self.status != status {
            self.status = status.clone();
            (self.on_status)(status);
        }
    }

    fn show(&mut self, status: Option<Status>) {
        if let Some(s) = status {
            self.set_status(s);
        }
    }

    fn fatal(&mut self, message: String) {
        self.stop(message, None);
    }

    /// Stops with an error: `message` for the console, `reason` for the viewer.
    fn stop(&mut self, message: String, reason: Option<Reason>) {
        log(&message);
        self.active = None;
        self.reconnect = None;
        self.set_status(Status::Error {
            message,
            fatal: true,
            reason,
        });
    }

    fn source(&self) -> Option<SourceKind> {
        match self.active.as_ref()? {
            Active::Push(_) => Some(SourceKind::Push),
            Active::Hls(_) => Some(SourceKind::Hls),
        }
    }

    async fn run(mut self, mut rx: channel::Receiver<Event>) {
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
        self.playback.reset();
        self.offline = false;
        if !super::mse::supported() {
            if !self.video.play_natively(self.sources.hls.as_deref()) {
                let m = "this browser cannot play live video (no MediaSource, no native HLS)";
                return self.fatal(m.into());
            }
            // Latency is then the browser's business.
            self.native = true;
            self.playback.started = true;
            self.source_up = true;
            return;
        }
        match Mse::open(&self.video.el, self.tx.clone(), self.sources.hls.as_deref()).await {
            Ok(mse) => self.mse = Some(mse),
            Err(e) => return self.fatal(e.to_string()),
        }
        self.connect();
    }

    /// Starts the source the recovery policy picks.
    fn connect(&mut self) {
        self.reconnect = None;
        self.generation += 1;
        let offered = Offered {
            push: self.sources.low_latency.is_some(),
            hls: self.sources.hls.is_some(),
            replay: self.replay,
        };
        match self.recovery.source(offered) {
            Some(SourceKind::Push) => {
                let url = self.sources.low_latency.clone().unwrap_or_default();
                let early = self
                    .early_socket
                    .take()
                    .and_then(|e| PushSource::adopt(&e, self.generation, self.tx.clone()));
                match early.map_or_else(
                    || PushSource::open(&url, self.generation, self.tx.clone()),
                    Ok,
                ) {
                    Ok(p) => {
                        // A ladder's other rungs have pushes too (`push` switches).
                        if let Some(hls) = self.sources.hls.clone() {
                            p.follow_ladder(hls, self.playback.hls_playhead().conditions);
                        }
                        self.active = Some(Active::Push(p));
                    }
                    Err(e) => self.fatal(e),
                }
            }
            Some(SourceKind::Hls) => {
                // The push is live and at most a target latency ahead, so it is not
                // throttled; HLS loads segments only while the browser wants media.
                let wanted = self
                    .mse
                    .as_ref()
                    .map_or_else(|| Rc::new(std::cell::Cell::new(true)), Mse::wanted);
                let url = self.sources.hls.clone().unwrap_or_default();
                let tx = self.tx.clone();
                let playhead = self.playback.hls_playhead();
                let source = hls::start(url, self.generation, tx, wanted, playhead);
                self.active = Some(Active::Hls(source));
            }
            None => self.fatal("no stream URL".into()),
        }
    }

    async fn handle(&mut self, event: Event) {
        match event {
            Event::Control(Control::Replay) => {
                self.replay = true;
                self.set_status(Status::Connecting);
                self.rebuild().await;
            }
            Event::Control(Control::Mute(m)) => self.video.set_muted(m),
            Event::Control(Control::Volume(v)) => self.video.el.set_volume(v.clamp(0.0, 1.0)),
            Event::Control(c) => {
                let ranges = self.mse.as_ref().map(Mse::buffered).unwrap_or_default();
                let (source, native) = (self.source(), self.native);
                let status = self
                    .playback
                    .control(c, &self.video, &ranges, source, native);
                self.show(status);
            }
            Event::Tick => {
                let env = Env {
                    status: &self.status,
                    source: self.source(),
                    source_up: self.source_up,
                    offline: self.offline,
                    native: self.native,
                };
                let status = self.playback.tick(&self.video, self.mse.as_ref(), env);
                self.show(status);
                self.report_latency();
            }
            Event::Buffered => {
                if let (false, Some(mse)) = (self.playback.started, &self.mse) {
                    let source = self.source();
                    self.playback
                        .try_start(&self.video, &mse.buffered(), source);
                }
            }
            Event::Visible => self.playback.became_visible = true,
            Event::Source(generation, e) if generation == self.generation => {
                self.source_event(e).await
            }
            Event::Source(..) => {}
            Event::Reconnect => {
                if matches!(self.active, Some(Active::Push(_)) | None) {
                    self.connect();
                }
            }
            Event::MseFailed(m) => {
                self.recover_decode(&format!("media buffer error: {m}"))
                    .await
            }
            Event::Hung => self.recover_decode("playback stuck with media ahead").await,
            Event::MediaError => {
                let code = self.video.el.error().map_or(0, |e| e.code());
                self.recover_decode(&format!("media element error {code}"))
                    .await;
            }
            Event::VolumeChanged => self.video.volume_changed(),
            Event::PlayRefused => {
                if self.video.play_refused() {
                    self.set_status(Status::Paused);
                }
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

    /// A decode error or a hung pipeline (`why`, logged): rebuild within the budget.
    async fn recover_decode(&mut self, why: &str) {
        log(&format!("{why}: rebuilding the player"));
        if !self.recovery.may_rebuild(js_sys::Date::now()) {
            return self.fatal("the stream cannot be decoded".into());
        }
        self.rebuild().await;
    }

    /// Every [`REPORT_TICKS`] while playing over the push, tells the server how far
    /// behind live the player is (for the broadcaster console).
    fn report_latency(&mut self) {
        self.ticks += 1;
        if self.ticks < REPORT_TICKS || self.video.el.paused() {
            return;
        }
        self.ticks = 0;
        if let (Some(Active::Push(p)), Some(l)) = (&self.active, self.playback.latency) {
            p.report_latency(l);
        }
    }

    async fn source_event(&mut self, e: SourceEvent) {
        let on_hls = matches!(self.active, Some(Active::Hls(_)));
        let Some(e) = self.playback.absorb(e, self.mse.as_ref(), on_hls) else {
            return;
        };
        match e {
            SourceEvent::Init(data) => match self.mse.as_mut().map(|m| m.append_init(data)) {
                Some(Ok(info)) => self.init = Some(info),
                Some(Err(m)) => self.fatal(m),
                None => {}
            },
            SourceEvent::Media(data) => {
                if matches!(self.active, Some(Active::Push(_))) {
                    self.recovery.push_delivered();
                }
                self.source_up = true;
                if let (Some(mse), Some(_)) = (&self.mse, &self.init) {
                    mse.append(data);
                }
            }
            SourceEvent::Tracks(mimes) => {
                if let Some(Err(m)) = self.mse.as_mut().map(|m| m.set_tracks(&mimes)) {
                    self.fatal(m);
                }
            }
            SourceEvent::Track(n, data) => {
                self.source_up = true;
                if let Some(mse) = self.mse.as_ref().filter(|m| m.has_buffer()) {
                    mse.append_to(n, data);
                }
            }
            SourceEvent::Metadata(time, data) => {
                super::ts::announce_metadata(&self.video.el, time, &data)
            }
            SourceEvent::Up => {
                self.source_up = true;
                self.offline = false;
                self.show(recovery::status_on_up(&self.status));
            }
            SourceEvent::Offline => {
                self.offline = true;
                self.source_up = true;
                self.show(recovery::status_on_offline(&self.status));
            }
            SourceEvent::Down => {
                self.source_up = false;
                if matches!(self.active, Some(Active::Push(_))) {
                    let delay = self.recovery.push_down(js_sys::Math::random());
                    self.active = None;
                    let tx = self.tx.clone();
                    self.reconnect = Some(Timeout::new(delay as u32, move || {
                        let _ = tx.unbounded_send(Event::Reconnect);
                    }));
                }
                self.show(recovery::status_on_down(&self.status));
            }
            SourceEvent::Ended => {
                if let Some(mse) = &self.mse {
                    mse.end_of_stream();
                }
                let after = self.source().map(|k| Recovery::after_end(k, self.replay));
                if after != Some(AfterEnd::WatchForNext) {
                    // Nothing more will come: let go of the socket (no reconnection).
                    self.active = None;
                }
                self.reconnect = None;
                self.set_status(Status::Ended);
            }
            SourceEvent::NewBroadcast => {
                if matches!(self.status, Status::Ended) && !self.replay {
                    self.set_status(Status::Connecting);
                    self.rebuild().await;
                }
            }
            SourceEvent::Heights(h, chosen) => (self.on_heights)(h, chosen),
            SourceEvent::Warning(m) => log(&m),
            SourceEvent::Fatal(m) => self.fatal(m),
            SourceEvent::Unplayable(r) => self.stop(format!("cannot play: {r}"), Some(r)),
            // Taken by `Playback::absorb` above.
            SourceEvent::Edge(_)
            | SourceEvent::Policy(_)
            | SourceEvent::Vod { .. }
            | SourceEvent::VodComplete => {}
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The source and the MediaSource go first; then the video's glue (its Drop
        // pauses and lets go of the media).
        self.active = None;
        self.mse = None;
    }
}
