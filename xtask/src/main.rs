//! Project automation. Every command installs what it needs first, so the same command
//! works on a fresh machine, a developer's, and CI.
//!
//! - `cargo xtask dist`: builds the release widget into `dist/` ([`dist`]).
//! - `cargo xtask demo`: `dist`, then runs lucarne-server on http://127.0.0.1:8080.
//! - `cargo xtask test [lint|native|wasm|e2e]`: fmt and clippy, then every test tier
//!   (default: all); the end-to-end tier once per browser engine ([`test`]).
//! - `cargo xtask bench playback | chat | ingest | abr | golive`: lucarne against hls.js
//!   in headless Chromium, chat fan-out against a Node `ws` server, glass-to-glass latency
//!   of an RTMP broadcast, adaptive bitrate against hls.js on a throttled link,
//!   glass-to-glass latency of a broadcast from the browser console ([`bench`]).
//! - `cargo xtask soak`, `cargo xtask fuzz`: the long runs ([`soak`], [`fuzz`]).
//!
//! # Layout
//! This file only dispatches. [`shell`] runs commands and finds paths and programs;
//! [`tools`] installs what the commands need; [`metadata`] reads the test targets from
//! `cargo metadata`; [`names`] shortens the names the widget's wasm and glue share.

mod bench;
mod dist;
mod fuzz;
mod metadata;
mod names;
mod shell;
mod soak;
mod test;
mod tools;

use anyhow::Result;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("dist") => dist::dist(),
        Some("demo") => dist::demo(),
        Some("test") => test::test(rest.first().copied()),
        Some("bench") => bench::bench(&rest),
        Some("soak") => soak::soak(&rest),
        Some("fuzz") => fuzz::run(&rest),
        _ => {
            eprintln!("usage: cargo xtask <dist | demo | test [lint|native|wasm|e2e] | bench playback [--seconds N] | bench chat | bench ingest | bench abr | bench golive [--seconds N] | soak [--minutes N] | fuzz [--seconds N] [target...]>");
            std::process::exit(2)
        }
    }
}
