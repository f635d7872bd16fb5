//! The benchmark pages in `bench/` (measure.js, lucarne.html, hlsjs.html) and
//! their one npm dependency (hls.js, pinned in bench/package-lock.json).
//!
//! Owns `npm ci` in bench/ when node_modules is missing, reading the
//! measurement (`window.__lucarneBench`) back from a page, and waiting on a page
//! while it plays.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::engine::Browser;
use crate::process::which;
use crate::stats::percentile;
use crate::workspace::root;

/// `<workspace>/bench`.
pub fn dir() -> PathBuf {
    root().join("bench")
}

/// `bench/node_modules/hls.js/dist/hls.light.min.js`.
pub fn hlsjs_light() -> PathBuf {
    dir().join("node_modules/hls.js/dist/hls.light.min.js")
}

/// Runs `npm ci` in bench/ unless hls.js is already installed.
pub async fn ensure_deps() -> Result<()> {
    if hlsjs_light().is_file() {
        return Ok(());
    }
    let npm =
        which("npm").context("npm not found (apt-get install npm) — needed for bench/ (hls.js)")?;
    eprintln!("bench: npm ci in {}", dir().display());
    let out = tokio::process::Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir())
        .output()
        .await
        .context("running npm ci in bench/")?;
    if !out.status.success() || !hlsjs_light().is_file() {
        bail!(
            "npm ci in bench/ failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Summary of `window.__lucarneBench` (set by bench/measure.js).
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// Latency of every readable presented frame, seconds.
    pub samples: Vec<f64>,
    /// First frame, seconds after navigation start.
    pub ttff_s: Option<f64>,
    /// `waiting` events after the first frame.
    pub stalls: u64,
    /// Presented frames seen.
    pub frames: u64,
    /// Presented frames whose barcode did not validate.
    pub unreadable: u64,
    /// Frames whose index agreed / disagreed with their media time.
    pub mediatime_agree: u64,
    /// See `mediatime_agree`.
    pub mediatime_disagree: u64,
    /// Errors the page recorded.
    pub errors: Vec<String>,
    /// The raw object, for anything else (statuses, config).
    pub raw: Value,
}

/// Reads the measurement from the current page (`None` before measure.js ran).
pub async fn read(browser: &Browser) -> Result<Option<Measurement>> {
    let v = browser
        .execute("return window.__lucarneBench || null;", vec![])
        .await?;
    if v.is_null() {
        return Ok(None);
    }
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(Some(Measurement {
        samples: v["samples"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        ttff_s: v["ttff_s"].as_f64(),
        stalls: u("stalls"),
        frames: u("frames"),
        unreadable: u("unreadable"),
        mediatime_agree: u("mediatime_agree"),
        mediatime_disagree: u("mediatime_disagree"),
        errors: v["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or("?").to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        raw: v,
    }))
}

/// Polls the page until it presented its first frame, for at most `deadline`;
/// `None` when no frame came (the page's last measurement, if any, is in the log).
pub async fn wait_first_frame(
    browser: &Browser,
    name: &str,
    deadline: Duration,
) -> Result<Option<Measurement>> {
    let start = Instant::now();
    loop {
        let m = read(browser).await?;
        if m.as_ref().is_some_and(|m| m.ttff_s.is_some()) {
            return Ok(m);
        }
        if start.elapsed() > deadline {
            eprintln!("bench: {name}: no frame after {deadline:?}: {m:?}");
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets the page play for `seconds` of wall time (the point of a latency benchmark),
/// saying how it goes every 15 s, and returns what measure.js recorded by then.
pub async fn play_for(browser: &Browser, name: &str, seconds: u64) -> Result<Measurement> {
    let playing = Instant::now();
    let total = Duration::from_secs(seconds);
    let mut report = Duration::from_secs(15);
    while playing.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(1).min(total.saturating_sub(playing.elapsed())))
            .await;
        if playing.elapsed() >= report {
            report += Duration::from_secs(15);
            if let Some(m) = read(browser).await? {
                eprintln!(
                    "bench: {name}: {} s, {} samples, latency p50 so far {}, {} stalls",
                    playing.elapsed().as_secs(),
                    m.samples.len(),
                    percentile(&m.samples, 50.0).map_or("n/a".to_owned(), |v| format!("{v:.3}")),
                    m.stalls
                );
            }
        }
    }
    let m = read(browser).await?.unwrap_or_default();
    if !m.errors.is_empty() {
        eprintln!("bench: {name}: page errors: {:?}", m.errors);
    }
    Ok(m)
}
