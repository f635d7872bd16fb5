//! Broken input: each case ends in a clear error or in output with a warning, never a
//! panic or a hang, and an error leaves the transmuxer able to go on.

mod common;

use common::*;
use lucarne_ts::{StartTime, Transmuxer, TsError, Warning, MAX_PES_BYTES};
use std::time::{Duration, Instant};

/// The video track's init and fragment written as a file.
fn video_file(test: &str, out: &lucarne_ts::Output) -> std::path::PathBuf {
    let video = out.video.as_ref().unwrap();
    write(
        &scratch(test),
        "video.mp4",
        &[&video.init.as_ref().unwrap().bytes, &video.media],
    )
}

/// The video span of an output.
fn video_span(out: &lucarne_ts::Output) -> lucarne_ts::Span {
    out.video.as_ref().unwrap().span.unwrap()
}

/// Transmuxes one segment on a fresh transmuxer placed at 0.
fn once(bytes: &[u8]) -> Result<lucarne_ts::Output, TsError> {
    Transmuxer::new().push_segment(bytes, Some(StartTime::from_seconds(0.0)))
}

#[test]
fn empty_input_is_an_error() {
    let err = once(&[]).unwrap_err();
    assert_eq!(err, TsError::Empty);
    assert_eq!(err.to_string(), "empty segment: not an MPEG-TS segment");
}

#[test]
fn less_than_a_packet_is_a_truncated_packet() {
    let ts = fixture("avc_aac_0.ts");
    assert_eq!(
        once(&ts[..100]).unwrap_err().to_string(),
        "truncated packet: 100 bytes, an MPEG-TS packet is 188"
    );
}

#[test]
fn a_segment_cut_mid_packet_keeps_the_whole_packets() {
    let ts = fixture("avc_aac_0.ts");
    let cut = 188 * 60 + 77;
    let out = once(&ts[..cut]).unwrap();
    assert!(
        out.warnings.contains(&Warning::TruncatedPacket {
            offset: 188 * 60,
            len: 77
        }),
        "{:?}",
        out.warnings
    );
    assert!(!out.video.unwrap().media.is_empty());
}

#[test]
fn random_garbage_is_not_an_mpeg_ts_segment() {
    let garbage = Rng(7).bytes(64 * 1024);
    let err = once(&garbage).unwrap_err();
    assert!(err.to_string().ends_with("not an MPEG-TS segment"), "{err}");
    // Text (an HTML error page served instead of a segment) has no sync byte at all.
    let html = b"<html><body>404 Not Found</body></html>".repeat(20);
    assert_eq!(once(&html).unwrap_err(), TsError::NoSync(1));
    assert_eq!(
        TsError::NoPat(64).to_string(),
        "no PAT found in the first 64 KB: not an MPEG-TS segment"
    );
}

#[test]
fn garbage_between_packets_is_skipped_and_the_rest_decodes() {
    let packets = split(&fixture("avc_aac_0.ts"));
    let mut ts: Vec<u8> = packets[..40].concat();
    ts.extend_from_slice(&[0x47, 1, 2, 3, 0x47, 0, 0, 0, 9]);
    ts.extend(packets[40..].concat());
    let out = once(&ts).unwrap();
    assert!(
        out.warnings.contains(&Warning::Resync {
            offset: 40 * 188,
            skipped: 9
        }),
        "{:?}",
        out.warnings
    );
    let path = video_file("garbage_between_packets", &out);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(frame_count(&path, "v"), 25);
}

#[test]
fn an_audio_continuity_error_drops_that_pes_and_is_reported() {
    let packets = split(&fixture("avc_aac_0.ts"));
    // The second packet of an audio PES in the middle of the segment.
    let starts: Vec<usize> = (0..packets.len())
        .filter(|&i| pid(&packets[i]) == FFMPEG_AUDIO && packets[i][1] & 0x40 != 0)
        .collect();
    let victim = starts[starts.len() / 2] + 1;
    assert_eq!(pid(&packets[victim]), FFMPEG_AUDIO);
    let ts: Vec<u8> = packets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .flat_map(|(_, p)| p.clone())
        .collect();
    let out = once(&ts).unwrap();
    assert!(
        out.warnings.iter().any(|w| matches!(w, Warning::Continuity { pid: FFMPEG_AUDIO, dropped_bytes, .. } if *dropped_bytes > 0)),
        "{:?}",
        out.warnings
    );
    let message = out.warnings[0].to_string();
    assert!(
        message.starts_with("continuity error on PID 0x101: expected counter"),
        "{message}"
    );
    // The frames of the dropped PES leave a gap; the rest decodes cleanly.
    let clean = once(&fixture("avc_aac_0.ts")).unwrap();
    let samples = |o: &lucarne_ts::Output| o.audio.as_ref().unwrap().span.unwrap().samples;
    assert!(samples(&out) < samples(&clean));
    let audio = out.audio.unwrap();
    let path = write(
        &scratch("audio_continuity"),
        "audio.mp4",
        &[&audio.init.unwrap().bytes, &audio.media],
    );
    assert_eq!(decode_errors(&path), "");
    assert_eq!(
        frame_count(&path, "a"),
        u64::from(audio.span.unwrap().samples)
    );
}

/// The `nal_ref_idc` of the first slice in an Annex-B payload.
fn slice_ref_idc(annexb: &[u8]) -> Option<u8> {
    annexb
        .windows(4)
        .find(|w| w[..3] == [0, 0, 1] && matches!(w[3] & 0x1f, 1 | 5))
        .map(|w| w[3] >> 5)
}

#[test]
fn a_video_continuity_error_drops_that_frame_only() {
    let packets = split(&fixture("avc_aac_0.ts"));
    let video: Vec<usize> = (0..packets.len())
        .filter(|&i| pid(&packets[i]) == FFMPEG_VIDEO)
        .collect();
    // A frame no other refers to (nal_ref_idc 0, a B-frame) spanning several packets:
    // dropping one of its packets loses that frame and nothing else.
    let victim = video
        .windows(2)
        .filter(|w| packets[w[0]][1] & 0x40 != 0 && packets[w[1]][1] & 0x40 == 0)
        .find(|w| slice_ref_idc(&packets[w[0]][4..]) == Some(0))
        .map(|w| w[1])
        .expect("a non-reference frame spanning packets");
    let ts: Vec<u8> = packets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .flat_map(|(_, p)| p.clone())
        .collect();
    let out = once(&ts).unwrap();
    assert!(
        out.warnings.iter().any(|w| matches!(
            w,
            Warning::Continuity {
                pid: FFMPEG_VIDEO,
                ..
            }
        )),
        "{:?}",
        out.warnings
    );
    assert_eq!(video_span(&out).samples, 24);
    let path = video_file("video_continuity", &out);
    assert_eq!(decode_errors(&path), "");
    assert_eq!(frame_count(&path, "v"), 24);
}

#[test]
fn unknown_pids_are_ignored() {
    let packets = split(&fixture("avc_aac_0.ts"));
    let mut rng = Rng(3);
    let mut ts = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        ts.extend_from_slice(p);
        if i % 5 == 0 {
            let payload = rng.bytes(184);
            ts.extend(packet(0x1234, i % 10 == 0, i as u8, &payload));
        }
    }
    let clean = once(&fixture("avc_aac_0.ts")).unwrap();
    let out = once(&ts).unwrap();
    assert_eq!(out.warnings, Vec::<Warning>::new());
    assert_eq!(out, clean);
}

#[test]
fn a_pes_over_the_bound_is_an_error() {
    let mut ts = pat(0x1000);
    ts.extend(pmt(0x1000, &[(0x1b, 0x100, &[])]));
    // A PES with no stated length that never ends.
    let mut first = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
    first.resize(184, 0);
    ts.extend(packet(0x100, true, 0, &first));
    let body = [0u8; 184];
    for i in 0..=(MAX_PES_BYTES / 184) {
        ts.extend(packet(0x100, false, (i + 1) as u8, &body));
    }
    let err = once(&ts).unwrap_err();
    assert_eq!(
        err,
        TsError::PesTooLarge {
            pid: 0x100,
            limit: MAX_PES_BYTES
        }
    );
    assert_eq!(
        err.to_string(),
        "PES on PID 0x100 is larger than 8388608 bytes"
    );
}

#[test]
fn an_hevc_only_program_is_refused_by_name() {
    let ts = with_pmt("avc_aac_0.ts", &[(0x24, FFMPEG_VIDEO, &[])], &[]);
    let err = once(&ts).unwrap_err();
    assert_eq!(
        err,
        TsError::Unsupported {
            stream_type: 0x24,
            name: "HEVC"
        }
    );
    assert_eq!(
        err.to_string(),
        "unsupported stream type 0x24 (HEVC) in PMT"
    );
    // HEVC with AAC: playing the sound under no picture is not playing the stream.
    let ts = with_pmt(
        "avc_aac_0.ts",
        &[(0x24, FFMPEG_VIDEO, &[]), (0x0f, FFMPEG_AUDIO, &[])],
        &[],
    );
    assert_eq!(
        once(&ts).unwrap_err().to_string(),
        "unsupported stream type 0x24 (HEVC) in PMT"
    );
    // AC-3 alone.
    let ts = with_pmt("avc_aac_0.ts", &[(0x81, FFMPEG_AUDIO, &[])], &[]);
    assert_eq!(
        once(&ts).unwrap_err().to_string(),
        "unsupported stream type 0x81 (AC-3) in PMT"
    );
    // Nothing at all.
    let ts = with_pmt("avc_aac_0.ts", &[], &[]);
    assert_eq!(once(&ts).unwrap_err(), TsError::NoMedia);
}

#[test]
fn an_unsupported_audio_next_to_h264_is_ignored_with_a_warning() {
    let ts = with_pmt(
        "avc_aac_0.ts",
        &[(0x1b, FFMPEG_VIDEO, &[]), (0x81, FFMPEG_AUDIO, &[])],
        &[],
    );
    let out = once(&ts).unwrap();
    assert_eq!(
        out.warnings,
        [Warning::IgnoredStream {
            pid: FFMPEG_AUDIO,
            stream_type: 0x81,
            name: "AC-3"
        }]
    );
    assert!(out.video.unwrap().init.is_some());
    assert!(out.audio.is_none());
}

#[test]
fn segments_without_psi_use_the_program_already_known() {
    let strip = |name: &str| -> Vec<u8> {
        split(&fixture(name))
            .into_iter()
            .filter(|p| !matches!(pid(p), 0 | FFMPEG_PMT))
            .flatten()
            .collect()
    };
    let err = once(&strip("avc_aac_0.ts")).unwrap_err();
    assert_eq!(err, TsError::NoPat(16));
    let mut tx = Transmuxer::new();
    let first = tx
        .push_segment(&fixture("avc_aac_0.ts"), Some(StartTime::from_seconds(0.0)))
        .unwrap();
    let second = tx.push_segment(&strip("avc_aac_1.ts"), None).unwrap();
    assert_eq!(second.warnings, Vec::<Warning>::new());
    assert!((video_span(&second).start - video_span(&first).end).abs() < 1e-9);
}

#[test]
fn an_error_leaves_the_transmuxer_as_it_was() {
    let mut tx = Transmuxer::new();
    let first = tx
        .push_segment(&fixture("avc_aac_0.ts"), Some(StartTime::from_seconds(0.0)))
        .unwrap();
    assert!(tx.push_segment(&Rng(1).bytes(5000), None).is_err());
    assert!(tx
        .push_segment(
            &with_pmt("avc_aac_1.ts", &[(0x24, FFMPEG_VIDEO, &[])], &[]),
            None
        )
        .is_err());
    let second = tx.push_segment(&fixture("avc_aac_1.ts"), None).unwrap();
    assert_eq!(second.warnings, Vec::<Warning>::new());
    assert!(second.video.as_ref().unwrap().init.is_none());
    assert!((video_span(&second).start - video_span(&first).end).abs() < 1e-9);
}

/// Checks what an output must satisfy whatever the input: boxes that add up.
fn check_boxes(mut data: &[u8], first: &[u8; 4]) {
    if data.is_empty() {
        return;
    }
    assert_eq!(&data[4..8], first);
    while !data.is_empty() {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && size <= data.len(),
            "box size {size} of {}",
            data.len()
        );
        data = &data[size..];
    }
}

#[test]
fn random_and_mutated_input_never_panics_or_hangs() {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rng = Rng(0x5eed_1ca2_0e75);
    let fixtures: Vec<Vec<u8>> = ["avc_aac_0.ts", "avc_mp3_1.ts", "wrap_1.ts", "disc_b_0.ts"]
        .iter()
        .map(|n| fixture(n))
        .collect();
    let mut steady = Transmuxer::new();
    let mut outputs = 0;
    for round in 0..600 {
        let input = match round % 3 {
            // Pure noise, sometimes with sync bytes where packets would start.
            0 => {
                let len = rng.below(4 * 188 * 8);
                let mut b = rng.bytes(len);
                if round % 2 == 0 {
                    for i in (0..b.len()).step_by(188) {
                        b[i] = 0x47;
                    }
                }
                b
            }
            // A real segment with bytes flipped.
            1 => {
                let mut b = fixtures[rng.below(fixtures.len())].clone();
                for _ in 0..1 + rng.below(40) {
                    let at = rng.below(b.len());
                    b[at] = rng.next() as u8;
                }
                b
            }
            // A real segment cut and spliced with another.
            _ => {
                let a = &fixtures[rng.below(fixtures.len())];
                let b = &fixtures[rng.below(fixtures.len())];
                let (x, y) = (rng.below(a.len()), rng.below(b.len()));
                [&a[..x], &b[y..]].concat()
            }
        };
        let start = (round % 7 == 0).then(|| StartTime::from_ticks(rng.next() % (1 << 40)));
        for tx in [&mut steady, &mut Transmuxer::new()] {
            if let Ok(out) = tx.push_segment(&input, start) {
                outputs += 1;
                for t in [out.video, out.audio].into_iter().flatten() {
                    check_boxes(&t.media, b"moof");
                    if let Some(init) = &t.init {
                        check_boxes(&init.bytes, b"ftyp");
                    }
                    if let Some(s) = t.span {
                        assert!(
                            s.start.is_finite() && s.end >= s.start && s.samples > 0,
                            "{s:?}"
                        );
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "600 inputs should take seconds, not a minute"
        );
    }
    assert!(
        outputs > 300,
        "mutations of real segments mostly still transmux: {outputs}"
    );
}
