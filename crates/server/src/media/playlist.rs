//! The live media playlist with Low-Latency HLS, and the LL-HLS rules that decide when
//! a blocked request may be answered. Pure: no clock, no lock, no I/O, so every rule is
//! tested on plain values. [`live`](super::live) owns the state and the waiting;
//! `http::hls` owns the URLs' routes and the cache headers.
//!
//! Spec: RFC 8216bis (draft-pantos-hls-rfc8216bis), §4.4.3.7-8 (`EXT-X-PART-INF`,
//! `EXT-X-SERVER-CONTROL`), §4.4.4.9 (`EXT-X-PART`), §4.4.5.3 (`EXT-X-PRELOAD-HINT`),
//! §6.2.2 (part retention), §6.2.5.2 (blocking playlist reload), §6.2.6 (preload hints).
//!
//! # Names
//! Relative to the playlist (`/live/{id}/index.m3u8`):
//! - `{msn}.m4s`: the whole segment `msn` (its parts, concatenated);
//! - `{msn}.{part}.m4s`: part `part` (from 0) of segment `msn`, one CMAF chunk
//!   (`moof`+`mdat`) exactly as the low-latency push sends it.
//!
//! Numbers are canonical decimals (no sign, no leading zero), so one part has one URL
//! and one CDN cache entry.
//!
//! # Numbers
//! - `PART-TARGET`: the stream's longest chunk so far, rounded up to the millisecond. A
//!   chunk is one part, so for the demo (30 fps, `--chunk-ms 100`) it is exactly 0.1 s.
//!   It only grows (see "Not done").
//! - `PART-HOLD-BACK`: 3 × `PART-TARGET` (the spec's SHOULD), but at least
//!   [`MIN_PART_HOLD_BACK`]: with 100 ms parts, three parts leave 300 ms in which a
//!   player must do two round trips per part (blocking playlist, then part), which one
//!   slow round trip through a CDN spends entirely.
//! - `HOLD-BACK`: 3 × `TARGETDURATION` (the spec's minimum).
//! - Parts are listed for segments that start within [`PART_LIST_TARGETS`] target
//!   durations of the live edge (§6.2.2: SHOULD be removed after that); their bytes stay
//!   served as long as the segment is (twice the playlist window), more than the three
//!   target durations §6.2.2 asks for.
//!
//! # Blocking
//! `?_HLS_msn=M` is answered once segment `M` (or a later one) is complete;
//! `?_HLS_msn=M&_HLS_part=P` once part `P` of `M` is listed, a part past the last of
//! `M` counting as part 0 of the next segment (§6.2.5.2). Too far ahead (more than two
//! segments past the last complete one, or more parts ahead than the Advance Part
//! Limit) is refused at once: see [`Reload::TooFar`]. How long to wait is the caller's.
//!
//! # Preload hint
//! The hint names the part expected next: the next part of the open segment, or part 0
//! of the following segment once the open one is as long as the last complete one (a
//! steady keyframe interval, as the demo's and most encoders'). When the guess is wrong
//! the hinted part never exists and its request is answered 404 (§6.2.6).
//!
//! # Not done
//! - Playlist delta updates (`CAN-SKIP-UNTIL`, `_HLS_skip`): optional; a playlist is six
//!   segments, about 2 KB with parts, so skipping saves little. `_HLS_skip` is ignored,
//!   as §6.2.5.1 requires when `CAN-SKIP-UNTIL` is not advertised.
//! - Rendition reports (`EXT-X-RENDITION-REPORT`): one rendition per stream.
//! - Byte-range parts: each part is its own URL.
//! - A fixed `PART-TARGET` for RTMP publishers. The remuxer closes a chunk once it holds
//!   `chunk_ms` of video, so a chunk is as many whole frames as reach it (100 ms here): 3 at
//!   30 fps (100 ms), 3 at 24 or 25 fps (125, 120 ms). A publisher whose timestamps
//!   jitter (29.97 fps in whole FLV milliseconds) gets chunks of 3 and 4 frames (100 and
//!   133 ms): `PART-TARGET` rises from 0.100 to 0.134 when the first long one comes
//!   (Apple's players flag a changed `PART-TARGET`), and the 100 ms parts are under the
//!   85 % floor of §4.4.4.9. hls.js and the widget check neither. The remedy is in the
//!   remuxer: cut at the whole number of frames nearest `chunk_ms` and announce the
//!   target from the publisher's frame rate.

use std::fmt::Write;

/// The smallest `PART-HOLD-BACK` announced, seconds (see the module doc).
pub const MIN_PART_HOLD_BACK: f64 = 0.5;

/// Parts are listed for segments starting within this many target durations of the edge.
pub const PART_LIST_TARGETS: f64 = 3.0;

/// What the playlist says about one part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartInfo {
    /// Seconds of video.
    pub duration: f64,
    /// Starts with a keyframe: decoding can start here.
    pub independent: bool,
}

/// A segment as the playlist lists it.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    /// Media sequence number.
    pub msn: u64,
    /// Wall-clock time of its first frame, unix seconds.
    pub start: f64,
    /// Seconds.
    pub duration: f64,
    /// Its parts so far, in order.
    pub parts: &'a [PartInfo],
}

impl Listed<'_> {
    fn end(&self) -> f64 {
        self.start + self.duration
    }
}

/// Everything a live playlist is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// URI of the init segment (`EXT-X-MAP`).
    pub init_uri: &'a str,
    /// Complete segments, oldest first.
    pub segments: &'a [Listed<'a>],
    /// The segment being built, when one is.
    pub open: Option<Listed<'a>>,
    /// `PART-TARGET`, seconds; 0 while the stream has no part yet.
    pub part_target: f64,
}

/// The `TARGETDURATION` of a window: its longest segment, rounded, at least 1.
pub fn target_duration(segments: &[Listed<'_>]) -> u64 {
    segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1)
}

/// `PART-TARGET` for parts of these durations: the longest, rounded up to the
/// millisecond, so every part's `DURATION` as written is at most it.
pub fn part_target(longest_part: f64) -> f64 {
    // The tolerance keeps 0.1 (not quite 0.1 in binary) at 0.100.
    (longest_part * 1000.0 - 1e-6).ceil().max(0.0) / 1000.0
}

/// `PART-HOLD-BACK` for a `PART-TARGET` (see the module doc).
pub fn part_hold_back(part_target: f64) -> f64 {
    (3.0 * part_target).max(MIN_PART_HOLD_BACK)
}

/// The Advance Part Limit of §6.2.5.2: how many parts past the last listed one a
/// client may ask for before it is refused.
pub fn advance_part_limit(part_target: f64) -> u64 {
    if part_target > 0.0 && part_target < 1.0 {
        (3.0 / part_target).floor() as u64
    } else {
        3
    }
}

/// The URL (relative to the playlist) of part `part` of segment `msn`.
pub fn part_uri(msn: u64, part: u64) -> String {
    format!("{msn}.{part}.m4s")
}

/// What a media file name under `/live/{id}/` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaName {
    /// `{msn}.m4s`.
    Segment(u64),
    /// `{msn}.{part}.m4s`.
    Part {
        /// The parent segment.
        msn: u64,
        /// Index within it, from 0.
        part: u64,
    },
}

/// Reads a segment or part file name; `None` for anything else, non-canonical numbers
/// included (`007.m4s`, `+7.m4s`).
pub fn parse_media_name(name: &str) -> Option<MediaName> {
    let stem = name.strip_suffix(".m4s")?;
    match stem.split_once('.') {
        None => canonical(stem).map(MediaName::Segment),
        Some((msn, part)) => Some(MediaName::Part {
            msn: canonical(msn)?,
            part: canonical(part)?,
        }),
    }
}

fn canonical(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// A blocking reload request: `_HLS_msn` and `_HLS_part`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`.
    pub msn: u64,
    /// `_HLS_part`.
    pub part: Option<u64>,
}

/// Why a playlist query is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDirective {
    /// `_HLS_msn` or `_HLS_part` is not a decimal integer.
    #[error("{0} is not a decimal integer")]
    NotANumber(&'static str),
    /// `_HLS_part` without `_HLS_msn` (§6.2.5.2: MUST be refused).
    #[error("_HLS_part without _HLS_msn")]
    PartWithoutMsn,
}

impl Directives {
    /// The delivery directives of a playlist request's query string, if any. Other
    /// parameters (`_HLS_skip` included, see the module doc) are ignored; of a
    /// repeated one, the first counts.
    pub fn from_query(query: Option<&str>) -> Result<Option<Directives>, BadDirective> {
        let mut msn = None;
        let mut part = None;
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (slot, name) = match key {
                "_HLS_msn" => (&mut msn, "_HLS_msn"),
                "_HLS_part" => (&mut part, "_HLS_part"),
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| BadDirective::NotANumber(name))?,
                );
            }
        }
        match (msn, part) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(BadDirective::PartWithoutMsn),
            (Some(msn), part) => Ok(Some(Directives { msn, part })),
        }
    }
}

/// How far a live stream has got: what blocked requests are waiting on. Changes with
/// every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Edge {
    /// The newest complete segment.
    pub last_segment: Option<u64>,
    /// The newest part: (segment, index).
    pub last_part: Option<(u64, u64)>,
    /// Parts in the newest complete segment (to count parts ahead across segments).
    pub parts_per_segment: u64,
    /// `PART-TARGET`, seconds.
    pub part_target: f64,
}

/// What to do with a blocking reload now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The playlist has what was asked for: answer.
    Ready,
    /// Not yet: wait for the stream to move on.
    Wait,
    /// More than two segments past the last complete one, or more parts ahead of the
    /// last listed one than the Advance Part Limit (§6.2.5.2): answer 400 at once
    /// rather than hold a request the stream will not satisfy in time.
    TooFar,
}

impl Edge {
    /// Whether a playlist rendered now satisfies `want` (§6.2.5.2).
    pub fn satisfies(&self, want: Directives) -> bool {
        match want.part {
            None => self.last_segment.is_some_and(|l| l >= want.msn),
            // Either the part is listed, or a later segment has begun: then `want` is
            // listed too, or past the last part of its segment, which counts as part 0
            // of the next one (listed as well).
            Some(p) => self
                .last_part
                .is_some_and(|(m, i)| m > want.msn || (m == want.msn && i >= p)),
        }
    }

    /// What to do with a blocking reload for `want`.
    pub fn reload(&self, want: Directives) -> Reload {
        if self.satisfies(want) {
            return Reload::Ready;
        }
        // "The last Media Segment in the current Playlist": before the first segment is
        // complete, the one before the open segment.
        let last = self
            .last_segment
            .or_else(|| self.last_part.and_then(|(m, _)| m.checked_sub(1)));
        if last.is_some_and(|l| want.msn > l.saturating_add(2)) {
            return Reload::TooFar;
        }
        if let (Some(p), Some((m, i))) = (want.part, self.last_part) {
            let per_segment = self.parts_per_segment.max(i + 1);
            // `want` is not listed, so it is in segment `m` or later.
            let ahead = want
                .msn
                .saturating_sub(m)
                .saturating_mul(per_segment)
                .saturating_add(p)
                .saturating_sub(i);
            if ahead > advance_part_limit(self.part_target) {
                return Reload::TooFar;
            }
        }
        Reload::Wait
    }

    /// Whether part `part` of `msn` is one a client may wait for: the next part of the
    /// open segment, or the first of the next segment (the two the preload hint may
    /// name). Anything else that does not exist is a 404 at once (§6.2.6).
    pub fn may_come_next(&self, msn: u64, part: u64) -> bool {
        self.last_part
            .is_some_and(|(m, i)| (msn == m && part == i + 1) || (msn == m + 1 && part == 0))
    }
}

/// Renders a live media playlist with LL-HLS parts.
///
/// `EXT-X-VERSION:7`: nothing here needs more (§8: parts, server control and preload
/// hints set no version; `EXT-X-SKIP` would need 9).
pub fn render(w: &Window<'_>) -> String {
    let target = target_duration(w.segments);
    let first = w.segments.first().or(w.open.as_ref()).map_or(0, |s| s.msn);
    let mut out = String::with_capacity(256 + w.segments.len() * 96 + 40 * 48);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n"
    );
    let low_latency = w.part_target > 0.0;
    if low_latency {
        let _ = write!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},HOLD-BACK={:.3}\n\
             #EXT-X-PART-INF:PART-TARGET={:.3}\n",
            part_hold_back(w.part_target),
            3.0 * target as f64,
            w.part_target
        );
    }
    let _ = write!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{}\"\n",
        w.init_uri
    );
    let edge = w
        .open
        .as_ref()
        .or(w.segments.last())
        .map_or(0.0, Listed::end);
    let parts_from = edge - PART_LIST_TARGETS * target as f64;
    let mut prev: Option<u64> = None;
    for s in w.segments {
        if prev.is_some_and(|p| p + 1 != s.msn) {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        prev = Some(s.msn);
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339_millis(s.start));
        // Whole segments, each part of which is within reach of the edge.
        if low_latency && s.start >= parts_from {
            write_parts(&mut out, s);
        }
        let _ = write!(out, "#EXTINF:{:.5},\n{}.m4s\n", s.duration, s.msn);
    }
    if let (true, Some(open)) = (low_latency, &w.open) {
        // No date: one per complete segment, as before LL-HLS; a player dates the
        // segment in progress from the one before it.
        if prev.is_some_and(|p| p + 1 != open.msn) {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        write_parts(&mut out, open);
        let (msn, part) = hint(open, w.segments.last(), w.part_target);
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            part_uri(msn, part)
        );
    }
    out
}

fn write_parts(out: &mut String, s: &Listed<'_>) {
    for (i, p) in s.parts.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
            p.duration,
            part_uri(s.msn, i as u64)
        );
        out.push_str(if p.independent {
            ",INDEPENDENT=YES\n"
        } else {
            "\n"
        });
    }
}

/// The part expected next (see the module doc's "Preload hint").
fn hint(open: &Listed<'_>, last: Option<&Listed<'_>>, part_target: f64) -> (u64, u64) {
    let full = last.is_some_and(|l| open.duration + part_target / 2.0 >= l.duration);
    if full {
        (open.msn + 1, 0)
    } else {
        (open.msn, open.parts.len() as u64)
    }
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

    const TENTH: PartInfo = PartInfo {
        duration: 0.1,
        independent: false,
    };
    const KEY: PartInfo = PartInfo {
        duration: 0.1,
        independent: true,
    };

    fn parts(n: usize) -> Vec<PartInfo> {
        (0..n).map(|i| if i == 0 { KEY } else { TENTH }).collect()
    }

    fn seg(msn: u64, parts: &[PartInfo]) -> Listed<'_> {
        Listed {
            msn,
            start: msn as f64,
            duration: parts.iter().map(|p| p.duration).sum(),
            parts,
        }
    }

    fn edge(last_segment: u64, open: u64, parts: u64) -> Edge {
        Edge {
            last_segment: Some(last_segment),
            last_part: Some((open, parts - 1)),
            parts_per_segment: 10,
            part_target: 0.1,
        }
    }

    fn want(msn: u64, part: Option<u64>) -> Directives {
        Directives { msn, part }
    }

    #[test]
    fn names_are_canonical_segments_and_parts() {
        assert_eq!(parse_media_name("12.m4s"), Some(MediaName::Segment(12)));
        assert_eq!(
            parse_media_name("12.3.m4s"),
            Some(MediaName::Part { msn: 12, part: 3 })
        );
        assert_eq!(
            parse_media_name("0.0.m4s"),
            Some(MediaName::Part { msn: 0, part: 0 })
        );
        for bad in [
            "12",
            "a.m4s",
            ".m4s",
            "12..m4s",
            "12.3.4.m4s",
            "012.m4s",
            "12.03.m4s",
            "+1.m4s",
            "1.-1.m4s",
            "99999999999999999999999.m4s",
            "12.m4s.m4s",
        ] {
            assert_eq!(parse_media_name(bad), None, "{bad}");
        }
        assert_eq!(
            parse_media_name(&part_uri(7, 9)),
            Some(MediaName::Part { msn: 7, part: 9 })
        );
    }

    #[test]
    fn directives_from_query_strings() {
        assert_eq!(Directives::from_query(None), Ok(None));
        assert_eq!(Directives::from_query(Some("v=2")), Ok(None));
        assert_eq!(
            Directives::from_query(Some("_HLS_msn=5")),
            Ok(Some(want(5, None)))
        );
        assert_eq!(
            Directives::from_query(Some("_HLS_skip=YES&_HLS_part=2&_HLS_msn=5")),
            Ok(Some(want(5, Some(2))))
        );
        assert_eq!(
            Directives::from_query(Some("_HLS_part=2")),
            Err(BadDirective::PartWithoutMsn)
        );
        assert_eq!(
            Directives::from_query(Some("_HLS_msn=x")),
            Err(BadDirective::NotANumber("_HLS_msn"))
        );
        assert_eq!(
            Directives::from_query(Some("_HLS_msn=1&_HLS_part=-1")),
            Err(BadDirective::NotANumber("_HLS_part"))
        );
    }

    #[test]
    fn a_segment_request_waits_for_the_segment_to_be_complete() {
        let e = edge(100, 101, 4);
        assert_eq!(e.reload(want(100, None)), Reload::Ready);
        assert_eq!(e.reload(want(50, None)), Reload::Ready, "long gone: answer");
        assert_eq!(
            e.reload(want(101, None)),
            Reload::Wait,
            "its parts are not enough"
        );
        assert_eq!(e.reload(want(102, None)), Reload::Wait);
        assert_eq!(e.reload(want(103, None)), Reload::TooFar);
    }

    #[test]
    fn a_part_request_waits_for_that_part_or_a_later_segment() {
        let e = edge(100, 101, 4);
        assert_eq!(e.reload(want(101, Some(3))), Reload::Ready);
        assert_eq!(e.reload(want(101, Some(4))), Reload::Wait);
        // Part 12 of segment 100 does not exist: it means part 0 of 101, listed.
        assert_eq!(e.reload(want(100, Some(12))), Reload::Ready);
        assert_eq!(e.reload(want(102, Some(0))), Reload::Wait);
        let next = edge(101, 102, 1);
        assert!(
            next.satisfies(want(101, Some(4))),
            "segment 101 ended after 4 parts"
        );
    }

    #[test]
    fn the_advance_part_limit_is_three_seconds_of_parts() {
        assert_eq!(advance_part_limit(0.1), 30);
        assert_eq!(advance_part_limit(0.334), 8);
        assert_eq!(advance_part_limit(1.0), 3);
        assert_eq!(advance_part_limit(2.0), 3);
        let e = edge(100, 101, 4); // last part: 101.3
        assert_eq!(e.reload(want(101, Some(33))), Reload::Wait);
        assert_eq!(e.reload(want(101, Some(34))), Reload::TooFar);
        // Segment 102 part 0 is 7 parts ahead (10 per segment).
        assert_eq!(e.reload(want(102, Some(0))), Reload::Wait);
        assert_eq!(e.reload(want(102, Some(23))), Reload::Wait);
        assert_eq!(e.reload(want(102, Some(24))), Reload::TooFar);
    }

    #[test]
    fn before_any_media_nothing_is_too_far() {
        let e = Edge::default();
        assert_eq!(e.reload(want(5, Some(3))), Reload::Wait);
        let first = Edge {
            last_segment: None,
            last_part: Some((40, 0)),
            parts_per_segment: 0,
            part_target: 0.1,
        };
        assert_eq!(first.reload(want(40, None)), Reload::Wait);
        assert_eq!(first.reload(want(41, None)), Reload::Wait);
        assert_eq!(first.reload(want(42, None)), Reload::TooFar);
    }

    #[test]
    fn only_the_next_part_is_worth_waiting_for() {
        let e = edge(100, 101, 4);
        assert!(e.may_come_next(101, 4));
        assert!(e.may_come_next(102, 0));
        assert!(!e.may_come_next(101, 5));
        assert!(!e.may_come_next(102, 1));
        assert!(!e.may_come_next(101, 3), "exists: served, not awaited");
        assert!(!Edge::default().may_come_next(0, 0));
    }

    #[test]
    fn part_target_covers_every_part_as_written() {
        assert_eq!(part_target(0.1), 0.1);
        assert_eq!(part_target(9000.0 / 90_000.0), 0.1);
        assert_eq!(part_target(12_000.0 / 90_000.0), 0.134);
        assert_eq!(part_target(0.0), 0.0);
        for ticks in [2999u32, 3000, 9000, 9001, 12_000, 13_500] {
            let d = f64::from(ticks) / 90_000.0;
            let written: f64 = format!("{d:.5}").parse().unwrap();
            let target: f64 = format!("{:.3}", part_target(d)).parse().unwrap();
            assert!(written <= target, "{written} > {target}");
        }
        assert_eq!(part_hold_back(0.1), 0.5);
        assert!((part_hold_back(0.334) - 1.002).abs() < 1e-9);
    }

    #[test]
    fn playlist_lists_recent_parts_and_hints_the_next() {
        let ten = parts(10);
        let four = parts(4);
        let segments: Vec<Listed> = (100..106).map(|m| seg(m, &ten)).collect();
        let p = render(&Window {
            init_uri: "init.mp4",
            segments: &segments,
            open: Some(seg(106, &four)),
            part_target: 0.1,
        });
        for line in [
            "#EXT-X-TARGETDURATION:1\n",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.500,HOLD-BACK=3.000\n",
            "#EXT-X-PART-INF:PART-TARGET=0.100\n",
            "#EXT-X-MEDIA-SEQUENCE:100\n",
            "#EXT-X-PART:DURATION=0.10000,URI=\"104.0.m4s\",INDEPENDENT=YES\n",
            "#EXT-X-PART:DURATION=0.10000,URI=\"104.9.m4s\"\n#EXTINF:1.00000,\n104.m4s\n",
            "105.m4s\n#EXT-X-PART:DURATION=0.10000,URI=\"106.0.m4s\",INDEPENDENT=YES\n",
            "106.3.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"106.4.m4s\"\n",
        ] {
            assert!(p.contains(line), "{line:?} in\n{p}");
        }
        // The edge is at 106.4 s: segments ending after 103.4 s have parts listed.
        assert!(!p.contains("\"103.0.m4s\""), "{p}");
        assert_eq!(p.matches("#EXT-X-PART:").count(), 24, "{p}");
        assert_eq!(p.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 6);
        assert!(p.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"106.4.m4s\"\n"));
        assert!(!p.contains("DISCONTINUITY"));
    }

    #[test]
    fn a_segment_as_long_as_the_last_hints_the_next_segment() {
        let ten = parts(10);
        let segments = [seg(5, &ten)];
        let w = |open| Window {
            init_uri: "init.mp4",
            segments: &segments,
            open: Some(open),
            part_target: 0.1,
        };
        let nine = parts(9);
        assert!(render(&w(seg(6, &nine))).ends_with("URI=\"6.9.m4s\"\n"));
        assert!(render(&w(seg(6, &ten))).ends_with("URI=\"7.0.m4s\"\n"));
    }

    #[test]
    fn a_stream_without_parts_is_plain_hls() {
        let p = render(&Window {
            init_uri: "init.mp4",
            segments: &[],
            open: None,
            part_target: 0.0,
        });
        assert!(!p.contains("PART") && !p.contains("SERVER-CONTROL"), "{p}");
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
    }

    #[test]
    fn a_first_segment_still_open_sets_the_media_sequence() {
        let two = parts(2);
        let p = render(&Window {
            init_uri: "init.mp4",
            segments: &[],
            open: Some(seg(40, &two)),
            part_target: 0.1,
        });
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:40\n"), "{p}");
        assert!(p.contains("URI=\"40.1.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"40.2.m4s\""));
    }

    #[test]
    fn a_gap_in_sequence_numbers_is_a_discontinuity() {
        let one = parts(10);
        let segments = [seg(1, &one), seg(5, &one)];
        let p = render(&Window {
            init_uri: "init.mp4",
            segments: &segments,
            open: None,
            part_target: 0.0,
        });
        assert!(
            p.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"),
            "{p}"
        );
    }
}
