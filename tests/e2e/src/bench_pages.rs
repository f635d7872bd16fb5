//! The benchmark pages in `bench/` (measure.js, lucarne.html, hlsjs.html) and
//! their one npm dependency (hls.js, pinned in bench/package-lock.json).
//!
//! Owns `npm ci` in bench/ when node_modules is missing, and reading the
//! measurement (`window.__lucarneBench`) back from a page.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::engine::Browser;
use crate::process::which;
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
