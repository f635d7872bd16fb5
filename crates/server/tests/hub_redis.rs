//! The chat hub on two nodes sharing one real Redis (`--redis`): one global order of
//! events, a viewer resuming on the other node with nothing lost or duplicated, one
//! count and one hearts total, flood limits and moderation that hold on every node,
//! deletes that vanish everywhere; Redis stopped for 10 s and restarted (chat closed
//! with "try again later" meanwhile, nothing acknowledged lost) or restarted without its
//! data (a new epoch every viewer re-syncs to).

mod hub_support;
mod redis_support;

use hub_support::*;
use lucarne_protocol::*;
use lucarne_server::Server;
use redis_support::RedisServer;
use std::collections::BTreeMap;
use tempfile::TempDir;

/// Two nodes on `redis`, each with its own data directory.
async fn two_nodes(redis: &RedisServer) -> (Server, Server, TempDir, TempDir) {
    two_nodes_with(redis, |_| {}).await
}

/// Two nodes on `redis`, their configuration changed by `change`.
async fn two_nodes_with(
    redis: &RedisServer,
    change: impl Fn(&mut lucarne_server::Config),
) -> (Server, Server, TempDir, TempDir) {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node = |dir: &TempDir| {
        let mut c = config(dir.path());
        c.hub.redis = Some(redis.url());
        change(&mut c);
        c
    };
    let a = start(node(&da)).await;
    let b = start(node(&db)).await;
    (a, b, da, db)
}

/// A node on `redis` with its own data directory.
async fn node(redis: &RedisServer) -> (Server, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.hub.redis = Some(redis.url());
    (start(c).await, dir)
}

/// The same identity as `w`, without a resume.
fn same_viewer(w: &Welcome) -> Hello {
    Hello {
        resume: None,
        ..resume(w, w.epoch, w.seq)
    }
}

fn chat_texts(events: &[RoomEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            RoomEvent::Chat(m) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

/// The chats a client sees until it has seen seq `until`: (seq, clientId).
async fn chats_until(c: &mut Client, until: Seq) -> Vec<(Seq, String)> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|(s, _)| *s < until) {
        if let ServerMessage::Chat(m) = c.next_where(|m| matches!(m, ServerMessage::Chat(_))).await
        {
            seen.push((m.seq, m.client_id.unwrap_or_default()));
        }
    }
    seen
}

fn from_history(w: &Welcome) -> Vec<(Seq, String)> {
    w.history
        .iter()
        .filter_map(|e| match e {
            RoomEvent::Chat(m) => Some((m.seq, m.client_id.clone().unwrap_or_default())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn messages_posted_on_two_nodes_reach_both_in_one_global_order_without_gaps() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    // Staff posts are not flood-limited: the test posts faster than a viewer may.
    let (mut on_a, wa) = Client::join(a.local_addr(), "room", staff(MODERATOR_TOKEN, "Ana")).await;
    let (mut on_b, wb) = Client::join(b.local_addr(), "room", staff(MODERATOR_TOKEN, "Bo")).await;
    assert_eq!(wa.epoch, wb.epoch, "one epoch for the room on every node");
    assert_eq!((wa.seq, wb.seq), (0, 0));
    const EACH: u64 = 25;
    for i in 0..EACH {
        on_a.chat(&format!("from A {i}"), &format!("a{i}")).await;
        on_b.chat(&format!("from B {i}"), &format!("b{i}")).await;
    }
    let seen_a = chats_until(&mut on_a, 2 * EACH).await;
    let seen_b = chats_until(&mut on_b, 2 * EACH).await;
    let seqs: Vec<Seq> = seen_a.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=2 * EACH).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert_eq!(seen_a, seen_b, "the same order on both nodes");
    for node in ["a", "b"] {
        let mine: Vec<&String> = seen_a
            .iter()
            .map(|(_, c)| c)
            .filter(|c| c.starts_with(node))
            .collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("{node}{i}")).collect();
        assert_eq!(
            mine,
            sent.iter().collect::<Vec<_>>(),
            "each node's posts in the order sent"
        );
    }
}

#[tokio::test]
async fn a_viewer_resumes_on_the_other_node_with_nothing_lost_or_duplicated() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let (mut poster_a, _) =
        Client::join(a.local_addr(), "room", staff(MODERATOR_TOKEN, "Ana")).await;
    let (mut poster_b, _) =
        Client::join(b.local_addr(), "room", staff(MODERATOR_TOKEN, "Bo")).await;
    let (mut viewer, w) = Client::join(a.local_addr(), "room", named("Vi")).await;
    for i in 0..5 {
        poster_a
            .chat(&format!("before {i}"), &format!("p{i}"))
            .await;
    }
    let before = chats_until(&mut viewer, 5).await;
    assert_eq!(before.last().map(|(s, _)| *s), Some(5));
    drop(viewer);
    // Missed while away, posted on both nodes; the last ones right before the resume.
    for i in 5..10 {
        poster_a
            .chat(&format!("missed {i}"), &format!("p{i}"))
            .await;
        poster_b
            .chat(&format!("missed {i}"), &format!("q{i}"))
            .await;
    }
    chats_until(&mut poster_a, 15).await;
    let mut again = Client::connect_only(b.local_addr(), "room", resume(&w, w.epoch, 5)).await;
    let w2 = again.welcome().await;
    assert_eq!(w2.epoch, w.epoch);
    assert!(w2.recovered, "a resume on another node is exact");
    let mut got = from_history(&w2);
    if w2.seq > got.last().map_or(5, |(s, _)| *s) {
        got.extend(chats_until(&mut again, w2.seq).await);
    }
    let seqs: Vec<Seq> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (6..=15).collect::<Vec<_>>(),
        "exactly the missed events"
    );
    // And it goes on receiving what either node posts.
    poster_a.chat("after", "p-after").await;
    assert_eq!(
        chats_until(&mut again, 16).await,
        [(16, "p-after".to_owned())]
    );
}

#[tokio::test]
async fn a_viewer_on_each_node_both_read_a_count_of_two() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let (mut on_a, _) = Client::join(a.local_addr(), "room", named("Ana")).await;
    let (mut on_b, _) = Client::join(b.local_addr(), "room", named("Bo")).await;
    for c in [&mut on_a, &mut on_b] {
        c.next_where(|m| matches!(m, ServerMessage::ViewerCount(v) if v.count == 2))
            .await;
    }
    for node in [&a, &b] {
        room_info_until(node.local_addr(), "room", |v| v["viewerCount"] == 2).await;
    }
    // One leaves: both nodes read 1 again.
    drop(on_b);
    on_a.next_where(|m| matches!(m, ServerMessage::ViewerCount(v) if v.count == 1))
        .await;
    room_info_until(b.local_addr(), "room", |v| v["viewerCount"] == 1).await;
}

#[tokio::test]
async fn readyz_says_503_while_redis_is_unreachable() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.hub.redis = Some(redis.url());
    let node = start(c).await;
    let readyz = || async {
        let r = reqwest::get(format!("http://{}/readyz", node.local_addr()))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(readyz().await.0, 200);
    drop(redis);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (status, body) = readyz().await;
        if status == 503 {
            assert!(body.contains("redis"), "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still ready: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The hearts a client is shown until their total reaches `total`: the taps per colour
/// summed over every `hearts` frame, and how many frames that took.
async fn hearts_until(c: &mut Client, total: u64) -> (BTreeMap<String, u32>, usize) {
    let (mut taps, mut frames) = (BTreeMap::new(), 0);
    loop {
        let ServerMessage::Hearts(h) = c
            .next_where(|m| matches!(m, ServerMessage::Hearts(_)))
            .await
        else {
            unreachable!()
        };
        frames += 1;
        for (colour, n) in h.counts {
            *taps.entry(colour).or_default() += n;
        }
        assert!(h.total <= total, "a total above what was sent: {}", h.total);
        if h.total == total {
            return (taps, frames);
        }
    }
}

#[tokio::test]
async fn two_viewers_on_two_nodes_chat_send_hearts_and_read_one_count_and_one_total() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let (mut ana, _) = Client::join(a.local_addr(), "room", named("Ana")).await;
    let (mut bo, _) = Client::join(b.local_addr(), "room", named("Bo")).await;
    for c in [&mut ana, &mut bo] {
        c.next_where(|m| matches!(m, ServerMessage::ViewerCount(v) if v.count == 2))
            .await;
    }
    ana.chat("hello from A", "a1").await;
    bo.chat("hello from B", "b1").await;
    for c in [&mut ana, &mut bo] {
        let mut texts = Vec::new();
        while texts.len() < 2 {
            if let ServerMessage::Chat(m) =
                c.next_where(|m| matches!(m, ServerMessage::Chat(_))).await
            {
                texts.push(m.text);
            }
        }
        texts.sort();
        assert_eq!(texts, ["hello from A", "hello from B"]);
    }

    // Taps on both nodes, within each viewer's allowance (10/s).
    let started = std::time::Instant::now();
    let tap = |count, colour: &str| {
        ClientMessage::Hearts(SendHearts {
            count,
            colour: Some(colour.into()),
        })
    };
    for _ in 0..4 {
        ana.send(&tap(2, "#ff6b6b")).await;
        bo.send(&tap(1, "#48dbfb")).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let expected = BTreeMap::from([("#48dbfb".to_owned(), 4), ("#ff6b6b".to_owned(), 8)]);
    for c in [&mut ana, &mut bo] {
        let (taps, frames) = hearts_until(c, 12).await;
        assert_eq!(taps, expected, "every node's taps, each shown once");
        // One frame per tick (200 ms) at most, however many nodes send hearts.
        let ticks = started.elapsed().as_millis() / 200 + 1;
        assert!(
            frames as u128 <= ticks,
            "{frames} hearts frames in {ticks} ticks"
        );
    }
    for node in [&a, &b] {
        room_info_until(node.local_addr(), "room", |v| v["heartsTotal"] == 12).await;
    }
    // A viewer joining either node later is told the same total.
    let (_, wa) = Client::join(a.local_addr(), "room", named("Cy")).await;
    let (_, wb) = Client::join(b.local_addr(), "room", named("Di")).await;
    assert_eq!((wa.hearts_total, wb.hearts_total), (12, 12));
}

/// Posts `text` and waits for this client's own answer: `Ok` its message back, `Err`
/// the refusal.
async fn post(c: &mut Client, text: &str, client_id: &str) -> Result<Seq, ErrorFrame> {
    c.chat(text, client_id).await;
    match c
        .next_where(|m| match m {
            ServerMessage::Chat(m) => m.client_id.as_deref() == Some(client_id),
            ServerMessage::Error(e) => e.client_id.as_deref() == Some(client_id),
            _ => false,
        })
        .await
    {
        ServerMessage::Chat(m) => Ok(m.seq),
        ServerMessage::Error(e) => Err(e),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn one_flooder_on_two_nodes_is_limited_and_muted_as_one() {
    let redis = RedisServer::start();
    // 3 posts per minute: a slow machine cannot earn a post back during the test.
    let (a, b, _da, _db) = two_nodes_with(&redis, |c| c.hub.chat_window_ms = 60_000).await;
    let (mut on_a, w) = Client::join(a.local_addr(), "room", named("Flo")).await;
    let (mut on_b, wb) = Client::join(b.local_addr(), "room", same_viewer(&w)).await;
    assert_eq!(wb.viewer_id, w.viewer_id, "one identity on both nodes");
    // One node lets through a burst of 3, then mutes for 30 s. Alternating nodes buys
    // nothing more.
    let mut passed = 0;
    let mut refusals = Vec::new();
    for i in 0..4 {
        for (node, c) in [("a", &mut on_a), ("b", &mut on_b)] {
            match post(c, &format!("flood {node}{i}"), &format!("{node}{i}")).await {
                Ok(_) => passed += 1,
                Err(e) => refusals.push(e.code),
            }
        }
    }
    assert_eq!(passed, 3, "the burst of one node, not of two");
    assert_eq!(refusals[0], ErrorCode::RateLimited);
    assert!(
        refusals[1..].iter().all(|c| *c == ErrorCode::Muted),
        "muted on both nodes: {refusals:?}"
    );
    // Someone else is not affected.
    let (mut other, _) = Client::join(b.local_addr(), "room", named("Nice")).await;
    assert!(post(&mut other, "hi", "n1").await.is_ok());
}

#[tokio::test]
async fn bans_slow_mode_and_blocked_words_set_through_one_node_hold_on_the_other() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let (mut moderator, _) =
        Client::join(a.local_addr(), "room", staff(MODERATOR_TOKEN, "Mod")).await;
    let (mut watcher, _) = Client::join(b.local_addr(), "room", staff(MODERATOR_TOKEN, "Wa")).await;
    let (mut ana, _) = Client::join(b.local_addr(), "room", named("Ana")).await;
    let (mut troll, wt) = Client::join(b.local_addr(), "room", named("Troll")).await;

    // Blocked words over HTTP on A; staff on B are told.
    let http = reqwest::Client::new();
    let r = http
        .put(format!(
            "http://{}/api/rooms/room/blocked-words",
            a.local_addr()
        ))
        .bearer_auth(MODERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"words":["Spam"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    watcher
        .next_where(|m| {
            matches!(m, ServerMessage::Settings(s) if s.blocked_words == Some(vec!["spam".into()]))
        })
        .await;
    let e = post(&mut ana, "SPAM here", "a1").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BlockedWord);

    // Slow mode over A's socket: viewers on B are told and held to it.
    moderator
        .send(&ClientMessage::SlowMode(SlowMode { seconds: 30 }))
        .await;
    ana.next_where(|m| matches!(m, ServerMessage::Settings(s) if s.slow_mode_secs == 30))
        .await;
    post(&mut ana, "first", "a2").await.unwrap();
    let e = post(&mut ana, "second", "a3").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SlowMode);
    assert!(e.retry_after_ms.unwrap() > 25_000, "{e:?}");
    room_info_until(b.local_addr(), "room", |v| v["slowModeSecs"] == 30).await;

    // A ban through A closes the viewer's socket on B, and B refuses it after.
    moderator
        .send(&ClientMessage::Ban(BanViewer {
            viewer_id: wt.viewer_id.clone(),
            duration_secs: None,
            reason: None,
        }))
        .await;
    let ServerMessage::Error(e) = troll
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::Banned);
    assert_eq!(troll.closed().await, Some(close::BANNED));
    let mut again = Client::connect_only(b.local_addr(), "room", same_viewer(&wt)).await;
    assert_eq!(again.closed().await, Some(close::BANNED));
    // A node loading the room afterwards reads the same state from Redis.
    let (c, _dc) = node(&redis).await;
    let mut late = Client::connect_only(c.local_addr(), "room", same_viewer(&wt)).await;
    assert_eq!(late.closed().await, Some(close::BANNED));
    let (_, wc) = Client::join(c.local_addr(), "room", staff(MODERATOR_TOKEN, "Cy")).await;
    assert_eq!(wc.settings.slow_mode_secs, 30);
    assert_eq!(wc.settings.blocked_words, Some(vec!["spam".into()]));
    ana.alive().await;
}

#[tokio::test]
async fn a_message_deleted_on_one_node_vanishes_on_the_other_and_from_a_resume_there() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let (mut moderator, _) =
        Client::join(a.local_addr(), "room", staff(MODERATOR_TOKEN, "Mod")).await;
    let (mut ana, wa) = Client::join(b.local_addr(), "room", named("Ana")).await;
    let keep = post(&mut ana, "keep me", "k").await.unwrap();
    let bad = post(&mut ana, "bad words", "b").await.unwrap();
    let ServerMessage::Chat(bad_msg) = moderator
        .next_where(|m| matches!(m, ServerMessage::Chat(c) if c.seq == bad))
        .await
    else {
        unreachable!()
    };
    moderator
        .send(&ClientMessage::Delete(DeleteMessage {
            id: bad_msg.id.clone(),
        }))
        .await;
    let ServerMessage::Deleted(d) = ana
        .next_where(|m| matches!(m, ServerMessage::Deleted(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(d.id, bad_msg.id);
    assert!(d.seq > bad);

    // A resume on B from before the message: the deletion, not the message.
    let mut back = Client::connect_only(b.local_addr(), "room", resume(&wa, wa.epoch, keep)).await;
    let w = back.welcome().await;
    assert!(w.recovered);
    assert_eq!(chat_texts(&w.history), Vec::<String>::new());
    assert!(w
        .history
        .iter()
        .any(|e| matches!(e, RoomEvent::Deleted(x) if x.id == bad_msg.id)));
    // Newcomers on either node, and on a node that loads the room only now, see only
    // the message that was kept.
    let (c, _dc) = node(&redis).await;
    for addr in [a.local_addr(), b.local_addr(), c.local_addr()] {
        let (_, w) = Client::join(addr, "room", hello()).await;
        assert_eq!(chat_texts(&w.history), ["keep me"], "{addr}");
    }
    // Deleting it again: nothing left to delete.
    moderator
        .send(&ClientMessage::Delete(DeleteMessage { id: bad_msg.id }))
        .await;
    let ServerMessage::Error(e) = moderator
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn without_an_answer_from_redis_posts_and_moderation_are_refused_unavailable() {
    let redis = RedisServer::start();
    let (a, _da) = node(&redis).await;
    let (mut moderator, _) =
        Client::join(a.local_addr(), "room", staff(MODERATOR_TOKEN, "Mod")).await;
    let (mut ana, _) = Client::join(a.local_addr(), "room", named("Ana")).await;
    post(&mut ana, "before", "a0").await.unwrap();
    // Frozen, not stopped: nothing answers, and no other server can take its port.
    redis.pause();
    // The flood limit cannot be checked: refused, never let through unchecked.
    let e = post(&mut ana, "while away", "a1").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert!(e.retry_after_ms.is_some());
    moderator
        .send(&ClientMessage::SlowMode(SlowMode { seconds: 10 }))
        .await;
    let ServerMessage::Error(e) = moderator
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::Unavailable);
    let info = room_info_until(a.local_addr(), "room", |_| true).await;
    assert_eq!(info["slowModeSecs"], 0, "nothing changed");
}

/// The close code of a client's socket, skipping frames before it; panics if it stays
/// open longer than `limit`.
async fn closed_within(c: &mut Client, limit: std::time::Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_within(left).await {
            Some(Seen::Closed(code)) => return code,
            Some(Seen::Frame(_)) => {}
            None => panic!(
                "the socket stayed open {} s after Redis stopped",
                limit.as_secs()
            ),
        }
    }
}

/// 1013: try again later (what a widget answers by reconnecting, showing "reconnecting").
const TRY_AGAIN_LATER: u16 = 1013;

#[tokio::test]
async fn redis_stopped_for_10_s_and_restarted_closes_chat_for_a_while_and_loses_nothing_acknowledged(
) {
    let data = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start_persistent(data.path());
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let (mut ana, wa) = Client::join(a.local_addr(), "room", named("Ana")).await;
    let (mut bob, wb) = Client::join(b.local_addr(), "room", named("Bob")).await;
    let before = post(&mut ana, "before the outage", "a0").await.unwrap();
    assert_eq!(
        chats_until(&mut bob, before).await.last().unwrap().0,
        before
    );
    // A third node with nobody on it uses no Redis during the outage.
    let (c, _dc) = node(&redis).await;

    redis.stop();
    let stopped = std::time::Instant::now();
    // Both nodes notice and close their sockets with "try again later", so widgets
    // show "reconnecting" instead of accepting messages they cannot post.
    let limit = std::time::Duration::from_secs(10);
    assert_eq!(closed_within(&mut ana, limit).await, Some(TRY_AGAIN_LATER));
    assert_eq!(closed_within(&mut bob, limit).await, Some(TRY_AGAIN_LATER));
    eprintln!(
        "redis down: both sockets closed {:.1} s after the stop",
        stopped.elapsed().as_secs_f64()
    );
    // A viewer coming (back) meanwhile is told the same, promptly, on either node.
    for node in [&a, &b] {
        let mut c =
            Client::connect_only(node.local_addr(), "room", resume(&wa, wa.epoch, before)).await;
        let asked = std::time::Instant::now();
        assert_eq!(closed_within(&mut c, limit).await, Some(TRY_AGAIN_LATER));
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(5),
            "refused only after {:?}",
            asked.elapsed()
        );
    }

    tokio::time::sleep(std::time::Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    redis.restart();

    // Each comes back on the other node with its (epoch, lastSeq): the same epoch,
    // nothing missed, nothing twice; the chat works across nodes again.
    let (mut ana, wa2) = rejoin(b.local_addr(), resume(&wa, wa.epoch, before)).await;
    let (mut bob, wb2) = rejoin(a.local_addr(), resume(&wb, wb.epoch, before)).await;
    for w in [&wa2, &wb2] {
        assert_eq!(w.epoch, wa.epoch, "Redis kept the room: same epoch");
        assert!(w.recovered, "resumed exactly");
        assert!(
            chat_texts(&w.history).is_empty(),
            "nothing was posted meanwhile: {:?}",
            w.history
        );
    }
    let after = post(&mut ana, "after the outage", "a1").await.unwrap();
    assert!(after > before);
    assert_eq!(chats_until(&mut bob, after).await.last().unwrap().0, after);
    // A newcomer sees both: nothing acknowledged was lost. On the idle node, the first
    // join after the outage is welcomed at once (its connection to Redis was dead).
    let (_carl, wc) = Client::join(c.local_addr(), "room", named("Carl")).await;
    let texts = chat_texts(&wc.history);
    assert_eq!(
        texts,
        ["before the outage", "after the outage"],
        "history after the restart"
    );
}

/// Joins `room` on `addr` with `hello`, retrying while the node answers "try again
/// later" (Redis just came back; its room is loaded again on the first join that
/// succeeds). Gives up after 20 s.
async fn rejoin(addr: std::net::SocketAddr, hello: Hello) -> (Client, Welcome) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut c = Client::connect_only(addr, "room", hello.clone()).await;
        loop {
            match c.next().await {
                Seen::Frame(ServerMessage::Welcome(w)) => return (c, w),
                Seen::Frame(_) => {}
                Seen::Closed(code) => {
                    assert_eq!(code, Some(TRY_AGAIN_LATER), "refused otherwise");
                    break;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no welcome 20 s after Redis came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn redis_restarted_without_its_data_starts_a_new_epoch_that_viewers_resync_to() {
    let mut redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let (mut ana, wa) = Client::join(a.local_addr(), "room", named("Ana")).await;
    let (mut bob, wb) = Client::join(b.local_addr(), "room", named("Bob")).await;
    let before = post(&mut ana, "lost with Redis", "a0").await.unwrap();
    chats_until(&mut bob, before).await;
    redis.stop();
    redis.restart();
    // The nodes find the room's epoch gone when they reconnect: they must not go on
    // counting seqs from 1 under the old epoch (viewers would skip those as seen).
    let limit = std::time::Duration::from_secs(10);
    assert_eq!(closed_within(&mut ana, limit).await, Some(TRY_AGAIN_LATER));
    assert_eq!(closed_within(&mut bob, limit).await, Some(TRY_AGAIN_LATER));
    let (mut ana, wa2) = rejoin(a.local_addr(), resume(&wa, wa.epoch, before)).await;
    let (mut bob, wb2) = rejoin(b.local_addr(), resume(&wb, wb.epoch, before)).await;
    assert_ne!(wa2.epoch, wa.epoch, "a new epoch");
    assert_eq!(wa2.epoch, wb2.epoch, "one epoch on both nodes");
    assert!(!wa2.recovered && !wb2.recovered, "told to re-sync");
    let after = post(&mut ana, "the new epoch", "a1").await.unwrap();
    assert_eq!(after, 1, "seqs start again with the new epoch");
    assert_eq!(chats_until(&mut bob, after).await.last().unwrap().0, after);
}

#[tokio::test]
async fn two_hundred_disconnects_to_random_nodes_lose_nothing_and_duplicate_nothing() {
    let seed = under_fire::seed();
    let redis = RedisServer::start();
    // The sender posts as fast as it can: lift the flood limit for this test only.
    let (a, b, _da, _db) = two_nodes_with(&redis, |c| {
        c.hub.chat_burst = 1_000_000;
        c.hub.chat_window_ms = 1;
    })
    .await;
    let report = under_fire::resume_under_fire(&[a.local_addr(), b.local_addr()], seed, 2000).await;
    println!(
        "{} messages across two nodes, {} receiver disconnects ({} mid-welcome), each \
         back on a node picked at random",
        report.messages,
        under_fire::RECEIVER_CYCLES,
        report.mid_welcome
    );
}

#[tokio::test]
async fn after_redis_restarts_without_its_data_a_node_started_then_and_the_nodes_before_know_the_same_viewers(
) {
    let mut redis = RedisServer::start();
    let (a, _da) = node(&redis).await;
    let (_, from_a) = Client::join(a.local_addr(), "room", named("Ana")).await;
    redis.stop();
    redis.restart();
    // B starts at once: Redis has no identity secret, and A may not have noticed yet.
    let (b, _db) = node(&redis).await;
    let (_, on_b) = Client::join(b.local_addr(), "room", same_viewer(&from_a)).await;
    assert_eq!(
        on_b.viewer_id, from_a.viewer_id,
        "A's viewer is the same viewer on B (its token accepted)"
    );
    assert_eq!(on_b.viewer_token, from_a.viewer_token);
    let (_, from_b) = Client::join(b.local_addr(), "room", named("Bo")).await;
    // A lost its room with Redis: `rejoin` waits out its "try again later".
    let (_, on_a) = rejoin(a.local_addr(), same_viewer(&from_b)).await;
    assert_eq!(
        on_a.viewer_id, from_b.viewer_id,
        "B's viewer is the same viewer on A (its token accepted)"
    );
    // A node started after that knows both.
    let (c, _dc) = node(&redis).await;
    for w in [&from_a, &from_b] {
        let (_, on_c) = Client::join(c.local_addr(), "room", same_viewer(w)).await;
        assert_eq!(on_c.viewer_id, w.viewer_id, "known on C too");
    }
}

#[tokio::test]
async fn with_an_identity_secret_file_nodes_know_each_others_viewers_whatever_redis_lost() {
    let mut redis = RedisServer::start();
    let secret = tempfile::tempdir().unwrap();
    let file = secret.path().join("identity-secret");
    std::fs::write(&file, "7f3c1e9a5b2d48c6a0e1f7b3d9c5a2e8\n").unwrap();
    let with_file = |dir: &TempDir, redis: &RedisServer| {
        let mut c = config(dir.path());
        c.hub.redis = Some(redis.url());
        c.hub.identity_secret_file = Some(file.clone());
        c
    };
    let da = tempfile::tempdir().unwrap();
    let a = start(with_file(&da, &redis)).await;
    let (_, from_a) = Client::join(a.local_addr(), "room", named("Ana")).await;
    redis.stop();
    redis.restart();
    let db = tempfile::tempdir().unwrap();
    let b = start(with_file(&db, &redis)).await;
    let (_, on_b) = Client::join(b.local_addr(), "room", same_viewer(&from_a)).await;
    assert_eq!(
        on_b.viewer_id, from_a.viewer_id,
        "the file's secret, on both"
    );
    // A node without the file signs with another secret: the file is what decides.
    let (c, _dc) = node(&redis).await;
    let (_, on_c) = Client::join(c.local_addr(), "room", same_viewer(&from_a)).await;
    assert_ne!(on_c.viewer_id, from_a.viewer_id);
    // A file too short to be a secret stops the node at start.
    std::fs::write(&file, "short").unwrap();
    let dd = tempfile::tempdir().unwrap();
    let refused = lucarne_server::Server::start(with_file(&dd, &redis)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("at least 32 bytes")),
        "{refused:?}"
    );
}

/// Welcomed (`Ok`), or the refusal and close code.
async fn welcome_or_refusal(c: &mut Client) -> Result<Welcome, (ErrorFrame, Option<u16>)> {
    let mut error = None;
    loop {
        match c.next().await {
            Seen::Frame(ServerMessage::Welcome(w)) => return Ok(w),
            Seen::Frame(ServerMessage::Error(e)) => error = Some(e),
            Seen::Frame(_) => {}
            Seen::Closed(code) => return Err((error.expect("an error before the close"), code)),
        }
    }
}

#[tokio::test]
async fn one_address_gets_one_budget_of_new_identities_over_two_nodes_not_one_per_node() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes_with(&redis, |c| c.hub.new_viewers_per_ip = 3).await;
    let (mut welcomed, mut refused) = (0, Vec::new());
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let mut c = Client::connect_only(node.local_addr(), "room", named(&format!("V{i}"))).await;
        match welcome_or_refusal(&mut c).await {
            Ok(_) => welcomed += 1,
            Err((e, code)) => refused.push((e.code, code, e.message)),
        }
    }
    assert_eq!(welcomed, 3, "one node's budget, not two: {refused:?}");
    for (code, close, message) in &refused {
        assert_eq!((*code, *close), (ErrorCode::RateLimited, Some(1013)));
        assert!(message.contains("new viewers"), "{message}");
    }
}

/// `PUT /api/rooms/room/slow-mode` with bearer `token`: the status.
async fn slow_mode_with(addr: std::net::SocketAddr, token: &str) -> u16 {
    reqwest::Client::new()
        .put(format!("http://{addr}/api/rooms/room/slow-mode"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(r#"{"seconds":1}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn wrong_staff_tokens_from_one_address_are_limited_over_two_nodes_as_on_one() {
    let redis = RedisServer::start();
    let (a, b, _da, _db) = two_nodes(&redis).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &a } else { &b };
        statuses.push(slow_mode_with(node.local_addr(), &format!("guess-{i}")).await);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 429, 429, 429],
        "5 guesses a minute for the address, over both nodes"
    );
}

#[tokio::test]
async fn without_an_answer_from_redis_a_node_limits_wrong_tokens_on_its_own() {
    let redis = RedisServer::start();
    let (a, _da) = node(&redis).await;
    redis.pause();
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(slow_mode_with(a.local_addr(), &format!("guess-{i}")).await);
    }
    // Neither open (no limit) nor closed (everyone refused): the node's own count.
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn thirty_viewers_opening_a_new_made_up_room_at_once_are_all_welcomed() {
    let redis = RedisServer::start();
    // Their identities are not what this is about.
    let (a, _da) = {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.hub.redis = Some(redis.url());
        c.hub.new_viewers_per_ip = 0;
        (start(c).await, dir)
    };
    let addr = a.local_addr();
    let joins: Vec<_> = (0..30)
        .map(|i| {
            tokio::spawn(async move {
                let mut c = Client::connect_only(addr, "fresh", named(&format!("V{i}"))).await;
                welcome_or_refusal(&mut c)
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e.message)
            })
        })
        .collect();
    let mut refused = Vec::new();
    for j in joins {
        if let Err(why) = j.await.unwrap() {
            refused.push(why);
        }
    }
    // One room was made (5 a minute per address): the others joined it.
    assert!(refused.is_empty(), "refused: {refused:?}");
}
