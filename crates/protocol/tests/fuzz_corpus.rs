//! Every committed fuzz input of the protocol's JSON (`fuzz/corpus/protocol_json/`,
//! `fuzz/corpus/chat_wire/` and the reproducers in `fuzz/regressions/`) through serde in
//! a plain `cargo test`: what decodes re-encodes to JSON that decodes to the same value.

use lucarne_protocol::{ClientMessage, ServerMessage};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

fn inputs() -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in [
        "corpus/protocol_json",
        "corpus/chat_wire",
        "regressions/protocol_json",
        "regressions/chat_wire",
    ] {
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
    assert!(!out.is_empty(), "no committed protocol fuzz inputs");
    out
}

fn stable<T: Serialize + DeserializeOwned + PartialEq + Debug>(path: &Path, frame: &[u8]) -> bool {
    let Ok(first) = serde_json::from_slice::<T>(frame) else {
        return false;
    };
    let text = serde_json::to_string(&first).unwrap();
    let second: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {text}: {e}"));
    assert_eq!(first, second, "{path:?}");
    assert_eq!(serde_json::to_string(&second).unwrap(), text, "{path:?}");
    true
}

#[test]
fn every_protocol_fuzz_input_round_trips_or_is_refused() {
    let mut decoded = 0;
    for (path, data) in inputs() {
        decoded += usize::from(stable::<ClientMessage>(&path, &data));
        decoded += usize::from(stable::<ServerMessage>(&path, &data));
    }
    assert!(decoded > 0, "the corpus holds no valid frame");
}
