//! lucarne: live video, chat and hearts for any web page, as one script tag.
//!
//! # Layout
//! - [`player`]: the playback engine (MediaSource, HLS, low-latency push, latency).
//! - [`net`]: reconnect policy shared by every connection.
//! - `embed` (wasm32): `mount()` into a shadow root and the exported JS API.
//! - `ui` (wasm32): the yew components.
//!
//! Modules that touch the browser are compiled only for `wasm32`, so `cargo test` runs
//! the pure logic natively.

pub mod net;
pub mod player;

#[cfg(target_arch = "wasm32")]
pub mod embed;
#[cfg(target_arch = "wasm32")]
mod ui;
