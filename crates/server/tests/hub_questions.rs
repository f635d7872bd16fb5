//! Questions, through the real server over real sockets: a viewer asks, others +1 it
//! (once each, whatever they send), the broadcaster pins and answers it; votes and the
//! pin survive a restart with SQLite and hold across two nodes on a real Redis.

mod hub_support;
mod redis_support;

use hub_support::*;
use lucarne_protocol::*;
use redis_support::RedisServer;

/// Asks `text` as a question and returns it as the room sent it back.
async fn ask(c: &mut Client, text: &str, client_id: &str) -> ChatMessage {
    c.send(&ClientMessage::Chat(SendChat {
        text: text.into(),
        client_id: Some(client_id.into()),
        question: true,
    }))
    .await;
    match c
        .next_where(|m| matches!(m, ServerMessage::Chat(m) if m.text == text))
        .await
    {
        ServerMessage::Chat(m) => m,
        _ => unreachable!(),
    }
}

fn vote(id: &str) -> ClientMessage {
    ClientMessage::Vote(Vote { id: id.into() })
}

/// Waits for a `votes` frame giving `id` the total `n`.
async fn votes_reach(c: &mut Client, id: &str, n: u32) {
    c.next_where(|m| matches!(m, ServerMessage::Votes(v) if v.counts.get(id) == Some(&n)))
        .await;
}

/// Nothing but other frames for a while: no total above `n` for `id`.
async fn no_total_above(c: &mut Client, id: &str, n: u32) {
    while let Some(seen) = c.next_within(std::time::Duration::from_millis(800)).await {
        if let Seen::Frame(ServerMessage::Votes(v)) = seen {
            let total = v.counts.get(id).copied().unwrap_or(0);
            assert!(total <= n, "{id} reached {total}, more than {n}");
        }
    }
}

fn pin(id: Option<&str>) -> ClientMessage {
    ClientMessage::Pin(Pin {
        id: id.map(Into::into),
    })
}

#[tokio::test]
async fn a_question_is_voted_once_per_viewer_pinned_answered_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let server = start(cfg.clone()).await;
    let addr = server.local_addr();
    let (mut ana, _) = Client::join(addr, "room", named("Ana")).await;
    let (mut bob, wb) = Client::join(addr, "room", named("Bob")).await;
    let (mut host, _) = Client::join(addr, "room", staff(BROADCASTER_TOKEN, "Host")).await;

    let q = ask(&mut ana, "Which lens is that?", "q1").await;
    assert!(q.question);
    let other = ask(&mut ana, "And the mic?", "q2").await;
    // Bob votes three times, Ana once: 2.
    for _ in 0..3 {
        bob.send(&vote(&q.id)).await;
    }
    ana.send(&vote(&q.id)).await;
    votes_reach(&mut host, &q.id, 2).await;
    no_total_above(&mut host, &q.id, 2).await;
    // A vote on something that is not an open question counts nowhere.
    bob.chat("not a question", "m1").await;
    let plain = match bob
        .next_where(|m| matches!(m, ServerMessage::Chat(m) if m.text == "not a question"))
        .await
    {
        ServerMessage::Chat(m) => m,
        _ => unreachable!(),
    };
    bob.send(&vote(&plain.id)).await;
    no_total_above(&mut host, &plain.id, 0).await;

    // Viewers may not pin; the broadcaster may, and everyone sees the question.
    bob.send(&pin(Some(&q.id))).await;
    bob.next_where(|m| matches!(m, ServerMessage::Error(e) if e.code == ErrorCode::Forbidden))
        .await;
    host.send(&pin(Some(&q.id))).await;
    for c in [&mut ana, &mut bob] {
        c.next_where(|m| {
            matches!(m, ServerMessage::Pinned(p)
                if p.question.as_ref().is_some_and(|p| p.text == "Which lens is that?"))
        })
        .await;
    }
    // A newcomer reads the pin and the totals in its welcome.
    let (_cid, wc) = Client::join(addr, "room", named("Cid")).await;
    assert_eq!(
        wc.pinned.as_ref().map(|m| m.id.as_str()),
        Some(q.id.as_str())
    );
    assert_eq!(wc.votes.get(&q.id), Some(&2));

    // Restart: the pin, the total, and Bob's vote (he cannot vote again) survive.
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(ana.closed().await, Some(close::GOING_AWAY));
    stopping.await.unwrap();
    let server = start(cfg).await;
    let addr = server.local_addr();
    let (mut host, wh) = Client::join(addr, "room", staff(BROADCASTER_TOKEN, "Host")).await;
    assert_eq!(
        wh.pinned.as_ref().map(|m| m.id.as_str()),
        Some(q.id.as_str())
    );
    assert_eq!(wh.votes.get(&q.id), Some(&2));
    let (mut bob, _) = Client::join(addr, "room", resume(&wb, wb.epoch, wb.seq)).await;
    bob.send(&vote(&q.id)).await;
    bob.send(&vote(&other.id)).await;
    votes_reach(&mut host, &other.id, 1).await;
    no_total_above(&mut host, &q.id, 2).await;

    // Answered: the pin goes, the question leaves the open ones (no more votes).
    host.send(&ClientMessage::Answer(Answer { id: q.id.clone() }))
        .await;
    bob.next_where(|m| matches!(m, ServerMessage::Answered(a) if a.id == q.id))
        .await;
    let (mut dan, wd) = Client::join(addr, "room", named("Dan")).await;
    assert!(wd.pinned.is_none(), "answered: unpinned");
    assert!(!wd.votes.contains_key(&q.id));
    dan.send(&vote(&q.id)).await;
    no_total_above(&mut host, &q.id, 0).await;

    // A deleted question is gone everywhere, its pin too.
    host.send(&pin(Some(&other.id))).await;
    dan.next_where(|m| matches!(m, ServerMessage::Pinned(p) if p.question.is_some()))
        .await;
    host.send(&ClientMessage::Delete(DeleteMessage {
        id: other.id.clone(),
    }))
    .await;
    dan.next_where(|m| matches!(m, ServerMessage::Deleted(d) if d.id == other.id))
        .await;
    let (_eve, we) = Client::join(addr, "room", named("Eve")).await;
    assert!(we.pinned.is_none(), "deleted: unpinned");
    assert!(we
        .history
        .iter()
        .all(|e| !matches!(e, RoomEvent::Chat(m) if m.id == other.id)));
}

#[tokio::test]
async fn votes_through_two_nodes_count_each_viewer_once_and_a_pin_reaches_both() {
    let redis = RedisServer::start();
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node = |dir: &tempfile::TempDir| {
        let mut c = config(dir.path());
        c.hub.redis = Some(redis.url());
        c
    };
    let a = start(node(&dirs.0)).await;
    let b = start(node(&dirs.1)).await;
    let (mut ana, wa) = Client::join(a.local_addr(), "room", named("Ana")).await;
    let (mut bob, _) = Client::join(b.local_addr(), "room", named("Bob")).await;
    let q = ask(&mut ana, "Where is this?", "q1").await;
    bob.next_where(|m| matches!(m, ServerMessage::Chat(m) if m.id == q.id))
        .await;
    // Ana votes on A and, as the same viewer, on B: one vote. Bob's is the second.
    let (mut ana_on_b, _) = Client::join(
        b.local_addr(),
        "room",
        Hello {
            resume: None,
            ..resume(&wa, wa.epoch, wa.seq)
        },
    )
    .await;
    ana.send(&vote(&q.id)).await;
    ana_on_b.send(&vote(&q.id)).await;
    bob.send(&vote(&q.id)).await;
    votes_reach(&mut ana, &q.id, 2).await;
    votes_reach(&mut bob, &q.id, 2).await;
    no_total_above(&mut ana, &q.id, 2).await;

    let (mut host, wh) =
        Client::join(b.local_addr(), "room", staff(BROADCASTER_TOKEN, "Host")).await;
    assert_eq!(
        wh.votes.get(&q.id),
        Some(&2),
        "a node's welcome has Redis's total"
    );
    host.send(&pin(Some(&q.id))).await;
    ana.next_where(|m| matches!(m, ServerMessage::Pinned(p) if p.question.is_some()))
        .await;
    // A third node loading the room later reads the pin and the total.
    let dir = tempfile::tempdir().unwrap();
    let c = start(node(&dir)).await;
    let (_cid, wc) = Client::join(c.local_addr(), "room", named("Cid")).await;
    assert_eq!(wc.pinned.map(|m| m.id), Some(q.id.clone()));
    assert_eq!(wc.votes.get(&q.id), Some(&2));
}
