//! ffmpeg-made TS segments transmuxed, then judged by ffmpeg: the output must decode
//! without a single error, keep every frame, and lay segments on one continuous
//! timeline across the 33-bit wrap and discontinuities, audio starting with video.

mod common;

use common::*;
use lucarne_ts::{Output, Span, StartTime, TrackOutput, Transmuxer, Warning};
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

/// Writes each track's outputs as one file (each init, then its fragments), as its
/// SourceBuffer would receive them: `(video, audio)`.
fn files(test: &str, outs: &[Output]) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let track = |pick: fn(&Output) -> Option<&TrackOutput>| -> Vec<u8> {
        let mut bytes = Vec::new();
        for t in outs.iter().filter_map(pick) {
            if let Some(init) = &t.init {
                bytes.extend_from_slice(&init.bytes);
            }
            bytes.extend_from_slice(&t.media);
        }
        bytes
    };
    let video = write(&dir, "video.mp4", &[&track(|o| o.video.as_ref())]);
    let audio = write(&dir, "audio.mp4", &[&track(|o| o.audio.as_ref())]);
    (video, audio)
}

/// A track's span in an output.
fn span(t: &Option<TrackOutput>) -> Span {
    t.as_ref()
        .and_then(|t| t.span)
        .expect("the track has samples")
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
        let (a, b) = (span(&w[0].video), span(&w[1].video));
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
    let video = outs[0]
        .video
        .as_ref()
        .unwrap()
        .init
        .as_ref()
        .expect("first output has a video init segment");
    assert_eq!(video.codec, "avc1.64000b");
    assert_eq!(video.size, Some((160, 90)));
    assert_eq!(video.mime(), "video/mp4; codecs=\"avc1.64000b\"");
    let audio = outs[0]
        .audio
        .as_ref()
        .unwrap()
        .init
        .as_ref()
        .expect("and an audio one");
    assert_eq!(audio.mime(), "audio/mp4; codecs=\"mp4a.40.2\"");
    assert!(
        outs[1].video.as_ref().unwrap().init.is_none(),
        "same configuration, no new init segment"
    );
    assert!(outs[1].audio.as_ref().unwrap().init.is_none());

    let (video, audio) = files("b_frames_aac", &outs);
    assert_eq!(decode_errors(&video), "");
    assert_eq!(decode_errors(&audio), "");
    assert_eq!(codec(&video, "v"), "h264,160,90");
    assert_eq!(codec(&audio, "a"), "aac");
    assert_eq!(frame_count(&video, "v"), source_frames(&names));

    let v = packets(&video, "v");
    assert!(
        v.iter().any(|p| p.pts > p.dts + FRAME / 2.0),
        "B-frames have composition offsets"
    );
    let (v_start, v_end) = assert_continuous(&v, 0.001, "video");
    let (a_start, a_end) = assert_continuous(&packets(&audio, "a"), 0.001, "audio");
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
        span(&outs[0].video).samples + span(&outs[1].video).samples,
        50
    );
    assert!(
        (outs[0].start().unwrap() - a_start).abs() < 1e-6
            && (outs[1].end().unwrap() - a_end.max(v_end)).abs() < 1e-6
    );
}

#[test]
fn h264_with_mp3_decodes_as_mp3_in_mp4_or_raw() {
    let names = ["avc_mp3_0.ts", "avc_mp3_1.ts"];
    let (_, outs) = transmux(&[
        (names[0], Some(StartTime::from_seconds(10.0))),
        (names[1], None),
    ]);
    assert_clean(&outs);
    let init = outs[0].audio.as_ref().unwrap().init.as_ref().unwrap();
    assert_eq!(init.mime(), "audio/mp4; codecs=\"mp3\"");

    let (video, audio) = files("mp3", &outs);
    assert_eq!(decode_errors(&video), "");
    assert_eq!(decode_errors(&audio), "");
    assert_eq!(codec(&audio, "a"), "mp3");
    assert_eq!(frame_count(&video, "v"), source_frames(&names));
    let source_audio_frames: u64 = names
        .iter()
        .map(|n| frame_count(&fixture_path(n), "a"))
        .sum();
    assert_eq!(frame_count(&audio, "a"), source_audio_frames);
    let (v_start, _) = assert_continuous(&packets(&video, "v"), 0.001, "video");
    let (a_start, _) = assert_continuous(&packets(&audio, "a"), 0.001, "audio");
    assert_av_sync(names[0], (v_start, a_start));
    // No decode time below 10 s is needed here: the start is exactly where asked.
    assert!(
        (a_start.min(v_start) - 10.0).abs() < 0.0001,
        "starts at {a_start}/{v_start}"
    );
    assert_segments_follow(&outs);

    // Raw MPEG audio frames for `audio/mpeg` SourceBuffers, with the same timing.
    let mut tx = Transmuxer::new().raw_mp3(true);
    let raw: Vec<Output> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            tx.push_segment(&fixture(n), (i == 0).then(|| StartTime::from_seconds(10.0)))
                .unwrap()
        })
        .collect();
    let init = raw[0].audio.as_ref().unwrap().init.as_ref().unwrap();
    assert_eq!(
        (init.mime(), init.bytes.len()),
        ("audio/mpeg".to_string(), 0)
    );
    for (r, o) in raw.iter().zip(&outs) {
        assert_eq!(
            r.audio.as_ref().unwrap().span,
            o.audio.as_ref().unwrap().span
        );
        assert_eq!(
            r.video.as_ref().unwrap().span,
            o.video.as_ref().unwrap().span
        );
    }
    let bytes: Vec<u8> = raw
        .iter()
        .flat_map(|o| o.audio.as_ref().unwrap().media.clone())
        .collect();
    let path = write(&scratch("raw_mp3"), "audio.mp3", &[&bytes]);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(frame_count(&path, "a"), source_audio_frames);
}

#[test]
fn timestamps_stay_continuous_across_the_33_bit_wrap() {
    let names = ["wrap_0.ts", "wrap_1.ts", "wrap_2.ts"];
    // Kept on the stream's own clock (no start given): the output counts on past 2^33.
    let (_, outs) = transmux(&[(names[0], None), (names[1], None), (names[2], None)]);
    assert_clean(&outs);
    let wrap = (1u64 << 33) as f64 / 90_000.0;
    assert!(span(&outs[0].video).start < wrap && span(&outs[2].video).start > wrap);
    let (video, audio) = files("wrap", &outs);
    assert_eq!(decode_errors(&video), "");
    assert_eq!(decode_errors(&audio), "");
    assert_eq!(frame_count(&video, "v"), source_frames(&names));
    let (v_start, v_end) = assert_continuous(&packets(&video, "v"), 0.001, "video");
    let (a_start, _) = assert_continuous(&packets(&audio, "a"), 0.001, "audio");
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
    let (video, audio) = files("wrap_from_zero", &outs);
    assert_eq!(decode_errors(&video), "");
    assert_eq!(decode_errors(&audio), "");
    let (v_start, v_end) = assert_continuous(&packets(&video, "v"), 0.001, "video");
    assert!(
        v_start < 3.0 * FRAME && (v_end - v_start - 3.0).abs() < 0.001,
        "{v_start}..{v_end}"
    );
    assert_continuous(&packets(&audio, "a"), 0.001, "audio");
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
        (span(&b.video).start - span(&a.video).end).abs() < FRAME,
        "{:?} then {:?}",
        a.video,
        b.video
    );
    let expected = start_time(&fixture_path("disc_b_0.ts"), "a")
        - start_time(&fixture_path("disc_b_0.ts"), "v");
    let av = span(&b.audio).start - span(&b.video).start;
    assert!((av - expected).abs() < 0.001, "A/V offset {av}");

    let (video, audio) = files("discontinuity", &outs);
    assert_eq!(decode_errors(&video), "");
    assert_eq!(decode_errors(&audio), "");
    assert_eq!(
        frame_count(&video, "v"),
        source_frames(&["disc_a_0.ts", "disc_b_0.ts"])
    );
    assert_continuous(&packets(&video, "v"), FRAME, "video");
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

#[test]
fn a_rendition_switch_hands_out_a_new_video_init_on_the_same_timeline() {
    // avc_aac at 160x90, then the next segment of the 320x180 rendition (ABR).
    let (_, outs) = transmux(&[
        ("avc_aac_0.ts", Some(StartTime::from_seconds(0.0))),
        ("ladder_1.ts", None),
    ]);
    assert_clean(&outs);
    let switched = outs[1]
        .video
        .as_ref()
        .unwrap()
        .init
        .as_ref()
        .expect("a new SPS, a new init segment");
    assert_eq!(switched.size, Some((320, 180)));
    assert!(switched.mime().starts_with("video/mp4; codecs=\"avc1.64"));
    assert!(
        outs[1].audio.as_ref().unwrap().init.is_none(),
        "the audio did not change"
    );
    assert_segments_follow(&outs);
    let (_, audio) = files("rendition_switch", &outs);
    // Each rendition's part decodes on its own (ffmpeg reads one moov per file).
    let second = write(
        &scratch("rendition_switch_320"),
        "video.mp4",
        &[&switched.bytes, &outs[1].video.as_ref().unwrap().media],
    );
    assert_eq!(decode_errors(&second), "");
    assert_eq!(codec(&second, "v"), "h264,320,180");
    assert_eq!(frame_count(&second, "v"), 25);
    assert_eq!(decode_errors(&audio), "");
    assert_continuous(&packets(&audio, "a"), 0.001, "audio");
}

#[test]
fn audio_only_and_video_only_programs_play_what_they_have() {
    let audio_only = with_pmt("avc_aac_0.ts", &[(0x0f, FFMPEG_AUDIO, &[])], &[]);
    let out = Transmuxer::new()
        .push_segment(&audio_only, Some(StartTime::from_seconds(0.0)))
        .unwrap();
    assert!(out.video.is_none());
    let audio = out.audio.unwrap();
    assert_eq!(
        audio.init.as_ref().unwrap().mime(),
        "audio/mp4; codecs=\"mp4a.40.2\""
    );
    assert_eq!(
        audio.span.unwrap().start,
        0.0,
        "nothing else to start before"
    );

    let video_only = with_pmt("avc_aac_0.ts", &[(0x1b, FFMPEG_VIDEO, &[])], &[]);
    let out = Transmuxer::new()
        .push_segment(&video_only, Some(StartTime::from_seconds(0.0)))
        .unwrap();
    assert!(out.audio.is_none());
    let video = out.video.unwrap();
    assert_eq!(video.span.unwrap().samples, 25);
    assert_eq!(
        video.span.unwrap().start,
        2.0 * FRAME,
        "B-frames: decoded 2 frames before shown"
    );
}
