//! A viewer that stops reading is dropped without slowing anyone else: the broadcaster
//! keeps posting, a normal viewer keeps receiving within a short delay, and the room
//! counts one viewer fewer once the slow one is cut.

mod hub_support;

use futures_util::SinkExt;
use hub_support::*;
use lucarne_protocol::*;
use std::time::Duration;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_viewer_that_stops_reading_is_dropped_and_others_keep_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.hub.chat_send_timeout_ms = 1000;
    cfg.hub.chat_queue = 64;
    let server = start(cfg).await;
    let addr = server.local_addr();

    let (mut reader, _) = Client::join(addr, "room", named("Reader")).await;
    let (mut broadcaster, _) = Client::join(addr, "room", staff(BROADCASTER_TOKEN, "")).await;

    // The slow viewer: a tiny receive window, says hello, then never reads again.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let req = format!("ws://{addr}/chat/room")
        .into_client_request()
        .unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    let hello = serde_json::to_string(&ClientMessage::Hello(hello())).unwrap();
    slow.send(Message::text(hello)).await.unwrap();
    room_info_until(addr, "room", |v| v["viewerCount"] == 3).await;

    // ~1 message per ms, 450 characters each, carrying its send time.
    let started = tokio::time::Instant::now();
    let total = 2000;
    let filler = "x".repeat(400);
    let sending = tokio::spawn(async move {
        for i in 0..total {
            let at = started.elapsed().as_micros();
            broadcaster
                .chat(&format!("{at} {filler}"), &format!("b{i}"))
                .await;
            // Read the echoes: a broadcaster that does not read is a slow consumer too.
            while broadcaster.next_within(Duration::ZERO).await.is_some() {}
            if i % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        }
        broadcaster
    });

    let mut delays = Vec::with_capacity(total);
    while delays.len() < total {
        if let ServerMessage::Chat(c) = reader
            .next_where(|m| matches!(m, ServerMessage::Chat(_)))
            .await
        {
            let sent: u128 = c.text.split(' ').next().unwrap().parse().unwrap();
            delays.push(started.elapsed().as_micros() - sent);
        }
    }
    let _broadcaster = sending.await.unwrap();
    delays.sort_unstable();
    let p99 = delays[delays.len() * 99 / 100];
    println!(
        "reader delay p50 {} µs, p99 {p99} µs, max {} µs",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(
        p99 < 250_000,
        "the normal viewer was slowed down: p99 {p99} µs"
    );

    // The slow one is gone (the room counts two).
    room_info_until(addr, "room", |v| v["viewerCount"] == 2).await;
    reader.alive().await;
    drop(slow);
    server.shutdown().await;
}
