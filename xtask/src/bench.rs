//! `cargo xtask bench playback | chat | ingest | abr | golive | scale`: builds what a benchmark
//! measures (the widget, the release server), installs its tools, then runs the benchmark binary.
//! What each benchmark does and reports is in its binary's module doc
//! (`tests/e2e/src/bin/bench.rs`, `bench_ingest.rs`, `bench_abr.rs`, `bench_golive.rs`, `bench/chat`;
//! `scale` runs `bench/chat` with `--scale`, then `bench_scale.rs`).

use anyhow::{bail, Result};
use std::process::Command;

use crate::dist::dist;
use crate::shell::{root, run, target_dir};
use crate::tools::ensure_test_tools;

/// Runs the benchmark named by `args[0]` with the rest of `args`.
pub(crate) fn bench(args: &[&str]) -> Result<()> {
    match args.first() {
        Some(&"playback") => {
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
                    "bench",
                    "--",
                ])
                .args(args)
                .env(
                    "LUCARNE_SERVER_BIN",
                    target_dir().join("release/lucarne-server"),
                )
                .env("LUCARNE_DIST", root().join("dist")))
        }
        // Each runs its binary, bench_{name}, with the rest of the arguments.
        Some(&name @ ("ingest" | "abr" | "golive")) => {
            ensure_test_tools()?;
            dist()?;
            run(Command::new("cargo").args(["build", "--release", "-p", "lucarne-server"]))?;
            run(Command::new("cargo")
                .args(["run", "--release", "-p", "lucarne-e2e", "--bin"])
                .arg(format!("bench_{name}"))
                .arg("--")
                .args(&args[1..])
                .env(
                    "LUCARNE_SERVER_BIN",
                    target_dir().join("release/lucarne-server"),
                )
                .env("LUCARNE_DIST", root().join("dist")))
        }
        Some(&"chat") => {
            let node_modules = root().join("bench/chat/node_modules");
            if !node_modules.exists() {
                run(Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                    .arg(root().join("bench/chat")))?;
            }
            run(Command::new("cargo").args([
                "build",
                "--release",
                "-p",
                "lucarne-server",
                "-p",
                "lucarne-bench-chat",
            ]))?;
            run(Command::new(target_dir().join("release/lucarne-bench-chat")).args(&args[1..]))
        }
        Some(&"scale") => {
            // The two chat ramps are those of `bench chat` (at most 90 s each, and a step);
            // the cross-node comparison and the media figures take about 75 s more.
            ensure_test_tools()?;
            dist()?;
            run(Command::new("cargo").args([
                "build",
                "--release",
                "-p",
                "lucarne-server",
                "-p",
                "lucarne-bench-chat",
            ]))?;
            run(Command::new("cargo").args([
                "build",
                "--release",
                "-p",
                "lucarne-e2e",
                "--bin",
                "bench_scale",
            ]))?;
            let mut chat = Command::new(target_dir().join("release/lucarne-bench-chat"));
            chat.arg("--scale").args(&args[1..])
                .current_dir(root());
            run(&mut chat)?;
            run(Command::new(target_dir().join("release/bench_scale"))
                .env(
                    "LUCARNE_SERVER_BIN",
                    target_dir().join("release/lucarne-server"),
                )
                .env("LUCARNE_DIST", root().join("dist"))
                .current_dir(root()))
        }
        _ => bail!(
            "usage: cargo xtask bench playback [--seconds N] | bench chat | bench ingest [--seconds N] [--streams N] | bench abr [--schedule kbps:s,kbps:s,...] | bench golive [--seconds N] [--size WxH] | bench scale [--ramp-seconds N] [--max-viewers N]"
        ),
    }
}
