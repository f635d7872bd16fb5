//! The widget's allocator over a long session, in a real browser: linear memory only ever
//! grows, so its size is the session's high-water mark. A viewer who keeps a page open for
//! hours must not see it climb with every chat message and segment — which a leak, or a
//! free list that cannot reuse what was freed (fragmentation), would do.
#![cfg(target_arch = "wasm32")]

use js_sys::Uint8Array;
use lucarne::chat::state::{Action, ChatState, KEEP_MESSAGES};
use lucarne::chat::wire;
use lucarne::player::mp4;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const INIT: &[u8] = include_bytes!("../fixtures/demo-init.mp4");
const SEG_A: &[u8] = include_bytes!("../fixtures/demo-0.m4s");

fn linear_memory_bytes() -> u32 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
}

/// Messages `from..to` of a busy room, through the same path as the socket's: JSON frame
/// → decoder → chat state (which keeps the last `KEEP_MESSAGES`). Texts of 1 to 480
/// characters, names of many lengths; every tenth message a hearts frame and the 64 KB
/// head of a segment copied in for its start time, as the HLS loader does.
fn session(state: &mut ChatState, segment: &Uint8Array, from: u32, to: u32) {
    let info = mp4::parse_init(INIT).expect("fixture init parses");
    for i in from..to {
        let text = "é".repeat((i * 7919 % 480 + 1) as usize);
        let name = "n".repeat((i % 23 + 1) as usize);
        let frame = format!(
            r##"{{"type":"chat","seq":{i},"id":"m{i}","viewerId":"v{v}","name":"{name}","colour":"#ff6b6b","text":"{text}","ts":{ts}}}"##,
            v = i % 50,
            ts = 1_700_000_000_000u64 + u64::from(i),
        );
        let message = wire::decode(&frame).expect("a valid chat frame");
        state.apply(Action::Frame(message, f64::from(i)));
        if i % 10 == 0 {
            let hearts = format!(
                r##"{{"type":"hearts","counts":{{"#ff6b6b":{},"#00aaff":1}},"total":{i}}}"##,
                i % 7 + 1
            );
            let (message, counts) = wire::decode_frame(&hearts).expect("a hearts frame");
            assert!(!counts.is_empty());
            state.apply(Action::Frame(message, f64::from(i)));
            let head = segment
                .subarray(0, segment.length().min(64 * 1024))
                .to_vec();
            assert!(mp4::fragment_start(&head, &info).is_some());
        }
    }
}

#[wasm_bindgen_test]
fn a_long_chat_session_does_not_grow_memory() {
    let segment = Uint8Array::from(SEG_A);
    let mut state = ChatState::new();
    // Warm up: the room's window fills, every size class has been allocated and freed.
    session(&mut state, &segment, 0, 5_000);
    assert_eq!(state.lines.len(), KEEP_MESSAGES);
    let warm = linear_memory_bytes();
    // Ten times as many messages again: about 4.6 MB of text (and 640 MB of segment
    // heads) pass through the heap. Kept or leaked, that would be many more pages.
    session(&mut state, &segment, 5_000, 55_000);
    let after = linear_memory_bytes();
    assert_eq!(state.lines.len(), KEEP_MESSAGES);
    let grown = after.saturating_sub(warm);
    assert!(
        grown <= 512 * 1024,
        "linear memory grew by {grown} bytes over 50,000 messages (from {warm} to {after})"
    );
}
