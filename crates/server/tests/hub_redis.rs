//! The chat hub on two nodes sharing one real Redis (`--redis`): one global order of
//! events, and a viewer resuming on the other node with nothing lost or duplicated.

mod hub_support;
mod redis_support;

use hub_support::*;
use lucarne_protocol::*;
use lucarne_server::Server;
use redis_support::RedisServer;
use tempfile::TempDir;

/// Two nodes on `redis`, each with its own data directory.
async fn two_nodes(redis: &RedisServer) -> (Server, Server, TempDir, TempDir) {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node = |dir: &TempDir| {
        let mut c = config(dir.path());
        c.hub.redis = Some(redis.url());
        c
    };
    let a = start(node(&da)).await;
    let b = start(node(&db)).await;
    (a, b, da, db)
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
