//! Embedding: options from a script tag or a JS object (pure, in [`options`]), and the
//! mount code that puts a widget in a shadow root (wasm32 only).

pub mod options;

#[cfg(target_arch = "wasm32")]
mod mount;
#[cfg(target_arch = "wasm32")]
pub use mount::{mount, Widget};
