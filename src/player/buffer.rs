//! Buffered ranges as plain data, and the decisions made on them: how much is buffered
//! ahead, what to evict behind the playhead, and how to step over a hole.
//!
//! `TimeRanges` become `Vec<Range>` at the MSE edge (`mse.rs`); everything here is pure.

/// A buffered interval in media seconds, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Inclusive start.
    pub start: f64,
    /// Exclusive end.
    pub end: f64,
}

/// Holes smaller than this are treated as continuous (decoders bridge them).
pub const MAX_HOLE: f64 = 0.1;

/// A stalled playhead with less than this buffered ahead will not play through it: it
/// is at the end of its range, not held up inside it. WebKitGTK has been seen to stop
/// 0.105 s short of a range's end (one frame and a bit) after a playback-rate change
/// restarted its pipeline there; more than this ahead, a stall is a decoder's hiccup.
pub const STUCK_AT_END: f64 = 0.5;

/// Seconds buffered contiguously from `pos`, bridging holes under [`MAX_HOLE`].
pub fn ahead(ranges: &[Range], pos: f64) -> f64 {
    let mut end = None::<f64>;
    for r in ranges {
        match end {
            None if r.start - MAX_HOLE <= pos && pos < r.end => end = Some(r.end),
            Some(e) if r.start - e <= MAX_HOLE => end = Some(e.max(r.end)),
            _ => {}
        }
    }
    end.map_or(0.0, |e| (e - pos).max(0.0))
}

/// End of the newest buffered media.
pub fn newest(ranges: &[Range]) -> Option<f64> {
    ranges.iter().map(|r| r.end).reduce(f64::max)
}

/// The range to remove so that at most `keep` seconds stay behind `pos`; `None` when
/// less than a second would go (removals cost, so they are batched).
pub fn back_buffer_eviction(ranges: &[Range], pos: f64, keep: f64) -> Option<Range> {
    let first = ranges.iter().map(|r| r.start).reduce(f64::min)?;
    let cut = pos - keep;
    (cut - first >= 1.0).then_some(Range {
        start: first,
        end: cut,
    })
}

/// Where to seek when playback is stuck at `pos`: the start of the next buffered range,
/// if it is within `max_jump` seconds (a missing segment, or a chunk lost on reconnect)
/// and the playhead is at the end of its own range (less than [`STUCK_AT_END`] ahead).
pub fn gap_jump(ranges: &[Range], pos: f64, max_jump: f64) -> Option<f64> {
    if ahead(ranges, pos) >= STUCK_AT_END {
        return None;
    }
    ranges
        .iter()
        .map(|r| r.start)
        .filter(|&s| s > pos && s - pos <= max_jump)
        .reduce(f64::min)
        .map(|s| s + 0.01)
}

/// Where a replay's playhead must go before it starts playing at `pos`: nowhere when
/// there is media at `pos` or within [`MAX_HOLE`] after it (a demuxed replay's audio
/// often begins a few milliseconds after its video, and the engines bridge that), else
/// the first range's start. A seek before the first frame is what to avoid: WebKitGTK
/// has hung its whole page after one followed by `play()`.
pub fn replay_start(ranges: &[Range], pos: f64) -> Option<f64> {
    if ahead(ranges, pos) > 0.0 {
        return None;
    }
    ranges.first().map(|r| r.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: f64, end: f64) -> Range {
        Range { start, end }
    }

    #[test]
    fn ahead_bridges_tiny_holes_only() {
        let ranges = [r(0.0, 2.0), r(2.05, 4.0), r(5.0, 6.0)];
        assert!((ahead(&ranges, 1.0) - 3.0).abs() < 1e-9);
        assert_eq!(ahead(&ranges, 4.5), 0.0);
        assert!(
            (ahead(&ranges, 4.95) - 1.05).abs() < 1e-9,
            "just before a range counts"
        );
        assert_eq!(ahead(&[], 1.0), 0.0);
    }

    #[test]
    fn evicts_behind_the_playhead_in_batches() {
        let ranges = [r(10.0, 100.0)];
        assert_eq!(
            back_buffer_eviction(&ranges, 50.0, 30.0),
            Some(r(10.0, 20.0))
        );
        assert_eq!(back_buffer_eviction(&ranges, 40.5, 30.0), None);
        assert_eq!(back_buffer_eviction(&[], 40.0, 30.0), None);
    }

    #[test]
    fn memory_stays_bounded_over_hours() {
        // Simulate three hours of a live stream with trimming every second.
        let keep = 30.0;
        let mut ranges = vec![r(0.0, 0.5)];
        for t in 1..(3 * 3600) {
            let pos = t as f64;
            ranges[0].end = pos + 0.5;
            if let Some(cut) = back_buffer_eviction(&ranges, pos, keep) {
                ranges[0].start = cut.end;
            }
            assert!(ranges[0].end - ranges[0].start <= keep + 2.0);
        }
    }

    #[test]
    fn jumps_a_hole_left_by_a_missing_segment() {
        let ranges = [r(0.0, 10.0), r(11.0, 20.0)];
        assert_eq!(gap_jump(&ranges, 10.0, 5.0), Some(11.01));
        assert_eq!(gap_jump(&ranges, 5.0, 5.0), None, "not stuck: buffer ahead");
        assert_eq!(gap_jump(&ranges, 10.0, 0.5), None, "too far to jump");
        assert_eq!(
            gap_jump(&[r(0.0, 5.0), r(6.04, 12.0)], 4.895, 6.0),
            Some(6.05),
            "stopped a frame short of the hole (WebKitGTK after a rate change)"
        );
        assert_eq!(
            gap_jump(&ranges, 9.0, 5.0),
            None,
            "a second ahead is a hiccup, not the end of the range"
        );
        assert_eq!(newest(&ranges), Some(20.0));
    }

    #[test]
    fn a_replay_starts_where_it_is_unless_its_media_begins_further_on() {
        // The demuxed replay that opens on a gap: video from 0, audio from 2.7 ms (its
        // AAC frames do not fall on the video segment's start), so the buffered
        // intersection begins 2.7 ms in. Seeking there hung WebKitGTK's page.
        assert_eq!(replay_start(&[r(0.002667, 14.0)], 0.0), None);
        assert_eq!(replay_start(&[r(0.0, 14.0)], 0.0), None);
        // Media a second further on (a hole no engine bridges): go there.
        assert_eq!(replay_start(&[r(1.0, 14.0)], 0.0), Some(1.0));
        // Back at the start after a rebuild, the playhead inside a later range stays.
        assert_eq!(replay_start(&[r(0.0, 4.0), r(6.0, 9.0)], 7.0), None);
        assert_eq!(replay_start(&[r(0.0, 4.0), r(6.0, 9.0)], 5.0), Some(0.0));
        assert_eq!(replay_start(&[], 0.0), None);
    }
}
