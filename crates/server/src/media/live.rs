//! A live stream as the origin publishes it: the init segment, a sliding window of
//! complete segments for HLS, the segment being built, its chunks as LL-HLS parts, and a
//! broadcast of every chunk for the low-latency push.
//!
//! Sources (the demo loop, RTMP ingest) call [`LiveStream::push_chunk`]; the HTTP layer
//! reads playlists, segments and parts, subscribes WebSockets, and holds LL-HLS blocking
//! requests with [`LiveStream::blocking_playlist`] and [`LiveStream::next_part`]. What a
//! playlist says and when a blocked request may be answered is [`playlist`]'s (pure);
//! this module keeps the state and does the waiting.
//!
//! A part is a chunk: the open segment keeps its chunks (the push backlog needs them),
//! a complete segment keeps one `Bytes` (its chunks concatenated) and where each part
//! starts in it, so a part of a complete segment is a slice of the segment's bytes and
//! costs no copy.
//!
//! # Waiting
//! Every chunk publishes the stream's [`Edge`] on a `watch` channel; a blocked request
//! waits on it for its own condition, with a deadline the caller gives, and is also
//! released when the stream finishes. No polling, no per-request timer task. Waiters
//! are bounded by the server's connection cap (one request per connection).
//!
//! The state lock is a `std` mutex held only for short, non-async sections. The edge is
//! published while holding it, so edges are seen in order; a waiter never holds the
//! `watch` value while taking the state lock.

use super::playlist::{self, Directives, Edge, Listed, PartInfo, Reload, Window};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// A packaged piece of a stream, as any source (the demo loop, RTMP ingest) hands it to
/// [`LiveStream::push_chunk`].
#[derive(Debug, Clone)]
pub struct PackagedChunk {
    /// `moof` + `mdat`.
    pub bytes: Bytes,
    /// True when the chunk starts with a video keyframe and so opens a new segment.
    pub starts_segment: bool,
    /// Media sequence number of the segment this chunk belongs to.
    pub segment_msn: u64,
    /// Start of the chunk, unix seconds (= media time for this source).
    pub start: f64,
    /// Duration of the chunk's video, seconds.
    pub duration: f64,
}

/// How many chunks a slow low-latency subscriber may fall behind before it is resynced.
const PUSH_QUEUE: usize = 256;

/// A chunk as pushed to low-latency subscribers.
#[derive(Debug)]
pub struct Chunk {
    /// Increasing number, to de-duplicate a backlog snapshot against the live feed.
    pub seq: u64,
    /// Starts with a keyframe: a subscriber that lost data may resume here.
    pub independent: bool,
    /// `moof` + `mdat`.
    pub bytes: Bytes,
    /// Where it sits in the playlist: media sequence number of its segment, and its
    /// part number in it (an edge relays both, see [`super::relay`]).
    pub msn: u64,
    /// Part number within the segment (0 is the keyframe).
    pub part: u32,
    /// Start, unix seconds (media time).
    pub start: f64,
    /// Seconds.
    pub duration: f64,
}

/// A complete HLS segment.
#[derive(Debug)]
struct Segment {
    /// Media sequence number; also its file name.
    msn: u64,
    /// Push sequence number of its first part (its parts follow): a relay backlog
    /// rebuilt from the segment de-duplicates against the live feed like any chunk.
    first_seq: u64,
    /// Wall-clock time of its first frame, unix seconds (EXT-X-PROGRAM-DATE-TIME).
    start: f64,
    /// Seconds (EXTINF).
    duration: f64,
    /// All its chunks, concatenated.
    bytes: Bytes,
    /// Its parts, in order.
    parts: Vec<PartInfo>,
    /// Where each part starts in `bytes` (parts are served as slices of it).
    offsets: Vec<usize>,
}

impl Segment {
    fn part(&self, i: usize) -> Option<Bytes> {
        let from = *self.offsets.get(i)?;
        let to = self.offsets.get(i + 1).copied().unwrap_or(self.bytes.len());
        Some(self.bytes.slice(from..to))
    }

    fn listed(&self) -> Listed<'_> {
        Listed {
            msn: self.msn,
            start: self.start,
            duration: self.duration,
            parts: &self.parts,
        }
    }

    /// Its parts as the chunks they were (slices of its bytes, no copy).
    fn chunks(&self) -> impl Iterator<Item = Arc<Chunk>> + '_ {
        let mut start = self.start;
        self.parts.iter().enumerate().filter_map(move |(i, p)| {
            let c = Chunk {
                seq: self.first_seq + i as u64,
                independent: p.independent,
                bytes: self.part(i)?,
                msn: self.msn,
                part: u32::try_from(i).ok()?,
                start,
                duration: p.duration,
            };
            start += p.duration;
            Some(Arc::new(c))
        })
    }
}

/// What a new low-latency subscriber receives before the live feed.
#[derive(Debug)]
pub struct Subscription {
    /// The init segment.
    pub init: Bytes,
    /// Chunks of the current segment so far, starting with its keyframe.
    pub backlog: Vec<Arc<Chunk>>,
    /// Every chunk after the backlog.
    pub live: broadcast::Receiver<Arc<Chunk>>,
}

#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    start: f64,
    duration: f64,
    chunks: Vec<Arc<Chunk>>,
    /// One per chunk.
    parts: Vec<PartInfo>,
}

impl OpenSegment {
    fn close(self) -> Segment {
        let mut bytes = BytesMut::with_capacity(self.chunks.iter().map(|c| c.bytes.len()).sum());
        let mut offsets = Vec::with_capacity(self.chunks.len());
        for c in &self.chunks {
            offsets.push(bytes.len());
            bytes.extend_from_slice(&c.bytes);
        }
        Segment {
            msn: self.msn,
            first_seq: self.chunks.first().map_or(0, |c| c.seq),
            start: self.start,
            duration: self.duration,
            bytes: bytes.freeze(),
            parts: self.parts,
            offsets,
        }
    }

    fn listed(&self) -> Listed<'_> {
        Listed {
            msn: self.msn,
            start: self.start,
            duration: self.duration,
            parts: &self.parts,
        }
    }
}

#[derive(Debug)]
struct State {
    init: Bytes,
    /// Oldest first. Holds `2 × window` so a segment listed in a playlist a client
    /// fetched just before a slide is still there when it asks for it.
    complete: VecDeque<Segment>,
    open: Option<OpenSegment>,
    next_seq: u64,
    /// The longest chunk so far, seconds: `PART-TARGET` follows it.
    longest_part: f64,
    /// The playlist as last rendered, and the `next_seq` it was rendered at: every
    /// request blocked on one part wakes at once and shares one rendering.
    rendered: Option<(u64, Bytes)>,
}

impl State {
    fn edge(&self) -> Edge {
        let last = self.complete.back();
        let last_part = match &self.open {
            Some(o) => (o.parts.len() as u64).checked_sub(1).map(|i| (o.msn, i)),
            None => last.and_then(|s| (s.parts.len() as u64).checked_sub(1).map(|i| (s.msn, i))),
        };
        Edge {
            last_segment: last.map(|s| s.msn),
            last_part,
            parts_per_segment: last.map_or(0, |s| s.parts.len() as u64),
            part_target: playlist::part_target(self.longest_part),
        }
    }
}

/// Why a blocked request ends without what it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    /// Asked for more than the stream will have soon (answer 400; see
    /// [`Reload::TooFar`]).
    #[error("asked too far ahead of the live edge")]
    TooFar,
    /// The stream did not get there within the deadline (answer 503).
    #[error("the stream did not advance in time")]
    TimedOut,
    /// No such part, and it will not come (answer 404).
    #[error("no such part")]
    NotFound,
}

/// One live stream.
#[derive(Debug)]
pub struct LiveStream {
    /// Stream id, as in `/live/{id}/...`.
    pub id: String,
    /// Segments listed in the playlist.
    window: usize,
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Chunk>>,
    /// How far the stream has got; blocked requests wait on it.
    edge: watch::Sender<Edge>,
    /// URI of the init segment in playlists (versioned when a source's codec
    /// configuration changes, so players fetch the new one).
    init_uri: String,
    /// Set once the source is gone for good.
    done: watch::Sender<bool>,
    /// The lower renditions the ladder makes of this stream (see
    /// [`super::ladder`]), by height, highest first. Empty without a ladder.
    renditions: Mutex<Vec<(u32, Arc<LiveStream>)>>,
}

impl LiveStream {
    /// A stream whose tracks are described by `init`.
    pub fn new(id: impl Into<String>, init: Bytes, window: usize) -> LiveStream {
        LiveStream::with_init_uri(id, init, window, "init.mp4")
    }

    /// Like [`LiveStream::new`], with the init segment listed as `init_uri`.
    pub fn with_init_uri(
        id: impl Into<String>,
        init: Bytes,
        window: usize,
        init_uri: &str,
    ) -> LiveStream {
        LiveStream {
            id: id.into(),
            window: window.max(3),
            state: Mutex::new(State {
                init,
                complete: VecDeque::new(),
                open: None,
                next_seq: 0,
                longest_part: 0.0,
                rendered: None,
            }),
            tx: broadcast::channel(PUSH_QUEUE).0,
            edge: watch::channel(Edge::default()).0,
            init_uri: init_uri.to_owned(),
            done: watch::channel(false).0,
            renditions: Mutex::new(Vec::new()),
        }
    }

    /// Marks the stream as over: low-latency subscribers and blocked requests are let go.
    pub fn finish(&self) {
        self.done.send_replace(true);
        self.clear_renditions();
    }

    /// Makes `stream` this stream's rendition of `height`, replacing (and finishing)
    /// an earlier one.
    pub fn set_rendition(&self, height: u32, stream: Arc<LiveStream>) {
        let mut r = self.renditions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = r.iter().position(|(h, _)| *h == height) {
            r.remove(i).1.finish();
        }
        r.push((height, stream));
        r.sort_by_key(|(h, _)| std::cmp::Reverse(*h));
    }

    /// Forgets (and finishes) every rendition: the ladder stopped.
    pub fn clear_renditions(&self) {
        let gone = std::mem::take(&mut *self.renditions.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, s) in gone {
            s.finish();
        }
    }

    /// The rendition of `height`, if the ladder makes it now.
    pub fn rendition(&self, height: u32) -> Option<Arc<LiveStream>> {
        let r = self.renditions.lock().unwrap_or_else(|e| e.into_inner());
        r.iter().find(|(h, _)| *h == height).map(|(_, s)| s.clone())
    }

    /// The renditions, highest first.
    pub fn renditions(&self) -> Vec<(u32, Arc<LiveStream>)> {
        self.renditions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The highest bitrate of the complete segments held, bits per second (a
    /// multivariant playlist's `BANDWIDTH`); `None` before the first segment is complete.
    pub fn peak_bitrate(&self) -> Option<u64> {
        let st = self.lock();
        st.complete
            .iter()
            .filter(|s| s.duration > 0.0)
            .map(|s| (s.bytes.len() as f64 * 8.0 / s.duration) as u64)
            .max()
    }

    /// Resolves once [`LiveStream::finish`] was called.
    pub async fn finished(&self) {
        let mut rx = self.done.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|d| *d).await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-written in a way
        // that matters more than stopping the stream would, so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a chunk from the source. A chunk that does not start a segment while none
    /// is open (a source starting mid-GOP) is dropped: nothing could decode it.
    pub fn push_chunk(&self, chunk: PackagedChunk) {
        let mut st = self.lock();
        if chunk.starts_segment {
            if let Some(open) = st.open.take() {
                st.complete.push_back(open.close());
                while st.complete.len() > 2 * self.window {
                    st.complete.pop_front();
                }
            }
            st.open = Some(OpenSegment {
                msn: chunk.segment_msn,
                start: chunk.start,
                duration: 0.0,
                chunks: Vec::new(),
                parts: Vec::new(),
            });
        }
        let seq = st.next_seq;
        let Some(open) = st.open.as_mut() else {
            return;
        };
        let c = Arc::new(Chunk {
            seq,
            independent: chunk.starts_segment,
            bytes: chunk.bytes,
            msn: open.msn,
            part: u32::try_from(open.chunks.len()).unwrap_or(u32::MAX),
            start: chunk.start,
            duration: chunk.duration,
        });
        open.duration = chunk.start + chunk.duration - open.start;
        open.chunks.push(c.clone());
        open.parts.push(PartInfo {
            duration: chunk.duration,
            independent: chunk.starts_segment,
        });
        st.next_seq += 1;
        if chunk.duration > st.longest_part {
            if st.longest_part > 0.0 {
                tracing::debug!(stream = %self.id, "a chunk of {:.3} s raises PART-TARGET", chunk.duration);
            }
            st.longest_part = chunk.duration;
        }
        self.edge.send_replace(st.edge());
        drop(st);
        // No receivers is normal; the chunk stays in the segment for HLS.
        let _ = self.tx.send(c);
    }

    /// The init segment.
    pub fn init(&self) -> Bytes {
        self.lock().init.clone()
    }

    /// A complete segment still held by the origin.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        let st = self.lock();
        st.complete
            .iter()
            .find(|s| s.msn == msn)
            .map(|s| s.bytes.clone())
    }

    /// Part `part` of segment `msn`, if it exists and is still held.
    pub fn part(&self, msn: u64, part: u64) -> Option<Bytes> {
        let i = usize::try_from(part).ok()?;
        let st = self.lock();
        if let Some(open) = st.open.as_ref().filter(|o| o.msn == msn) {
            return open.chunks.get(i).map(|c| c.bytes.clone());
        }
        st.complete.iter().find(|s| s.msn == msn)?.part(i)
    }

    /// Subscribes to the low-latency feed, atomically with a snapshot of the current
    /// segment so nothing is missed or sent twice.
    pub fn subscribe(&self) -> Subscription {
        let st = self.lock();
        Subscription {
            init: st.init.clone(),
            backlog: st
                .open
                .as_ref()
                .map(|o| o.chunks.clone())
                .unwrap_or_default(),
            live: self.tx.subscribe(),
        }
    }

    /// Like [`LiveStream::subscribe`], with the playlist window's complete segments
    /// (every part) before the current one in the backlog: an edge relaying the stream
    /// starts with the same playlist as here (see [`super::relay`]).
    pub fn subscribe_with_window(&self) -> Subscription {
        let st = self.lock();
        let skip = st.complete.len().saturating_sub(self.window);
        let mut backlog: Vec<Arc<Chunk>> = st
            .complete
            .iter()
            .skip(skip)
            .flat_map(Segment::chunks)
            .collect();
        if let Some(o) = &st.open {
            backlog.extend(o.chunks.iter().cloned());
        }
        Subscription {
            init: st.init.clone(),
            backlog,
            live: self.tx.subscribe(),
        }
    }

    /// Segments listed in the playlist.
    pub fn window(&self) -> usize {
        self.window
    }

    /// URI of the init segment in the playlist (`init.mp4`, or versioned).
    pub fn init_uri(&self) -> &str {
        &self.init_uri
    }

    /// Open low-latency subscriptions (push sockets, edge relays).
    pub fn push_subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Whether [`LiveStream::finish`] was called.
    pub fn is_finished(&self) -> bool {
        *self.done.borrow()
    }

    /// The HLS media playlist: the last `window` complete segments, with LL-HLS parts
    /// for the newest of them and for the segment being built.
    pub fn playlist(&self) -> Bytes {
        let mut st = self.lock();
        if let Some((seq, text)) = &st.rendered {
            if *seq == st.next_seq {
                return text.clone();
            }
        }
        let skip = st.complete.len().saturating_sub(self.window);
        let segments: Vec<Listed<'_>> =
            st.complete.iter().skip(skip).map(Segment::listed).collect();
        let text = Bytes::from(playlist::render(&Window {
            init_uri: &self.init_uri,
            segments: &segments,
            open: st.open.as_ref().map(OpenSegment::listed),
            part_target: playlist::part_target(st.longest_part),
        }));
        drop(segments);
        st.rendered = Some((st.next_seq, text.clone()));
        text
    }

    /// How long a blocked request may be held: three target durations (§6.2.5.2 of the
    /// HLS spec: a server that cannot answer within that SHOULD say 503).
    pub fn block_limit(&self) -> Duration {
        let st = self.lock();
        let skip = st.complete.len().saturating_sub(self.window);
        let segments: Vec<Listed<'_>> =
            st.complete.iter().skip(skip).map(Segment::listed).collect();
        Duration::from_secs(3 * playlist::target_duration(&segments))
    }

    /// The playlist once it satisfies `want` (an LL-HLS blocking reload), waiting at
    /// most `limit`. A stream that finishes meanwhile answers with what it has.
    pub async fn blocking_playlist(
        &self,
        want: Directives,
        limit: Duration,
    ) -> Result<Bytes, Blocked> {
        let mut rx = self.edge.subscribe();
        let now = rx.borrow_and_update().reload(want);
        match now {
            Reload::Ready => return Ok(self.playlist()),
            Reload::TooFar => return Err(Blocked::TooFar),
            Reload::Wait => {}
        }
        if self.wait(&mut rx, want, limit).await {
            Ok(self.playlist())
        } else {
            Err(Blocked::TimedOut)
        }
    }

    /// Part `part` of segment `msn`: at once if it exists; if it is the part expected
    /// next (the preload hint), once it does, waiting at most `limit`. A hint that
    /// turned out wrong (the segment ended first) is [`Blocked::NotFound`].
    pub async fn next_part(&self, msn: u64, part: u64, limit: Duration) -> Result<Bytes, Blocked> {
        // Edge first, then the lookup: a part that appears in between is found by the
        // lookup, and an edge read earlier can only make us wait for what is there.
        let mut rx = self.edge.subscribe();
        let edge = *rx.borrow_and_update();
        if let Some(bytes) = self.part(msn, part) {
            return Ok(bytes);
        }
        if !edge.may_come_next(msn, part) {
            return Err(Blocked::NotFound);
        }
        let want = Directives {
            msn,
            part: Some(part),
        };
        if !self.wait(&mut rx, want, limit).await {
            return Err(Blocked::TimedOut);
        }
        self.part(msn, part).ok_or(Blocked::NotFound)
    }

    /// Waits until the edge satisfies `want` or the stream finishes (true), or `limit`
    /// passes (false).
    async fn wait(
        &self,
        rx: &mut watch::Receiver<Edge>,
        want: Directives,
        limit: Duration,
    ) -> bool {
        let reached = async {
            // The `Ref` is dropped at once: it holds the watch's lock, which a source
            // takes while holding the state lock.
            // An error means the sender is gone, which cannot happen while `self` lives.
            let _ = rx.wait_for(|e| e.satisfies(want)).await.is_ok();
        };
        let done = async {
            tokio::select! {
                () = reached => {}
                () = self.finished() => {}
            }
        };
        tokio::time::timeout(limit, done).await.is_ok()
    }

    /// What the source has produced lately, for `/metrics` (bitrate, keyframe interval,
    /// production lag): a copy of a few numbers taken under the lock.
    pub fn production(&self) -> Production {
        let st = self.lock();
        let skip = st.complete.len().saturating_sub(self.window);
        Production {
            segments: st
                .complete
                .iter()
                .skip(skip)
                .map(|s| Produced {
                    start: s.start,
                    duration: s.duration,
                    bytes: s.bytes.len(),
                })
                .collect(),
            newest_chunk_end: st.open.as_ref().map(|o| o.start + o.duration),
        }
    }
}

/// See [`LiveStream::production`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Production {
    /// The complete segments of the playlist window, oldest first. Each opens at a
    /// keyframe and ends at the next one.
    pub segments: Vec<Produced>,
    /// Media time (unix seconds) at the end of the newest chunk; `None` before the first.
    pub newest_chunk_end: Option<f64>,
}

/// One complete segment, as [`Production`] reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Produced {
    /// Media time of its first frame, unix seconds.
    pub start: f64,
    /// Seconds.
    pub duration: f64,
    /// Its size (all its chunks).
    pub bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(start: f64, key: bool) -> PackagedChunk {
        PackagedChunk {
            bytes: Bytes::from(vec![key as u8; 4]),
            starts_segment: key,
            segment_msn: start as u64,
            start,
            duration: 0.5,
        }
    }

    fn feed(stream: &LiveStream, seconds: u64) {
        for s in 0..seconds {
            stream.push_chunk(chunk(100.0 + s as f64, true));
            stream.push_chunk(chunk(100.5 + s as f64, false));
        }
    }

    #[test]
    fn playlist_slides_and_dates_each_segment() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        feed(&stream, 6);
        let p = String::from_utf8(stream.playlist().to_vec()).unwrap();
        // Five complete segments (100..=104), the window shows the last three.
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:102\n"), "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:1\n"), "{p}");
        assert_eq!(p.matches("#EXTINF:1.00000,").count(), 3, "{p}");
        assert!(
            p.contains(
                "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:01:42.000Z\n#EXTINF:1.00000,\n102.m4s"
            ),
            "{p}"
        );
        assert!(
            !p.contains("105.m4s"),
            "the open segment is not listed: {p}"
        );
        assert!(!p.contains("DISCONTINUITY"));
    }

    #[test]
    fn segments_outlive_the_window_briefly_then_go() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        feed(&stream, 10);
        assert!(stream.segment(109).is_none(), "open segment");
        assert_eq!(
            stream.segment(108).unwrap().len(),
            8,
            "two chunks of four bytes"
        );
        assert!(stream.segment(103).is_some(), "kept for late readers");
        assert!(stream.segment(102).is_none(), "beyond twice the window");
    }

    #[test]
    fn subscriber_gets_current_gop_then_live_chunks_once() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        feed(&stream, 2);
        stream.push_chunk(chunk(102.0, true));
        let mut sub = stream.subscribe();
        assert_eq!(sub.backlog.len(), 1);
        assert!(sub.backlog[0].independent);
        stream.push_chunk(chunk(102.5, false));
        let next = sub.live.try_recv().unwrap();
        assert_eq!(next.seq, sub.backlog[0].seq + 1);
        assert!(sub.live.try_recv().is_err());
    }

    #[test]
    fn a_relay_subscription_starts_with_every_part_of_the_window_numbered() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        for msn in 50..56 {
            feed_segment(&stream, msn);
        }
        stream.push_chunk(packaged(56, 56.0, true, 0));
        stream.push_chunk(packaged(56, 56.1, false, 1));
        let sub = stream.subscribe_with_window();
        let placed: Vec<(u64, u32)> = sub.backlog.iter().map(|c| (c.msn, c.part)).collect();
        // The playlist's three complete segments (53, 54, 55), then the open one.
        let mut expected: Vec<(u64, u32)> = (53..56)
            .flat_map(|m| (0..10).map(move |p| (m, p)))
            .collect();
        expected.extend([(56, 0), (56, 1)]);
        assert_eq!(placed, expected);
        for c in &sub.backlog {
            assert_eq!(Some(c.bytes.clone()), stream.part(c.msn, u64::from(c.part)));
            assert!((c.start - (c.msn as f64 + f64::from(c.part) / 10.0)).abs() < 1e-9);
        }
        // Sequence numbers run on, so the live feed is de-duplicated against them.
        assert!(sub.backlog.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }

    #[test]
    fn chunks_before_the_first_keyframe_are_dropped() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        stream.push_chunk(chunk(99.5, false));
        assert!(stream.subscribe().backlog.is_empty());
    }

    fn packaged(msn: u64, start: f64, key: bool, byte: u8) -> PackagedChunk {
        PackagedChunk {
            bytes: Bytes::from(vec![byte; 3 + byte as usize]),
            starts_segment: key,
            segment_msn: msn,
            start,
            duration: 0.1,
        }
    }

    /// Segment `msn`: ten 0.1 s chunks, chunk `i` made of bytes `i`.
    fn feed_segment(stream: &LiveStream, msn: u64) {
        for i in 0..10u8 {
            stream.push_chunk(packaged(msn, msn as f64 + f64::from(i) / 10.0, i == 0, i));
        }
    }

    fn want(msn: u64, part: Option<u64>) -> Directives {
        Directives { msn, part }
    }

    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn parts_are_the_chunks_and_a_segment_is_their_concatenation() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        feed_segment(&stream, 50);
        feed_segment(&stream, 51);
        stream.push_chunk(packaged(52, 52.0, true, 7));
        let segment = stream.segment(50).unwrap();
        let parts: Vec<Bytes> = (0..10).map(|i| stream.part(50, i).unwrap()).collect();
        assert_eq!(parts[3], Bytes::from(vec![3u8; 6]));
        assert_eq!(parts.concat(), segment.to_vec());
        assert!(stream.part(50, 10).is_none());
        assert_eq!(
            stream.part(52, 0).unwrap(),
            Bytes::from(vec![7u8; 10]),
            "open segment"
        );
        assert!(stream.part(52, 1).is_none());
        assert!(stream.part(53, 0).is_none());
    }

    #[test]
    fn the_playlist_is_rendered_once_per_chunk() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        feed_segment(&stream, 50);
        let a = stream.playlist();
        let b = stream.playlist();
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same rendering");
        stream.push_chunk(packaged(51, 51.0, true, 0));
        let c = stream.playlist();
        assert!(std::str::from_utf8(&c).unwrap().contains("\"51.0.m4s\""));
    }

    #[test]
    fn part_target_follows_the_longest_chunk() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        feed_segment(&stream, 50);
        assert!(String::from_utf8_lossy(&stream.playlist()).contains("PART-TARGET=0.100\n"));
        let mut long = packaged(51, 51.0, true, 0);
        long.duration = 0.1333;
        stream.push_chunk(long);
        let p = String::from_utf8_lossy(&stream.playlist()).into_owned();
        assert!(p.contains("PART-TARGET=0.134\n"), "{p}");
        assert!(p.contains("PART-HOLD-BACK=0.500,"), "{p}");
    }

    #[tokio::test]
    async fn a_blocking_reload_waits_for_its_part_then_answers() {
        let stream = Arc::new(LiveStream::new("t", Bytes::from_static(b"init"), 3));
        feed_segment(&stream, 50);
        stream.push_chunk(packaged(51, 51.0, true, 0));
        let ready = stream
            .blocking_playlist(want(51, Some(0)), LONG)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&ready).contains("\"51.0.m4s\""));

        let source = stream.clone();
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            source.push_chunk(packaged(51, 51.1, false, 1));
        });
        let asked = tokio::time::Instant::now();
        let p = stream
            .blocking_playlist(want(51, Some(1)), LONG)
            .await
            .unwrap();
        assert!(
            asked.elapsed() >= Duration::from_millis(40),
            "answered before the part"
        );
        assert!(asked.elapsed() < Duration::from_secs(2));
        assert!(String::from_utf8_lossy(&p).contains("\"51.1.m4s\""));
        feeder.await.unwrap();
    }

    #[tokio::test]
    async fn a_blocking_reload_that_the_stream_does_not_reach_times_out() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        feed_segment(&stream, 50);
        stream.push_chunk(packaged(51, 51.0, true, 0));
        let limit = Duration::from_millis(60);
        let asked = tokio::time::Instant::now();
        assert_eq!(
            stream.blocking_playlist(want(51, Some(1)), limit).await,
            Err(Blocked::TimedOut)
        );
        assert!(asked.elapsed() >= limit);
        assert_eq!(
            stream.blocking_playlist(want(53, None), LONG).await,
            Err(Blocked::TooFar),
            "refused at once"
        );
        assert_eq!(
            stream.blocking_playlist(want(51, Some(40)), LONG).await,
            Err(Blocked::TooFar)
        );
    }

    #[tokio::test]
    async fn a_finished_stream_lets_blocked_requests_go() {
        let stream = Arc::new(LiveStream::new("t", Bytes::from_static(b"init"), 3));
        feed_segment(&stream, 50);
        let ender = stream.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            ender.finish();
        });
        let p = stream.blocking_playlist(want(51, None), LONG).await;
        assert!(p.is_ok(), "{p:?}");
    }

    #[tokio::test]
    async fn a_hinted_part_is_sent_once_it_exists() {
        let stream = Arc::new(LiveStream::new("t", Bytes::from_static(b"init"), 3));
        feed_segment(&stream, 50);
        stream.push_chunk(packaged(51, 51.0, true, 0));
        let source = stream.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            source.push_chunk(packaged(51, 51.1, false, 1));
        });
        let asked = tokio::time::Instant::now();
        let part = stream.next_part(51, 1, LONG).await.unwrap();
        assert!(asked.elapsed() >= Duration::from_millis(40));
        assert_eq!(part, Bytes::from(vec![1u8; 4]));
        assert_eq!(
            stream.next_part(50, 3, LONG).await.unwrap().len(),
            6,
            "exists"
        );
        assert_eq!(
            stream.next_part(51, 3, LONG).await,
            Err(Blocked::NotFound),
            "not the next part: no wait"
        );
    }

    #[tokio::test]
    async fn a_hint_the_stream_did_not_follow_is_not_found() {
        let stream = Arc::new(LiveStream::new("t", Bytes::from_static(b"init"), 3));
        feed_segment(&stream, 50);
        stream.push_chunk(packaged(51, 51.0, true, 0));
        let source = stream.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            // A keyframe: segment 51 ends after one part.
            source.push_chunk(packaged(52, 51.1, true, 0));
        });
        assert_eq!(stream.next_part(51, 1, LONG).await, Err(Blocked::NotFound));
        assert_eq!(
            stream.next_part(53, 0, Duration::from_millis(30)).await,
            Err(Blocked::TimedOut),
            "the next segment's first part may come; it did not in time"
        );
    }
}
