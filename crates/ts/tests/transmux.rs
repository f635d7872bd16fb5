//! ffmpeg-made TS segments transmuxed, then judged by ffmpeg: the output must decode
//! without a single error, keep every frame, and lay segments on one continuous
//! timeline across the 33-bit wrap and discontinuities, audio starting with video.

mod common;

use common::*;
use lucarne_ts::{Output, StartTime, Transmuxer, Warning};
use std::path::PathBuf;

/// One frame at the fixtures' 25 fps.
const FRAME: f64 = 0.04;

/// Transmuxes segments of a fixture, each with its discontinuity marker.
fn transmux(segments: &[(&str, Option<StartTime>)]) -> (Transmuxer, Vec<Output>) {
    let mut tx = Transmuxer::new();
    let outs = segments
        .iter()
        .map(|(name, start)| {
            tx.push_segment(&fixture(name), *start)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect();
    (tx, outs)
}

/// Writes the outputs as one MP4 (each init, then its fragments) and returns its path.
fn mp4(test: &str, outs: &[Output]) -> PathBuf {
    let mut parts: Vec<&[u8]> = Vec::new();
    for o in outs {
        if let Some(init) = &o.init {
            parts.push(&init.bytes);
        }
        parts.push(&o.media);
    }
    write(&scratch(test), "out.mp4", &parts)
}

/// Video frames in the named TS segments, as ffprobe counts them.
fn source_frames(names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| frame_count(&fixture_path(n), "v"))
        .sum()
}

/// No warnings at all: the fixtures are clean streams.
fn assert_clean(outs: &[Output]) {
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o.warnings, Vec::<Warning>::new(), "segment {i}");
    }
}

/// Each segment's video starts where the previous one's ended, within a frame.
fn assert_segments_follow(outs: &[Output]) {
    for w in outs.windows(2) {
        let (a, b) = (w[0].video.unwrap(), w[1].video.unwrap());
        assert!(
            (b.start - a.end).abs() < FRAME / 2.0,
            "segment ends at {} then starts at {}",
            a.end,
            b.start
        );
    }
}

/// Audio starts relative to video exactly as in the source segment (within 1 ms):
/// `(video, audio)` starts of the output.
fn assert_av_sync(source: &str, (v, a): (f64, f64)) {
    let src = fixture_path(source);
    let expected = start_time(&src, "a") - start_time(&src, "v");
    assert!(
        ((a - v) - expected).abs() < 0.001,
        "audio - video = {:.4} s, in the source {expected:.4} s",
        a - v
    );
}

#[test]
fn h264_with_b_frames_and_aac_decodes_with_every_frame_on_time() {
    let names = ["avc_aac_0.ts", "avc_aac_1.ts"];
    let (_, outs) = transmux(&[
        (names[0], Some(StartTime::from_seconds(0.0))),
        (names[1], None),
    ]);
    assert_clean(&outs);
    let init = outs[0]
        .init
        .as_ref()
        .expect("first output has an init segment");
    assert_eq!(init.video_codec.as_deref(), Some("avc1.64000b"));
    assert_eq!(init.audio_codec.as_deref(), Some("mp4a.40.2"));
    assert_eq!(init.size, Some((160, 90)));
    assert_eq!(init.mime(), "video/mp4; codecs=\"avc1.64000b,mp4a.40.2\"");
    assert!(
        outs[1].init.is_none(),
        "same configuration, no new init segment"
    );

    let path = mp4("b_frames_aac", &outs);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(codec(&path, "v"), "h264,160,90");
    assert_eq!(codec(&path, "a"), "aac");
    assert_eq!(frame_count(&path, "v"), source_frames(&names));

    let video = packets(&path, "v");
    assert!(
        video.iter().any(|p| p.pts > p.dts + FRAME / 2.0),
        "B-frames have composition offsets"
    );
    let (v_start, v_end) = assert_continuous(&video, 0.001, "video");
    let (a_start, a_end) = assert_continuous(&packets(&path, "a"), 0.001, "audio");
    assert_av_sync(names[0], (v_start, a_start));
    // Placed at 0, but decode times cannot be negative: the first frame is decoded
    // 2 frames before it is shown, so the timeline starts that much later.
    assert!(
        a_start.min(v_start) >= 0.0 && a_start.min(v_start) <= 2.0 * FRAME,
        "starts at {a_start}/{v_start}"
    );
    assert!(
        (a_end - v_end).abs() <= 2.0 * FRAME,
        "audio ends at {a_end}, video at {v_end}"
    );
    assert_segments_follow(&outs);
    assert_eq!(
        outs[0].video.unwrap().samples + outs[1].video.unwrap().samples,
        50
    );
}

#[test]
fn h264_with_mp3_decodes_as_mp4a_6b() {
    let names = ["avc_mp3_0.ts", "avc_mp3_1.ts"];
    let (_, outs) = transmux(&[
        (names[0], Some(StartTime::from_seconds(10.0))),
        (names[1], None),
    ]);
    assert_clean(&outs);
    let init = outs[0].init.as_ref().unwrap();
    assert_eq!(init.audio_codec.as_deref(), Some("mp4a.6B"));

    let path = mp4("mp3", &outs);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(codec(&path, "a"), "mp3");
    assert_eq!(frame_count(&path, "v"), source_frames(&names));
    assert_eq!(
        frame_count(&path, "a"),
        frame_count(&fixture_path(names[0]), "a") + frame_count(&fixture_path(names[1]), "a")
    );
    let (v_start, _) = assert_continuous(&packets(&path, "v"), 0.001, "video");
    let (a_start, _) = assert_continuous(&packets(&path, "a"), 0.001, "audio");
    assert_av_sync(names[0], (v_start, a_start));
    // No decode time below 10 s is needed here: the start is exactly where asked.
    assert!(
        (a_start.min(v_start) - 10.0).abs() < 0.0001,
        "starts at {a_start}/{v_start}"
    );
    assert_segments_follow(&outs);
}

#[test]
fn timestamps_stay_continuous_across_the_33_bit_wrap() {
    let names = ["wrap_0.ts", "wrap_1.ts", "wrap_2.ts"];
    // Kept on the stream's own clock (no start given): the output counts on past 2^33.
    let (_, outs) = transmux(&[(names[0], None), (names[1], None), (names[2], None)]);
    assert_clean(&outs);
    let wrap = (1u64 << 33) as f64 / 90_000.0;
    assert!(outs[0].video.unwrap().start < wrap && outs[2].video.unwrap().start > wrap);
    let path = mp4("wrap", &outs);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(frame_count(&path, "v"), source_frames(&names));
    let (v_start, v_end) = assert_continuous(&packets(&path, "v"), 0.001, "video");
    let (a_start, _) = assert_continuous(&packets(&path, "a"), 0.001, "audio");
    assert!(
        (v_end - v_start - 3.0).abs() < 0.001,
        "3 s of video from {v_start} to {v_end}"
    );
    assert!(v_start < wrap && v_end > wrap);
    assert_av_sync(names[0], (v_start, a_start));
    assert_segments_follow(&outs);

    // Placed on a playlist timeline instead: the same continuity from 0.
    let (_, outs) = transmux(&[
        (names[0], Some(StartTime::from_seconds(0.0))),
        (names[1], None),
        (names[2], None),
    ]);
    assert_clean(&outs);
    let path = mp4("wrap_from_zero", &outs);
    assert_eq!(decode_errors(&path), "");
    let (v_start, v_end) = assert_continuous(&packets(&path, "v"), 0.001, "video");
    assert!(
        v_start < 3.0 * FRAME && (v_end - v_start - 3.0).abs() < 0.001,
        "{v_start}..{v_end}"
    );
    assert_segments_follow(&outs);
}

#[test]
fn a_discontinuity_restarts_timestamps_on_the_playlist_timeline() {
    // The playlist says where disc_b starts: after disc_a's EXTINF.
    let a_len = extinf("disc_a.m3u8")[0];
    let (_, outs) = transmux(&[
        ("disc_a_0.ts", Some(StartTime::from_seconds(0.0))),
        ("disc_b_0.ts", Some(StartTime::from_seconds(a_len))),
    ]);
    assert_clean(&outs);
    let (a, b) = (&outs[0], &outs[1]);
    // disc_b's earliest sample is placed where the playlist says (plus the shift that
    // kept disc_a's decode times positive), its audio and video keeping their own
    // offset, and its video follows disc_a's within a frame.
    let shift = a.start().unwrap();
    assert!(shift > 0.0 && shift < 2.0 * FRAME, "shift {shift}");
    assert!(
        (b.start().unwrap() - a_len - shift).abs() < 0.0001,
        "starts at {:?}",
        b.start()
    );
    assert!(
        (b.video.unwrap().start - a.video.unwrap().end).abs() < FRAME,
        "{:?} then {:?}",
        a.video,
        b.video
    );
    let expected = |n: &str| start_time(&fixture_path(n), "a") - start_time(&fixture_path(n), "v");
    let av = b.audio.unwrap().start - b.video.unwrap().start;
    assert!(
        (av - expected("disc_b_0.ts")).abs() < 0.001,
        "A/V offset {av}"
    );

    let path = mp4("discontinuity", &outs);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(
        frame_count(&path, "v"),
        source_frames(&["disc_a_0.ts", "disc_b_0.ts"])
    );
    assert_continuous(&packets(&path, "v"), FRAME, "video");
}

#[test]
fn without_a_discontinuity_an_unrelated_segment_is_a_reported_jump() {
    let mut tx = Transmuxer::new();
    tx.push_segment(&fixture("disc_a_0.ts"), Some(StartTime::from_seconds(0.0)))
        .unwrap();
    let out = tx.push_segment(&fixture("disc_b_0.ts"), None).unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| matches!(w, Warning::TimestampJump { ms, .. } if *ms > 4_000_000)),
        "{:?}",
        out.warnings
    );
}
