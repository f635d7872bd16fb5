//! `cargo xtask test [lint|native|wasm|e2e]`: fmt and clippy, then every test tier
//! (default: all), and a last line counting the tests that passed per tier and engine.
//!
//! - native: `cargo test` of the workspace but the end-to-end crate.
//! - wasm: the widget's test targets under `tests/wasm/` (wasm-bindgen-test in headless
//!   Chromium), as `cargo metadata` lists them.
//! - e2e: the harness's unit tests once, then every test target of `lucarne-e2e` once
//!   per browser engine (Chromium, Firefox, WebKit), or only on `LUCARNE_E2E_ENGINE`
//!   when that is set. Tests that apply to one engine only ([`ENGINE_ONLY`]) are filtered
//!   out on the others, never counted, and listed as "not run" with their reason.
//!
//! Counts come from libtest's `test result:` lines; a run killed by its timeout counts
//! as one failure.
//!
//! A browser engine that loses its page (the driver's "session deleted because of page
//! crash", WebKitGTK's "... or hang") ends the session the test drives, so the test
//! fails on a WebDriver error rather than on anything it checks. WebKitGTK does this now
//! and then under a full run's load, each time in a different test that passes alone
//! ([`ENGINE_LOST`]); it also blocks a page's main thread now and then, and the page
//! stops answering WebDriver. The harness tells that from a script that loops by the
//! CPU the page's main thread burns while it does not answer, and says so in its error
//! ([`ENGINE_HUNG`], `lucarne_e2e::hang`): a page that loops is a failure like any
//! other. When every failure of an engine's run is one of these, each such
//! test runs once more alone, in a fresh browser; its second result is the one counted,
//! and the summary names it ("ran again"). A second loss fails, as does any other
//! failure in the run: nothing else is retried.

use anyhow::{bail, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::dist::dist;
use crate::metadata;
use crate::shell::{root, run, target_dir, which};
use crate::tools::{ensure_build_tools, ensure_test_tools, ensure_wasm_target, tool_path};

/// The browser engines the end-to-end suite runs on, in order (`LUCARNE_E2E_ENGINE` values).
const ENGINES: [&str; 3] = ["chromium", "firefox", "webkit"];
/// End-to-end tests that run on one engine only: (test, engine, why). On the other
/// engines they are filtered out (not counted as run) and listed in the summary. Run
/// directly on another engine, such a test fails saying which engine it needs
/// (`lucarne_e2e::only_on`): it never passes where it did not run.
const ENGINE_ONLY: [(&str, &[&str], &str); 7] = [
    (
        "measure_js_reads_every_presented_frame_of_the_clip",
        &["chromium"],
        "guards the benchmark's measure.js; the benchmark runs in Chromium only",
    ),
    (
        "hlsjs_page_measures_latency_of_a_live_clip",
        &["chromium"],
        "guards the benchmark's hls.js page; the benchmark runs in Chromium only",
    ),
    (
        "managed_media_source_streaming_gates_segment_loads",
        &["webkit"],
        "needs ManagedMediaSource (Safari's API), which only WebKit has",
    ),
    (
        "a_trap_shows_retry_and_retry_plays_again",
        &["chromium", "firefox"],
        "KNOWN GAP: WebKitGTK reports a trap in the cross-origin widget to the page as a muted \
         'Script error.' without the error, so the loader cannot tell it is the widget's and \
         the widget stays frozen there",
    ),
    (
        "a_broadcaster_goes_live_from_the_console_and_sees_a_viewers_message_and_heart",
        &["chromium", "firefox"],
        "KNOWN GAP: WebKitGTK 2.50's MediaRecorder, with its mock camera (which previews fine), \
         hands no data here: no chunk per 200 ms timeslice and a 0-byte blob at stop, for \
         video/mp4 (the only type it takes), also with GStreamer's x264enc installed",
    ),
    (
        "a_console_that_loses_its_network_goes_on_with_the_same_broadcast",
        &["chromium", "firefox"],
        "KNOWN GAP: it goes live from the console's camera, and WebKitGTK 2.50's MediaRecorder \
         hands no data here (see the test above)",
    ),
    (
        "an_hevc_stream_names_hevc_where_the_browser_lacks_it",
        &["chromium", "firefox"],
        "KNOWN GAP: WebKitGTK 2.50 answers isTypeSupported(hvc1) yes, so the widget plays the \
         libx265 stream, and the page then stops answering WebDriver (execute script timed out \
         after 30 s)",
    ),
];
/// How long one engine's end-to-end run may take before it is killed and counted as
/// failed: a browser that hangs must fail CI, not stall it (each WebDriver request also
/// has its own timeout in the harness).
const E2E_ENGINE_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// How long one test run again alone may take.
const E2E_AGAIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// What a WebDriver error says when the engine lost the page under the session
/// (chromedriver: "session deleted because of page crash"; WebKitWebDriver adds
/// " or hang").
const ENGINE_LOST: &str = "session deleted because of page crash";
/// What the e2e harness says of a page that did not answer while its main thread was
/// idle: the engine blocked it (the same words as `lucarne_e2e::hang::ENGINE_HUNG`).
const ENGINE_HUNG: &str = "the engine hung its page, not a script";

/// Runs `tier` (all tiers when `None`).
pub(crate) fn test(tier: Option<&str>) -> Result<()> {
    let all = tier.is_none();
    let tier = tier.unwrap_or("");
    if !all && !["lint", "native", "wasm", "e2e"].contains(&tier) {
        bail!("unknown test tier {tier:?}: expected lint, native, wasm or e2e");
    }
    let mut tally = Tally::default();
    let mut not_run: Vec<String> = Vec::new();
    let mut ran_again: Vec<String> = Vec::new();
    let mut ok = true;
    if all || tier == "lint" {
        // The standards are checked, not hoped for: formatting and clippy, natively and
        // for the widget's wasm32 build.
        run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
        run(Command::new("cargo").args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        ensure_wasm_target()?;
        run(Command::new("cargo").args([
            "clippy",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "lucarne",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    if all || tier == "native" {
        // The server's ingest tests publish with ffmpeg.
        ensure_test_tools()?;
        ok &= cargo_tests(
            "native",
            &["test", "--workspace", "--exclude", "lucarne-e2e"],
            &[],
            None,
            &mut tally,
        )?
        .success;
    }
    if tier == "wasm" || tier == "e2e" {
        ensure_test_tools()?;
    }
    let metadata = if all || tier == "wasm" || tier == "e2e" {
        metadata::workspace()?
    } else {
        serde_json::Value::Null
    };
    if all || tier == "wasm" {
        ensure_build_tools()?;
        let targets =
            metadata::test_targets(&metadata, "lucarne", Some(&root().join("tests/wasm")))?;
        if targets.is_empty() {
            bail!("the widget has no test target under tests/wasm/ (see Cargo.toml's [[test]])");
        }
        let chromedriver = which("chromedriver", "apt-get install chromium-driver")?;
        let envs = [
            ("CHROMEDRIVER", chromedriver.display().to_string()),
            ("WASM_BINDGEN_TEST_TIMEOUT", "120".to_string()),
            ("PATH", tool_path()),
        ];
        let mut args = vec![
            "test",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "lucarne",
        ];
        args.extend(metadata::test_args(&targets));
        ok &= cargo_tests("wasm", &args, &envs, None, &mut tally)?.success;
    }
    if all || tier == "e2e" {
        let targets = metadata::test_targets(&metadata, "lucarne-e2e", None)?;
        dist()?;
        run(Command::new("cargo").args(["build", "-p", "lucarne-server"]))?;
        let envs = vec![
            (
                "LUCARNE_SERVER_BIN",
                target_dir()
                    .join("debug/lucarne-server")
                    .display()
                    .to_string(),
            ),
            ("LUCARNE_DIST", root().join("dist").display().to_string()),
        ];
        // The harness's own unit tests do not depend on the engine: once.
        ok &= cargo_tests(
            "e2e harness",
            &["test", "-p", "lucarne-e2e", "--lib", "--bins"],
            &envs,
            None,
            &mut tally,
        )?
        .success;
        // Every engine runs every test file, even after a failure on another engine.
        for engine in e2e_engines() {
            let mut envs = envs.clone();
            envs.push(("LUCARNE_E2E_ENGINE", engine.clone()));
            let mut args = vec!["test", "-p", "lucarne-e2e"];
            args.extend(metadata::test_args(&targets));
            args.extend(["--no-fail-fast", "--", "--test-threads=1", "--exact"]);
            let skipped = skipped_on(&engine);
            for (name, why) in &skipped {
                args.extend(["--skip", name]);
                not_run.push(format!("{name} on {engine}: {why}"));
            }
            let label = format!("e2e {engine}");
            let mut outcome =
                cargo_tests(&label, &args, &envs, Some(E2E_ENGINE_TIMEOUT), &mut tally)?;
            let lost = &outcome.lost_to_engine;
            if !outcome.success && !lost.is_empty() && outcome.failed == lost.len() as u64 {
                let mut again_ok = true;
                for name in lost.clone() {
                    println!(
                        "xtask: {label}: {name} failed because the browser lost or blocked \
                         its page; running it once more alone"
                    );
                    let mut one = vec!["test", "-p", "lucarne-e2e"];
                    one.extend(metadata::test_args(&targets));
                    one.extend(["--", "--test-threads=1", "--exact", &name]);
                    let mut scratch = Tally::default();
                    let again = cargo_tests(
                        &format!("{label} again"),
                        &one,
                        &envs,
                        Some(E2E_AGAIN_TIMEOUT),
                        &mut scratch,
                    )?;
                    let passed = again.success && again.passed == 1;
                    again_ok &= passed;
                    ran_again.push(format!(
                        "{name} on {engine}: the engine lost or blocked its page; alone it {}",
                        if passed { "passed" } else { "failed again" }
                    ));
                }
                if again_ok {
                    tally.forgive(&label, lost.len() as u64);
                    outcome.success = true;
                }
            }
            ok &= outcome.success;
            if outcome.success && outcome.filtered_out != skipped.len() as u64 {
                // A renamed or removed test left in ENGINE_ONLY: the "not run" lines
                // would no longer be true. (Checked on a clean run only: a build
                // failure filters nothing and needs no second message.)
                eprintln!(
                    "xtask: {label}: {} tests filtered out, but ENGINE_ONLY skips {} on {engine}: \
                     is every name in ENGINE_ONLY (xtask/src/test.rs) still a test?",
                    outcome.filtered_out,
                    skipped.len()
                );
                tally.add(&label, 0, 1);
            }
        }
    }
    for line in &not_run {
        println!("xtask test: not run: {line}");
    }
    for line in &ran_again {
        println!("xtask test: ran again: {line}");
    }
    println!("xtask test: {}", tally.line());
    if !ok || tally.failed() > 0 {
        bail!("some tests failed");
    }
    Ok(())
}

/// The [`ENGINE_ONLY`] tests that do not run on `engine`, with why.
fn skipped_on(engine: &str) -> Vec<(&'static str, &'static str)> {
    ENGINE_ONLY
        .iter()
        .filter(|(_, only, _)| !only.contains(&engine))
        .map(|&(name, _, why)| (name, why))
        .collect()
}

/// The engines the end-to-end tier runs on: `LUCARNE_E2E_ENGINE` alone when set, else all.
fn e2e_engines() -> Vec<String> {
    match std::env::var("LUCARNE_E2E_ENGINE") {
        Ok(e) if !e.trim().is_empty() => e
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect(),
        _ => ENGINES.iter().map(|e| e.to_string()).collect(),
    }
}

/// Tests passed and failed, per test run ("native", "e2e firefox", ...), in run order.
#[derive(Default)]
struct Tally(Vec<(String, u64, u64)>);

impl Tally {
    fn add(&mut self, label: &str, passed: u64, failed: u64) {
        match self.0.iter_mut().find(|(l, ..)| l == label) {
            Some(entry) => {
                entry.1 += passed;
                entry.2 += failed;
            }
            None => self.0.push((label.to_owned(), passed, failed)),
        }
    }

    /// Counts `n` failures of `label` as passes (tests that passed when run again).
    fn forgive(&mut self, label: &str, n: u64) {
        if let Some(entry) = self.0.iter_mut().find(|(l, ..)| l == label) {
            let n = n.min(entry.2);
            entry.1 += n;
            entry.2 -= n;
        }
    }

    fn failed(&self) -> u64 {
        self.0.iter().map(|t| t.2).sum()
    }

    /// `N passed, M failed (native 10/10, e2e chromium 40/40, ...)`: run/passed per label.
    fn line(&self) -> String {
        let passed: u64 = self.0.iter().map(|t| t.1).sum();
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(label, p, f)| format!("{label} {p}/{} passed", p + f))
            .collect();
        format!(
            "{passed} passed, {} failed ({})",
            self.failed(),
            parts.join(", ")
        )
    }
}

/// The counts of one libtest `test result:` line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    /// Tests left out by `--skip` (or a name filter).
    filtered_out: u64,
}

/// Reads a libtest `test result:` line; `None` for any other line.
fn parse_result_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let num = |key: &str| -> u64 {
        rest.split(';')
            .find_map(|p| {
                p.trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ")
                    .strip_suffix(key)
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    Some(Counts {
        passed: num(" passed"),
        failed: num(" failed"),
        filtered_out: num(" filtered out"),
    })
}

/// What [`cargo_tests`] saw of one cargo test command.
struct Outcome {
    /// It exited successfully (and in time).
    success: bool,
    /// Tests passed and failed, summed over its test binaries.
    passed: u64,
    failed: u64,
    /// Tests filtered out, summed over its test binaries.
    filtered_out: u64,
    /// Failed tests whose output says the browser lost or blocked its page
    /// ([`ENGINE_LOST`], [`ENGINE_HUNG`]).
    lost_to_engine: Vec<String>,
}

/// Follows libtest's output for the failed tests whose captured output (the
/// `---- NAME stdout ----` section printed after the run) says the browser engine lost
/// its page.
#[derive(Default)]
struct LostPages {
    /// The test whose captured output is being read.
    section: Option<String>,
    names: Vec<String>,
}

impl LostPages {
    fn line(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.section = Some(name.to_owned());
        } else if line == "failures:" || line.starts_with("test result: ") {
            self.section = None;
        } else if line.contains(ENGINE_LOST) || line.contains(ENGINE_HUNG) {
            if let Some(name) = self.section.take() {
                if !self.names.contains(&name) {
                    self.names.push(name);
                }
            }
        }
    }
}

/// Runs a cargo test command, echoing its output and adding up its `test result:` lines
/// under `label`. With a `timeout`, the command (its whole process group) is killed when
/// it runs longer, and the run counts as failed.
fn cargo_tests(
    label: &str,
    args: &[&str],
    envs: &[(&str, String)],
    timeout: Option<Duration>,
    tally: &mut Tally,
) -> Result<Outcome> {
    use std::os::unix::process::CommandExt;
    eprintln!("xtask: running cargo {} ({label})", args.join(" "));
    let mut child = Command::new("cargo")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .current_dir(root())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut counts = Counts::default();
        let mut lost = LostPages::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            lost.line(&line);
            if let Some(c) = parse_result_line(&line) {
                counts.passed += c.passed;
                counts.failed += c.failed;
                counts.filtered_out += c.filtered_out;
            }
        }
        let _ = done_tx.send((counts, lost.names));
    });
    let start = std::time::Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if timeout.is_some_and(|t| start.elapsed() > t) {
            eprintln!(
                "xtask: {label}: still running after {:?}; killing it",
                timeout.unwrap_or_default()
            );
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            timed_out = true;
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // A process that escaped the group could keep the pipe open: do not wait forever.
    let (counts, lost_to_engine) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_default();
    let failed = counts.failed + u64::from(timed_out);
    tally.add(label, counts.passed, failed);
    Ok(Outcome {
        success: status.success() && !timed_out,
        passed: counts.passed,
        failed,
        filtered_out: counts.filtered_out,
        lost_to_engine,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_result_lines() {
        let ok = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 3.1s";
        let counts = |passed, failed, filtered_out| Counts {
            passed,
            failed,
            filtered_out,
        };
        assert_eq!(parse_result_line(ok), Some(counts(12, 0, 0)));
        let bad = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 2 filtered out; finished in 9.0s";
        assert_eq!(parse_result_line(bad), Some(counts(3, 2, 2)));
        assert_eq!(parse_result_line("running 3 tests"), None);
    }

    /// The tests [`LostPages`] picks out of libtest's `output`.
    fn lost_in(output: &str) -> Vec<String> {
        let mut lost = LostPages::default();
        output.lines().for_each(|l| lost.line(l));
        lost.names
    }

    #[test]
    fn finds_the_tests_whose_browser_lost_its_page() {
        let output = "\
running 4 tests
test a_hung_player_rebuilds_itself_and_plays_on ... FAILED
test missing_segment_skipped ... FAILED
test third_party_hls_plays ... ok

failures:

---- a_hung_player_rebuilds_itself_and_plays_on stdout ----
Error: the stream never played

Caused by:
    0: webkit: execute script
    1: webdriver returned error: session deleted because of page crash or hang.
---- missing_segment_skipped stdout ----
Error: playback stalled for 4 s

failures:
    a_hung_player_rebuilds_itself_and_plays_on
    missing_segment_skipped

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 42.45s
";
        assert_eq!(
            lost_in(output),
            ["a_hung_player_rebuilds_itself_and_plays_on"]
        );
    }

    #[test]
    fn finds_the_tests_whose_page_the_engine_blocked_and_not_those_that_looped() {
        let output = "\
running 3 tests
test a_ts_live_stream_plays_with_sound ... FAILED
test an_fmp4_stream_downloads_no_ts_module ... FAILED
test a_ts_stream_without_its_module_says_so ... FAILED

failures:

---- a_ts_live_stream_plays_with_sound stdout ----
Error: the MPEG-TS stream never played

Caused by:
    webkit: execute script timed out after 30s; the busiest main thread, \
WebKitWebProcess (18789)'s, was idle (0.01 s of CPU in 3 s): the engine hung its page, not a script
---- an_fmp4_stream_downloads_no_ts_module stdout ----
Error: the fMP4 stream never played

Caused by:
    webkit: execute script timed out after 30s; WebKitWebProcess (18790)'s main thread \
was busy (2.98 s of CPU in 3 s): a script in the page may be looping
---- a_ts_stream_without_its_module_says_so stdout ----
Error: no message in 10 s

failures:
    a_ts_live_stream_plays_with_sound
    an_fmp4_stream_downloads_no_ts_module
    a_ts_stream_without_its_module_says_so

test result: FAILED. 0 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 92.10s
";
        assert_eq!(lost_in(output), ["a_ts_live_stream_plays_with_sound"]);
    }

    #[test]
    fn the_harness_says_engine_hung_in_the_same_words() {
        let harness = include_str!("../../tests/e2e/src/hang.rs");
        assert!(harness.contains(&format!("ENGINE_HUNG: &str = \"{ENGINE_HUNG}\"")));
    }

    #[test]
    fn a_forgiven_failure_counts_as_passed() {
        let mut t = Tally::default();
        t.add("e2e webkit", 50, 1);
        t.forgive("e2e webkit", 1);
        t.forgive("e2e webkit", 1);
        assert_eq!(t.failed(), 0);
        assert_eq!(t.line(), "51 passed, 0 failed (e2e webkit 51/51 passed)");
    }

    #[test]
    fn tally_line_gives_per_engine_counts() {
        let mut t = Tally::default();
        t.add("native", 10, 0);
        t.add("e2e chromium", 5, 0);
        t.add("e2e chromium", 3, 1);
        t.add("e2e webkit", 9, 0);
        assert_eq!(t.failed(), 1);
        assert_eq!(
            t.line(),
            "27 passed, 1 failed (native 10/10 passed, e2e chromium 8/9 passed, e2e webkit 9/9 passed)"
        );
    }

    #[test]
    fn engine_only_tests_are_skipped_on_the_other_engines_alone() {
        let names = |engine| -> Vec<&str> { skipped_on(engine).iter().map(|s| s.0).collect() };
        assert_eq!(
            names("chromium"),
            ["managed_media_source_streaming_gates_segment_loads"]
        );
        assert_eq!(
            names("webkit"),
            [
                "measure_js_reads_every_presented_frame_of_the_clip",
                "hlsjs_page_measures_latency_of_a_live_clip",
                "a_trap_shows_retry_and_retry_plays_again",
                "a_broadcaster_goes_live_from_the_console_and_sees_a_viewers_message_and_heart",
                "a_console_that_loses_its_network_goes_on_with_the_same_broadcast",
                "an_hevc_stream_names_hevc_where_the_browser_lacks_it"
            ]
        );
        assert_eq!(names("firefox").len(), ENGINE_ONLY.len() - 4);
        assert!(ENGINE_ONLY
            .iter()
            .all(|(_, engines, _)| engines.iter().all(|e| ENGINES.contains(e))));
    }
}
