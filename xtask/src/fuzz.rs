//! `cargo xtask fuzz [--seconds N] [--rss-mb M] [--update-corpus] [target...]`: runs every
//! fuzz target of `fuzz/` (cargo-fuzz, libFuzzer) for a bounded time, one after the
//! other on one core, and fails if any of them crashed.
//!
//! Each target starts from its committed corpus (`fuzz/corpus/<target>/`) and every
//! reproducer of a fixed crash (`fuzz/regressions/<target>/`); what it discovers goes to
//! a scratch corpus under `fuzz/target/`, so a run leaves the tree clean.
//! `--update-corpus` then merges the scratch corpus into the committed one with
//! libFuzzer's `-merge=1` (only inputs that add coverage are kept).
//!
//! Prints, per target, `fuzz_<target>_execs: N`, `fuzz_<target>_crashes: N` and
//! `fuzz_<target>_corpus: N` (committed corpus files). A crash leaves its input in
//! `fuzz/artifacts/<target>/`; `cargo fuzz run <target> <file>` replays it.
//!
//! cargo-fuzz needs nightly-only rustc flags (`-Zsanitizer`, coverage instrumentation);
//! `RUSTC_BOOTSTRAP=1` lets the pinned stable toolchain accept them, as it does for the
//! widget's `-Zbuild-std` (see fuzz/README.md).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The targets in `fuzz/fuzz_targets/`, in the order they run.
const TARGETS: [&str; 6] = [
    "remux",
    "playlist",
    "mp4",
    "chat_wire",
    "protocol_json",
    "ts",
];
/// cargo-fuzz from crates.io, as the other tools are.
const CARGO_FUZZ: &str = "0.13.2";

struct Options {
    seconds: u64,
    rss_mb: u64,
    update_corpus: bool,
    targets: Vec<String>,
}

fn options(args: &[&str]) -> Result<Options> {
    let mut o = Options {
        seconds: 60,
        rss_mb: 2048,
        update_corpus: false,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--seconds" => o.seconds = it.next().context("--seconds N")?.parse()?,
            "--rss-mb" => o.rss_mb = it.next().context("--rss-mb M")?.parse()?,
            "--update-corpus" => o.update_corpus = true,
            t if TARGETS.contains(&t) => o.targets.push(t.to_string()),
            other => bail!(
                "unknown fuzz argument {other:?} (targets: {})",
                TARGETS.join(", ")
            ),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok(o)
}

fn fuzz_dir() -> PathBuf {
    crate::shell::root().join("fuzz")
}

fn cargo_fuzz() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("fuzz")
        .env("RUSTC_BOOTSTRAP", "1")
        .current_dir(crate::shell::root());
    cmd
}

fn ensure_cargo_fuzz() -> Result<()> {
    if crate::shell::output("cargo", &["fuzz", "--version"]).is_none() {
        crate::shell::run(Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ,
        ]))?;
    }
    Ok(())
}

/// Files in `dir` (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file());
    v.sort();
    v
}

/// Executions from libFuzzer's output: its final stats, else its last progress line.
fn executions(log: &str) -> u64 {
    let stat = log
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .find_map(|n| n.trim().parse().ok());
    stat.unwrap_or_else(|| {
        log.lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .max()
            .unwrap_or(0)
    })
}

pub(crate) fn run(args: &[&str]) -> Result<()> {
    let o = options(args)?;
    ensure_cargo_fuzz()?;
    crate::shell::run(cargo_fuzz().args(["build", "-O", "-a"]))?;
    let mut failed = Vec::new();
    for t in &o.targets {
        let corpus = fuzz_dir().join("corpus").join(t);
        let regressions = fuzz_dir().join("regressions").join(t);
        let scratch = fuzz_dir().join("target/corpus").join(t);
        let artifacts = fuzz_dir().join("artifacts").join(t);
        let logs = fuzz_dir().join("target/logs");
        for d in [&scratch, &artifacts, &logs] {
            std::fs::create_dir_all(d)?;
        }
        let before = files(&artifacts);
        let log_path = logs.join(format!("{t}.log"));
        let log = std::fs::File::create(&log_path)?;
        eprintln!(
            "xtask: fuzzing {t} for {} s (log: {})",
            o.seconds,
            log_path.display()
        );
        let mut cmd = cargo_fuzz();
        cmd.args(["run", "-O", "-a", t]).arg(&scratch).arg(&corpus);
        if regressions.is_dir() {
            cmd.arg(&regressions);
        }
        let status = cmd
            .arg("--")
            .arg(format!("-max_total_time={}", o.seconds))
            .arg(format!("-rss_limit_mb={}", o.rss_mb))
            .arg(format!("-malloc_limit_mb={}", o.rss_mb))
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .status()
            .with_context(|| format!("cannot start cargo fuzz run {t}"))?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let new: Vec<PathBuf> = files(&artifacts)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        let crashes = new.len() + usize::from(!status.success() && new.is_empty());
        if o.update_corpus {
            merge(t, &corpus, &scratch)?;
        }
        println!("fuzz_{t}_seconds: {}", o.seconds);
        println!("fuzz_{t}_execs: {}", executions(&text));
        println!("fuzz_{t}_crashes: {crashes}");
        println!("fuzz_{t}_corpus: {}", files(&corpus).len());
        for p in &new {
            println!("fuzz_{t}_artifact: {}", p.display());
        }
        if crashes > 0 {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            for l in tail.into_iter().rev() {
                eprintln!("  {l}");
            }
            failed.push(t.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets crashed: {} (inputs in fuzz/artifacts/; fix the decoder, then keep \
             the input under fuzz/regressions/<target>/ with a regression test)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Replaces the committed corpus with the inputs of (committed + scratch) that keep all
/// the coverage, as libFuzzer's merge picks them.
fn merge(t: &str, corpus: &Path, scratch: &Path) -> Result<()> {
    let merged = fuzz_dir().join("target/merged").join(t);
    if merged.exists() {
        std::fs::remove_dir_all(&merged)?;
    }
    std::fs::create_dir_all(&merged)?;
    crate::shell::run(
        cargo_fuzz()
            .args(["run", "-O", "-a", t])
            .arg(&merged)
            .arg(corpus)
            .arg(scratch)
            .args(["--", "-merge=1"]),
    )?;
    for f in files(corpus) {
        std::fs::remove_file(f)?;
    }
    for f in files(&merged) {
        std::fs::copy(&f, corpus.join(f.file_name().context("file name")?))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_come_from_the_final_stats_or_the_last_progress_line() {
        let done =
            "#1024\tpulse  cov: 10\n#2000\tDONE   cov: 12\nstat::number_of_executed_units: 2001\n";
        assert_eq!(executions(done), 2001);
        let crashed =
            "#1024\tpulse  cov: 10\n#1500\tNEW    cov: 11\n==1== ERROR: libFuzzer: deadly signal\n";
        assert_eq!(executions(crashed), 1500);
    }

    #[test]
    fn unknown_targets_are_refused_by_name() {
        assert!(options(&["remux", "--seconds", "5"]).is_ok());
        let err = options(&["nope"]).err().unwrap().to_string();
        assert!(err.contains("protocol_json"), "{err}");
    }
}
