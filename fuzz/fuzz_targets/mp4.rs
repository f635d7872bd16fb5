//! The widget's MP4 box reader (`lucarne::player::mp4`): init segments and fragments
//! from any origin.
//!
//! Input: one buffer, read both as an init segment and as a fragment (with the tracks
//! it declares, or with a typical video + audio pair when it declares none).
//!
//! Beyond "no panic": an init segment has a codec per readable track and its MIME type
//! names them; a fragment's start time is finite and not negative.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucarne::player::mp4::{self, InitInfo};

fuzz_target!(|data: &[u8]| {
    let _ = mp4::is_init_segment(data);
    let info = match mp4::parse_init(data) {
        Some(info) => {
            assert!(!info.codecs.is_empty());
            assert!(info.timescales.len() >= info.codecs.len());
            let mime = info.mime();
            assert!(info.codecs.iter().all(|c| mime.contains(c.as_str())), "{mime}");
            info
        }
        None => InitInfo {
            codecs: vec!["avc1.64001f".into()],
            timescales: vec![(1, 90_000), (2, 48_000)],
            has_video: true,
        },
    };
    if let Some(t) = mp4::fragment_start(data, &info) {
        assert!(t.is_finite() && t >= 0.0, "{t}");
    }
});
