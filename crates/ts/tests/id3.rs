//! ID3 timed metadata (ffmpeg 5.1 cannot mux it from lavfi sources, so it is added to
//! an ffmpeg-made segment here): it comes out as an event with its time on the output
//! timeline, and does not disturb the media.

mod common;

use common::*;
use lucarne_ts::{StartTime, Transmuxer, Warning};

/// The first video PTS of `avc_aac_0.ts` (ffprobe: 1.48 s), the earliest presented.
const FIRST_VIDEO_PTS: u64 = 133_200;

/// `avc_aac_0.ts` with an ID3 stream of type `stream_type` (with `descriptors`) whose
/// one PES carries `payload` 0.5 s after the first video frame.
fn with_id3(stream_type: u8, descriptors: &[u8], payload: &[u8]) -> Vec<u8> {
    with_pmt(
        "avc_aac_0.ts",
        &[
            (0x1b, FFMPEG_VIDEO, &[]),
            (0x0f, FFMPEG_AUDIO, &[]),
            (stream_type, 0x102, descriptors),
        ],
        &pes(0x102, 0xbd, FIRST_VIDEO_PTS + 45_000, payload, 0),
    )
}

#[test]
fn id3_timed_metadata_comes_out_with_its_time() {
    let tag = id3_tag("title", "lucarne live");
    // Apple's layout: stream type 0x15 with a metadata descriptor naming "ID3 ".
    let metadata_descriptor = [
        0x26, 12, 0xff, 0xff, b'I', b'D', b'3', b' ', 0xff, b'I', b'D', b'3', b' ', 0,
    ];
    // And private data (0x06) with a registration descriptor.
    let registration = [0x05, 4, b'I', b'D', b'3', b' '];
    let plain = Transmuxer::new()
        .push_segment(&fixture("avc_aac_0.ts"), Some(StartTime::from_seconds(0.0)))
        .unwrap();
    for (stream_type, descriptors) in [(0x15, &metadata_descriptor[..]), (0x06, &registration[..])]
    {
        let out = Transmuxer::new()
            .push_segment(
                &with_id3(stream_type, descriptors, &tag),
                Some(StartTime::from_seconds(0.0)),
            )
            .unwrap();
        assert_eq!(out.warnings, Vec::<Warning>::new());
        assert_eq!(out.id3.len(), 1, "stream type {stream_type:#x}");
        assert_eq!(out.id3[0].data, tag);
        let expected = out.video.as_ref().unwrap().span.unwrap().start + 0.5;
        assert!(
            (out.id3[0].pts_seconds - expected).abs() < 1e-6,
            "{} vs {expected}",
            out.id3[0].pts_seconds
        );
        assert_eq!(
            (&out.video, &out.audio),
            (&plain.video, &plain.audio),
            "metadata does not change the media"
        );
    }
}

#[test]
fn private_data_without_the_id3_registration_is_not_metadata() {
    let out = Transmuxer::new()
        .push_segment(&with_id3(0x06, &[], &id3_tag("a", "b")), None)
        .unwrap();
    assert!(out.id3.is_empty());
}

#[test]
fn metadata_that_is_not_id3_is_dropped_with_a_warning() {
    let out = Transmuxer::new()
        .push_segment(&with_id3(0x15, &[], b"not an id3 tag"), None)
        .unwrap();
    assert!(out.id3.is_empty());
    assert_eq!(out.warnings, [Warning::NotId3 { pid: 0x102 }]);
}
