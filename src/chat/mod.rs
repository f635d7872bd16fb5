//! Chat: state as a reducer ([`state`], pure) and, on wasm32, the wire codec (`wire`),
//! the connection (`socket`) and the views (in `ui`).

pub mod state;

#[cfg(target_arch = "wasm32")]
pub mod socket;
#[cfg(target_arch = "wasm32")]
pub mod wire;
