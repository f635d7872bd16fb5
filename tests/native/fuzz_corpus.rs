//! Every committed fuzz input of the widget's decoders (`fuzz/corpus/<target>/`, and the
//! reproducers of fixed crashes in `fuzz/regressions/<target>/`) replayed through the
//! decoder in a plain `cargo test`, with the fuzz targets' main invariants: CI exercises
//! them on every run, without cargo-fuzz or a sanitizer.
#![cfg(not(target_arch = "wasm32"))]

use lucarne::chat::wire;
use lucarne::player::mp4::{self, InitInfo};
use lucarne::player::playlist::{self, Playlist};
use std::path::{Path, PathBuf};

/// The inputs of one target: corpus first, then regressions.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap();
            out.push((p, data));
        }
    }
    assert!(
        !out.is_empty(),
        "no committed inputs for fuzz target {target}"
    );
    out
}

#[test]
fn every_playlist_fuzz_input_parses_or_is_refused_without_a_panic() {
    for (path, data) in inputs("playlist") {
        let text = String::from_utf8_lossy(&data);
        let lines = text.lines().count();
        match playlist::parse(&text) {
            Ok(Playlist::Multivariant(v)) => assert!(v.len() <= lines, "{path:?}"),
            Ok(Playlist::Media(m)) => {
                assert!(m.segments.len() <= lines, "{path:?}");
                for (i, s) in m.segments.iter().enumerate() {
                    assert_eq!(s.msn, m.media_sequence + i as u64, "{path:?}");
                    assert_eq!(m.get(s.msn), Some(s), "{path:?}");
                }
                let _ = (m.end_msn(), m.live_start(3.0), m.duration_from(0));
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn every_mp4_fuzz_input_is_read_or_refused_without_a_panic() {
    let typical = InitInfo {
        codecs: vec!["avc1.64001f".into()],
        timescales: vec![(1, 90_000), (2, 48_000)],
        has_video: true,
    };
    for (path, data) in inputs("mp4") {
        let info = mp4::parse_init(&data);
        if let Some(i) = &info {
            assert!(!i.codecs.is_empty(), "{path:?}");
            let _ = i.mime();
        }
        if let Some(t) = mp4::fragment_start(&data, info.as_ref().unwrap_or(&typical)) {
            assert!(t.is_finite() && t >= 0.0, "{path:?}: {t}");
        }
    }
}

#[test]
fn every_chat_wire_fuzz_input_decodes_as_serde_does_or_is_refused() {
    for (path, data) in inputs("chat_wire") {
        let Ok(frame) = std::str::from_utf8(&data) else {
            continue;
        };
        let decoded = wire::decode(frame);
        assert_eq!(
            decoded.is_some(),
            wire::decode_frame(frame).is_some(),
            "{path:?}"
        );
        if let Some(m) = decoded {
            let again = serde_json::to_string(&m).unwrap();
            assert_eq!(wire::decode(&again), Some(m), "{path:?}");
        }
    }
}
