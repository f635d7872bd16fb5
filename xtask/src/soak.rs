//! `cargo xtask soak [--minutes N] [soak options]`: builds what the soak plays (the
//! widget into dist/, the release server), installs the browsers and ffmpeg, then runs
//! the soak (`tests/e2e/src/bin/soak.rs`), whose exit code it passes on.
//!
//! Only orchestration lives here; what the soak runs, measures and decides is in the
//! binary's module doc.

use std::process::Command;

use anyhow::Result;

use crate::dist::dist;
use crate::shell::{root, run, target_dir};
use crate::tools::ensure_test_tools;

/// Runs the soak with `args` (passed through: `--minutes N`, `--chat-viewers N`, ...).
pub(crate) fn soak(args: &[&str]) -> Result<()> {
    ensure_test_tools()?;
    dist()?;
    run(Command::new("cargo").args(["build", "--release", "-p", "lucarne-server"]))?;
    run(Command::new("cargo")
        .args([
            "run",
            "--release",
            "-p",
            "lucarne-e2e",
            "--bin",
            "soak",
            "--",
        ])
        .args(args)
        .env(
            "LUCARNE_SERVER_BIN",
            target_dir().join("release/lucarne-server"),
        )
        .env("LUCARNE_DIST", root().join("dist")))
}
