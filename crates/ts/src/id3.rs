//! ID3 timed metadata carried in PES packets (Apple's "Timed Metadata for HTTP Live
//! Streaming"): recognised and passed on whole, with its time on the timeline.
//!
//! Owns the check that a metadata PES holds ID3 tags; parsing the frames inside
//! (`TXXX`, `PRIV`, ...) is left to whoever consumes the event.

/// One ID3 tag (or several back to back) found in the stream, at its presentation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Id3Frame {
    /// When it applies, in seconds on the output timeline (the same clock as the
    /// fragments' times).
    pub pts_seconds: f64,
    /// The ID3 tag bytes, starting with `ID3`.
    pub data: Vec<u8>,
}

/// True if `data` starts with an ID3v2 tag header whose size fits in `data`:
/// `ID3`, version (2 bytes, major < 0xFF), flags, then a 4-byte syncsafe size.
pub(crate) fn is_id3(data: &[u8]) -> bool {
    let Some(h) = data.get(..10) else {
        return false;
    };
    if &h[..3] != b"ID3" || h[3] == 0xff || h[4] == 0xff || h[6..10].iter().any(|b| b & 0x80 != 0) {
        return false;
    }
    let size = h[6..10]
        .iter()
        .fold(0usize, |n, &b| n << 7 | usize::from(b));
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    10 + size + footer <= data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id3_headers_are_checked_with_their_size() {
        let mut tag = b"ID3\x04\x00\x00\x00\x00\x00\x05".to_vec();
        assert!(!is_id3(&tag), "5 bytes missing");
        tag.extend_from_slice(b"hello");
        assert!(is_id3(&tag));
        tag[6] = 0x80;
        assert!(!is_id3(&tag), "not syncsafe");
        assert!(!is_id3(b"ID2\x04\x00\x00\x00\x00\x00\x00"));
    }
}
