//! The only module that touches MediaSource, SourceBuffer and TimeRanges.
//!
//! One SourceBuffer for muxed audio+video fMP4, or one per track when the tracks come
//! apart (an MPEG-TS stream transmuxed by the TS module, demuxed audio): see
//! [`Mse::set_tracks`]. One queue of operations for all of them, one operation in
//! flight at a time across the buffers: the next starts on `updateend`. Tracks stay in
//! step because their appends are queued in the order the source sent them, and what
//! the player sees as buffered is where every track has media (`tracks::intersect`).
//! A new init segment mid-stream (an ABR switch) is queued like media; when its codecs
//! differ from the SourceBuffer's (another H.264 level, say), `changeType` goes before
//! it in the queue. A `QuotaExceededError` evicts media behind the playhead and retries
//! the same append. Dropping [`Mse`] detaches the MediaSource from the video and frees it.
//!
//! Safari's ManagedMediaSource is preferred where it exists: the browser then says when
//! it wants media (`startstreaming` / `endstreaming`, read by loaders through
//! [`Mse::wanted`]). Which flavour plays is written on the `<video>` as `data-backend`
//! (`managed-media-source` or `media-source`; the engine writes `native-hls`).

use super::buffer::Range;
use super::events::{Event, Tx};
use super::mp4::InitInfo;
use gloo_events::EventListener;
use js_sys::Uint8Array;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use web_sys::{HtmlVideoElement, MediaSource, MediaSourceReadyState, SourceBuffer, Url};

/// MSE failures worth telling the engine about.
#[derive(Debug, Clone, PartialEq)]
pub enum MseError {
    /// MediaSource is missing in this browser.
    Unsupported,
    /// The browser cannot play this codec combination.
    Codec(String),
    /// A call failed; the message is the browser's.
    Failed(String),
}

impl std::fmt::Display for MseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MseError::Unsupported => f.write_str("this browser has no MediaSource"),
            MseError::Codec(m) => write!(f, "this browser cannot play {m}"),
            MseError::Failed(m) => f.write_str(m),
        }
    }
}

/// A queued operation; the `usize` is the SourceBuffer's index (its track).
enum Op {
    Append(usize, Uint8Array),
    Remove(usize, f64, f64),
    /// `SourceBuffer.timestampOffset` (only settable between appends).
    Offset(usize, f64),
    /// `MediaSource.duration` (only settable while nothing is updating).
    Duration(f64),
    /// `SourceBuffer.changeType`: the init segments that follow have other codecs.
    ChangeType(usize, String),
}

struct Queue {
    /// One per track, in the order the source declared them (one for muxed media).
    sbs: Vec<SourceBuffer>,
    media_source: MediaSource,
    ops: VecDeque<Op>,
    video: HtmlVideoElement,
    tx: Tx,
    /// Consecutive quota evictions; reset by a successful append.
    quota_retries: u32,
}

/// A MediaSource attached to a video element.
pub struct Mse {
    media_source: MediaSource,
    url: String,
    video: HtmlVideoElement,
    queue: Rc<RefCell<Queue>>,
    /// The type each SourceBuffer was created or last changed to.
    mimes: Vec<String>,
    listeners: Vec<EventListener>,
    /// The `<source>` children added for a ManagedMediaSource with an HLS alternative;
    /// removed on drop.
    source_elements: Vec<web_sys::Element>,
    /// False between the browser's `endstreaming` and `startstreaming` (ManagedMediaSource
    /// only): the browser has enough media and loaders should not fetch more.
    wanted: Rc<Cell<bool>>,
}

/// `new window[name]()`, if the browser has that constructor.
fn construct(name: &str) -> Option<MediaSource> {
    let ctor = js_sys::Reflect::get(&js_sys::global(), &name.into()).ok()?;
    let ctor = ctor.dyn_into::<js_sys::Function>().ok()?;
    let ms = js_sys::Reflect::construct(&ctor, &js_sys::Array::new()).ok()?;
    Some(ms.unchecked_into())
}

/// True if this browser has any MediaSource flavour.
pub fn supported() -> bool {
    ["ManagedMediaSource", "MediaSource"]
        .iter()
        .any(|n| js_sys::Reflect::has(&js_sys::global(), &(*n).into()).unwrap_or(false))
}

fn message(e: &wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<web_sys::DomException>()
        .map(|d| format!("{}: {}", d.name(), d.message()))
        .unwrap_or_else(|| super::fetch::js_message(e))
}

impl Mse {
    /// Creates a MediaSource, attaches it to `video` and waits for `sourceopen`.
    /// `hls` is the same stream as an HLS playlist, if there is one: with a
    /// ManagedMediaSource it becomes the AirPlay alternative.
    pub async fn open(
        video: &HtmlVideoElement,
        tx: Tx,
        hls: Option<&str>,
    ) -> Result<Mse, MseError> {
        // Safari's ManagedMediaSource first where it exists (iOS has nothing else and it
        // lets the browser save power).
        let (media_source, managed) = match construct("ManagedMediaSource") {
            Some(m) => (m, true),
            None => (
                construct("MediaSource").ok_or(MseError::Unsupported)?,
                false,
            ),
        };
        let url = Url::create_object_url_with_source(&media_source)
            .map_err(|e| MseError::Failed(message(&e)))?;
        // The engine's channel, not a futures oneshot: one channel type in the download.
        let (open_tx, mut open_rx) = super::channel::unbounded::<()>();
        let opened = EventListener::once(&media_source, "sourceopen", move |_| {
            let _ = open_tx.unbounded_send(());
        });
        let wanted = Rc::new(Cell::new(true));
        let mut listeners = Vec::new();
        let mut source_elements = Vec::new();
        if managed {
            for (name, value) in [("startstreaming", true), ("endstreaming", false)] {
                let wanted = wanted.clone();
                listeners.push(EventListener::new(&media_source, name, move |_| {
                    wanted.set(value)
                }));
            }
            // A ManagedMediaSource only opens if AirPlay can play something else: an
            // AirPlay receiver cannot be fed from MSE. Apple's pattern is a second
            // <source> with the stream as HLS; without one, remote playback is disabled.
            match hls.and_then(|hls| airplay_sources(video, &url, hls)) {
                Some(elements) => source_elements = elements,
                None => {
                    let _ =
                        js_sys::Reflect::set(video, &"disableRemotePlayback".into(), &true.into());
                    video.set_src(&url);
                }
            }
        } else {
            video.set_src(&url);
        }
        let backend = if managed {
            "managed-media-source"
        } else {
            "media-source"
        };
        let _ = video.set_attribute("data-backend", backend);
        let _ = open_rx.next().await;
        drop(opened);
        if managed {
            // Listeners were in place before `sourceopen`; this is the state now.
            let streaming = js_sys::Reflect::get(&media_source, &"streaming".into())
                .map_or(true, |s| s.is_truthy());
            wanted.set(streaming);
        }
        Ok(Mse {
            queue: Rc::new(RefCell::new(Queue {
                sbs: Vec::new(),
                media_source: media_source.clone(),
                ops: VecDeque::new(),
                video: video.clone(),
                tx,
                quota_retries: 0,
            })),
            media_source,
            url,
            mimes: Vec::new(),
            video: video.clone(),
            listeners,
            source_elements,
            wanted,
        })
    }

    /// Whether the browser wants more media now (always true for a plain MediaSource).
    /// Shared, so a loader can check it before each fetch.
    pub fn wanted(&self) -> Rc<Cell<bool>> {
        self.wanted.clone()
    }

    /// True once a SourceBuffer exists.
    pub fn has_buffer(&self) -> bool {
        !self.queue.borrow().sbs.is_empty()
    }

    /// Declares the stream's tracks, one SourceBuffer each, by type (`video/mp4;
    /// codecs="..."`, `audio/mp4; ...`), before any of their media: the first call
    /// creates them all at once (browsers refuse a new SourceBuffer once media was
    /// appended; Chromium throws `QuotaExceededError`); a later one changes the type
    /// of those whose type changed. The error is for the viewer.
    pub fn set_tracks(&mut self, mimes: &[String]) -> Result<(), String> {
        if !self.has_buffer() {
            for mime in mimes {
                self.add_source_buffer(mime).map_err(cannot_play)?;
            }
            return Ok(());
        }
        if mimes.len() != self.mimes.len() {
            return Err(format!(
                "the stream's tracks changed from {} to {} mid-stream",
                self.mimes.len(),
                mimes.len()
            ));
        }
        for (i, mime) in mimes.iter().enumerate() {
            if *mime != self.mimes[i] {
                self.push(Op::ChangeType(i, mime.clone()));
                self.mimes[i] = mime.clone();
            }
        }
        Ok(())
    }

    /// Queues an append (init segment or media) to track `track` of [`Mse::set_tracks`].
    pub fn append_to(&self, track: usize, data: Uint8Array) {
        self.push(Op::Append(track, data));
    }

    fn push(&self, op: Op) {
        self.queue.borrow_mut().ops.push_back(op);
        pump(&self.queue);
    }

    /// Creates one more SourceBuffer, for `mime`.
    fn add_source_buffer(&mut self, mime: &str) -> Result<(), MseError> {
        if !type_supported(mime) {
            return Err(MseError::Codec(mime.to_owned()));
        }
        let sb = self
            .media_source
            .add_source_buffer(mime)
            .map_err(|e| MseError::Failed(message(&e)))?;
        let queue = self.queue.clone();
        self.listeners
            .push(EventListener::new(&sb, "updateend", move |_| {
                pump(&queue);
                let q = queue.borrow();
                if q.ops.is_empty() {
                    // Lets the engine start playback the moment media is in, not a tick later.
                    let _ = q.tx.unbounded_send(Event::Buffered);
                }
            }));
        let tx = self.queue.borrow().tx.clone();
        self.listeners
            .push(EventListener::new(&sb, "error", move |_| {
                let _ = tx.unbounded_send(Event::MseFailed("SourceBuffer error".into()));
            }));
        self.queue.borrow_mut().sbs.push(sb);
        self.mimes.push(mime.to_owned());
        pump(&self.queue);
        Ok(())
    }

    /// Appends an init segment, creating the SourceBuffer for its codecs on the first.
    /// The error is for the viewer (the stream cannot play here).
    pub fn append_init(&mut self, data: Uint8Array) -> Result<InitInfo, String> {
        let info = super::mp4::parse_init(&data.to_vec())
            .ok_or("the stream's init segment is not a supported fMP4 header")?;
        let mime = info.mime();
        self.set_tracks(std::slice::from_ref(&mime))?;
        self.append(data);
        Ok(info)
    }

    /// Queues an append to the first (for muxed media, the only) SourceBuffer.
    pub fn append(&self, data: Uint8Array) {
        self.append_to(0, data);
    }

    /// Queues a timestamp offset for the media appended after it, on every track.
    pub fn set_timestamp_offset(&self, offset: f64) {
        for i in 0..self.mimes.len() {
            self.push(Op::Offset(i, offset));
        }
    }

    /// Queues setting the presentation's duration (a replay's length).
    pub fn set_duration(&self, duration: f64) {
        self.push(Op::Duration(duration));
    }

    /// Queues the removal of `[start, end)` from every track.
    pub fn remove(&self, start: f64, end: f64) {
        if end > start {
            for i in 0..self.mimes.len() {
                self.push(Op::Remove(i, start, end));
            }
        }
    }

    /// Operations not yet finished.
    pub fn pending(&self) -> usize {
        let q = self.queue.borrow();
        q.ops.len() + usize::from(q.sbs.iter().any(SourceBuffer::updating))
    }

    /// Buffered ranges as plain data: where every track has media.
    pub fn buffered(&self) -> Vec<Range> {
        let q = self.queue.borrow();
        let tracks: Vec<Vec<Range>> = q.sbs.iter().map(ranges).collect();
        super::tracks::intersect(&tracks)
    }

    /// Signals the end of the stream (a broadcast that ended).
    pub fn end_of_stream(&self) {
        if self.media_source.ready_state() == MediaSourceReadyState::Open && self.pending() == 0 {
            let _ = self.media_source.end_of_stream();
        }
    }
}

/// Attaches `url` (a ManagedMediaSource) and `hls` as two `<source>` children of
/// `video`, in that order: the browser plays the first, AirPlay the second.
fn airplay_sources(
    video: &HtmlVideoElement,
    url: &str,
    hls: &str,
) -> Option<Vec<web_sys::Element>> {
    let doc = video.owner_document()?;
    let mut elements = Vec::new();
    for (src, kind) in [(url, "video/mp4"), (hls, "application/x-mpegURL")] {
        let el = doc.create_element("source").ok()?;
        el.set_attribute("type", kind).ok()?;
        el.set_attribute("src", src).ok()?;
        elements.push(el);
    }
    let _ = video.remove_attribute("src");
    for el in &elements {
        video.append_child(el).ok()?;
    }
    // Runs the resource selection over the new children now.
    video.load();
    Some(elements)
}

/// A SourceBuffer's `buffered` as plain data.
fn ranges(sb: &SourceBuffer) -> Vec<Range> {
    let Ok(ranges) = sb.buffered() else {
        return Vec::new();
    };
    (0..ranges.length())
        .filter_map(|i| {
            Some(Range {
                start: ranges.start(i).ok()?,
                end: ranges.end(i).ok()?,
            })
        })
        .collect()
}

/// The `cannot play` sentence for the viewer.
fn cannot_play(e: MseError) -> String {
    match e {
        MseError::Codec(m) => format!("this browser cannot play this stream ({m})"),
        other => other.to_string(),
    }
}

/// Starts the next queued operation if none is running on any SourceBuffer.
fn pump(queue: &Rc<RefCell<Queue>>) {
    let mut q = queue.borrow_mut();
    if q.sbs.is_empty() {
        return;
    }
    while !q.sbs.iter().any(SourceBuffer::updating) {
        let Some(op) = q.ops.pop_front() else { return };
        let track = match &op {
            Op::Append(i, _) | Op::Remove(i, ..) | Op::Offset(i, _) | Op::ChangeType(i, _) => *i,
            Op::Duration(_) => 0,
        };
        // An operation for a track the stream does not have is dropped.
        let Some(sb) = q.sbs.get(track).cloned() else {
            continue;
        };
        let result = match &op {
            Op::Append(_, data) => sb.append_buffer_with_array_buffer_view(data),
            Op::Remove(_, s, e) => sb.remove(*s, *e),
            // Through Reflect: these setters throw on a bad state, and an exception
            // must not cross the wasm boundary.
            Op::Offset(_, o) => {
                let _ = js_sys::Reflect::set(&sb, &"timestampOffset".into(), &(*o).into());
                continue;
            }
            Op::Duration(d) => {
                let _ = js_sys::Reflect::set(&q.media_source, &"duration".into(), &(*d).into());
                continue;
            }
            // Where it is missing (before Chrome 70, Firefox 63, Safari 14.1) the append
            // is tried anyway: a level change alone plays without it.
            Op::ChangeType(_, m) => {
                let _ = sb.change_type(m);
                continue;
            }
        };
        match result {
            Ok(()) => {
                if matches!(op, Op::Append(..)) {
                    q.quota_retries = 0;
                }
                return;
            }
            Err(e) if is_quota(&e) && q.quota_retries < 3 => {
                // Free what lies behind the playhead, then try the same append again.
                q.quota_retries += 1;
                let pos = q.video.current_time();
                let start = ranges(&sb).first().map_or(0.0, |r| r.start);
                let keep = 10.0 / f64::from(q.quota_retries);
                q.ops.push_front(op);
                if pos - keep > start {
                    for i in 0..q.sbs.len() {
                        q.ops.push_front(Op::Remove(i, start, pos - keep));
                    }
                }
            }
            Err(e) => {
                let _ = q.tx.unbounded_send(Event::MseFailed(message(&e)));
                return;
            }
        }
    }
}

/// `isTypeSupported` on whichever MediaSource flavour exists.
pub fn type_supported(mime: &str) -> bool {
    let global = js_sys::global();
    ["ManagedMediaSource", "MediaSource"].iter().any(|n| {
        js_sys::Reflect::get(&global, &(*n).into())
            .ok()
            .and_then(|c| {
                js_sys::Reflect::get(&c, &"isTypeSupported".into())
                    .ok()
                    .map(|f| (c, f))
            })
            .and_then(|(c, f)| f.dyn_into::<js_sys::Function>().ok().map(|f| (c, f)))
            .and_then(|(c, f)| f.call1(&c, &mime.into()).ok())
            .is_some_and(|r| r.is_truthy())
    })
}

fn is_quota(e: &wasm_bindgen::JsValue) -> bool {
    e.dyn_ref::<web_sys::DomException>()
        .is_some_and(|d| d.name() == "QuotaExceededError")
}

impl Drop for Mse {
    fn drop(&mut self) {
        self.listeners.clear();
        self.queue.borrow_mut().ops.clear();
        for sb in std::mem::take(&mut self.queue.borrow_mut().sbs) {
            if self.media_source.ready_state() == MediaSourceReadyState::Open {
                let _ = sb.abort();
            }
        }
        for el in self.source_elements.drain(..) {
            el.remove();
        }
        let _ = self.video.remove_attribute("src");
        self.video.load();
        let _ = Url::revoke_object_url(&self.url);
    }
}
