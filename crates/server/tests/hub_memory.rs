//! A room's memory over real sockets: past its resume window's bounds, posting more
//! does not grow the window's accounted bytes nor the process. Alone in its binary so
//! that the process's RSS is this test's.

mod hub_support;

use hub_support::*;
use lucarne_protocol::*;

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Posts one message per seq of `seqs` (the room's next ones), waiting for its echo
/// every 100 so that this reader never falls a whole fan-out ring behind.
async fn post(b: &mut Client, text: &str, seqs: std::ops::Range<u64>) {
    for i in seqs {
        b.chat(text, &format!("c{i}")).await;
        if (i + 1) % 100 == 0 {
            let seq = i + 1;
            b.next_where(|m| matches!(m, ServerMessage::Chat(c) if c.seq == seq))
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_past_the_window_bounds_grows_neither_the_window_nor_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    // Staff is not rate limited: it posts as fast as the room takes it.
    let (mut b, _) = Client::join(addr, "r", staff(BROADCASTER_TOKEN, "x")).await;
    let text = "😀".repeat(MAX_CHAT_CHARS); // 2,000 bytes
    post(&mut b, &text, 0..10_000).await;
    let room = server.hub().room("r").await.unwrap();
    let window = room.window_bytes();
    assert!(window <= lucarne_server::hub::room::MAX_BYTES, "{window}");
    assert!(
        window > lucarne_server::hub::room::MAX_BYTES - 4_000,
        "{window}"
    );
    // A second round first: the store's queue (written behind, by another thread)
    // peaks in the first rounds, and malloc keeps that peak for later reuse.
    post(&mut b, &text, 10_000..20_000).await;
    let rss = rss_kb();
    post(&mut b, &text, 20_000..30_000).await;
    let window_after = room.window_bytes();
    let grown_kb = rss_kb().saturating_sub(rss);
    assert!(window_after <= lucarne_server::hub::room::MAX_BYTES);
    // 10,000 more messages of 2 KB: 20 MB of frames went through. Before, the process
    // grew by about 11 MB here (1.6 KB a message, see `hub::window`); now by ~2 MB.
    assert!(grown_kb < 6_000, "grew {grown_kb} KB over 10,000 messages");
    eprintln!("window {window_after} bytes, process grew {grown_kb} KB over 10,000 messages");
    server.shutdown().await;
}
