//! The broadcaster console's ingest socket over real sockets: who is refused and why
//! (wrong secret, no `start`, a second console, a chunk over the limit, no ffmpeg),
//! each with a reason the console can show and a close code; and the page itself.
//!
//! Needs `ffmpeg` on PATH for the sessions that get as far as starting it.

mod publisher;

use futures_util::{SinkExt, StreamExt};
use lucarne_protocol::studio::{StudioErrorCode, StudioServer, MAX_CHUNK_BYTES};
use lucarne_server::{Config, Server};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "studio-key-1";
const TOKEN: &str = "broadcaster-token-1";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `/api/streams/studio` says live.
async fn stream_info(server: &Server) -> serde_json::Value {
    reqwest::get(format!("http://{}/api/streams/studio", server.local_addr()))
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap()
}

async fn stream_live(server: &Server) -> bool {
    stream_info(server).await["live"] == true
}

/// Polls `check` every 100 ms until it holds or `deadline` passes.
async fn eventually<F: std::future::Future<Output = bool>>(
    deadline: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn start(ffmpeg: Option<PathBuf>) -> (Server, String, tempfile::TempDir) {
    start_with(ffmpeg, false).await
}

async fn start_with(ffmpeg: Option<PathBuf>, private: bool) -> (Server, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dist: dir.path().join("dist"),
        pages: workspace().join("static"),
        media: workspace().join("media"),
        no_demo: true,
        hls_window: 6,
        chunk_ms: 100,
        data_dir: dir.path().join("data"),
        hub: Default::default(),
        ingest: Default::default(),
        serve: Default::default(),
        access: Default::default(),
        edge: Default::default(),
    };
    config.hub.chat_db = Some(":memory:".into());
    config.hub.broadcaster_token = Some(TOKEN.into());
    config.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    config.ingest.stream_keys = vec![format!("{KEY}=studio"), "other-key=stage".into()];
    config.ingest.ffmpeg = ffmpeg;
    if private {
        config.access.private_streams = vec!["studio".into()];
        config.access.playback_secret = Some("a-playback-secret-of-some-length".into());
    }
    let server = Server::start(config).await.expect("server starts");
    let ws = format!("ws://{}/studio/studio/ingest", server.local_addr());
    (server, ws, dir)
}

async fn open(url: &str) -> Socket {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("ingest socket opens")
        .0
}

async fn send_start(socket: &mut Socket, secret: &str, mime: &str) {
    let start = serde_json::json!({"type": "start", "secret": secret, "mimeType": mime});
    socket
        .send(Message::text(start.to_string()))
        .await
        .expect("start sent");
}

/// The next server message, and the close code if the socket then closes.
async fn answer(socket: &mut Socket) -> StudioServer {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server answers within 10 s")
            .expect("socket open")
            .expect("socket ok");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("a studio message");
        }
    }
}

async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server closes within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

fn error_code(m: &StudioServer) -> StudioErrorCode {
    match m {
        StudioServer::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused_with_a_reason() {
    let (_server, url, _dir) = start(None).await;
    for secret in ["nope", "other-key", "", "studio-key-"] {
        let mut s = open(&url).await;
        send_start(&mut s, secret, "video/webm;codecs=vp8,opus").await;
        assert_eq!(
            error_code(&answer(&mut s).await),
            StudioErrorCode::BadSecret
        );
        assert_eq!(close_code(&mut s).await, Some(CloseCode::Policy));
    }
}

#[tokio::test]
async fn media_before_start_is_refused() {
    let (_server, url, _dir) = start(None).await;
    let mut s = open(&url).await;
    s.send(Message::binary(vec![0u8; 100])).await.unwrap();
    assert_eq!(
        error_code(&answer(&mut s).await),
        StudioErrorCode::StartRequired
    );
}

#[tokio::test]
async fn a_second_console_on_a_live_stream_is_refused_and_the_first_goes_on() {
    let (_server, url, _dir) = start(None).await;
    let mut first = open(&url).await;
    send_start(&mut first, KEY, "video/webm;codecs=h264,opus").await;
    assert!(
        matches!(answer(&mut first).await, StudioServer::Accepted(a) if !a.transcoding),
        "the stream key opens the console, and H.264 is copied"
    );
    // The broadcaster token is as good as the key, and still refused: one at a time.
    let mut second = open(&url).await;
    send_start(&mut second, TOKEN, "video/webm;codecs=vp8,opus").await;
    match answer(&mut second).await {
        StudioServer::Error(e) => {
            assert_eq!(e.code, StudioErrorCode::AlreadyLive);
            assert!(e.message.contains("another console"), "{}", e.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The first still takes chunks.
    first
        .send(Message::binary(vec![0x1a, 0x45, 0xdf, 0xa3]))
        .await
        .expect("the first console still sends");
    // Once the first ends, the stream takes a console again.
    first
        .send(Message::text(r#"{"type":"end"}"#))
        .await
        .unwrap();
    drop(first);
    let mut third = None;
    for _ in 0..40 {
        let mut s = open(&url).await;
        send_start(&mut s, TOKEN, "video/webm;codecs=vp8,opus").await;
        match answer(&mut s).await {
            StudioServer::Accepted(a) => {
                assert!(a.transcoding, "VP8 is re-encoded");
                third = Some(s);
                break;
            }
            StudioServer::Error(e) if e.code == StudioErrorCode::AlreadyLive => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(third.is_some(), "the slot came back after the first ended");
}

#[tokio::test]
async fn a_chunk_over_the_limit_ends_the_session_with_1009() {
    let (_server, url, _dir) = start(None).await;
    let mut s = open(&url).await;
    send_start(&mut s, KEY, "video/webm;codecs=h264,opus").await;
    assert!(matches!(answer(&mut s).await, StudioServer::Accepted(_)));
    s.send(Message::binary(vec![0u8; MAX_CHUNK_BYTES + 1]))
        .await
        .unwrap();
    match answer(&mut s).await {
        StudioServer::Error(e) => {
            assert_eq!(e.code, StudioErrorCode::FrameTooLarge);
            assert!(e.message.contains("over the limit"), "{}", e.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(close_code(&mut s).await, Some(CloseCode::Size));
}

#[tokio::test]
async fn a_missing_ffmpeg_is_a_clear_error_in_the_console() {
    let (_server, url, _dir) = start(Some("/nonexistent/ffmpeg".into())).await;
    let mut s = open(&url).await;
    send_start(&mut s, KEY, "video/webm;codecs=h264,opus").await;
    match answer(&mut s).await {
        StudioServer::Error(e) => {
            assert_eq!(e.code, StudioErrorCode::NoEncoder);
            assert!(e.message.contains("ffmpeg"), "{}", e.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(close_code(&mut s).await, Some(CloseCode::Error));
}

#[tokio::test]
async fn the_console_page_is_served_for_streams_only_and_names_no_secret() {
    let (server, _url, _dir) = start(None).await;
    let base = format!("http://{}", server.local_addr());
    let page = reqwest::get(format!("{base}/studio/studio")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Go live") && html.contains("type=\"password\""));
    assert!(!html.contains(KEY) && !html.contains(TOKEN));
    let script = reqwest::get(format!("{base}/studio.js")).await.unwrap();
    assert_eq!(script.status(), 200);
    let none = reqwest::get(format!("{base}/studio/nope")).await.unwrap();
    assert_eq!(none.status(), 404);
}

#[tokio::test]
async fn a_recording_sent_in_chunks_goes_live_for_viewers_and_ends_with_the_console() {
    let (server, url, dir) = start(None).await;
    // What Firefox's MediaRecorder sends: VP8 and Opus in WebM, one keyframe at the start.
    let webm = dir.path().join("camera.webm");
    let made = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x180:rate=30")
        .args(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "6"])
        .args([
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-g",
            "1000",
            "-b:v",
            "500k",
        ])
        .args(["-c:a", "libopus", "-f", "webm"])
        .arg(&webm)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success());
    let bytes = std::fs::read(&webm).unwrap();
    let mut s = open(&url).await;
    send_start(&mut s, KEY, "video/webm;codecs=vp8,opus").await;
    assert!(matches!(answer(&mut s).await, StudioServer::Accepted(a) if a.transcoding));
    // Six seconds of media in 30 chunks, at the pace a recorder hands them.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<StudioServer>(8);
    let (mut sink, mut stream) = s.split();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Text(t) = m {
                let _ = tx.send(serde_json::from_str(&t).unwrap()).await;
            }
        }
    });
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    for chunk in bytes.chunks(bytes.len().div_ceil(30)) {
        pace.tick().await;
        sink.send(Message::binary(chunk.to_vec())).await.unwrap();
    }
    let told = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the console is told within 10 s");
    assert_eq!(told, Some(StudioServer::Live));
    assert!(stream_live(&server).await, "viewers see the stream live");
    // The server's ffmpeg publishes with a one-time pass: its command line, which
    // every local user can read, does not hold the stream key.
    let port = server.rtmp_addr().expect("ingest runs").port();
    let ours = format!("127.0.0.1:{port}/live/");
    let lines: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&ours))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one ffmpeg publishes to this server: {lines:?}"
    );
    assert!(
        lines[0].contains("/live/pass-") && !lines[0].contains(KEY),
        "the stream key is in ffmpeg's command line: {}",
        lines[0]
    );
    sink.send(Message::text(r#"{"type":"end"}"#)).await.unwrap();
    // "End" ends the broadcast at once (the grace period is 15 s here) and offers the
    // replay.
    assert!(
        eventually(Duration::from_secs(8), || async {
            let info = stream_info(&server).await;
            info["state"] == "ended" && info["replay"].is_string()
        })
        .await,
        "the broadcast ended with a replay once the console pressed End: {}",
        stream_info(&server).await
    );
    reader.abort();
}

#[tokio::test]
async fn a_console_is_refused_while_obs_is_live_on_the_stream() {
    let (server, url, _dir) = start(None).await;
    let rtmp = format!(
        "rtmp://{}/live/{KEY}",
        server.rtmp_addr().expect("ingest runs")
    );
    let mut obs = publisher::command(&rtmp, 30.0, publisher::H264, true)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
    assert!(
        eventually(Duration::from_secs(15), || stream_live(&server)).await,
        "the RTMP publisher goes live"
    );
    let mut s = open(&url).await;
    send_start(&mut s, TOKEN, "video/webm;codecs=h264,opus").await;
    match answer(&mut s).await {
        StudioServer::Error(e) => {
            assert_eq!(e.code, StudioErrorCode::PublisherLive);
            assert!(e.message.contains("OBS"), "{}", e.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let _ = obs.kill();
    let _ = obs.wait();
}

async fn unlock(server: &Server, secret: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/studio/studio/unlock",
            server.local_addr()
        ))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "secret": secret }).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn unlock_tells_a_wrong_secret_at_once_and_stops_answering_a_guesser() {
    let (server, _url, _dir) = start(None).await;
    let (status, body) = unlock(&server, KEY).await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!({"broadcaster": false}))
    );
    let (status, body) = unlock(&server, TOKEN).await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!({"broadcaster": true}))
    );
    let (status, body) = unlock(&server, "wrong").await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "bad_secret");
    // Wrong secrets are budgeted per address (5 a minute): then even the right one
    // is not compared.
    let mut last = 0;
    for _ in 0..10 {
        last = unlock(&server, "wrong").await.0;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "a guesser is stopped");
    let (status, body) = unlock(&server, KEY).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "too_many_attempts");
}

#[tokio::test]
async fn a_private_streams_console_gets_a_token_that_opens_its_chat() {
    let (server, _url, _dir) = start_with(None, true).await;
    let chat = format!("ws://{}/chat/studio", server.local_addr());
    assert!(
        tokio_tungstenite::connect_async(&chat).await.is_err(),
        "the private stream's chat needs a token"
    );
    let (status, body) = unlock(&server, TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let token = body["chatToken"].as_str().expect("a chat token");
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{chat}?token={token}"))
        .await
        .expect("the token opens the chat");
    let hello = serde_json::json!({"type": "hello", "protocolVersion": 1, "authToken": TOKEN});
    socket.send(Message::text(hello.to_string())).await.unwrap();
    let welcome = loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) => {
                break serde_json::from_str::<serde_json::Value>(&t).unwrap()
            }
            Some(Ok(_)) => continue,
            other => panic!("no welcome: {other:?}"),
        }
    };
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["role"], "broadcaster");
}

/// A stand-in for ffmpeg: a shell script with `body`.
fn fake_ffmpeg(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-ffmpeg");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn an_encoder_that_cannot_keep_up_ends_the_broadcast_with_a_reason() {
    let scripts = tempfile::tempdir().unwrap();
    // Never reads its input: the pipe fills, then the server's queue.
    let pid_file = scripts.path().join("pid");
    let ffmpeg = fake_ffmpeg(
        scripts.path(),
        &format!("echo $$ > {}; exec sleep 60", pid_file.display()),
    );
    let (_server, url, _dir) = start(Some(ffmpeg)).await;
    let mut s = open(&url).await;
    send_start(&mut s, KEY, "video/webm;codecs=h264,opus").await;
    assert!(matches!(answer(&mut s).await, StudioServer::Accepted(_)));
    let chunk = vec![0u8; 64 * 1024];
    let mut told = None;
    for _ in 0..400 {
        if s.send(Message::binary(chunk.clone())).await.is_err() {
            break;
        }
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(1), s.next()).await
        {
            told = Some(serde_json::from_str::<StudioServer>(&t).unwrap());
            break;
        }
    }
    let told = match told {
        Some(t) => t,
        None => answer(&mut s).await,
    };
    match told {
        StudioServer::Error(e) => {
            assert_eq!(e.code, StudioErrorCode::TooSlow);
            assert!(e.message.contains("cannot keep up"), "{}", e.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The stuck child does not outlive the broadcast: its input closed, then killed.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    assert!(
        eventually(Duration::from_secs(15), || {
            let gone = !proc_dir.exists();
            async move { gone }
        })
        .await,
        "the stuck encoder (pid {}) was killed",
        pid.trim()
    );
}

#[tokio::test]
async fn an_encoder_that_fails_is_reported_with_its_last_words() {
    let scripts = tempfile::tempdir().unwrap();
    let ffmpeg = fake_ffmpeg(
        scripts.path(),
        "echo 'pipe:0: Invalid data found when processing input' >&2; exit 1",
    );
    let (_server, url, _dir) = start(Some(ffmpeg)).await;
    let mut s = open(&url).await;
    send_start(&mut s, KEY, "video/webm;codecs=h264,opus").await;
    assert!(matches!(answer(&mut s).await, StudioServer::Accepted(_)));
    match answer(&mut s).await {
        StudioServer::Error(e) => {
            assert_eq!(e.code, StudioErrorCode::EncoderFailed);
            assert!(e.message.contains("Invalid data"), "{}", e.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(close_code(&mut s).await, Some(CloseCode::Error));
}

/// `POST /studio/studio/health` with `secret`: the status and the JSON answer.
async fn health(server: &Server, secret: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/studio/studio/health",
            server.local_addr()
        ))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "secret": secret }).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

/// A push socket on the stream that has sent `frames` as text.
async fn push_reporting(server: &Server, frames: &[&str]) -> Socket {
    let mut s = open(&format!("ws://{}/live/studio/ll", server.local_addr())).await;
    for f in frames {
        s.send(Message::text(f.to_string())).await.unwrap();
    }
    s
}

/// Polls the health answer until `check` accepts it; the last answer either way.
async fn health_until(
    server: &Server,
    deadline: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let (status, body) = health(server, KEY).await;
        assert_eq!(status, 200, "{body}");
        if check(&body) || tokio::time::Instant::now() >= end {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn health_reports_what_obs_sends_and_what_viewers_report() {
    let (server, _url, _dir) = start(None).await;
    // Not for a wrong secret, which is a guess like any other.
    let (status, body) = health(&server, "wrong").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "bad_secret");
    let (status, body) = health(&server, TOKEN).await;
    assert_eq!(status, 200, "the broadcaster token opens it too: {body}");
    assert_eq!(body["live"], false, "nobody is publishing yet: {body}");
    assert!(body.get("frameRate").is_none(), "{body}");

    let rtmp = format!(
        "rtmp://{}/live/{KEY}",
        server.rtmp_addr().expect("ingest runs")
    );
    // 30 fps, a keyframe every second.
    let mut obs = publisher::command(&rtmp, 30.0, publisher::H264, true)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
    // Once the window has a few segments and 5 s of frames.
    let h = health_until(&server, Duration::from_secs(20), |h| {
        h["live"] == true
            && h["keyframeInterval"].is_number()
            && h["framesReceived"].as_u64() > Some(160)
    })
    .await;
    let fps = h["frameRate"].as_f64().expect("a frame rate");
    assert!((24.0..=36.0).contains(&fps), "30 fps sent: {h}");
    let gop = h["keyframeInterval"].as_f64().unwrap();
    assert!((0.9..=1.1).contains(&gop), "a keyframe a second: {h}");
    let bitrate = h["bitrate"].as_f64().expect("a bitrate");
    assert!(bitrate > 50_000.0 && bitrate < 5_000_000.0, "{h}");
    assert_eq!(h["droppedFrames"], 0, "nothing dropped: {h}");
    assert!(h.get("viewerLatency").is_none(), "no viewer yet: {h}");

    // Three players report; garbage, an oversized frame and an absurd value are not
    // taken at their word.
    let _a = push_reporting(&server, &[r#"{"latencyMs":700}"#]).await;
    let _b = push_reporting(
        &server,
        &["not json", r#"{"latencyMs":-5}"#, r#"{"latencyMs":1500}"#],
    )
    .await;
    let padded = format!(r#"{{"latencyMs":100,"pad":"{}"}}"#, "x".repeat(100));
    let c = push_reporting(
        &server,
        &[
            r#"{"latencyMs":99999999999}"#,
            r#"{"latencyMs":4000000}"#,
            &padded,
        ],
    )
    .await;
    let h = health_until(&server, Duration::from_secs(5), |h| h["viewerReports"] == 3).await;
    assert_eq!(h["viewerReports"], 3, "{h}");
    // 0.7, 1.5 and 60 (4 000 s clamped): the middle one.
    assert_eq!(h["viewerLatency"], 1.5, "{h}");
    // A player that leaves no longer counts: the lower middle of 0.7 and 1.5.
    drop(c);
    let h = health_until(&server, Duration::from_secs(5), |h| h["viewerReports"] == 2).await;
    assert_eq!(h["viewerLatency"], 0.7, "{h}");

    let _ = obs.kill();
    let _ = obs.wait();
    let h = health_until(&server, Duration::from_secs(10), |h| h["live"] == false).await;
    assert_eq!(h["live"], false, "the publisher left: {h}");
}

#[tokio::test]
async fn health_counts_the_frames_a_publisher_drops() {
    let (server, _url, _dir) = start(None).await;
    let rtmp = format!(
        "rtmp://{}/live/{KEY}",
        server.rtmp_addr().expect("ingest runs")
    );
    // One frame in 30 never sent, its timestamp left out: a 2-frame gap every second.
    let mut obs = publisher::command_with(
        &rtmp,
        30.0,
        publisher::H264,
        false,
        &[
            "-vf",
            "select='not(eq(mod(n,30),15))'",
            "-fps_mode",
            "passthrough",
        ],
    )
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("ffmpeg runs");
    let h = health_until(&server, Duration::from_secs(20), |h| {
        h["droppedFrames"].as_u64() >= Some(4)
    })
    .await;
    let dropped = h["droppedFrames"].as_u64().unwrap();
    let received = h["framesReceived"].as_u64().unwrap();
    // One lost for each 29 received (give or take the second being counted).
    let expected = received / 29;
    assert!(
        dropped + 1 >= expected && dropped <= expected + 1,
        "{dropped} dropped of {received} received: {h}"
    );
    // 29 frames a second sent, on a 30 fps timeline.
    let fps = h["frameRate"].as_f64().expect("a frame rate");
    assert!((27.5..=30.0).contains(&fps), "{h}");
    let _ = obs.kill();
    let _ = obs.wait();
}
