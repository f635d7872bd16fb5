//! A live stream as the origin publishes it: the init segment, a sliding window of
//! complete segments for HLS, the segment being built, and a broadcast of every chunk
//! for the low-latency push.
//!
//! Sources (the demo loop, later RTMP ingest) call [`LiveStream::push_chunk`]; the HTTP
//! layer reads playlists and segments and subscribes WebSockets. The state lock is a
//! `std` mutex held only for short, non-async sections.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// A packaged piece of a stream, as any source (the demo loop, later ingest) hands it
/// to [`LiveStream::push_chunk`].
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
}

/// A complete HLS segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number; also its file name.
    pub msn: u64,
    /// Wall-clock time of its first frame, unix seconds (EXT-X-PROGRAM-DATE-TIME).
    pub start: f64,
    /// Seconds (EXTINF).
    pub duration: f64,
    /// All its chunks, concatenated.
    pub bytes: Bytes,
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
}

#[derive(Debug)]
struct State {
    init: Bytes,
    /// Oldest first. Holds `2 × window` so a segment listed in a playlist a client
    /// fetched just before a slide is still there when it asks for it.
    complete: VecDeque<Segment>,
    open: Option<OpenSegment>,
    next_seq: u64,
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
    /// URI of the init segment in playlists (versioned when a source's codec
    /// configuration changes, so players fetch the new one).
    init_uri: String,
    /// Set once the source is gone for good.
    done: tokio::sync::watch::Sender<bool>,
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
            }),
            tx: broadcast::channel(PUSH_QUEUE).0,
            init_uri: init_uri.to_owned(),
            done: tokio::sync::watch::channel(false).0,
        }
    }

    /// Marks the stream as over: low-latency subscribers are let go.
    pub fn finish(&self) {
        self.done.send_replace(true);
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
                let mut bytes = BytesMut::new();
                for c in &open.chunks {
                    bytes.extend_from_slice(&c.bytes);
                }
                st.complete.push_back(Segment {
                    msn: open.msn,
                    start: open.start,
                    duration: open.duration,
                    bytes: bytes.freeze(),
                });
                while st.complete.len() > 2 * self.window {
                    st.complete.pop_front();
                }
            }
            st.open = Some(OpenSegment {
                msn: chunk.segment_msn,
                start: chunk.start,
                duration: 0.0,
                chunks: Vec::new(),
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
        });
        open.duration = chunk.start + chunk.duration - open.start;
        open.chunks.push(c.clone());
        st.next_seq += 1;
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

    /// The HLS media playlist: the last `window` complete segments.
    pub fn playlist(&self) -> String {
        let st = self.lock();
        let skip = st.complete.len().saturating_sub(self.window);
        let segments: Vec<&Segment> = st.complete.iter().skip(skip).collect();
        render_playlist(&segments, &self.init_uri)
    }
}

/// Renders a live media playlist (RFC 8216, version 7 for EXT-X-MAP with fMP4).
pub fn render_playlist(segments: &[&Segment], init_uri: &str) -> String {
    let target = segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = String::with_capacity(128 + segments.len() * 96);
    let first = segments.first().map_or(0, |s| s.msn);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{init_uri}\"\n"
    );
    let mut prev: Option<u64> = None;
    for s in segments {
        if prev.is_some_and(|p| p + 1 != s.msn) {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        prev = Some(s.msn);
        let _ = write!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.5},\n{}.m4s\n",
            rfc3339_millis(s.start),
            s.duration,
            s.msn
        );
    }
    out
}

/// `2026-11-25T12:00:00.000Z` for a unix time in seconds.
pub fn rfc3339_millis(unix: f64) -> String {
    let nanos = (unix * 1e9).round() as i128;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (h, m, s, ms) = (t.hour(), t.minute(), t.second(), t.millisecond());
    format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day()
    )
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
        let p = stream.playlist();
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
    fn chunks_before_the_first_keyframe_are_dropped() {
        let stream = LiveStream::new("t", Bytes::from_static(b"init"), 3);
        stream.push_chunk(chunk(99.5, false));
        assert!(stream.subscribe().backlog.is_empty());
    }

    #[test]
    fn a_gap_in_sequence_numbers_is_a_discontinuity() {
        let a = Segment {
            msn: 1,
            start: 0.0,
            duration: 1.0,
            bytes: Bytes::new(),
        };
        let b = Segment {
            msn: 5,
            start: 9.0,
            duration: 1.0,
            bytes: Bytes::new(),
        };
        assert!(render_playlist(&[&a, &b], "init.mp4")
            .contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"));
    }
}
