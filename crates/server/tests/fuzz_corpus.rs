//! Every committed fuzz input of the RTMP remuxer (`fuzz/corpus/remux/`, and the
//! reproducers of fixed crashes in `fuzz/regressions/remux/`) fed through
//! `media::remux` as the fuzz target feeds it, in a plain `cargo test`.

use bytes::Bytes;
use lucarne_server::media::remux::{Output, RemuxError, Remuxer};
use std::path::{Path, PathBuf};

fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus/remux", "regressions/remux"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap();
            out.push((p, data));
        }
    }
    assert!(!out.is_empty(), "no committed remux fuzz inputs");
    out
}

/// Feeds FLV tags (after an optional FLV header; a last tag cut short keeps what there
/// is) as the ingest does: a malformed tag is dropped, another error ends the publish.
fn feed(data: &[u8]) -> Vec<Output> {
    let mut rest = data
        .strip_prefix(b"FLV")
        .map_or(data, |d| d.get(10..).unwrap_or(&[]));
    let mut r = Remuxer::new(1_000_000, 7, 100);
    let mut out = Vec::new();
    while rest.len() >= 11 {
        let kind = rest[0] & 0x1f;
        let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
        let ts = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
        let end = (11 + size).min(rest.len());
        let body = Bytes::copy_from_slice(&rest[11..end]);
        rest = rest.get(end + 4..).unwrap_or(&[]);
        let result = match kind {
            8 => r.audio(ts, body),
            9 => r.video(ts, body),
            _ => continue,
        };
        match result {
            Ok(o) => out.extend(o),
            Err(RemuxError::Malformed { .. }) => {}
            Err(_) => break,
        }
    }
    out.extend(r.flush().expect("flush"));
    out
}

#[test]
fn every_remux_fuzz_input_is_remuxed_or_refused_without_a_panic() {
    for (path, data) in inputs() {
        let out = feed(&data);
        if let Some(first) = out.iter().find(|o| !matches!(o, Output::Warning(_))) {
            assert!(
                matches!(first, Output::Init(_)),
                "{path:?}: a chunk before the init segment"
            );
        }
        for o in &out {
            if let Output::Chunk(c) = o {
                assert!(c.start.is_finite() && c.duration.is_finite() && c.duration >= 0.0);
                assert!(c.segment_msn >= 7, "{path:?}");
            }
        }
    }
}
