//! The ABR benchmark's numbers (`cargo xtask bench abr`, `src/bin/bench_abr.rs`): the
//! link's bandwidth schedule, what bench/abr.js recorded in a page, and the figures
//! drawn from it over one wall-clock window — the mean bitrate played (time-weighted
//! `BANDWIDTH` of the rendition playing), the time stalled, the number of switches —
//! plus the MPEG-TS module's download size.
//!
//! Everything but [`read`] is a pure function of its arguments, tested natively here,
//! so the figures printed for lucarne and for hls.js come from the same arithmetic on
//! the same kind of record.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::engine::Browser;

/// One step of the link's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Downstream rate, kbit/s.
    pub kbps: u64,
    /// How long the step lasts, seconds.
    pub seconds: u64,
}

/// The default schedule: a fast link, a drop to what carries the middle rendition
/// (800 kbit/s) with little headroom, a drop below it (only 250 kbit/s fits), and the
/// fast link again. 80 s in all.
pub const SCHEDULE: [Step; 4] = [
    Step {
        kbps: 4000,
        seconds: 20,
    },
    Step {
        kbps: 1000,
        seconds: 20,
    },
    Step {
        kbps: 400,
        seconds: 15,
    },
    Step {
        kbps: 4000,
        seconds: 25,
    },
];

/// Parses `4000:20,1000:20` (kbit/s:seconds, comma-separated).
pub fn parse_schedule(text: &str) -> Result<Vec<Step>> {
    let steps = text
        .split(',')
        .map(|step| {
            let (kbps, seconds) = step
                .trim()
                .split_once(':')
                .with_context(|| format!("schedule step {step:?} is not kbps:seconds"))?;
            let kbps: u64 = kbps.trim().parse().context("schedule kbit/s")?;
            let seconds: u64 = seconds.trim().parse().context("schedule seconds")?;
            if kbps == 0 || seconds == 0 || seconds > 600 {
                bail!("schedule step {step:?}: kbit/s > 0 and 0 < seconds <= 600");
            }
            Ok(Step { kbps, seconds })
        })
        .collect::<Result<Vec<_>>>()?;
    if steps.is_empty() || steps.len() > 20 {
        bail!("a schedule has 1 to 20 steps");
    }
    Ok(steps)
}

/// `4000 kbit/s 20 s, 1000 kbit/s 20 s`.
pub fn describe_schedule(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| format!("{} kbit/s {} s", s.kbps, s.seconds))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The variants of a multivariant playlist: (height, `BANDWIDTH`), in playlist order.
/// A variant without `RESOLUTION` is left out (nothing to match a height with).
pub fn parse_ladder(master: &str) -> Result<Vec<(u32, u64)>> {
    if !master.starts_with("#EXTM3U") {
        bail!("not a playlist");
    }
    let mut out = Vec::new();
    for line in master.lines().map(str::trim) {
        let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") else {
            continue;
        };
        let mut bandwidth = None;
        let mut height = None;
        for (key, value) in attributes(attrs) {
            match key {
                "BANDWIDTH" => bandwidth = value.parse::<u64>().ok(),
                "RESOLUTION" => {
                    height = value
                        .split_once('x')
                        .and_then(|(_, h)| h.parse::<u32>().ok())
                }
                _ => {}
            }
        }
        let bandwidth = bandwidth.with_context(|| format!("no BANDWIDTH in {line:?}"))?;
        if let Some(h) = height {
            out.push((h, bandwidth));
        }
    }
    if out.is_empty() {
        bail!("no variant with a RESOLUTION");
    }
    Ok(out)
}

/// `A=1,B="x,y"` → [("A", "1"), ("B", "x,y")].
fn attributes(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let next = quoted[end..].trim_start_matches('"');
            (&quoted[..end], next.strip_prefix(',').unwrap_or(next))
        } else {
            match after.split_once(',') {
                Some((v, next)) => (v, next),
                None => (after, ""),
            }
        };
        out.push((key.trim(), value));
        rest = next;
    }
    out
}

/// `BANDWIDTH` of the variant of `height` (the highest when several share it).
pub fn bandwidth_of(ladder: &[(u32, u64)], height: u32) -> Option<u64> {
    ladder
        .iter()
        .filter(|&&(h, _)| h == height)
        .map(|&(_, b)| b)
        .max()
}

/// What bench/abr.js recorded in one page (`window.__lucarneAbr`). Times are unix
/// seconds.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// When the video first played.
    pub first_frame: Option<f64>,
    /// (time, height) of each change of the rendition the player reports.
    pub levels: Vec<(f64, u32)>,
    /// (time, height) of each change of the `<video>`'s `videoHeight`.
    pub resizes: Vec<(f64, u32)>,
    /// (from, to) of each stall; `to` is `None` while still stalled.
    pub stalls: Vec<(f64, Option<f64>)>,
    /// Seconds the time did not advance while not paused (polled, a cross-check).
    pub frozen_s: f64,
    /// (time, seconds buffered ahead of the playhead), sampled every 500 ms.
    pub ahead: Vec<(f64, f64)>,
    /// Errors the page or player reported.
    pub errors: Vec<String>,
    /// The player's version, when the page knows it.
    pub version: Option<String>,
}

impl Record {
    /// Reads a record from the JSON abr.js keeps.
    pub fn from_json(v: &Value) -> Self {
        let heights = |key: &str| -> Vec<(f64, u32)> {
            v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            Some((e["t"].as_f64()?, u32::try_from(e["height"].as_u64()?).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            first_frame: v["first_frame"].as_f64(),
            levels: heights("levels"),
            resizes: heights("resizes"),
            stalls: v["stalls"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| Some((s["from"].as_f64()?, s["to"].as_f64())))
                        .collect()
                })
                .unwrap_or_default(),
            frozen_s: v["frozen_s"].as_f64().unwrap_or(0.0),
            ahead: v["ahead"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| Some((e["t"].as_f64()?, e["s"].as_f64()?)))
                        .collect()
                })
                .unwrap_or_default(),
            errors: v["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| e.as_str().unwrap_or("?").to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            version: v["version"].as_str().map(str::to_owned),
        }
    }
}

/// Reads the current page's record (`None` before abr.js ran).
pub async fn read(browser: &Browser) -> Result<Option<Record>> {
    let v = browser
        .execute("return window.__lucarneAbr || null;", vec![])
        .await?;
    Ok((!v.is_null()).then(|| Record::from_json(&v)))
}

/// Mean of `BANDWIDTH` of the height playing over `[t0, t1]`, weighted by time, in
/// kbit/s. The height playing at t is that of the last change at or before t; time
/// before the first change counts as 0 (nothing plays). A height not in `ladder` is an
/// error. `None` when no height was ever reported before `t1`.
pub fn mean_kbps(
    changes: &[(f64, u32)],
    ladder: &[(u32, u64)],
    t0: f64,
    t1: f64,
) -> Result<Option<f64>> {
    if t1 <= t0 || changes.first().is_none_or(|&(t, _)| t >= t1) {
        return Ok(None);
    }
    let mut bits = 0.0;
    for (i, &(from, height)) in changes.iter().enumerate() {
        let to = changes.get(i + 1).map_or(t1, |&(t, _)| t);
        let (from, to) = (from.max(t0), to.min(t1));
        if to <= from {
            continue;
        }
        let bps = bandwidth_of(ladder, height)
            .with_context(|| format!("height {height} is not a variant of {ladder:?}"))?;
        bits += bps as f64 * (to - from);
    }
    Ok(Some(bits / (t1 - t0) / 1000.0))
}

/// Changes of height within `(t0, t1]` (the first height ever reported is a start,
/// not a switch).
pub fn switches(changes: &[(f64, u32)], t0: f64, t1: f64) -> usize {
    changes
        .iter()
        .skip(1)
        .filter(|&&(t, _)| t > t0 && t <= t1)
        .count()
}

/// Seconds of `stalls` within `[t0, t1]` (one still open runs to `t1`).
pub fn stalled_s(stalls: &[(f64, Option<f64>)], t0: f64, t1: f64) -> f64 {
    stalls
        .iter()
        .map(|&(from, to)| (to.unwrap_or(t1).min(t1) - from.max(t0)).max(0.0))
        // From +0.0: `sum()` of no f64 is -0.0, printed "-0.00".
        .fold(0.0, |total, s| total + s)
}

/// Mean of the `samples` (time, value) taken within `[t0, t1)`; `None` without any.
pub fn mean_within(samples: &[(f64, f64)], t0: f64, t1: f64) -> Option<f64> {
    let inside: Vec<f64> = samples
        .iter()
        .filter(|&&(t, _)| t >= t0 && t < t1)
        .map(|&(_, v)| v)
        .collect();
    (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64)
}

/// Brotli size of `dist/lucarne_ts.js` + `dist/lucarne_ts_bg.wasm`, compressed as
/// `cargo xtask dist` does (quality 11, window 22, one shot).
pub fn ts_module_bytes_br(dist: &Path) -> Result<usize> {
    let mut total = 0;
    for name in ["lucarne_ts.js", "lucarne_ts_bg.wasm"] {
        let path = dist.join(name);
        let data = std::fs::read(&path)
            .with_context(|| format!("{} missing: build it (cargo xtask dist)", path.display()))?;
        let mut out = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            lgwin: 22,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &data[..], &mut out, &params).context("brotli in memory")?;
        total += out.len();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: [(u32, u64); 3] = [(540, 2_490_400), (360, 796_400), (180, 246_400)];

    #[test]
    fn reads_ffmpegs_master_playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2490400,RESOLUTION=960x540,CODECS=\"avc1.64001f,mp4a.40.2\"\nv0/index.m3u8\n\n\
            #EXT-X-STREAM-INF:BANDWIDTH=796400,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\nv1/index.m3u8\n\n\
            #EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=200000,BANDWIDTH=246400,RESOLUTION=320x180\nv2/index.m3u8\n";
        assert_eq!(parse_ladder(text).unwrap(), LADDER);
        assert!(parse_ladder("<html>").is_err());
        assert!(parse_ladder("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\na\n").is_err());
    }

    #[test]
    fn schedules_parse_and_print() {
        let s = parse_schedule("4000:20, 400:15").unwrap();
        assert_eq!(describe_schedule(&s), "4000 kbit/s 20 s, 400 kbit/s 15 s");
        assert!(parse_schedule("4000").is_err());
        assert!(parse_schedule("0:10").is_err());
        assert!(parse_schedule("100:601").is_err());
        assert_eq!(SCHEDULE.iter().map(|s| s.seconds).sum::<u64>(), 80);
    }

    #[test]
    fn the_mean_bitrate_is_weighted_by_time() {
        // 540 before the window, 180 from 15 to 20, 360 from 20 on; window 10..30.
        let changes = [(1.0, 540), (15.0, 180), (20.0, 360)];
        let kbps = mean_kbps(&changes, &LADDER, 10.0, 30.0).unwrap().unwrap();
        let want = (2490.4 * 5.0 + 246.4 * 5.0 + 796.4 * 10.0) / 20.0;
        assert!((kbps - want).abs() < 1e-9, "{kbps} vs {want}");
        // Nothing playing for the first half counts as 0.
        let late = mean_kbps(&[(20.0, 540)], &LADDER, 10.0, 30.0)
            .unwrap()
            .unwrap();
        assert!((late - 2490.4 / 2.0).abs() < 1e-9, "{late}");
        assert_eq!(mean_kbps(&[], &LADDER, 0.0, 1.0).unwrap(), None);
        assert_eq!(mean_kbps(&[(5.0, 540)], &LADDER, 0.0, 1.0).unwrap(), None);
        assert!(mean_kbps(&[(0.0, 720)], &LADDER, 0.0, 1.0).is_err());
    }

    #[test]
    fn switches_count_changes_inside_the_window_only() {
        let changes = [
            (1.0, 180),
            (5.0, 540),
            (15.0, 180),
            (20.0, 360),
            (40.0, 540),
        ];
        assert_eq!(switches(&changes, 10.0, 30.0), 2);
        assert_eq!(switches(&changes, 0.0, 50.0), 4);
        assert_eq!(switches(&changes[..1], 0.0, 50.0), 0);
    }

    #[test]
    fn stalls_are_cut_to_the_window_and_an_open_one_runs_to_its_end() {
        let stalls = [(5.0, Some(12.0)), (15.0, Some(15.5)), (28.0, None)];
        let s = stalled_s(&stalls, 10.0, 30.0);
        assert!((s - (2.0 + 0.5 + 2.0)).abs() < 1e-9, "{s}");
        assert_eq!(format!("{:.2}", stalled_s(&[], 0.0, 1.0)), "0.00");
    }

    #[test]
    fn means_within_a_window() {
        let samples = [(1.0, 10.0), (2.0, 2.0), (3.0, 4.0), (4.0, 100.0)];
        assert_eq!(mean_within(&samples, 2.0, 4.0), Some(3.0));
        assert_eq!(mean_within(&samples, 5.0, 6.0), None);
    }

    #[test]
    fn a_record_reads_from_abr_js_json() {
        let v = serde_json::json!({
            "first_frame": 3.5,
            "levels": [{"t": 3.0, "height": 540, "source": "x"}, {"t": 9.0, "height": 0}],
            "resizes": [{"t": 3.1, "height": 540}],
            "stalls": [{"from": 4.0, "to": 4.5, "at": 1.0}, {"from": 6.0, "to": null}],
            "frozen_s": 0.7,
            "ahead": [{"t": 4.0, "s": 6.5}],
            "errors": ["boom"],
        });
        let r = Record::from_json(&v);
        assert_eq!(r.first_frame, Some(3.5));
        assert_eq!(r.levels, [(3.0, 540), (9.0, 0)]);
        assert_eq!(r.resizes, [(3.1, 540)]);
        assert_eq!(r.stalls, [(4.0, Some(4.5)), (6.0, None)]);
        assert_eq!(r.ahead, [(4.0, 6.5)]);
        assert_eq!(r.errors, ["boom"]);
        assert_eq!(r.version, None);
    }
}
