//! lucarne: live video, chat and hearts for any web page, as one script tag.
//!
//! # Layout
//! - [`player`]: the playback engine (MediaSource, HLS, low-latency push, latency).
//! - [`chat`]: chat state (reducer) and its connection.
//! - [`hearts`]: the floating-hearts simulation.
//! - [`net`]: reconnect policy shared by every connection.
//! - [`i18n`]: the widget's words in English and French.
//! - [`embed`]: options (pure) and, on wasm32, `mount()` into a shadow root.
//! - `ui` (wasm32): the yew components.
//!
//! Modules that touch the browser are compiled only for `wasm32`, so `cargo test` runs
//! the pure logic natively.

#[cfg(feature = "chat")]
pub mod chat;
#[cfg(feature = "chat")]
pub mod hearts;
pub mod i18n;
pub mod net;
pub mod player;

pub mod embed;
#[cfg(target_arch = "wasm32")]
mod ui;

/// The widget's allocator: dlmalloc, Rust's default on wasm, is about 7 KB of the
/// download; this free list (safe to declare, as it locks) is under 1 KB.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
