//! Every committed fuzz input of the transmuxer (`fuzz/corpus/ts/`, and the
//! reproducers of fixed crashes in `fuzz/regressions/ts/` once there are any) fed as the
//! fuzz target feeds them (`fuzz/fuzz_targets/ts.rs`), in a plain `cargo test`.

use lucarne_ts::{StartTime, Transmuxer};
use std::path::{Path, PathBuf};

fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus/ts", "regressions/ts"] {
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
    assert!(!out.is_empty(), "no committed ts fuzz inputs");
    out
}

#[test]
fn every_committed_fuzz_input_is_handled_without_a_panic() {
    for (path, data) in inputs() {
        let (first, second) = data.split_at(data.len() / 2);
        let mut tx = Transmuxer::new().raw_mp3(data.first().is_some_and(|b| b & 2 != 0));
        for (i, segment) in [first, second].into_iter().enumerate() {
            let discontinuity = (i == 1 && data.first().is_some_and(|b| b & 1 != 0))
                .then(|| StartTime::from_seconds(10.0));
            match tx.push_segment(segment, discontinuity) {
                Ok(out) => {
                    for track in [&out.video, &out.audio].into_iter().flatten() {
                        if let Some(span) = &track.span {
                            assert!(span.end >= span.start, "{}: {span:?}", path.display());
                        }
                    }
                }
                Err(e) => assert!(!e.to_string().is_empty(), "{}", path.display()),
            }
        }
    }
}
