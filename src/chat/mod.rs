//! Chat: state as a reducer ([`state`], pure), what the layer shows of it ([`shown`],
//! pure: count, state word, notes, send box), which messages the page has been told
//! about ([`announce`], pure), the wire decoder ([`wire`]: on `JSON.parse`
//! in the browser, on `serde_json` natively so it is tested and fuzzed) and, on wasm32,
//! the connection (`socket`) and the views (in `ui`).

pub mod announce;
pub mod shown;
pub mod state;

#[cfg(target_arch = "wasm32")]
pub mod socket;
pub mod wire;
