//! The widget's HLS playlist parser (`lucarne::player::playlist`): text from any origin
//! the embedding page points it at.
//!
//! Beyond "no panic": a playlist has at most one segment or variant per line; segment
//! numbers run on from `EXT-X-MEDIA-SEQUENCE` without gaps and `get` finds each one;
//! durations are never negative or NaN; the live start is a segment of the playlist;
//! `decimal` agrees with the standard library wherever it accepts a number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucarne::player::playlist::{self, Playlist};

fuzz_target!(|data: &[u8]| {
    // What `Response.text()` hands the player: invalid UTF-8 replaced, not refused.
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    match playlist::parse(&text) {
        Ok(Playlist::Multivariant(variants)) => {
            assert!(!variants.is_empty() && variants.len() <= lines);
        }
        Ok(Playlist::Media(media)) => {
            assert!(media.segments.len() <= lines);
            assert!(media.target_duration >= 0.0);
            for (i, s) in media.segments.iter().enumerate() {
                assert_eq!(s.msn, media.media_sequence + i as u64);
                assert_eq!(media.get(s.msn), Some(s));
                assert!(s.duration >= 0.0, "duration {}", s.duration);
            }
            assert_eq!(media.end_msn(), media.media_sequence + media.segments.len() as u64);
            let from_start = media.duration_from(media.media_sequence);
            assert!(from_start >= 0.0, "{from_start}");
            for latency in [0.0, 3.0, 1e9] {
                match media.live_start(latency) {
                    Some(msn) => assert!(media.get(msn).is_some()),
                    None => assert!(media.segments.is_empty()),
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    for word in text.split([':', ',', '\n', '=']).take(64) {
        if let Some(v) = playlist::decimal(word) {
            let std: f64 = word.parse().expect("std parses what decimal accepts");
            assert!(
                v == std || (v - std).abs() <= std.abs() * 1e-9,
                "decimal({word:?}) = {v}, std {std}"
            );
        }
    }
});
