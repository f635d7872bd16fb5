//! Edge nodes over real sockets: an origin publishing the demo, an edge started with
//! `--origin` pointing at it, and clients of the edge. What they must see: the origin's
//! playlist numbers and media bytes, LL-HLS blocking reload, the push to many viewers
//! for one upstream subscription, 404 for what the origin does not have, and the edge
//! riding out an origin that is killed and restarted. With Redis, a viewer on the edge
//! chats with one on the origin, even when the chat is the edge's first request for the
//! stream (its room is the origin's to vouch for: 404 only when the origin lacks the
//! stream, 503 while the origin is away).

mod hub_support;
mod publisher;
mod redis_support;

use futures_util::StreamExt;
use lucarne_protocol::{ServerMessage, StreamState};
use lucarne_server::{Config, Server};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `hub_support`'s node, with the demo (the stream edges relay), the chat in memory
/// and none of the hub tests' tokens or made-up rooms; an edge of `origin` if given.
fn config(dir: &Path, origin: Option<String>) -> Config {
    let mut c = hub_support::config(dir);
    c.no_demo = false;
    c.hub = lucarne_server::hub::HubConfig {
        chat_db: Some(":memory:".into()),
        ..Default::default()
    };
    c.edge = lucarne_server::edge::EdgeConfig {
        origin,
        edge_idle_secs: 2,
    };
    c
}

/// A node serving in this process.
struct Node {
    server: Server,
    base: String,
    _dir: tempfile::TempDir,
}

async fn node(origin: Option<String>) -> Node {
    node_on(origin, None).await
}

/// [`node`], its chat on `redis` when given.
async fn node_on(origin: Option<String>, redis: Option<String>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), origin);
    c.hub.redis = redis;
    let server = Server::start(c).await.expect("server starts");
    let base = format!("http://{}", server.local_addr());
    Node {
        server,
        base,
        _dir: dir,
    }
}

/// An origin with the demo, and an edge of it.
async fn origin_and_edge() -> (Node, Node) {
    let origin = node(None).await;
    let edge = node(Some(origin.base.clone())).await;
    (origin, edge)
}

async fn get(url: &str) -> (u16, bytes::Bytes) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.bytes().await.unwrap_or_default()),
        Err(_) => (0, bytes::Bytes::new()),
    }
}

async fn text(url: &str) -> (u16, String) {
    let (status, body) = get(url).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn ok_bytes(url: &str) -> bytes::Bytes {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}");
    body
}

/// Polls `url` until `ok` holds, or fails after `limit`.
async fn until(url: &str, limit: Duration, ok: impl Fn(u16, &str) -> bool) -> String {
    let end = Instant::now() + limit;
    loop {
        let (status, body) = text(url).await;
        if ok(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < end,
            "{url} never became what was expected; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The complete segments a playlist lists.
fn segments(playlist: &str) -> Vec<u64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_suffix(".m4s"))
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn media_sequence(playlist: &str) -> u64 {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no media sequence in {playlist}"))
}

/// The `(msn, part)` of the preload hint.
fn hint(playlist: &str) -> (u64, u64) {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .unwrap_or_else(|| panic!("no preload hint in {playlist}"));
    let uri = line.split("URI=\"").nth(1).unwrap().trim_end_matches('"');
    let mut n = uri.trim_end_matches(".m4s").split('.');
    (
        n.next().unwrap().parse().unwrap(),
        n.next().unwrap().parse().unwrap(),
    )
}

/// `name{stream="…"}` in the node's `/metrics`.
async fn metric(base: &str, name: &str, stream: &str) -> Option<f64> {
    let (status, body) = text(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let prefix = format!("{name}{{stream=\"{stream}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

/// `name` (no labels) in the node's `/metrics`.
async fn bare_metric(base: &str, name: &str) -> Option<f64> {
    let (_, body) = text(&format!("{base}/metrics")).await;
    let prefix = format!("{name} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

async fn metric_until(
    base: &str,
    name: &str,
    stream: &str,
    limit: Duration,
    ok: impl Fn(Option<f64>) -> bool,
) {
    let end = Instant::now() + limit;
    loop {
        let v = metric(base, name, stream).await;
        if ok(v) {
            return;
        }
        assert!(
            Instant::now() < end,
            "{name}{{stream={stream:?}}} stayed {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn push(base: &str, id: &str) -> Socket {
    let url = format!("{}/live/{id}/ll", base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("push socket opens")
        .0
}

/// The next binary message, within five seconds.
async fn binary(ws: &mut Socket) -> bytes::Bytes {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket stays open")
            .expect("a readable message");
        match m {
            Message::Binary(b) => return b,
            Message::Text(t) => panic!("a state word on a live stream: {t}"),
            _ => {}
        }
    }
}

fn is_fragment(b: &[u8]) -> bool {
    b.len() > 8 && &b[4..8] == b"moof"
}

#[tokio::test]
async fn an_edge_serves_the_origins_playlist_numbers_and_media_bytes() {
    let (origin, edge) = origin_and_edge().await;
    let on_edge = until(
        &format!("{}/live/demo/index.m3u8", edge.base),
        Duration::from_secs(10),
        |s, _| s == 200,
    )
    .await;
    let on_origin = text(&format!("{}/live/demo/index.m3u8", origin.base))
        .await
        .1;
    assert!(on_edge.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{on_edge}");
    // The relay brought the origin's whole window with its first request.
    let listed = segments(&on_edge);
    assert_eq!(listed.len(), 6, "{on_edge}");
    let first = segments(&on_origin);
    assert!(
        media_sequence(&on_edge).abs_diff(media_sequence(&on_origin)) <= 1,
        "edge:\n{on_edge}\norigin:\n{on_origin}"
    );
    let common: Vec<u64> = listed
        .iter()
        .copied()
        .filter(|m| first.contains(m))
        .collect();
    assert!(common.len() >= 5, "edge {listed:?}, origin {first:?}");

    assert_eq!(
        ok_bytes(&format!("{}/live/demo/init.mp4", edge.base)).await,
        ok_bytes(&format!("{}/live/demo/init.mp4", origin.base)).await,
        "the same init segment"
    );
    for msn in common {
        let a = ok_bytes(&format!("{}/live/demo/{msn}.m4s", edge.base)).await;
        let b = ok_bytes(&format!("{}/live/demo/{msn}.m4s", origin.base)).await;
        assert!(is_fragment(&a));
        assert_eq!(
            a, b,
            "segment {msn}: the same bytes on the edge and the origin"
        );
        let part = ok_bytes(&format!("{}/live/demo/{msn}.3.m4s", edge.base)).await;
        assert_eq!(
            part,
            ok_bytes(&format!("{}/live/demo/{msn}.3.m4s", origin.base)).await
        );
    }
    // `/s/{id}` (the loader's short form) works through the edge too.
    let (status, info) = text(&format!("{}/s/demo", edge.base)).await;
    assert_eq!(status, 200);
    assert!(info.contains("\"live\":true"), "{info}");
    drop(origin.server);
}

#[tokio::test]
async fn the_edge_playlist_keeps_up_with_the_origin_through_blocking_reloads() {
    let (origin, edge) = origin_and_edge().await;
    let url = format!("{}/live/demo/index.m3u8", edge.base);
    let mut playlist = until(&url, Duration::from_secs(10), |s, _| s == 200).await;
    // Follow the live edge part by part for two seconds of media, as an LL-HLS player
    // does: each request is answered once the hinted part exists.
    let start = segments(&playlist).last().copied().unwrap();
    let mut reloads = 0;
    while segments(&playlist).last().copied().unwrap() < start + 2 {
        let (msn, part) = hint(&playlist);
        let (status, next) = text(&format!("{url}?_HLS_msn={msn}&_HLS_part={part}")).await;
        assert_eq!(status, 200, "{next}");
        let named = format!("URI=\"{msn}.{part}.m4s\"");
        assert!(
            next.lines()
                .any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&named)),
            "the answer lists the part it waited for ({named}):\n{next}"
        );
        let on_edge = ok_bytes(&format!("{}/live/demo/{msn}.{part}.m4s", edge.base)).await;
        let on_origin = ok_bytes(&format!("{}/live/demo/{msn}.{part}.m4s", origin.base)).await;
        assert_eq!(on_edge, on_origin, "part {msn}.{part}");
        playlist = next;
        reloads += 1;
        assert!(
            reloads < 100,
            "two seconds of 100 ms parts took {reloads} reloads"
        );
    }
    assert!(reloads >= 10, "followed part by part ({reloads} reloads)");
}

#[tokio::test]
async fn twenty_push_viewers_on_an_edge_are_one_subscriber_on_the_origin() {
    let (origin, edge) = origin_and_edge().await;
    let init = ok_bytes(&format!("{}/live/demo/init.mp4", origin.base)).await;
    let mut viewers = Vec::new();
    for _ in 0..20 {
        viewers.push(push(&edge.base, "demo").await);
    }
    for ws in &mut viewers {
        assert_eq!(binary(ws).await, init, "the origin's init segment first");
        for _ in 0..12 {
            assert!(is_fragment(&binary(ws).await), "then CMAF chunks");
        }
    }
    let long = Duration::from_secs(5);
    metric_until(&edge.base, "lucarne_push_subscribers", "demo", long, |v| {
        v == Some(20.0)
    })
    .await;
    assert_eq!(
        metric(&origin.base, "lucarne_push_subscribers", "demo").await,
        Some(1.0),
        "one upstream subscription for twenty viewers"
    );
    assert_eq!(
        metric(&edge.base, "lucarne_edge_upstream_connected", "demo").await,
        Some(1.0)
    );
    // They keep playing: a chunk each, a second later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for ws in &mut viewers {
        assert!(is_fragment(&binary(ws).await));
    }
}

#[tokio::test]
async fn a_stream_the_origin_does_not_have_is_404_on_the_edge() {
    let (origin, edge) = origin_and_edge().await;
    for path in [
        "/live/nope/index.m3u8",
        "/live/nope/init.mp4",
        "/live/nope/5.m4s",
        "/api/streams/nope",
        "/live/NOPE/index.m3u8",
    ] {
        let (status, body) = text(&format!("{}{path}", edge.base)).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let url = format!("{}/live/nope/ll", edge.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 404),
        other => panic!("expected a 404 handshake, got {:?}", other.map(|_| ())),
    }
    // Nothing lingers upstream for it.
    assert_eq!(
        metric(&origin.base, "lucarne_push_subscribers", "nope").await,
        None
    );
    metric_until(
        &edge.base,
        "lucarne_edge_upstream_connected",
        "nope",
        Duration::from_secs(5),
        |v| v.is_none(),
    )
    .await;
}

#[tokio::test]
async fn the_relay_lasts_while_viewers_ask_and_closes_after_the_last() {
    let (origin, edge) = origin_and_edge().await;
    let url = format!("{}/live/demo/index.m3u8", edge.base);
    // An HLS viewer reloading its playlist for longer than the idle time (2 s here).
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_secs(5) {
        let (status, p) = text(&url).await;
        assert_eq!(status, 200, "{p}");
        // One relay all along: it never closed and reopened under the viewer.
        assert_eq!(
            metric(&origin.base, "lucarne_push_subscribers", "demo").await,
            Some(1.0),
            "after {:?}",
            watching.elapsed()
        );
        assert_eq!(
            bare_metric(&edge.base, "lucarne_edge_relays_started_total").await,
            Some(1.0),
            "after {:?}",
            watching.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        metric(&origin.base, "lucarne_push_subscribers", "demo").await,
        Some(1.0),
        "the relay stayed while the viewer reloaded"
    );
    assert_eq!(
        metric(&edge.base, "lucarne_edge_upstream_connected", "demo").await,
        Some(1.0)
    );
    // The viewer leaves: the relay closes.
    let long = Duration::from_secs(10);
    metric_until(
        &origin.base,
        "lucarne_push_subscribers",
        "demo",
        long,
        |v| v == Some(0.0),
    )
    .await;
    metric_until(
        &edge.base,
        "lucarne_edge_upstream_connected",
        "demo",
        long,
        |v| v.is_none(),
    )
    .await;
    // A new viewer brings it back.
    let (status, p) = text(&url).await;
    assert_eq!(status, 200);
    assert_eq!(
        bare_metric(&edge.base, "lucarne_edge_relays_started_total").await,
        Some(2.0)
    );
    assert_eq!(segments(&p).len(), 6, "{p}");
    assert_eq!(
        metric(&origin.base, "lucarne_push_subscribers", "demo").await,
        Some(1.0)
    );
}

/// The next text message (a state word), skipping media, within `limit`.
async fn word(ws: &mut Socket, limit: Duration) -> String {
    tokio::time::timeout(limit, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a state word in time")
}

async fn state_on(base: &str, id: &str) -> String {
    let (status, body) = text(&format!("{base}/api/streams/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["state"].as_str().unwrap_or_default().to_owned()
}

/// An origin with the channel `studio` (key `k`, 1 s grace period) and no demo; its
/// HTTP base and RTMP URL.
async fn channel_origin() -> (Server, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), None);
    c.no_demo = true;
    c.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.stream_keys = vec!["k=studio".into()];
    c.ingest.ingest_grace_secs = 1;
    let origin = Server::start(c).await.expect("origin starts");
    let base = format!("http://{}", origin.local_addr());
    let rtmp = format!("rtmp://{}/live/k", origin.rtmp_addr().unwrap());
    (origin, base, rtmp, dir)
}

#[tokio::test]
async fn a_broadcast_on_the_origin_plays_on_the_edge_and_ends_there_too() {
    let (origin, origin_base, rtmp, _dir) = channel_origin().await;
    let edge = node(Some(origin_base.clone())).await;

    // Nobody broadcasts yet: the edge says so, as the origin does.
    assert_eq!(state_on(&edge.base, "studio").await, "offline");
    let mut viewer = push(&edge.base, "studio").await;
    assert_eq!(word(&mut viewer, Duration::from_secs(5)).await, "offline");
    // The edge's chat room of the stream follows it too.
    let (mut chat, welcome) =
        hub_support::Client::join(edge.server.local_addr(), "studio", hub_support::hello()).await;
    assert_eq!(welcome.stream_state, StreamState::Offline);

    let mut ffmpeg = publisher::spawn(
        publisher::command(&rtmp, 4.0, publisher::H264, true).stderr(Stdio::null()),
    );
    // The same socket plays the broadcast: the origin's init, then chunks.
    let init = binary(&mut viewer).await;
    assert_eq!(
        init,
        ok_bytes(&format!("{origin_base}/live/studio/init.mp4")).await
    );
    for _ in 0..5 {
        assert!(is_fragment(&binary(&mut viewer).await));
    }
    assert_eq!(state_on(&edge.base, "studio").await, "live");
    chat.next_where(|m| matches!(m, ServerMessage::StreamState(c) if c.state == StreamState::Live))
        .await;
    let playlist = until(
        &format!("{}/live/studio/index.m3u8", edge.base),
        Duration::from_secs(10),
        |s, p| s == 200 && !segments(p).is_empty(),
    )
    .await;
    let msn = segments(&playlist)[0];
    assert_eq!(
        ok_bytes(&format!("{}/live/studio/{msn}.m4s", edge.base)).await,
        ok_bytes(&format!("{origin_base}/live/studio/{msn}.m4s")).await
    );
    assert_eq!(
        metric(&origin_base, "lucarne_push_subscribers", "studio").await,
        Some(1.0),
        "the edge's relay"
    );

    // The broadcaster stops: after the origin's grace period the broadcast ends, and
    // the edge's viewer hears it on the socket it kept.
    let _ = ffmpeg.wait();
    let mut heard = Vec::new();
    while heard.last().map(String::as_str) != Some("ended") {
        heard.push(word(&mut viewer, Duration::from_secs(15)).await);
    }
    assert!(
        heard.iter().all(|w| w == "offline" || w == "ended"),
        "{heard:?}"
    );
    assert_eq!(state_on(&edge.base, "studio").await, "ended");
    chat.next_where(
        |m| matches!(m, ServerMessage::StreamState(c) if c.state == StreamState::Ended),
    )
    .await;
    drop(origin);
}

#[tokio::test]
async fn an_edge_that_stops_sends_its_viewers_away_without_ending_the_broadcast() {
    let (_origin, origin_base, rtmp, _dir) = channel_origin().await;
    let edge = node(Some(origin_base)).await;
    let mut ffmpeg = publisher::spawn(
        publisher::command(&rtmp, 30.0, publisher::H264, true).stderr(Stdio::null()),
    );
    let mut viewer = push(&edge.base, "studio").await;
    // Offline until the broadcast starts, then media.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), viewer.next()).await {
            Ok(Some(Ok(Message::Binary(_)))) => break,
            Ok(Some(Ok(Message::Text(t)))) => assert_eq!(t.as_str(), "offline"),
            other => panic!("expected the broadcast, got {other:?}"),
        }
    }
    edge.server.shutdown().await;
    // 1001, and no "ended": the broadcast goes on at the origin.
    let mut words = Vec::new();
    let code = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(Ok(m)) = viewer.next().await {
            match m {
                Message::Text(t) => words.push(t.to_string()),
                Message::Close(f) => return f.map(|f| u16::from(f.code)),
                _ => {}
            }
        }
        None
    })
    .await
    .expect("the edge closes the socket");
    assert_eq!(code, Some(1001));
    assert!(!words.iter().any(|w| w == "ended"), "{words:?}");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}

#[tokio::test]
async fn a_private_stream_plays_on_an_edge_with_a_viewers_token_and_not_without() {
    const SECRET: &str = "edge-test-playback-secret-0123456789";
    let private = |c: &mut Config| {
        c.access.private_streams = vec!["demo".into()];
        c.access.playback_secret = Some(SECRET.into());
    };
    let (origin_dir, edge_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut c = config(origin_dir.path(), None);
    private(&mut c);
    let origin = Server::start(c).await.unwrap();
    let origin_base = format!("http://{}", origin.local_addr());
    let mut c = config(edge_dir.path(), Some(origin_base.clone()));
    private(&mut c);
    let edge = Server::start(c).await.unwrap();
    let edge_base = format!("http://{}", edge.local_addr());

    let url = format!("{edge_base}/live/demo/index.m3u8");
    assert_eq!(text(&url).await.0, 403, "no token, no stream");
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = lucarne_server::access::mint(SECRET.as_bytes(), "demo", expiry);
    let playlist = until(
        &format!("{url}?token={token}"),
        Duration::from_secs(10),
        |s, _| s == 200,
    )
    .await;
    let msn = *segments_signed(&playlist).last().unwrap();
    assert_eq!(
        ok_bytes(&format!("{edge_base}/live/demo/{msn}.m4s?token={token}")).await,
        ok_bytes(&format!("{origin_base}/live/demo/{msn}.m4s?token={token}")).await
    );
    assert_eq!(
        metric(&origin_base, "lucarne_push_subscribers", "demo").await,
        Some(1.0),
        "the edge's relay signed its own way in"
    );
}

/// The segments of a playlist whose URIs carry a token.
fn segments_signed(playlist: &str) -> Vec<u64> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('?').next()?.strip_suffix(".m4s")?.parse().ok())
        .collect()
}

#[tokio::test]
async fn an_origins_ladder_is_served_by_the_edge_with_the_same_renditions() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), None);
    // The demo clip is 480x270: a 180p rendition is made of it, with ffmpeg.
    c.ingest.ladder = vec![180];
    c.ingest.ladder_preset = "ultrafast".into();
    let origin = Server::start(c).await.expect("origin starts");
    let origin_base = format!("http://{}", origin.local_addr());
    let edge = node(Some(origin_base.clone())).await;

    let index = until(
        &format!("{}/live/demo/index.m3u8", edge.base),
        Duration::from_secs(30),
        |s, p| s == 200 && p.contains("180p/index.m3u8"),
    )
    .await;
    assert!(index.contains("#EXT-X-STREAM-INF:"), "{index}");
    assert!(index.contains("source.m3u8"), "{index}");
    assert!(index.contains("RESOLUTION=320x180"), "{index}");
    let low = until(
        &format!("{}/live/demo/180p/index.m3u8", edge.base),
        Duration::from_secs(10),
        |s, p| s == 200 && !segments(p).is_empty(),
    )
    .await;
    let on_origin = text(&format!("{origin_base}/live/demo/180p/index.m3u8"))
        .await
        .1;
    let msn = *segments(&low)
        .iter()
        .find(|m| segments(&on_origin).contains(m))
        .unwrap_or_else(|| panic!("no common segment:\n{low}\n{on_origin}"));
    assert_eq!(
        ok_bytes(&format!("{}/live/demo/180p/init.mp4", edge.base)).await,
        ok_bytes(&format!("{origin_base}/live/demo/180p/init.mp4")).await
    );
    assert_eq!(
        ok_bytes(&format!("{}/live/demo/180p/{msn}.m4s", edge.base)).await,
        ok_bytes(&format!("{origin_base}/live/demo/180p/{msn}.m4s")).await,
        "rendition segment {msn}"
    );
    let source = text(&format!("{}/live/demo/source.m3u8", edge.base)).await;
    assert_eq!(source.0, 200);
    assert_eq!(
        metric(&origin_base, "lucarne_push_subscribers", "demo").await,
        Some(2.0),
        "one relay for the source, one for the rendition"
    );
    // A rendition the origin does not make is not dialled for.
    assert_eq!(
        text(&format!("{}/live/demo/720p/index.m3u8", edge.base))
            .await
            .0,
        404
    );
}

/// A stand-in origin whose relay connections get, in turn, each of `sessions`' messages
/// (then stay open); its address.
async fn fake_origin(sessions: Vec<Vec<Message>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut sessions = sessions.into_iter();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let messages = sessions.next().unwrap_or_default();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                for m in messages {
                    if futures_util::SinkExt::send(&mut ws, m).await.is_err() {
                        return;
                    }
                }
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    addr
}

#[tokio::test]
async fn malformed_and_oversized_relay_messages_are_refused_and_the_edge_recovers() {
    use lucarne_server::edge::MAX_MESSAGE;
    use lucarne_server::media::relay::{encode_chunk, encode_init, BACKLOG_END};
    let mut good = vec![Message::Binary(encode_init(b"init"))];
    for msn in [100u64, 101] {
        for part in 0..10u32 {
            let start = msn as f64 + f64::from(part) / 10.0;
            let media = vec![part as u8; 8];
            good.push(Message::Binary(encode_chunk(msn, part, start, 0.1, &media)));
        }
    }
    good.push(Message::Binary(encode_chunk(102, 0, 102.0, 0.1, b"next")));
    good.push(Message::Text(BACKLOG_END.into()));
    let upstream = fake_origin(vec![
        // An unknown kind of message.
        vec![Message::Binary(bytes::Bytes::from_static(b"\x09junk"))],
        // A chunk cut inside its header.
        vec![
            Message::Binary(encode_init(b"init")),
            Message::Binary(encode_chunk(1, 0, 1.0, 0.1, b"x").slice(..12)),
        ],
        // One byte over the limit.
        vec![Message::Binary(vec![2u8; MAX_MESSAGE + 1].into())],
        good,
    ])
    .await;
    let edge = node(Some(format!("http://{upstream}"))).await;
    let url = format!("{}/live/x/index.m3u8", edge.base);
    let (status, body) = text(&url).await;
    assert_eq!(
        status, 502,
        "a malformed upstream is the origin's fault: {body}"
    );
    assert!(body.contains("malformed"), "{body}");
    // The relay reconnects (backoff), survives the next two, and serves the fourth.
    let playlist = until(&url, Duration::from_secs(15), |s, _| s == 200).await;
    assert_eq!(segments(&playlist), [100, 101], "{playlist}");
    let segment = ok_bytes(&format!("{}/live/x/100.m4s", edge.base)).await;
    let expected: Vec<u8> = (0..10u8).flat_map(|p| vec![p; 8]).collect();
    assert_eq!(segment.to_vec(), expected);
}

/// The server binary as a child process, so it can be killed.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An origin with the demo on `listen`, as a process.
fn spawn_origin(dir: &Path, listen: &str) -> Process {
    spawn_origin_with(dir, listen, 6)
}

/// [`spawn_origin`] with `window` segments per playlist.
fn spawn_origin_with(dir: &Path, listen: &str, window: usize) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lucarne-server"))
        .args(["--listen", listen, "--drain-delay-secs", "0"])
        .args(["--hls-window", &window.to_string()])
        .args(["--chat-db", ":memory:"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--dist")
        .arg(dir.join("dist"))
        .arg("--pages")
        .arg(workspace().join("static"))
        .arg("--media")
        .arg(workspace().join("media"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lucarne-server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(a) = line.strip_prefix("lucarne-server listening on http://") {
            break a.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Process { child, addr }
}

/// Reads the push socket until its close frame, within `limit`; its code.
async fn close_code(ws: &mut Socket, limit: Duration) -> Option<u16> {
    tokio::time::timeout(limit, async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(frame) = m {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn an_edge_serves_what_it_has_while_the_origin_is_killed_then_follows_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut origin = spawn_origin(dir.path(), "127.0.0.1:0");
    let origin_base = format!("http://{}", origin.addr);
    let edge = node(Some(origin_base.clone())).await;
    let url = format!("{}/live/demo/index.m3u8", edge.base);
    // A full window (the origin's demo may still be filling it as it starts).
    let before = until(&url, Duration::from_secs(10), |s, p| {
        s == 200 && segments(p).len() == 6
    })
    .await;
    let mut viewer = push(&edge.base, "demo").await;
    binary(&mut viewer).await;

    origin.child.kill().unwrap();
    origin.child.wait().unwrap();
    let long = Duration::from_secs(10);
    metric_until(
        &edge.base,
        "lucarne_edge_upstream_connected",
        "demo",
        long,
        |v| v == Some(0.0),
    )
    .await;
    // The origin is gone: the edge still serves the segments it has.
    let (status, stale) = text(&url).await;
    assert_eq!(status, 200, "{stale}");
    let newest = *segments(&stale).last().unwrap_or_else(|| panic!("{stale}"));
    assert!(newest >= *segments(&before).last().unwrap());
    assert_eq!(
        get(&format!("{}/live/demo/{newest}.m4s", edge.base))
            .await
            .0,
        200
    );

    // Back on the same address.
    let restarted = spawn_origin(dir.path(), &origin.addr.to_string());
    let origin_base = format!("http://{}", restarted.addr);
    let resumed = until(&url, Duration::from_secs(20), |s, p| {
        s == 200 && segments(p).last().is_some_and(|m| *m > newest + 1)
    })
    .await;
    let msn = *segments(&resumed).last().unwrap();
    assert_eq!(
        ok_bytes(&format!("{}/live/demo/{msn}.m4s", edge.base)).await,
        ok_bytes(&format!("{origin_base}/live/demo/{msn}.m4s")).await,
        "after the restart, the restarted origin's segments"
    );
    metric_until(
        &edge.base,
        "lucarne_edge_upstream_connected",
        "demo",
        long,
        |v| v == Some(1.0),
    )
    .await;
    // Push viewers get the stream again (on the socket they kept, or a new one).
    let mut again = push(&edge.base, "demo").await;
    binary(&mut again).await;
    for _ in 0..5 {
        assert!(is_fragment(&binary(&mut again).await));
    }
    assert_eq!(
        metric(&origin_base, "lucarne_push_subscribers", "demo").await,
        Some(1.0),
        "one relay again"
    );
    drop(viewer);
}

#[tokio::test]
async fn an_edge_withdraws_the_stream_when_the_origin_stays_away() {
    let dir = tempfile::tempdir().unwrap();
    let origin = spawn_origin(dir.path(), "127.0.0.1:0");
    let edge = node(Some(format!("http://{}", origin.addr))).await;
    let url = format!("{}/live/demo/index.m3u8", edge.base);
    until(&url, Duration::from_secs(10), |s, _| s == 200).await;
    let mut viewer = push(&edge.base, "demo").await;
    binary(&mut viewer).await;
    drop(origin);
    // Held for a while, then gone: viewers are told to go (as by an origin that
    // stops), and playlists say the origin is unavailable.
    let limit = lucarne_server::edge::HOLD + Duration::from_secs(10);
    assert_eq!(
        close_code(&mut viewer, limit).await,
        Some(1001),
        "the push socket is closed with 1001 (going away)"
    );
    until(&url, Duration::from_secs(5), |s, _| s == 502).await;
    let (status, _) = text(&format!("{}/api/streams/demo", edge.base)).await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn an_origin_away_longer_than_its_window_restarts_the_edges_copy_with_the_origins_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut origin = spawn_origin_with(dir.path(), "127.0.0.1:0", 3);
    let edge_dir = tempfile::tempdir().unwrap();
    let mut c = config(edge_dir.path(), Some(format!("http://{}", origin.addr)));
    c.hls_window = 3;
    let edge = Server::start(c).await.unwrap();
    let edge_base = format!("http://{}", edge.local_addr());
    let url = format!("{edge_base}/live/demo/index.m3u8");
    until(&url, Duration::from_secs(10), |s, p| {
        s == 200 && segments(p).len() == 3
    })
    .await;
    let mut viewer = push(&edge_base, "demo").await;
    for _ in 0..5 {
        binary(&mut viewer).await;
    }

    origin.child.kill().unwrap();
    origin.child.wait().unwrap();
    // Away for longer than the origin's window (3 segments of 1 s and the open one), so
    // the edge's last segment cannot be completed from the restarted origin's backlog.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let restarted = spawn_origin_with(dir.path(), &origin.addr.to_string(), 3);
    let origin_base = format!("http://{}", restarted.addr);

    // The viewer's copy was replaced: it is sent away to come back.
    assert_eq!(
        close_code(&mut viewer, Duration::from_secs(15)).await,
        Some(1001)
    );
    let mut again = push(&edge_base, "demo").await;
    binary(&mut again).await;
    assert!(is_fragment(&binary(&mut again).await));
    // Every segment the edge lists is the origin's, byte for byte: none was left
    // truncated by the outage.
    let playlist = until(&url, Duration::from_secs(10), |s, p| {
        s == 200 && segments(p).len() == 3
    })
    .await;
    let mut compared = 0;
    for msn in segments(&playlist) {
        let (status, on_origin) = get(&format!("{origin_base}/live/demo/{msn}.m4s")).await;
        if status != 200 {
            continue; // Slid out of what the origin keeps meanwhile.
        }
        assert_eq!(
            ok_bytes(&format!("{edge_base}/live/demo/{msn}.m4s")).await,
            on_origin,
            "segment {msn}"
        );
        compared += 1;
    }
    assert!(compared >= 2, "compared {compared} segments of\n{playlist}");
}

/// An origin and an edge of it, both on `redis` for the chat (as in
/// `deploy/compose.yaml`).
async fn origin_and_edge_on(redis: &redis_support::RedisServer) -> (Node, Node) {
    let origin = node_on(None, Some(redis.url())).await;
    let edge = node_on(Some(origin.base.clone()), Some(redis.url())).await;
    (origin, edge)
}

#[tokio::test]
async fn a_viewer_on_an_edge_chats_with_one_on_the_origin_before_asking_for_any_media() {
    let redis = redis_support::RedisServer::start();
    let (origin, edge) = origin_and_edge_on(&redis).await;
    // The widget opens its chat as it starts its player: the edge's first request for
    // this stream may be the chat's.
    let (mut on_edge, _) =
        hub_support::Client::join(edge.server.local_addr(), "demo", hub_support::named("Edge"))
            .await;
    let (mut on_origin, _) = hub_support::Client::join(
        origin.server.local_addr(),
        "demo",
        hub_support::named("Origin"),
    )
    .await;
    on_edge.chat("from the edge", "e1").await;
    on_origin.chat("from the origin", "o1").await;
    // Both read both messages, in the one order Redis gave them, and a count of 2.
    let mut orders = Vec::new();
    for c in [&mut on_edge, &mut on_origin] {
        let mut texts = Vec::new();
        while texts.len() < 2 {
            if let ServerMessage::Chat(m) =
                c.next_where(|m| matches!(m, ServerMessage::Chat(_))).await
            {
                texts.push(m.text);
            }
        }
        let mut both = texts.clone();
        both.sort_unstable();
        assert_eq!(both, ["from the edge", "from the origin"]);
        c.next_where(|m| matches!(m, ServerMessage::ViewerCount(v) if v.count == 2))
            .await;
        orders.push(texts);
    }
    assert_eq!(orders[0], orders[1], "one order on both nodes");
}

#[tokio::test]
async fn an_edges_chat_refuses_a_room_the_origin_lacks_for_good_and_an_absent_origin_for_now() {
    let (_origin, edge) = origin_and_edge().await;
    let status = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("{other}"),
    };
    let addr = edge.server.local_addr();
    let refused = hub_support::open(addr, "nosuch", None).await.unwrap_err();
    assert_eq!(
        status(refused),
        404,
        "no such stream on the origin: for good"
    );

    // An edge whose origin does not answer: try again later, not "no such room".
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let away = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let lonely = node(Some(away)).await;
    let began = Instant::now();
    let later = hub_support::open(lonely.server.local_addr(), "demo", None)
        .await
        .unwrap_err();
    assert_eq!(status(later), 503);
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "{:?}",
        began.elapsed()
    );
}
