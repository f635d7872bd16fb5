//! Operations over real sockets: `/healthz`, `/readyz` (and the drain order when the
//! server stops), `/metrics` in Prometheus text format, read with a small parser of
//! that format.
//!
//! The RTMP test needs `ffmpeg` on PATH (`cargo xtask test` installs it).

mod hub_support;
mod publisher;

use futures_util::StreamExt;
use hub_support::{named, Client, DEADLINE};
use lucarne_protocol::{close, ClientMessage, SendHearts, ServerMessage};
use lucarne_server::{Config, Server};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The test configuration with the `studio` stream (key `k`), ingest on a free port.
fn config(dir: &std::path::Path) -> Config {
    let mut c = hub_support::config(dir);
    c.hub.free_rooms = false;
    c.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.stream_keys = vec!["k=studio".into()];
    c
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A low-latency push client on `stream`, past its first (state) message.
async fn push_client(addr: SocketAddr, stream: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/{stream}/ll"))
        .await
        .expect("push socket opens");
    let first = tokio::time::timeout(DEADLINE, ws.next())
        .await
        .expect("a first message")
        .expect("open")
        .expect("a frame");
    assert_eq!(first, Message::text("offline"), "nobody publishes yet");
    ws
}

/// Reads a push socket to its close; returns the close code and the text messages
/// before it.
async fn push_closed(ws: &mut Ws) -> (Option<u16>, Vec<String>) {
    let mut texts = Vec::new();
    loop {
        let next = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("the push socket is closed in time");
        match next {
            Some(Ok(Message::Close(frame))) => {
                // Drive tungstenite's close reply.
                let _ = tokio::time::timeout(DEADLINE, ws.next()).await;
                return (frame.map(|f| u16::from(f.code)), texts);
            }
            Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (None, texts),
        }
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the Prometheus text exposition format (0.0.4), panicking on anything that
/// is not: every sample belongs to a family whose `# TYPE` came before it.
fn parse(text: &str) -> Vec<Sample> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "one TYPE per family: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(valid_name(name), "{line}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{line}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "{line}");
        assert!(types.contains_key(name), "a TYPE before {line}");
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (key, after) = inner.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                assert!(valid_name(key), "{line}");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => panic!("{line}"),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label value: {line}"),
                    }
                };
                labels.insert(key.to_owned(), value);
                inner = after[end + 1..].trim_start_matches(',');
            }
        }
        let value = rest.trim().split(' ').next().unwrap();
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("a number: {line}")),
        };
        samples.push(Sample {
            name: name.into(),
            labels,
            value,
        });
    }
    samples
}

/// The value of `name` with `label` = `value` (or no label when `None`).
fn metric(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && match label {
                    Some((k, v)) => s.labels.get(k).map(String::as_str) == Some(v),
                    None => s.labels.is_empty(),
                }
        })
        .map(|s| s.value)
}

/// Scrapes `/metrics`, checking the content type and the format.
async fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    parse(&r.text().await.unwrap())
}

/// Scrapes until `ok` holds for `name{label}`, within `limit`; returns the value.
async fn metric_until(
    addr: SocketAddr,
    name: &str,
    label: Option<(&str, &str)>,
    limit: Duration,
    ok: impl Fn(f64) -> bool,
) -> f64 {
    let end = Instant::now() + limit;
    loop {
        let v = metric(&scrape(addr).await, name, label);
        if let Some(v) = v.filter(|v| ok(*v)) {
            return v;
        }
        assert!(Instant::now() < end, "{name} {label:?} stayed {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn healthz_and_readyz_answer_ok_on_a_serving_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await.unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(get(addr, "/readyz").await, (200, "ok\n".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn readyz_turns_503_as_soon_as_a_stop_begins_and_sockets_close_only_after_the_drain_delay() {
    const DRAIN: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.serve.drain_delay_secs = DRAIN.as_secs();
    let server = Server::start(c).await.unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let (mut ana, _) = Client::join(addr, "studio", named("Ana")).await;
    let mut push = push_client(addr, "studio").await;

    let began = Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    let (status, body) = loop {
        let (status, body) = get(addr, "/readyz").await;
        if status != 200 {
            break (status, body);
        }
        assert!(began.elapsed() < DEADLINE, "readyz never turned 503");
    };
    let not_ready = began.elapsed();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stopping"), "{body}");
    // Out of rotation, yet serving as before: the chat answers, requests are served.
    ana.alive().await;
    let chat_answered = began.elapsed();
    assert_eq!(get(addr, "/healthz").await.0, 200, "still alive");
    assert_eq!(get(addr, "/api/streams/studio").await.0, 200);

    assert_eq!(
        ana.closed().await,
        Some(close::GOING_AWAY),
        "chat viewers are told to come back"
    );
    let chat_closed = began.elapsed();
    // Answer the close, as a browser does at once (the hub waits for it).
    let _ = tokio::time::timeout(DEADLINE, ana.ws.next()).await;
    let (code, texts) = push_closed(&mut push).await;
    let push_closed = began.elapsed();
    assert_eq!(code, Some(1001), "push sockets are told to go: {texts:?}");
    tokio::time::timeout(DEADLINE, stopping)
        .await
        .expect("the stop finishes")
        .unwrap();
    println!(
        "readyz 503 at {not_ready:?}, chat answered at {chat_answered:?}, \
         chat closed at {chat_closed:?}, push closed at {push_closed:?}"
    );
    assert!(
        not_ready < Duration::from_secs(1),
        "503 at once: {not_ready:?}"
    );
    assert!(not_ready < chat_answered && chat_answered < chat_closed);
    assert!(
        chat_closed >= DRAIN,
        "nothing closes before the drain delay: {chat_closed:?}"
    );
    assert!(chat_closed <= push_closed);
}

#[tokio::test]
async fn readyz_is_503_while_another_process_holds_the_chat_databases_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await.unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/readyz").await.0, 200);

    // A second process on the same file (another server, a backup tool) holding the
    // write lock: no chat message could be saved.
    let other = rusqlite::Connection::open(dir.path().join("data/chat.sqlite3")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("chat store:"), "{body}");
    assert_eq!(
        get(addr, "/healthz").await.0,
        200,
        "liveness does not depend on the store"
    );

    other.execute_batch("COMMIT").unwrap();
    let end = Instant::now() + DEADLINE;
    while get(addr, "/readyz").await.0 != 200 {
        assert!(
            Instant::now() < end,
            "ready again once the lock is released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_count_chat_viewers_messages_and_hearts_per_room() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await.unwrap();
    let addr = server.local_addr();
    let (mut ana, _) = Client::join(addr, "studio", named("Ana")).await;
    let (mut bob, _) = Client::join(addr, "studio", named("Bob")).await;
    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        ana.chat(text, &format!("c{i}")).await;
        bob.next_where(move |m| matches!(m, ServerMessage::Chat(c) if c.text == text))
            .await;
    }
    const HEARTS: u64 = 5;
    bob.send(&ClientMessage::Hearts(SendHearts {
        count: HEARTS as u32,
        colour: None,
    }))
    .await;
    ana.next_where(|m| matches!(m, ServerMessage::Hearts(h) if h.total == HEARTS))
        .await;

    let samples = scrape(addr).await;
    let room = Some(("room", "studio"));
    assert_eq!(metric(&samples, "lucarne_chat_viewers", room), Some(2.0));
    assert_eq!(
        metric(&samples, "lucarne_chat_connections", None),
        Some(2.0)
    );
    let messages = metric(&samples, "lucarne_chat_messages_total", room).unwrap_or(0.0);
    assert!(messages >= 3.0, "{messages}");
    let hearts = metric(&samples, "lucarne_hearts_total", room).unwrap_or(0.0);
    assert!(hearts >= HEARTS as f64, "{hearts}");
    assert!(
        samples
            .iter()
            .all(|s| s.labels.get("room").is_none_or(|r| r == "studio")),
        "only rooms that exist"
    );

    drop(bob);
    metric_until(addr, "lucarne_chat_viewers", room, DEADLINE, |v| v == 1.0).await;
    server.shutdown().await;
}

/// What ffmpeg's `-progress` last reported: bytes sent and media seconds.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    bytes: u64,
    seconds: f64,
}

#[tokio::test]
async fn metrics_report_an_rtmp_publishers_bitrate_keyframe_interval_lag_and_push_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await.unwrap();
    let addr = server.local_addr();
    let studio = Some(("stream", "studio"));
    let samples = scrape(addr).await;
    assert_eq!(
        metric(&samples, "lucarne_push_subscribers", studio),
        Some(0.0)
    );
    assert_eq!(
        metric(&samples, "lucarne_stream_bitrate_bits_per_second", studio),
        None,
        "nothing measured before the broadcast"
    );
    let mut push = push_client(addr, "studio").await;
    metric_until(addr, "lucarne_push_subscribers", studio, DEADLINE, |v| {
        v == 1.0
    })
    .await;
    let _ = push.close(None).await;
    metric_until(addr, "lucarne_push_subscribers", studio, DEADLINE, |v| {
        v == 0.0
    })
    .await;
    let mut push = push_client(addr, "studio").await;

    // A keyframe every 60 frames at 30 fps: 2 s, unlike the helper's default 1 s.
    let url = format!("rtmp://{}/live/k", server.rtmp_addr().unwrap());
    let mut ffmpeg = publisher::spawn(
        publisher::command_with(
            &url,
            60.0,
            publisher::H264,
            true,
            &["-g", "60", "-progress", "pipe:1"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null()),
    );
    let progress = Arc::new(Mutex::new(Progress::default()));
    let lines = BufReader::new(ffmpeg.stdout.take().unwrap()).lines();
    std::thread::spawn({
        let progress = progress.clone();
        move || {
            for line in lines.map_while(Result::ok) {
                let mut p = progress.lock().unwrap();
                if let Some(v) = line.strip_prefix("total_size=") {
                    p.bytes = v.parse().unwrap_or(p.bytes);
                } else if let Some(v) = line.strip_prefix("out_time_us=") {
                    p.seconds = v.parse::<f64>().map_or(p.seconds, |us| us / 1e6);
                }
            }
        }
    });

    // Three complete 2 s segments in the window.
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, playlist) = get(addr, "/live/studio/index.m3u8").await;
        if status == 200 && playlist.matches("#EXTINF").count() >= 3 {
            break;
        }
        assert!(Instant::now() < end, "never live: {status} {playlist}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let samples = scrape(addr).await;
    let sent = *progress.lock().unwrap();

    let value = |name| metric(&samples, name, studio).unwrap_or_else(|| panic!("{name}"));
    let gop = value("lucarne_stream_keyframe_interval_seconds");
    assert!((gop - 2.0).abs() < 0.05, "ffmpeg's -g 60 at 30 fps: {gop}");
    let bitrate = value("lucarne_stream_bitrate_bits_per_second");
    assert!(sent.seconds > 2.0, "ffmpeg reported progress: {sent:?}");
    let published = sent.bytes as f64 * 8.0 / sent.seconds;
    println!("bitrate {bitrate:.0} bit/s; ffmpeg sent {published:.0} bit/s ({sent:?})");
    assert!(
        (0.75..1.33).contains(&(bitrate / published)),
        "{bitrate:.0} bit/s measured, {published:.0} bit/s sent"
    );
    let chunk_lag = value("lucarne_stream_chunk_lag_seconds");
    let segment_lag = value("lucarne_stream_segment_lag_seconds");
    println!("chunk lag {chunk_lag:.3} s, segment lag {segment_lag:.3} s");
    assert!(
        (-1.0..3.0).contains(&chunk_lag),
        "a live publisher's newest chunk is recent: {chunk_lag}"
    );
    assert!(
        segment_lag >= chunk_lag - 0.01 && segment_lag <= chunk_lag + gop + 0.5,
        "the newest segment ended at most a keyframe interval before the newest chunk: \
         {segment_lag} vs {chunk_lag}"
    );
    assert_eq!(
        metric(&samples, "lucarne_push_subscribers", studio),
        Some(1.0),
        "the push client stayed through going live"
    );

    // Stopping mid-broadcast: the push client hears the broadcast end, then goes.
    let stopping = tokio::spawn(server.shutdown());
    let (code, texts) = push_closed(&mut push).await;
    assert_eq!((code, texts), (Some(1001), vec!["ended".to_owned()]));
    stopping.await.unwrap();
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}
