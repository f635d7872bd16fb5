//! Resume under fire on one node: while a sender posts without pause, a receiver is
//! disconnected 200 times at random moments (mid-welcome, mid-backlog, between frames)
//! and the sender itself is cut off now and then and re-sends what was not
//! acknowledged. Every message must arrive exactly once, in seq order, on the receiver
//! (`hub_support::under_fire`; `hub_redis.rs` runs the same across two nodes).

mod hub_support;

use hub_support::under_fire::{self, resume_under_fire, RECEIVER_CYCLES, SENDER_CUT_EVERY};
use hub_support::*;

#[tokio::test]
async fn two_hundred_forced_disconnects_lose_nothing_and_duplicate_nothing() {
    let seed = under_fire::seed();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // The sender posts as fast as it can: lift the flood limit for this test only.
    cfg.hub.chat_burst = 1_000_000;
    cfg.hub.chat_window_ms = 1;
    let server = start(cfg).await;
    let report = resume_under_fire(&[server.local_addr()], seed, 1000).await;
    println!(
        "{} messages, {RECEIVER_CYCLES} receiver disconnects ({} mid-welcome), \
         sender cut {} times",
        report.messages,
        report.mid_welcome,
        report.messages / SENDER_CUT_EVERY
    );
    server.shutdown().await;
}
