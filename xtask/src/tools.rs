//! Installing what the commands need: the widget's build tools (the wasm target,
//! trunk, wasm-bindgen, wasm-opt and terser) and the browser tiers' browsers, drivers
//! and ffmpeg. Each is installed only when missing or at the wrong version, from a
//! package registry (crates.io, npm, Debian).

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::Command;

use crate::shell::{output, root, run, which};

/// Tool versions the widget build is pinned to (see Trunk.toml and Cargo.lock).
const TRUNK: &str = "0.21.14";
const WASM_BINDGEN: &str = "0.2.130";
const BINARYEN: &str = "132";
const TERSER: &str = "5.51.4";
/// geckodriver (Firefox's WebDriver) from crates.io, as trunk is.
const GECKODRIVER: &str = "0.37.1";

/// Where npm-installed tools (wasm-opt, terser) go.
pub(crate) fn tools_dir() -> PathBuf {
    root().join(".tools")
}

/// PATH with the npm-installed wasm-opt first.
pub(crate) fn tool_path() -> String {
    let bin = tools_dir().join("node_modules/.bin");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The wasm32 target of the installed toolchain.
pub(crate) fn ensure_wasm_target() -> Result<()> {
    if !output("rustup", &["target", "list", "--installed"])
        .unwrap_or_default()
        .contains("wasm32-unknown-unknown")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

/// The widget's build tools, at the versions the build is pinned to.
pub(crate) fn ensure_build_tools() -> Result<()> {
    ensure_wasm_target()?;
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

/// Browsers, drivers and ffmpeg for the browser tiers, redis-server for the chat hub's
/// multi-node tests, nginx for the CDN and cluster tests, openssl and procps' `kill`:
/// Debian packages (Chromium and chromedriver, Firefox ESR,
/// WebKitGTK's MiniBrowser and WebKitWebDriver, Xvfb for WebKit's display), and
/// geckodriver from crates.io.
pub(crate) fn ensure_test_tools() -> Result<()> {
    let missing: Vec<&str> = [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("firefox-esr", "firefox-esr"),
        ("WebKitWebDriver", "webkit2gtk-driver"),
        ("Xvfb", "xvfb"),
        ("ffmpeg", "ffmpeg"),
        // The chat hub's multi-node tests start their own Redis.
        ("redis-server", "redis-server"),
        // The CDN and cluster tests put their own nginx (deploy/nginx.conf) in front.
        ("nginx", "nginx"),
        // The AES-128 e2e stream's segments are encrypted with `openssl enc`.
        ("openssl", "openssl"),
        // Tests stop nginx, servers and redis-server with `kill`.
        ("kill", "procps"),
    ]
    .into_iter()
    .filter(|(bin, _)| which(bin, "").is_err())
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
