//! Project automation. Every command installs what it needs first, so the same command
//! works on a fresh machine, a developer's, and CI.
//!
//! - `cargo xtask dist`: builds the release widget into `dist/` (loader, JS glue, wasm,
//!   with `.br`/`.gz` siblings the server sends as they are); the wasm-bindgen names
//!   the wasm and its glue share are shortened (`names`) and the JS minified. The
//!   widget's standard library is compiled from source for size (`StdBuild`).
//! - `cargo xtask demo`: `dist`, then runs lucarne-server on http://127.0.0.1:8080.
//! - `cargo xtask test [lint|native|wasm|e2e]`: fmt and clippy, then every test tier
//!   (default: all). The end-to-end tier runs once per browser engine (Chromium,
//!   Firefox, WebKit), or only on `LUCARNE_E2E_ENGINE` when that is set.
//! - `cargo xtask bench playback`: lucarne against hls.js, in the same headless Chromium.
//! - `cargo xtask bench chat`: chat fan-out, lucarne-server against a Node `ws` server.
//! - `cargo xtask bench ingest`: glass-to-glass latency and server CPU of an RTMP
//!   broadcast (ffmpeg publishing a wall-clock barcode).

mod fuzz;
mod names;
mod soak;

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Tool versions the widget build is pinned to (see Trunk.toml and Cargo.lock).
const TRUNK: &str = "0.21.14";
const WASM_BINDGEN: &str = "0.2.130";
const BINARYEN: &str = "132";
const TERSER: &str = "5.51.4";
/// geckodriver (Firefox's WebDriver) from crates.io, as trunk is.
const GECKODRIVER: &str = "0.37.1";

/// The browser engines the end-to-end suite runs on, in order (`LUCARNE_E2E_ENGINE` values).
const ENGINES: [&str; 3] = ["chromium", "firefox", "webkit"];
/// End-to-end tests that run on one engine only: (test, engine, why). On the other
/// engines they are filtered out (not counted as run) and listed in the summary.
const ENGINE_ONLY: [(&str, &str, &str); 3] = [
    (
        "measure_js_reads_every_presented_frame_of_the_clip",
        "chromium",
        "guards the benchmark's measure.js; the benchmark runs in Chromium only",
    ),
    (
        "hlsjs_page_measures_latency_of_a_live_clip",
        "chromium",
        "guards the benchmark's hls.js page; the benchmark runs in Chromium only",
    ),
    (
        "managed_media_source_streaming_gates_segment_loads",
        "webkit",
        "needs ManagedMediaSource (Safari's API), which only WebKit has",
    ),
];
/// How long one engine's end-to-end run may take before it is killed and counted as
/// failed: a browser that hangs must fail CI, not stall it (each WebDriver request also
/// has its own timeout in the harness).
const E2E_ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(40 * 60);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("dist") => dist(),
        Some("demo") => demo(),
        Some("test") => test(rest.first().copied()),
        Some("bench") => bench(&rest),
        Some("soak") => soak::soak(&rest),
        Some("fuzz") => fuzz::run(&rest),
        _ => {
            eprintln!("usage: cargo xtask <dist | demo | test [lint|native|wasm|e2e] | bench playback [--seconds N] | bench chat | bench ingest>");
            std::process::exit(2)
        }
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Cargo's target directory (`CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"))
}

fn tools_dir() -> PathBuf {
    root().join(".tools")
}

/// PATH with the npm-installed wasm-opt first.
fn tool_path() -> String {
    let bin = tools_dir().join("node_modules/.bin");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// How the widget's standard library is built.
///
/// By default from its source (the toolchain's `rust-src` component) with the panic
/// strategy `immediate-abort` and std's `optimize_for_size` feature: a panic in the widget
/// traps at once instead of formatting a message first, which drops core's formatting
/// machinery, the panic hook and the message strings from the download (about 9 KB of
/// its 105 KB brotli, measured), and std picks its smaller algorithms. A panic looks the
/// same to the page either way (the widget is built with `panic = "abort"`, so it
/// already trapped); only the console message before the trap is lost. Rebuilding std
/// takes `-Zbuild-std`, an unstable cargo option that `RUSTC_BOOTSTRAP=1` enables on the
/// stable toolchain, for the widget's build only. Should a toolchain release break it,
/// `LUCARNE_PREBUILT_STD=1` builds with the prebuilt std (and the bigger download).
enum StdBuild {
    /// Built from `library`, the `rust-src` copy of the standard library's sources.
    FromSource {
        library: PathBuf,
    },
    Prebuilt,
}

impl StdBuild {
    /// The build chosen by `LUCARNE_PREBUILT_STD`, with what it needs installed:
    /// `rust-src`, and the crates its std depends on in cargo's cache (Trunk builds
    /// offline).
    fn ensure() -> Result<Self> {
        if std::env::var("LUCARNE_PREBUILT_STD").is_ok_and(|v| !v.is_empty() && v != "0") {
            return Ok(StdBuild::Prebuilt);
        }
        if !output("rustup", &["component", "list", "--installed"])
            .unwrap_or_default()
            .lines()
            .any(|c| c.starts_with("rust-src"))
        {
            run(Command::new("rustup").args(["component", "add", "rust-src"]))?;
        }
        let sysroot = output("rustc", &["--print", "sysroot"]).context("rustc --print sysroot")?;
        let library = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library");
        let fetch = |offline: bool| {
            let mut cmd = Command::new("cargo");
            cmd.args(["fetch", "--locked", "--manifest-path"])
                .arg(library.join("Cargo.toml"))
                .env("RUSTC_BOOTSTRAP", "1");
            if offline {
                cmd.arg("--offline")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
            cmd
        };
        if !fetch(true).status().is_ok_and(|s| s.success()) {
            run(&mut fetch(false))?;
        }
        Ok(StdBuild::FromSource { library })
    }

    /// Sets the environment and flags of a widget build (`rustflags`: `\x1f`-separated).
    fn apply(&self, cmd: &mut Command, rustflags: &str) {
        let StdBuild::FromSource { library } = self else {
            cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags);
            return;
        };
        // std's own paths (left in the wasm as caller locations) made short, like the
        // dependencies' in `dist_rustflags`.
        let remap = format!("--remap-path-prefix={}/=", library.display());
        let flags: Vec<&str> = rustflags
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .chain([
                remap.as_str(),
                "-Zunstable-options",
                "-Cpanic=immediate-abort",
            ])
            .collect();
        cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
            .env("CARGO_UNSTABLE_BUILD_STD_FEATURES", "optimize_for_size");
    }
}

fn ensure_build_tools() -> Result<()> {
    if !output("rustup", &["target", "list", "--installed"])
        .unwrap_or_default()
        .contains("wasm32-unknown-unknown")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    if !output("trunk", &["--version"])
        .unwrap_or_default()
        .contains(TRUNK)
    {
        run(Command::new("cargo").args(["install", "--locked", "trunk", "--version", TRUNK]))?;
    }
    if !output("wasm-bindgen", &["--version"])
        .unwrap_or_default()
        .contains(WASM_BINDGEN)
    {
        // Not --locked: its lock file pins a crate version the registry no longer has.
        run(Command::new("cargo").args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            WASM_BINDGEN,
        ]))?;
    }
    let bin = tools_dir().join("node_modules/.bin");
    if !bin.join("wasm-opt").exists() || !bin.join("terser").exists() {
        // Debian's binaryen is too old for current rustc output; npm's is current.
        // terser minifies the loader and the wasm-bindgen glue.
        std::fs::create_dir_all(tools_dir())?;
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(tools_dir())
            .arg(format!("binaryen@{BINARYEN}"))
            .arg(format!("terser@{TERSER}")))?;
    }
    Ok(())
}

/// Browsers, drivers and ffmpeg for the browser tiers: Debian packages (Chromium and
/// chromedriver, Firefox ESR, WebKitGTK's MiniBrowser and WebKitWebDriver, Xvfb for
/// WebKit's display), and geckodriver from crates.io.
fn ensure_test_tools() -> Result<()> {
    let missing: Vec<&str> = [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("firefox-esr", "firefox-esr"),
        ("WebKitWebDriver", "webkit2gtk-driver"),
        ("Xvfb", "xvfb"),
        ("ffmpeg", "ffmpeg"),
    ]
    .into_iter()
    .filter(|(bin, _)| output("which", &[bin]).is_none())
    .map(|(_, pkg)| pkg)
    .collect();
    if !missing.is_empty() {
        if output("id", &["-u"]).is_some_and(|u| u.trim() == "0") {
            run(Command::new("apt-get").arg("update"))?;
            run(Command::new("apt-get")
                .args(["install", "-y"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
        } else {
            bail!(
                "missing {}: run `sudo apt-get install {}`",
                missing.join(", "),
                missing.join(" ")
            )
        }
    }
    if !output("geckodriver", &["--version"])
        .unwrap_or_default()
        .contains(GECKODRIVER)
    {
        run(Command::new("cargo").args([
            "install",
            "--locked",
            "geckodriver",
            "--version",
            GECKODRIVER,
        ]))?;
    }
    Ok(())
}

/// Rust flags for the widget's build: the caller's own, plus remappings that turn the
/// absolute paths of dependencies (kept in the wasm as panic locations) into short
/// relative ones, like the widget's own `src/...` (wasm-bindgen's `expect_throw` and
/// yew keep caller locations for their error messages).
fn dist_rustflags() -> String {
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(f) => f
            .split('\x1f')
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect(),
        Err(_) => std::env::var("RUSTFLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect(),
    };
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        for dir in ["registry/src", "git/checkouts"] {
            for entry in std::fs::read_dir(home.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                flags.push(format!("--remap-path-prefix={}/=", entry.path().display()));
            }
        }
    }
    flags.join("\x1f")
}

fn dist() -> Result<()> {
    ensure_build_tools()?;
    let std_build = StdBuild::ensure()?;
    let dist = root().join("dist");
    let rustflags = dist_rustflags();
    // Video only first (its own dist dir, as Trunk empties the one it builds into).
    let player_dir = target_dir().join("trunk-player");
    let mut player = Command::new("trunk");
    player
        .args(["build", "--release", "--no-default-features", "--dist"])
        .arg(&player_dir)
        .env("PATH", tool_path());
    std_build.apply(&mut player, &rustflags);
    run(&mut player)?;
    let mut widget = Command::new("trunk");
    widget.args(["build", "--release"]).env("PATH", tool_path());
    std_build.apply(&mut widget, &rustflags);
    run(&mut widget)?;
    // Trunk names the glue after the package; the loader owns `lucarne.js`.
    std::fs::rename(dist.join("lucarne.js"), dist.join("lucarne_widget.js"))?;
    std::fs::rename(
        dist.join("lucarne_bg.wasm"),
        dist.join("lucarne_widget_bg.wasm"),
    )?;
    std::fs::copy(
        player_dir.join("lucarne.js"),
        dist.join("lucarne_player.js"),
    )?;
    std::fs::copy(
        player_dir.join("lucarne_bg.wasm"),
        dist.join("lucarne_player_bg.wasm"),
    )?;
    for build in ["lucarne_widget", "lucarne_player"] {
        let (wasm, js) = (
            dist.join(format!("{build}_bg.wasm")),
            dist.join(format!("{build}.js")),
        );
        let (short_wasm, short_js) =
            names::shorten(&std::fs::read(&wasm)?, &std::fs::read_to_string(&js)?)
                .with_context(|| format!("shortening the names in {build}"))?;
        std::fs::write(&wasm, short_wasm)?;
        // The loader only calls the default (async) init: unexported, `initSync` is
        // dropped by terser.
        let export = "export { initSync, __wbg_init as default };";
        if !short_js.contains(export) {
            bail!("{build}.js: the glue no longer ends with `{export}`");
        }
        std::fs::write(
            &js,
            short_js.replace(export, "export { __wbg_init as default };"),
        )?;
    }
    let terser = tools_dir().join("node_modules/.bin/terser");
    // Only comments starting with /*! are kept: the loader's one-line banner (its usage
    // note stays in the source, out of every page's download).
    run(Command::new(&terser)
        .arg(root().join("static/lucarne.js"))
        .args(["--compress", "--mangle", "--comments", "some", "--output"])
        .arg(dist.join("lucarne.js")))?;
    for glue in ["lucarne_widget.js", "lucarne_player.js"] {
        let glue = dist.join(glue);
        run(Command::new(&terser)
            .arg(&glue)
            .args(["--module", "--compress", "--mangle", "--output"])
            .arg(&glue))?;
    }
    let _ = std::fs::remove_file(dist.join("index.html"));
    let mut sizes = std::collections::HashMap::new();
    for name in [
        "lucarne.js",
        "lucarne_widget.js",
        "lucarne_widget_bg.wasm",
        "lucarne_player.js",
        "lucarne_player_bg.wasm",
    ] {
        let path = dist.join(name);
        let data = std::fs::read(&path)?;
        let br = brotli_bytes(&data);
        std::fs::write(dist.join(format!("{name}.br")), &br)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&data)?;
        std::fs::write(dist.join(format!("{name}.gz")), gz.finish()?)?;
        eprintln!(
            "xtask: dist/{name}: {} bytes, {} brotli",
            data.len(),
            br.len()
        );
        sizes.insert(name, br.len());
    }
    let total = |build: &str| {
        sizes["lucarne.js"]
            + sizes[format!("{build}.js").as_str()]
            + sizes[format!("{build}_bg.wasm").as_str()]
    };
    eprintln!(
        "xtask: widget with chat {} bytes brotli, video only {} bytes brotli",
        total("lucarne_widget"),
        total("lucarne_player")
    );
    Ok(())
}

fn brotli_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params)
        .expect("in-memory brotli cannot fail");
    out
}

fn demo() -> Result<()> {
    dist()?;
    run(Command::new("cargo").args(["build", "--release", "-p", "lucarne-server"]))?;
    eprintln!("xtask: demo at http://127.0.0.1:8080/ (Ctrl-C to stop)");
    let mut server = Command::new(target_dir().join("release/lucarne-server"));
    server.args(["--listen", "127.0.0.1:8080"]);
    // A stream to go live on from OBS or ffmpeg, watched at /studio.html (loopback
    // only; a real deployment sets its own keys in LUCARNE_STREAM_KEYS).
    if std::env::var_os("LUCARNE_STREAM_KEYS").is_none() {
        eprintln!("xtask: go live with rtmp://127.0.0.1:1935/live and stream key studio-key, watch at http://127.0.0.1:8080/studio.html");
        server.args(["--stream-key", "studio-key=studio"]);
    }
    run(&mut server)
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

/// Passed and failed counts of one libtest `test result:` line.
fn parse_result_line(line: &str) -> Option<(u64, u64)> {
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
    Some((num(" passed"), num(" failed")))
}

/// Runs a cargo test command, echoing its output and adding up its `test result:` lines
/// under `label`. With a `timeout`, the command (its whole process group) is killed when
/// it runs longer, and the run counts as failed.
fn cargo_tests(
    label: &str,
    args: &[&str],
    envs: &[(&str, String)],
    timeout: Option<std::time::Duration>,
    tally: &mut Tally,
) -> Result<bool> {
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
        let mut counts = (0, 0);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            if let Some((p, f)) = parse_result_line(&line) {
                counts.0 += p;
                counts.1 += f;
            }
        }
        let _ = done_tx.send(counts);
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
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // A process that escaped the group could keep the pipe open: do not wait forever.
    let (passed, failed) = done_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or((0, 0));
    tally.add(label, passed, failed + u64::from(timed_out));
    Ok(status.success() && !timed_out)
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

fn test(tier: Option<&str>) -> Result<()> {
    let all = tier.is_none();
    let tier = tier.unwrap_or("");
    let mut tally = Tally::default();
    let mut not_run: Vec<String> = Vec::new();
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
        if !output("rustup", &["target", "list", "--installed"])
            .unwrap_or_default()
            .contains("wasm32-unknown-unknown")
        {
            run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
        }
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
        )?;
    }
    if tier == "wasm" || tier == "e2e" {
        ensure_test_tools()?;
    }
    if all || tier == "wasm" {
        ensure_build_tools()?;
        let envs = [
            ("CHROMEDRIVER", "/usr/bin/chromedriver".to_string()),
            ("WASM_BINDGEN_TEST_TIMEOUT", "120".to_string()),
            ("PATH", tool_path()),
        ];
        ok &= cargo_tests(
            "wasm",
            &[
                "test",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "lucarne",
                "--test",
                "mse",
                "--test",
                "wire",
                "--test",
                "memory",
            ],
            &envs,
            None,
            &mut tally,
        )?;
    }
    if all || tier == "e2e" {
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
        )?;
        // Every engine runs every test file, even after a failure on another engine.
        for engine in e2e_engines() {
            let mut envs = envs.clone();
            envs.push(("LUCARNE_E2E_ENGINE", engine.clone()));
            let mut args = vec![
                "test",
                "-p",
                "lucarne-e2e",
                "--test",
                "*",
                "--no-fail-fast",
                "--",
                "--test-threads=1",
            ];
            for (name, only, why) in ENGINE_ONLY {
                if only != engine {
                    args.extend(["--skip", name]);
                    not_run.push(format!("{name} on {engine}: {why}"));
                }
            }
            ok &= cargo_tests(
                &format!("e2e {engine}"),
                &args,
                &envs,
                Some(E2E_ENGINE_TIMEOUT),
                &mut tally,
            )?;
        }
    }
    for line in &not_run {
        println!("xtask test: not run: {line}");
    }
    println!("xtask test: {}", tally.line());
    if !ok || tally.failed() > 0 {
        bail!("some tests failed");
    }
    Ok(())
}

fn bench(args: &[&str]) -> Result<()> {
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
        Some(&"ingest") => {
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
                    "bench_ingest",
                    "--",
                ])
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
        _ => bail!(
            "usage: cargo xtask bench playback [--seconds N] | bench chat | bench ingest [--seconds N] [--streams N]"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_result_lines() {
        let ok = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 3.1s";
        assert_eq!(parse_result_line(ok), Some((12, 0)));
        let bad = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_result_line(bad), Some((3, 2)));
        assert_eq!(parse_result_line("running 3 tests"), None);
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
}
