//! `cargo xtask dist` and `cargo xtask demo`: the release widget in `dist/` (loader, JS
//! glue, wasm, with `.br`/`.gz` siblings the server sends as they are), built twice
//! (with chat, and video only); the wasm-bindgen names the wasm and its glue share are
//! shortened (`names`) and the JS minified. The widget's standard library is compiled
//! from source for size ([`StdBuild`]).

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::names;
use crate::shell::{output, root, run, target_dir};
use crate::tools::{ensure_build_tools, tool_path, tools_dir};

/// How the widget's standard library is built.
///
/// By default from its source (the toolchain's `rust-src` component) with the panic
/// strategy `immediate-abort` and std's `optimize_for_size` feature: a panic in the widget
/// traps at once instead of formatting a message first, which drops core's formatting
/// machinery, the panic hook and the message strings from the download (about 9 KB of
/// its 105 KB brotli, measured), and std picks its smaller algorithms. A panic looks the
/// same to the page either way (the widget is built with `panic = "abort"`, so it
/// already trapped); only the console message before the trap is lost. For the same
/// reason the build drops panic locations (`-Zlocation-detail=none`): with nothing to
/// print them, the file names and line numbers were 787 bytes brotli of dead data (in
/// a release build no dependency shows `Location::caller()` otherwise; wasm-bindgen's
/// `unwrap_throw` does only with debug assertions). Rebuilding std
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
                "-Zlocation-detail=none",
            ])
            .collect();
        cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
            .env("CARGO_UNSTABLE_BUILD_STD_FEATURES", "optimize_for_size");
    }
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

pub(crate) fn dist() -> Result<()> {
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
    ts_module(&std_build, &rustflags, &dist)?;
    let terser = tools_dir().join("node_modules/.bin/terser");
    // Only comments starting with /*! are kept: the loader's one-line banner (its usage
    // note stays in the source, out of every page's download).
    run(Command::new(&terser)
        .arg(root().join("static/lucarne.js"))
        .args(["--compress", "--mangle", "--comments", "some", "--output"])
        .arg(dist.join("lucarne.js")))?;
    for glue in ["lucarne_widget.js", "lucarne_player.js", "lucarne_ts.js"] {
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
        "lucarne_ts.js",
        "lucarne_ts_bg.wasm",
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
    eprintln!(
        "xtask: ts module {} bytes brotli (downloaded only for MPEG-TS streams)",
        sizes["lucarne_ts.js"] + sizes["lucarne_ts_bg.wasm"]
    );
    Ok(())
}

/// The MPEG-TS module (`crates/ts-module`) as its own WebAssembly file and glue,
/// `dist/lucarne_ts.js` + `dist/lucarne_ts_bg.wasm`: built like the widget (same
/// profile, standard library and wasm-opt passes as `index.html` gives Trunk), but with
/// cargo and wasm-bindgen directly, as it has no page to build from.
fn ts_module(std_build: &StdBuild, rustflags: &str, dist: &Path) -> Result<()> {
    let mut build = Command::new("cargo");
    build
        .args(["build", "--profile", "wasm-release"])
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "lucarne-ts-module",
        ])
        .env("PATH", tool_path());
    std_build.apply(&mut build, rustflags);
    run(&mut build)?;
    let wasm = target_dir().join("wasm32-unknown-unknown/wasm-release/lucarne_ts_module.wasm");
    let staged = target_dir().join("ts-module");
    run(Command::new("wasm-bindgen")
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "lucarne_ts",
        ])
        .arg("--out-dir")
        .arg(&staged)
        .arg(&wasm))?;
    run(Command::new(tools_dir().join("node_modules/.bin/wasm-opt"))
        .args([
            "-O1",
            "--merge-similar-functions",
            "-Os",
            "--converge",
            "--low-memory-unused",
        ])
        .args([
            "--strip-debug",
            "--strip-producers",
            "--strip-target-features",
        ])
        .arg(staged.join("lucarne_ts_bg.wasm"))
        .arg("-o")
        .arg(dist.join("lucarne_ts_bg.wasm")))?;
    std::fs::copy(staged.join("lucarne_ts.js"), dist.join("lucarne_ts.js"))?;
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

pub(crate) fn demo() -> Result<()> {
    dist()?;
    run(Command::new("cargo").args(["build", "--release", "-p", "lucarne-server"]))?;
    eprintln!("xtask: demo at http://127.0.0.1:8080/ (Ctrl-C to stop)");
    let mut server = Command::new(target_dir().join("release/lucarne-server"));
    server.args(["--listen", "127.0.0.1:8080"]);
    // A stream to go live on from OBS or ffmpeg, watched at /studio.html (loopback
    // only; a real deployment sets its own keys in LUCARNE_STREAM_KEYS).
    if std::env::var_os("LUCARNE_STREAM_KEYS").is_none() {
        eprintln!("xtask: go live with rtmp://127.0.0.1:1935/live and stream key studio-key, watch at http://127.0.0.1:8080/studio.html");
        eprintln!("xtask: or from this browser's camera: http://127.0.0.1:8080/studio/studio, opened with the key studio-key");
        server.args(["--stream-key", "studio-key=studio"]);
    }
    // With ffmpeg at hand, broadcasts and the demo loop get a rendition ladder, so the
    // widget's adaptive bitrate has something to choose from (the demo needs no ffmpeg
    // otherwise).
    if std::env::var_os("LUCARNE_LADDER").is_none() && crate::shell::which("ffmpeg", "").is_ok() {
        eprintln!("xtask: rendition ladder 720,480,360,180 (heights below each source's; the demo clip is 270 high, so 180)");
        server.args(["--ladder", "720,480,360,180"]);
    }
    run(&mut server)
}
