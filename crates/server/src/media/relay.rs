//! The relay framing: how an origin's low-latency push tells an edge node (see
//! `crate::edge`) not only the media but where each chunk sits in the playlist, so the
//! edge's playlist, segments and parts carry the origin's numbers and bytes.
//!
//! A player's push (`/live/{id}/ll`) sends bare `moof`+`mdat` chunks: enough to play,
//! not enough to rebuild HLS. A relay subscriber asks `/live/{id}/ll?relay=1` and every
//! binary message is then one [`Frame`], encoded as:
//!
//! ```text
//!   init:  0x01 ‖ init segment
//!   chunk: 0x02 ‖ msn u64 ‖ part u32 ‖ start f64 ‖ duration f64 ‖ moof+mdat   (big endian)
//! ```
//!
//! A relay subscription's backlog is the playlist window (every part of its complete
//! segments) and the current segment so far, then the live chunks
//! ([`LiveStream::subscribe_with_window`](super::live::LiveStream::subscribe_with_window)).
//! The backlog is followed by the text message [`BACKLOG_END`]: from there on, chunks
//! are live (an edge publishes its copy then, with the whole window). Other text
//! messages are the channel state words, as for players, and [`CHANNEL`] first when
//! the stream is a channel.
//!
//! Why a header in the binary message rather than a text frame before each chunk: one
//! message is one chunk, so nothing pairs two frames across a dropped connection, and
//! the header costs 29 bytes on chunks of several KB.
//!
//! Pure: decodes byte slices, tested without sockets. Decoding never panics; anything
//! malformed is a [`FrameError`].

use bytes::{BufMut, Bytes, BytesMut};

/// The query a relay subscriber adds to the push URL.
pub const RELAY_QUERY: &str = "relay=1";

/// The first text message of a relay subscription to a channel (an ingest stream id,
/// which has state words), before anything else.
pub const CHANNEL: &str = "channel";

/// The prefix of the text message that says the origin makes lower renditions of the
/// stream (`--ladder`): `ladder 360,180`, sent first (after [`CHANNEL`]). An edge then
/// serves a multivariant playlist and relays each rendition on its own.
pub const LADDER: &str = "ladder ";

/// Most renditions a ladder message may name.
pub const MAX_LADDER: usize = 8;

/// The ladder message for `heights`.
pub fn ladder_message(heights: &[u32]) -> String {
    let list: Vec<String> = heights.iter().map(u32::to_string).collect();
    format!("{LADDER}{}", list.join(","))
}

/// The heights a ladder message names; `None` if `text` is not one, or names more
/// than [`MAX_LADDER`] or a height that is not a rendition's.
pub fn parse_ladder(text: &str) -> Option<Vec<u32>> {
    let list = text.strip_prefix(LADDER)?;
    let heights: Vec<u32> = list
        .split(',')
        .take(MAX_LADDER + 1)
        .map(|h| super::ladder::parse_height(h).ok())
        .collect::<Option<_>>()?;
    (!heights.is_empty() && heights.len() <= MAX_LADDER).then_some(heights)
}

/// The text message that ends a relay subscription's backlog.
pub const BACKLOG_END: &str = "backlog-end";

const INIT: u8 = 1;
const CHUNK: u8 = 2;
/// Kind byte, msn, part, start, duration.
const CHUNK_HEADER: usize = 1 + 8 + 4 + 8 + 8;

/// One relay message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The stream's init segment (also when it changes: a new broadcast or codec).
    Init(Bytes),
    /// A chunk, with its place in the playlist.
    Chunk(RelayedChunk),
}

/// A chunk as relayed.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayedChunk {
    /// Media sequence number of its segment.
    pub msn: u64,
    /// Part number in the segment; 0 opens it (a keyframe).
    pub part: u32,
    /// Start, unix seconds.
    pub start: f64,
    /// Seconds.
    pub duration: f64,
    /// `moof` + `mdat`.
    pub bytes: Bytes,
}

/// Why a relay message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Empty message.
    #[error("empty relay message")]
    Empty,
    /// An unknown kind byte.
    #[error("unknown relay message kind {0}")]
    Kind(u8),
    /// A chunk message shorter than its header, or with no media.
    #[error("relay chunk of {0} bytes is truncated")]
    Truncated(usize),
    /// A start or duration that is not a finite, non-negative number.
    #[error("relay chunk with an impossible time")]
    Time,
}

/// The init message.
pub fn encode_init(init: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + init.len());
    b.put_u8(INIT);
    b.put_slice(init);
    b.freeze()
}

/// A chunk message.
pub fn encode_chunk(msn: u64, part: u32, start: f64, duration: f64, media: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(CHUNK_HEADER + media.len());
    b.put_u8(CHUNK);
    b.put_u64(msn);
    b.put_u32(part);
    b.put_f64(start);
    b.put_f64(duration);
    b.put_slice(media);
    b.freeze()
}

/// Reads one relay message (`message` is the whole binary WebSocket message).
pub fn decode(message: &Bytes) -> Result<Frame, FrameError> {
    let (&kind, _) = message.split_first().ok_or(FrameError::Empty)?;
    match kind {
        INIT => Ok(Frame::Init(message.slice(1..))),
        CHUNK => {
            if message.len() <= CHUNK_HEADER {
                return Err(FrameError::Truncated(message.len()));
            }
            let word = |at: usize| -> [u8; 8] {
                let mut w = [0; 8];
                w.copy_from_slice(&message[at..at + 8]);
                w
            };
            let mut part = [0; 4];
            part.copy_from_slice(&message[9..13]);
            let start = f64::from_be_bytes(word(13));
            let duration = f64::from_be_bytes(word(21));
            if !(start.is_finite() && duration.is_finite() && start >= 0.0 && duration >= 0.0) {
                return Err(FrameError::Time);
            }
            Ok(Frame::Chunk(RelayedChunk {
                msn: u64::from_be_bytes(word(1)),
                part: u32::from_be_bytes(part),
                start,
                duration,
                bytes: message.slice(CHUNK_HEADER..),
            }))
        }
        k => Err(FrameError::Kind(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_reads_back_as_written() {
        let m = encode_chunk(1_764_000_000, 7, 1_764_000_000.7, 0.1, b"moofmdat");
        assert_eq!(
            decode(&m),
            Ok(Frame::Chunk(RelayedChunk {
                msn: 1_764_000_000,
                part: 7,
                start: 1_764_000_000.7,
                duration: 0.1,
                bytes: Bytes::from_static(b"moofmdat"),
            }))
        );
        assert_eq!(
            decode(&encode_init(b"ftypmoov")),
            Ok(Frame::Init(Bytes::from_static(b"ftypmoov")))
        );
    }

    #[test]
    fn a_ladder_message_names_bounded_heights() {
        assert_eq!(
            parse_ladder(&ladder_message(&[360, 180])),
            Some(vec![360, 180])
        );
        for bad in [
            "ladder ",
            "ladder x",
            "ladder 361",
            "ladders 360",
            "offline",
        ] {
            assert_eq!(parse_ladder(bad), None, "{bad}");
        }
        let many = ladder_message(&[180; MAX_LADDER + 1]);
        assert_eq!(parse_ladder(&many), None);
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert_eq!(decode(&Bytes::new()), Err(FrameError::Empty));
        assert_eq!(
            decode(&Bytes::from_static(b"\x09abc")),
            Err(FrameError::Kind(9))
        );
        let whole = encode_chunk(1, 2, 3.0, 0.1, b"x");
        for cut in 1..whole.len() {
            assert_eq!(
                decode(&whole.slice(..cut)),
                Err(FrameError::Truncated(cut)),
                "cut at {cut}"
            );
        }
        let nan = encode_chunk(1, 2, f64::NAN, 0.1, b"x");
        assert_eq!(decode(&nan), Err(FrameError::Time));
        let negative = encode_chunk(1, 2, 3.0, -0.1, b"x");
        assert_eq!(decode(&negative), Err(FrameError::Time));
    }
}
