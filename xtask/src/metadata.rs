//! The workspace's test targets, read from `cargo metadata` instead of repeated here:
//! a `[[test]]` added to a manifest (or a file added to `tests/e2e/tests/`) runs in its
//! tier without touching xtask.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shell::root;

/// One test target (`--test <name>`) of a package.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TestTarget {
    pub(crate) name: String,
    /// Its source file, absolute: what tells a tier's targets apart within a package.
    pub(crate) src_path: PathBuf,
}

/// The workspace's metadata (`cargo metadata --format-version 1 --no-deps`).
pub(crate) fn workspace() -> Result<Value> {
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output()
        .context("cannot run cargo metadata")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")
}

/// The test targets of `package` whose source is under `dir` (all of them when `dir`
/// is `None`), in manifest order.
pub(crate) fn test_targets(
    metadata: &Value,
    package: &str,
    dir: Option<&Path>,
) -> Result<Vec<TestTarget>> {
    let pkg = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == package)
        .with_context(|| format!("no package {package} in the workspace"))?;
    let targets = pkg["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"))
        })
        .filter_map(|t| {
            Some(TestTarget {
                name: t["name"].as_str()?.to_owned(),
                src_path: PathBuf::from(t["src_path"].as_str()?),
            })
        })
        .filter(|t| dir.is_none_or(|d| t.src_path.starts_with(d)))
        .collect();
    Ok(targets)
}

/// `--test a --test b ...` for `targets`.
pub(crate) fn test_args(targets: &[TestTarget]) -> Vec<&str> {
    targets
        .iter()
        .flat_map(|t| ["--test", t.name.as_str()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = r#"{"packages": [
      {"name": "lucarne", "targets": [
        {"kind": ["cdylib", "rlib"], "name": "lucarne", "src_path": "/w/src/lib.rs"},
        {"kind": ["test"], "name": "fuzz_corpus", "src_path": "/w/tests/native/fuzz_corpus.rs"},
        {"kind": ["test"], "name": "mse", "src_path": "/w/tests/wasm/mse.rs"},
        {"kind": ["test"], "name": "wire", "src_path": "/w/tests/wasm/wire.rs"},
        {"kind": ["custom-build"], "name": "build-script-build", "src_path": "/w/build.rs"}
      ]},
      {"name": "lucarne-e2e", "targets": [
        {"kind": ["lib"], "name": "lucarne_e2e", "src_path": "/w/tests/e2e/src/lib.rs"},
        {"kind": ["bin"], "name": "bench", "src_path": "/w/tests/e2e/src/bin/bench.rs"},
        {"kind": ["test"], "name": "embed", "src_path": "/w/tests/e2e/tests/embed.rs"},
        {"kind": ["test"], "name": "ingest", "src_path": "/w/tests/e2e/tests/ingest.rs"}
      ]}
    ]}"#;

    fn names(targets: &[TestTarget]) -> Vec<&str> {
        targets.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn the_wasm_tier_is_the_test_targets_under_tests_wasm() {
        let m: Value = serde_json::from_str(METADATA).unwrap();
        let wasm = test_targets(&m, "lucarne", Some(Path::new("/w/tests/wasm"))).unwrap();
        assert_eq!(names(&wasm), ["mse", "wire"]);
        assert_eq!(test_args(&wasm), ["--test", "mse", "--test", "wire"]);
    }

    #[test]
    fn a_new_test_file_joins_its_tier() {
        let m: Value = serde_json::from_str(METADATA).unwrap();
        let e2e = test_targets(&m, "lucarne-e2e", None).unwrap();
        assert_eq!(names(&e2e), ["embed", "ingest"]);
    }

    #[test]
    fn an_unknown_package_is_an_error() {
        let m: Value = serde_json::from_str(METADATA).unwrap();
        assert!(test_targets(&m, "lucarne-gone", None).is_err());
    }

    #[test]
    fn reads_this_workspace() {
        let m = workspace().unwrap();
        let wasm = test_targets(&m, "lucarne", Some(&root().join("tests/wasm"))).unwrap();
        assert!(names(&wasm).contains(&"mse"), "{wasm:?}");
        assert!(!names(&wasm).contains(&"fuzz_corpus"), "{wasm:?}");
    }
}
