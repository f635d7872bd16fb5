//! Abuse of the chat hub over real sockets: made-up rooms against the streams' rooms,
//! lookalike names, many fresh identities and token guesses from one address, hearts
//! across a crash.

mod hub_support;

use futures_util::SinkExt;
use hub_support::*;
use lucarne_protocol::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

/// Connects from `local` (any 127.0.0.0/8 address is this machine on Linux) and says
/// `hello`.
async fn connect_from(local: &str, addr: SocketAddr, room: &str, hello: Hello) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let req = format!("ws://{addr}/chat/{room}")
        .into_client_request()
        .unwrap();
    let (ws, _) = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    let mut c = Client { ws };
    c.send(&ClientMessage::Hello(hello)).await;
    c
}

/// The welcome, or the error frame and close code that refused it.
async fn welcome_or_refusal(c: &mut Client) -> Result<Welcome, (ErrorFrame, Option<u16>)> {
    match c
        .next_where(|m| matches!(m, ServerMessage::Welcome(_) | ServerMessage::Error(_)))
        .await
    {
        ServerMessage::Welcome(w) => Ok(w),
        ServerMessage::Error(e) => Err((e, c.closed().await)),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn made_up_rooms_cannot_evict_or_block_the_streams_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.no_demo = false;
    cfg.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    cfg.ingest.stream_keys = vec!["secret-1=studio".into()];
    cfg.hub.max_rooms = 3;
    let server = start(cfg).await;
    let addr = server.local_addr();

    // Three made-up rooms, each with a viewer (from three addresses: one address may
    // not open many), fill the made-up bound; a fourth is refused.
    let mut squatters = Vec::new();
    for i in 0..3 {
        let mut c = connect_from(
            &format!("127.0.0.{}", 10 + i),
            addr,
            &format!("x{i}"),
            hello(),
        )
        .await;
        welcome_or_refusal(&mut c)
            .await
            .expect("made-up room opens");
        squatters.push(c);
    }
    let mut fourth = connect_from("127.0.0.20", addr, "x3", hello()).await;
    let (e, code) = welcome_or_refusal(&mut fourth).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert_eq!(code, Some(1013));

    // The streams' rooms still open and serve.
    for room in ["demo", "studio"] {
        let (mut c, w) = Client::join(addr, room, named("Ana")).await;
        assert_eq!(w.viewer_count, 1, "{room}");
        c.chat("still here", "s1").await;
        c.next_where(|m| matches!(m, ServerMessage::Chat(ch) if ch.text == "still here"))
            .await;
    }
    for c in &mut squatters {
        c.alive().await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_only_streams_have_rooms_and_one_address_opens_few_made_up_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.hub.free_rooms = false;
    cfg.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    cfg.ingest.stream_keys = vec!["secret-1=studio".into()];
    let server = start(cfg).await;
    let addr = server.local_addr();
    let err = open(addr, "made-up", None).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}/api/rooms/made-up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_c, w) = Client::join(addr, "studio", named("Ana")).await;
    assert_eq!(w.viewer_count, 1);
    server.shutdown().await;

    // With --free-rooms, one address opens five new made-up rooms a minute at most.
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for i in 0..5 {
        let (c, _) = Client::join(addr, &format!("m{i}"), hello()).await;
        held.push(c);
    }
    let mut sixth = Client::connect_only(addr, "m5", hello()).await;
    let (e, code) = welcome_or_refusal(&mut sixth).await.unwrap_err();
    assert_eq!((e.code, code), (ErrorCode::Unavailable, Some(1013)));
    // Joining a room that exists costs nothing; another address still opens rooms.
    let (_again, _) = Client::join(addr, "m0", hello()).await;
    let mut other = connect_from("127.0.0.2", addr, "m5", hello()).await;
    welcome_or_refusal(&mut other)
        .await
        .expect("another address opens a room");
    server.shutdown().await;
}

#[tokio::test]
async fn lookalikes_of_the_broadcasters_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let lookalikes = [
        "Broadcaster",
        "\u{412}roadcaster",
        "Ｂｒｏａｄｃａｓｔｅｒ",
        "𝐁𝐫𝐨𝐚𝐝𝐜𝐚𝐬𝐭𝐞𝐫",
    ];
    // In the hello: refused, and the viewer joins without a name.
    for name in lookalikes {
        let mut c = Client::connect_only(addr, "r", named(name)).await;
        let ServerMessage::Error(e) = c.next_where(|_| true).await else {
            panic!("{name:?} was not refused");
        };
        assert_eq!(e.code, ErrorCode::NameReserved, "{name:?}");
        assert_eq!(c.welcome().await.name, None, "{name:?}");
    }
    // As a new name: refused; a plain different name is fine.
    let (mut ana, _) = Client::join(addr, "r", named("Ana")).await;
    for name in lookalikes {
        ana.send(&ClientMessage::SetName(SetName { name: name.into() }))
            .await;
        let m = ana
            .next_where(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::Profile(_)))
            .await;
        assert!(
            matches!(&m, ServerMessage::Error(e) if e.code == ErrorCode::NameReserved),
            "{name:?}: {m:?}"
        );
    }
    ana.send(&ClientMessage::SetName(SetName {
        name: "Broadcaster fan".into(),
    }))
    .await;
    ana.next_where(|m| matches!(m, ServerMessage::Profile(_)))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn twenty_fresh_connections_from_one_address_cannot_flood_the_room() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    // Staff identities are not counted against the address.
    let (mut watcher, _) = Client::join(addr, "r", staff(BROADCASTER_TOKEN, "x")).await;

    // 20 fresh identities at once, each sending its whole burst (3) at once: 60
    // messages before the per-identity limit could mute anyone.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(async move {
                let mut c = Client::connect_only(addr, "r", named(&format!("bot{i}"))).await;
                let refused = welcome_or_refusal(&mut c).await.err();
                if refused.is_none() {
                    for k in 0..3 {
                        let text = serde_json::to_string(&ClientMessage::Chat(SendChat {
                            text: format!("flood {i}-{k}"),
                            question: false,
                            client_id: Some(format!("{i}-{k}")),
                        }))
                        .unwrap();
                        c.ws.feed(Message::text(text)).await.unwrap();
                    }
                    c.ws.flush().await.unwrap();
                }
                (c, refused)
            })
        })
        .collect();
    let mut clients = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (c, r) = t.await.unwrap();
        if let Some((e, code)) = r {
            assert_eq!((e.code, code), (ErrorCode::RateLimited, Some(1013)));
            assert!(e.retry_after_ms.unwrap() > 0);
            refused += 1;
        }
        clients.push(c);
    }
    // The default budget is 10 new identities a minute per address.
    assert_eq!(refused, 10);
    // Everything the 10 admitted could post: 30, then a marker from staff to know all
    // earlier posts have been handled.
    let mut posted = 0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while posted < 30 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {posted} posts seen"
        );
        if let ServerMessage::Chat(_) = watcher
            .next_where(|m| matches!(m, ServerMessage::Chat(_)))
            .await
        {
            posted += 1;
        }
    }
    watcher.chat("marker", "m").await;
    let ServerMessage::Chat(last) = watcher
        .next_where(|m| matches!(m, ServerMessage::Chat(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        last.text, "marker",
        "more than 30 flood messages got through"
    );
    // A returning viewer is not counted: the budget is for new identities.
    server.shutdown().await;
}

#[tokio::test]
async fn moderator_token_guesses_are_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let http = reqwest::Client::new();
    let slow = |client: &reqwest::Client, token: &str| {
        client
            .post(format!("http://{addr}/api/rooms/r/slow-mode"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(r#"{"seconds":1}"#)
            .send()
    };
    for i in 0..5 {
        let r = slow(&http, &format!("guess-{i}")).await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = slow(&http, "guess-5").await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=13).contains(&wait), "{wait}");
    // Not even the right token is compared from that address now ...
    let r = slow(&http, MODERATOR_TOKEN).await.unwrap();
    assert_eq!(r.status(), 429);
    // ... nor over the chat socket: refused outright.
    let mut c = Client::connect_only(addr, "r", staff("guess-6", "Mallory")).await;
    let (e, code) = welcome_or_refusal(&mut c).await.unwrap_err();
    assert_eq!((e.code, code), (ErrorCode::RateLimited, Some(1013)));
    // Another address is not affected.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = slow(&other, MODERATOR_TOKEN).await.unwrap();
    assert_eq!(r.status(), 204);
    server.shutdown().await;
}

/// A server in its own process, to be killed.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_hearts_total_survives_a_crash_while_hearts_flow() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lucarne-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-demo",
            "--free-rooms",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--dist")
        .arg(dir.path().join("dist"))
        .stdout(std::process::Stdio::piped())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("server binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut process = Process(child);
    let addr: SocketAddr = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            let line = lines.next().expect("a listening line").unwrap();
            if let Some(a) = line.strip_prefix("lucarne-server listening on http://") {
                return a.parse().unwrap();
            }
        }
    })
    .await
    .unwrap();

    // Hearts flow without a pause (10 a second are counted per connection) ...
    let (mut ana, _) = Client::join(addr, "r", hello()).await;
    let mut acknowledged = 0;
    let mut tap = tokio::time::interval(Duration::from_millis(50));
    while acknowledged < 30 {
        tap.tick().await;
        ana.send(&ClientMessage::Hearts(SendHearts {
            count: 1,
            colour: None,
        }))
        .await;
        while let Some(Seen::Frame(m)) = ana.next_within(Duration::ZERO).await {
            if let ServerMessage::Hearts(h) = m {
                acknowledged = h.total;
            }
        }
    }
    // ... when the process dies.
    process.0.kill().unwrap();
    process.0.wait().unwrap();

    let mut cfg = config(dir.path());
    cfg.data_dir = data;
    let server = start(cfg).await;
    let (_bob, w) = Client::join(server.local_addr(), "r", hello()).await;
    // At most a second of hearts (10) plus a tick is lost.
    assert!(
        w.hearts_total + 15 >= acknowledged && w.hearts_total <= acknowledged + 15,
        "acknowledged {acknowledged}, restored {}",
        w.hearts_total
    );
    server.shutdown().await;
}
