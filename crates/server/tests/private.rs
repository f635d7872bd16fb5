//! Private broadcasts over real sockets: the demo stream started with `--private demo`
//! answers 403 to its playlist, segments, parts, push and chat without a valid token
//! (missing, expired, forged, another stream's), plays with one (every URI of the
//! playlist carries it), and refuses a page on an origin it does not allow even with a
//! token. The `token` command mints what the server accepts.

mod hub_support;

use futures_util::StreamExt;
use hub_support::*;
use lucarne_protocol::ClientMessage;
use lucarne_server::access;
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "playback-secret-for-tests";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(stream: &str, ttl: i64) -> String {
    access::mint(SECRET.as_bytes(), stream, (now() as i64 + ttl) as u64)
}

async fn private_demo(dir: &std::path::Path) -> lucarne_server::Server {
    let mut cfg = config(dir);
    cfg.no_demo = false;
    cfg.hub.free_rooms = false;
    cfg.hub.embed_origins = vec!["https://intranet.example".into()];
    cfg.access.private_streams = vec!["demo".into()];
    cfg.access.playback_secret = Some(SECRET.into());
    start(cfg).await
}

/// Status and body of a GET, with an optional `Origin`.
async fn get(url: &str, origin: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

/// The handshake status of a WebSocket at `url` (101 when accepted).
async fn ws_status(url: &str) -> u16 {
    let req = url.into_client_request().unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// The media URIs (segments and parts) of a playlist, as written.
fn uris(playlist: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in playlist.lines() {
        if !line.starts_with('#') && !line.is_empty() {
            out.push(line.to_owned());
        } else if let Some(at) = line.find("URI=\"") {
            let rest = &line[at + 5..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_owned());
            }
        }
    }
    out
}

async fn playlist_with(addr: SocketAddr, token: &str) -> String {
    let url = format!("http://{addr}/live/demo/index.m3u8?token={token}");
    let (status, body) = get(&url, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn without_a_valid_token_playlist_segments_parts_push_and_chat_answer_403() {
    let dir = tempfile::tempdir().unwrap();
    let server = private_demo(dir.path()).await;
    let addr = server.local_addr();
    let good = token("demo", 600);
    let playlist = playlist_with(addr, &good).await;
    let media: Vec<String> = uris(&playlist)
        .into_iter()
        .map(|u| u.split('?').next().unwrap().to_owned())
        .collect();
    assert!(media.iter().any(|u| u == "init.mp4"), "{playlist}");
    assert!(
        media.iter().any(|u| u.matches('.').count() == 2),
        "parts listed: {playlist}"
    );

    let forged = {
        let mut t = good.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'0' { b'1' } else { b'0' };
        String::from_utf8(t).unwrap()
    };
    let bad_tokens = [
        ("no token", String::new()),
        ("expired", format!("?token={}", token("demo", -5))),
        ("forged", format!("?token={forged}")),
        (
            "another stream's",
            format!("?token={}", token("other", 600)),
        ),
        ("malformed", "?token=yes".to_owned()),
    ];
    for (what, query) in &bad_tokens {
        let mut paths: Vec<String> = vec!["index.m3u8".into()];
        paths.extend(media.iter().take(4).cloned());
        for path in paths {
            let (status, body) = get(&format!("http://{addr}/live/demo/{path}{query}"), None).await;
            assert_eq!(
                status,
                403,
                "{what} token, {path}: {}",
                String::from_utf8_lossy(&body)
            );
            let refusal: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(refusal["refused"], "private", "{what}, {path}");
        }
        assert_eq!(
            ws_status(&format!("ws://{addr}/live/demo/ll{query}")).await,
            403,
            "{what} push"
        );
        assert_eq!(
            ws_status(&format!("ws://{addr}/chat/demo{query}")).await,
            403,
            "{what} chat"
        );
    }
    let (_, body) = get(
        &format!(
            "http://{addr}/live/demo/index.m3u8?token={}",
            token("demo", -5)
        ),
        None,
    )
    .await;
    assert!(String::from_utf8_lossy(&body).contains("expired"));
    server.shutdown().await;
}

#[tokio::test]
async fn with_a_token_it_plays_and_every_uri_of_the_playlist_carries_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = private_demo(dir.path()).await;
    let addr = server.local_addr();
    let good = token("demo", 600);
    let playlist = playlist_with(addr, &good).await;
    let all = uris(&playlist);
    assert!(!all.is_empty());
    for uri in &all {
        assert!(
            uri.ends_with(&format!("?token={good}")),
            "{uri} in {playlist}"
        );
    }
    // A player resolves them against the playlist URL: each answers.
    for uri in all.iter().filter(|u| !u.contains("m3u8")).take(6) {
        let (status, body) = get(&format!("http://{addr}/live/demo/{uri}"), None).await;
        assert_eq!(status, 200, "{uri}");
        assert!(!body.is_empty(), "{uri}");
    }
    // The push sends media; the chat welcomes.
    let (mut push, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/live/demo/ll?token={good}"))
            .await
            .expect("the push accepts a token");
    let first = tokio::time::timeout(DEADLINE, async {
        loop {
            match push.next().await {
                Some(Ok(Message::Binary(b))) => break b.len(),
                Some(Ok(_)) => continue,
                other => panic!("push ended: {other:?}"),
            }
        }
    })
    .await
    .expect("media on the push in time");
    assert!(first > 0);
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/chat/demo?token={good}"))
        .await
        .expect("the chat accepts a token");
    let mut chat = Client { ws };
    chat.send(&ClientMessage::Hello(hello())).await;
    chat.welcome().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_page_on_an_origin_not_allowed_is_refused_even_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = private_demo(dir.path()).await;
    let addr = server.local_addr();
    let good = token("demo", 600);
    let url = format!("http://{addr}/live/demo/index.m3u8?token={good}");
    let (status, _) = get(&url, Some("https://evil.example")).await;
    assert_eq!(status, 403);
    let (status, _) = get(&url, Some("https://intranet.example")).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn the_token_command_mints_a_token_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let server = private_demo(dir.path()).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lucarne-server"))
        .args(["token", "--stream", "demo", "--ttl-secs", "60"])
        .env("LUCARNE_PLAYBACK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        access::verify(SECRET.as_bytes(), "demo", &minted, now()),
        Ok(())
    );
    playlist_with(server.local_addr(), &minted).await;
    // A short secret is refused rather than signing guessable tokens.
    let short = std::process::Command::new(env!("CARGO_BIN_EXE_lucarne-server"))
        .args(["token", "--stream", "demo"])
        .env("LUCARNE_PLAYBACK_SECRET", "short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    server.shutdown().await;
}
