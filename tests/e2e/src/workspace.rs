//! Where things are: the workspace root and the paths the harness reads from it
//! (server binary, dist/, static/, media/, bench/), the artifacts folder, and the
//! lock that keeps browser tests from running two at a time.

use std::path::{Path, PathBuf};

use tokio::sync::{Mutex, MutexGuard};

/// The workspace root (this crate lives in `tests/e2e`).
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// `tests/e2e/artifacts/<name>`: screenshots and logs of a failed test (gitignored).
pub fn artifacts_dir(name: &str) -> PathBuf {
    root().join("tests/e2e/artifacts").join(name)
}

/// `$var` if set and not empty, else `default`.
pub fn env_path(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => default(),
    }
}

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Held by every browser test: one browser, one server and one ffmpeg at a time,
/// even when a test binary holds several tests (machines have 2 cores, and
/// timing assertions need them).
pub async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}
