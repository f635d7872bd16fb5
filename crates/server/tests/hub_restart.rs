//! Restarts: with SQLite, history, deletions, bans, hearts and identities survive and a
//! viewer resumes across the restart; without persistence the epoch changes and the
//! welcome says the history was not recovered.

mod hub_support;

use hub_support::*;
use lucarne_protocol::*;

fn texts(w: &Welcome) -> Vec<String> {
    w.history
        .iter()
        .map(|e| match e {
            RoomEvent::Chat(c) => c.text.clone(),
            RoomEvent::Deleted(d) => format!("deleted {}", d.id),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_restart_with_sqlite_keeps_history_bans_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let server = start(cfg.clone()).await;
    let addr = server.local_addr();
    let http = reqwest::Client::new();

    let (mut ana, wa) = Client::join(addr, "room", named("Ana")).await;
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        ana.chat(text, &format!("a{i}")).await;
    }
    let mut ids = Vec::new();
    while ids.len() < 3 {
        if let ServerMessage::Chat(c) = ana
            .next_where(|m| matches!(m, ServerMessage::Chat(_)))
            .await
        {
            ids.push(c.id);
        }
    }
    let r = http
        .post(format!(
            "http://{addr}/api/rooms/room/messages/{}/delete",
            ids[1]
        ))
        .bearer_auth(MODERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    ana.next_where(|m| matches!(m, ServerMessage::Deleted(_)))
        .await;

    let (mut troll, wt) = Client::join(addr, "room", named("Troll")).await;
    let r = http
        .post(format!("http://{addr}/api/rooms/room/bans"))
        .bearer_auth(MODERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(format!(r#"{{"viewerId":"{}"}}"#, wt.viewer_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(troll.closed().await, Some(close::BANNED));

    ana.send(&ClientMessage::Hearts(SendHearts {
        count: 4,
        colour: None,
    }))
    .await;
    ana.next_where(|m| matches!(m, ServerMessage::Hearts(h) if h.total == 4))
        .await;
    let r = http
        .post(format!("http://{addr}/api/rooms/room/slow-mode"))
        .bearer_auth(BROADCASTER_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"seconds":7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let before = room_info_until(addr, "room", |v| v["slowModeSecs"] == 7).await;

    // Stop: connected viewers are told to come back (1001).
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(ana.closed().await, Some(close::GOING_AWAY));
    stopping.await.unwrap();

    let server = start(cfg).await;
    let addr = server.local_addr();
    // A newcomer sees the surviving history, in the same epoch.
    let (_bob, wb) = Client::join(addr, "room", named("Bob")).await;
    assert_eq!(wb.epoch, wa.epoch);
    assert_eq!(texts(&wb), ["one", "three"]);
    assert_eq!(wb.hearts_total, 4);
    assert_eq!(wb.settings.slow_mode_secs, 7);
    assert_eq!(wb.seq, before["seq"].as_u64().unwrap());

    // Ana resumes from before her first message: exactly what she missed, deletion
    // included, under the same identity (the signing secret survived too).
    let (mut ana, w) = Client::join(addr, "room", resume(&wa, wa.epoch, wa.seq)).await;
    assert!(w.recovered);
    assert_eq!(w.viewer_id, wa.viewer_id);
    assert_eq!(
        texts(&w),
        [
            "one".to_owned(),
            "three".into(),
            format!("deleted {}", ids[1])
        ]
    );
    // Seqs continue.
    ana.chat("after restart", "a9").await;
    let ServerMessage::Chat(c) = ana
        .next_where(|m| matches!(m, ServerMessage::Chat(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(c.seq, wb.seq + 1);

    // The ban held.
    let mut again = Client::connect_only(addr, "room", resume(&wt, wt.epoch, wt.seq)).await;
    let ServerMessage::Error(e) = again.next_where(|_| true).await else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::Banned);
    assert_eq!(again.closed().await, Some(close::BANNED));
    server.shutdown().await;
}

#[tokio::test]
async fn without_persistence_a_restart_is_a_new_epoch_and_not_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.hub.chat_db = Some(":memory:".into());
    let server = start(cfg.clone()).await;
    let (mut ana, wa) = Client::join(server.local_addr(), "room", named("Ana")).await;
    ana.chat("lost", "a").await;
    ana.next_where(|m| matches!(m, ServerMessage::Chat(_)))
        .await;
    server.shutdown().await;
    assert!(!dir.path().join("data").exists(), "nothing written");

    let server = start(cfg).await;
    let (_ana, w) = Client::join(
        server.local_addr(),
        "room",
        resume(&wa, wa.epoch, wa.seq + 1),
    )
    .await;
    assert_ne!(w.epoch, wa.epoch);
    assert!(!w.recovered);
    assert!(w.history.is_empty());
    server.shutdown().await;
}
