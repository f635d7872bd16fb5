//! What a hostile or broken HTTP client can cost lucarne-server, over real sockets on
//! 127.0.0.1:0: oversized messages on the low-latency push, silent and half-sent
//! connections, over-long paths, WebSocket handshakes over HTTP/1.0, forged `Host`
//! headers on the chat socket. Each test names the behaviour it guards.

mod hub_support;

use futures_util::{SinkExt, StreamExt};
use hub_support::*;
use lucarne_server::Config;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// A test configuration with the demo stream on: the push needs a stream, and `demo` is
/// a chat room whatever rooms the hub admits.
fn with_demo(dir: &std::path::Path) -> Config {
    let mut c = config(dir);
    c.no_demo = false;
    c
}

/// A WebSocket handshake written by hand, so the test controls every byte.
fn handshake(path: &str, version: &str) -> String {
    format!(
        "GET {path} {version}\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// Reads the response head (up to the blank line); returns its status code.
async fn read_status(tcp: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, tcp.read(&mut byte))
            .await
            .expect("a response head within the deadline")
            .expect("read");
        assert!(
            n == 1,
            "closed before the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Waits until the server ends the connection (EOF or reset), discarding what it sends.
async fn ended_by_server(tcp: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// The process's resident memory, from /proc/self/status, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_large_client_message_on_the_push_socket_is_refused_with_1009() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(with_demo(dir.path())).await;
    let url = format!("ws://{}/live/demo/ll", server.local_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::binary(vec![0u8; 64 * 1024]))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let code = loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("the push socket stayed open after a 64 KiB message"),
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("ended without a close frame: {e}"),
            Ok(None) => panic!("ended without a close frame"),
        }
    };
    assert_eq!(code, Some(CloseCode::Size));
    server.shutdown().await;
}

#[tokio::test]
async fn four_push_clients_sending_16_mib_each_do_not_grow_the_server() {
    const CLIENTS: usize = 4;
    const CLAIMED: u64 = 16 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let server = start(with_demo(dir.path())).await;
    let addr = server.local_addr();
    let mut sockets = Vec::new();
    for _ in 0..CLIENTS {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(handshake("/live/demo/ll", "HTTP/1.1").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_status(&mut tcp).await, 101);
        sockets.push(tcp);
    }
    let before = rss();
    // One binary frame announcing 16 MiB, masked with a zero key, then all of it but
    // the last byte: a server that buffers messages holds ~16 MiB per client now. The
    // client streams zeros from one small buffer so its own memory stays flat.
    let mut frame_head = vec![0x82, 0x80 | 127];
    frame_head.extend_from_slice(&CLAIMED.to_be_bytes());
    frame_head.extend_from_slice(&[0, 0, 0, 0]);
    let zeros = vec![0u8; 64 * 1024];
    let mut writers = Vec::new();
    for tcp in sockets {
        let head = frame_head.clone();
        let zeros = zeros.clone();
        writers.push(tokio::spawn(async move {
            let (mut rd, mut wr) = tcp.into_split();
            // Read concurrently (the push keeps sending media), so the server is never
            // stuck writing to us.
            let reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
            let mut sent = 0u64;
            let mut result = wr.write_all(&head).await;
            while result.is_ok() && sent < CLAIMED - 1 {
                let n = (CLAIMED - 1 - sent).min(zeros.len() as u64) as usize;
                result = wr.write_all(&zeros[..n]).await;
                sent += n as u64;
            }
            (reader, sent)
        }));
    }
    let mut readers = Vec::new();
    for w in writers {
        readers.push(w.await.unwrap());
    }
    let grown = rss().saturating_sub(before);
    let sent: Vec<u64> = readers.iter().map(|(_, s)| *s).collect();
    for (reader, _) in readers {
        tokio::time::timeout(DEADLINE, reader)
            .await
            .expect("the server ends each oversized push connection")
            .unwrap();
    }
    eprintln!(
        "RSS grew by {} KiB while {CLIENTS} clients sent {sent:?} bytes",
        grown / 1024
    );
    assert!(
        grown < 16 * 1024 * 1024,
        "RSS grew by {} MiB",
        grown / (1024 * 1024)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_while_others_keep_being_served() {
    const SILENT: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_demo(dir.path());
    cfg.serve.header_timeout_secs = 1;
    let server = start(cfg).await;
    let addr = server.local_addr();
    // Long-lived sockets, opened first: a chat viewer and a push subscriber.
    let (mut viewer, _) = Client::join(addr, "demo", named("Ana")).await;
    let (mut push, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/demo/ll"))
        .await
        .unwrap();
    let opened = tokio::time::Instant::now();
    let mut silent = Vec::new();
    for i in 0..SILENT {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            tcp.write_all(b"GET / HTT").await.unwrap();
        }
        silent.push(tcp);
    }
    // A keep-alive connection left idle after one request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /api/streams/demo HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_status(&mut idle).await, 200);

    // Fresh connections are served meanwhile.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let info = format!("http://{addr}/api/streams/demo");
    assert_eq!(http.get(&info).send().await.unwrap().status(), 200);

    assert!(ended_by_server(&mut silent[0], DEADLINE).await);
    let first = opened.elapsed();
    assert!(
        first >= Duration::from_millis(900),
        "closed after {first:?}, before the timeout"
    );
    for (i, tcp) in silent.iter_mut().enumerate() {
        assert!(
            ended_by_server(tcp, DEADLINE).await,
            "socket {i} still open"
        );
    }
    assert!(
        ended_by_server(&mut idle, DEADLINE).await,
        "idle keep-alive still open"
    );
    eprintln!(
        "{SILENT} silent sockets closed {:?} to {:?} after opening",
        first,
        opened.elapsed()
    );

    // Everything else is still served, well past the timeout.
    assert_eq!(http.get(&info).send().await.unwrap().status(), 200);
    viewer.alive().await;
    let closed_at = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout(DEADLINE, push.next()).await {
            Ok(Some(Ok(Message::Binary(_)))) => {}
            other => panic!("the push subscriber was cut: {other:?}"),
        }
        // Chunks still arrive half a second after the silent sockets were closed.
        if closed_at.elapsed() > Duration::from_millis(500) {
            break;
        }
    }
    viewer.alive().await;
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.serve.header_timeout_secs = 1;
    cfg.serve.max_connections = Some(4);
    let server = start(cfg).await;
    let addr = server.local_addr();
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // The fifth is not accepted until the header timeout frees a place, then served.
    let started = tokio::time::Instant::now();
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    fifth
        .write_all(b"GET /lucarne.js HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_status(&mut fifth).await, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "served after {waited:?}: the cap did not hold"
    );
    for tcp in &mut silent {
        assert!(ended_by_server(tcp, DEADLINE).await);
    }
    server.shutdown().await;
}

/// Counts ERROR events on the thread it is installed on.
struct ErrorCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// Current-thread runtime: the server's tasks run on this thread, under the counter.
#[tokio::test(flavor = "current_thread")]
async fn a_300_character_path_part_is_a_404_without_an_error_log() {
    use tracing_subscriber::layer::SubscriberExt;
    let errors = Arc::new(AtomicUsize::new(0));
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(ErrorCounter(errors.clone())),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    let server = start(config(dir.path())).await;
    let long = "a".repeat(300);
    let client = reqwest::Client::new();
    for path in [
        format!("/{long}"),
        format!("/{long}.js"),
        format!("/{long}/x"),
        format!("/live/{long}/index.m3u8"),
        format!("/api/streams/{long}"),
        format!("/chat/{long}"),
        format!("/x/{}", vec![long.as_str(); 20].join("/")),
    ] {
        let r = client
            .get(format!("http://{}{path}", server.local_addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{}...", &path[..20]);
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0, "ERROR lines logged");
    server.shutdown().await;
}

#[tokio::test]
async fn a_websocket_handshake_over_http_1_0_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(with_demo(dir.path())).await;
    for path in ["/live/demo/ll", "/chat/demo"] {
        let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        tcp.write_all(handshake(path, "HTTP/1.0").as_bytes())
            .await
            .unwrap();
        let status = read_status(&mut tcp).await;
        assert!(matches!(status, 400 | 426), "{path}: {status}");
        // The same handshake over HTTP/1.1 is accepted.
        let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        tcp.write_all(handshake(path, "HTTP/1.1").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_status(&mut tcp).await, 101, "{path}");
    }
    server.shutdown().await;
}

/// Opens the chat socket with these `Origin` and `Host` headers.
async fn chat_with(
    addr: SocketAddr,
    origin: &str,
    host: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/chat/demo")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    req.headers_mut().insert("Host", host.parse().unwrap());
    let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")?;
    Ok(ws)
}

#[tokio::test]
async fn a_foreign_origin_is_refused_even_when_it_names_the_host_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(with_demo(dir.path())).await;
    let addr = server.local_addr();
    match chat_with(addr, "http://evil.example", "evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // The listen address is the server's own origin, whatever the Host header says.
    chat_with(addr, &format!("http://{addr}"), "evil.example")
        .await
        .expect("own origin");
    server.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_demo(dir.path());
    cfg.hub.embed_origins = vec!["http://evil.example".into()];
    let server = start(cfg).await;
    chat_with(server.local_addr(), "http://evil.example", "evil.example")
        .await
        .expect("a configured origin is welcome");
    server.shutdown().await;
}
