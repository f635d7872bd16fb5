//! Streams whose tracks reach MediaSource apart, one SourceBuffer each: an MPEG-TS
//! stream (the TS module hands out video and audio as two fMP4 tracks) and demuxed
//! audio (`EXT-X-MEDIA TYPE=AUDIO`). The pure decisions around them: is a segment
//! MPEG-TS, and which time range is playable when every track must have media there
//! (`<video>.buffered` is that intersection; the player's decisions must see the same).
//!
//! No web-sys here; `mse` and `hls` call these and are the glue.

use super::buffer::Range;

/// The MPEG-TS sync byte, first byte of every 188-byte packet.
const SYNC: u8 = 0x47;
/// Bytes per TS packet.
const PACKET: usize = 188;

/// True if `uri` names an MPEG-TS segment by its extension (`.ts`, `.mts`, `.m2ts`,
/// case-insensitive, query and fragment ignored).
pub fn ts_uri(uri: &str) -> bool {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    ["ts", "mts", "m2ts"]
        .iter()
        .any(|t| ext.eq_ignore_ascii_case(t))
}

/// True if `head` (a segment's first bytes) looks like MPEG-TS: the sync byte at
/// offset 0, and at 188 when the segment is that long. An fMP4 segment starts with a
/// box size, whose first byte is 0 for any box under 1 GB.
pub fn ts_bytes(head: &[u8]) -> bool {
    head.first() == Some(&SYNC) && head.get(PACKET).is_none_or(|&b| b == SYNC)
}

/// The times where every track has media: the intersection of each track's buffered
/// ranges (each sorted and disjoint, as `TimeRanges` are). No tracks: nothing.
pub fn intersect(tracks: &[Vec<Range>]) -> Vec<Range> {
    let Some((first, rest)) = tracks.split_first() else {
        return Vec::new();
    };
    rest.iter().fold(first.clone(), |acc, other| {
        let mut out = Vec::new();
        for a in &acc {
            for b in other {
                let (start, end) = (a.start.max(b.start), a.end.min(b.end));
                if start < end {
                    out.push(Range { start, end });
                }
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: f64, end: f64) -> Range {
        Range { start, end }
    }

    #[test]
    fn ts_segments_are_known_by_their_extension_whatever_the_query() {
        assert!(ts_uri("seg12.ts"));
        assert!(ts_uri("https://cdn.example/live/seg12.TS?token=abc#x"));
        assert!(ts_uri("a.m2ts"));
        assert!(!ts_uri("seg12.m4s"));
        assert!(!ts_uri("https://cdn.example/ts/seg12.mp4?f=a.ts"));
        assert!(!ts_uri("noextension"));
    }

    #[test]
    fn ts_bytes_need_the_sync_byte_at_0_and_188() {
        let mut ts = vec![0u8; 376];
        ts[0] = SYNC;
        ts[188] = SYNC;
        assert!(ts_bytes(&ts));
        assert!(
            ts_bytes(&ts[..100]),
            "shorter than a packet: the first byte decides"
        );
        ts[188] = 0;
        assert!(!ts_bytes(&ts), "a stray 0x47 at 0 alone is not enough");
        // An fMP4 segment: a box size first.
        assert!(!ts_bytes(b"\0\0\0\x18stypmsdh"));
        assert!(!ts_bytes(b""));
    }

    #[test]
    fn only_what_every_track_holds_is_playable() {
        let video = vec![r(0.0, 4.0), r(6.0, 10.0)];
        let audio = vec![r(0.5, 7.0), r(8.0, 9.0)];
        assert_eq!(
            intersect(&[video.clone(), audio]),
            vec![r(0.5, 4.0), r(6.0, 7.0), r(8.0, 9.0)]
        );
        assert_eq!(intersect(std::slice::from_ref(&video)), video);
        assert_eq!(intersect(&[video, Vec::new()]), Vec::new());
        assert_eq!(intersect(&[]), Vec::new());
    }
}
