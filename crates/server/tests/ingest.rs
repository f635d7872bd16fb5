//! RTMP ingest over real sockets: ffmpeg publishes a test pattern with audio to
//! lucarne-server, which must publish it over HLS and the low-latency push, follow the
//! publisher's comings and goings, record a replay, and shrug off bad publishers.
//!
//! Needs `ffmpeg` on PATH (`cargo xtask test` installs it).

mod publisher;

use futures_util::StreamExt;
use lucarne_server::{Config, Server};
use publisher::H264;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Origin {
    server: Server,
    http: String,
    rtmp: String,
    _dir: tempfile::TempDir,
}

async fn start(grace_secs: u64) -> Origin {
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
    config.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    config.ingest.stream_keys = vec!["secret-1=studio".into(), "secret-2=stage".into()];
    config.ingest.ingest_grace_secs = grace_secs;
    let server = Server::start(config).await.expect("server starts");
    Origin {
        http: format!("http://{}", server.local_addr()),
        rtmp: format!("rtmp://{}/live", server.rtmp_addr().expect("ingest runs")),
        server,
        _dir: dir,
    }
}

/// ffmpeg publishing `secs` of the test pattern with a tone (stderr kept for the
/// tests that read ffmpeg's complaint).
fn publish(url: &str, secs: f64, video_codec: &[&str]) -> Child {
    publisher::spawn(publisher::command(url, secs, video_codec, true).stderr(Stdio::piped()))
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn state(o: &Origin, id: &str) -> String {
    let (_, body) = get(&format!("{}/api/streams/{id}", o.http)).await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["state"].as_str().unwrap_or_default().to_owned()
}

async fn wait_state(o: &Origin, id: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = state(o, id).await;
        if s == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} stayed {s}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_exit(mut child: Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ffmpeg did not exit");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Media sequence numbers listed in a playlist.
fn msns(playlist: &str) -> Vec<u64> {
    playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit('/').next()?.strip_suffix(".m4s")?.parse().ok())
        .collect()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message of the push socket, counting binary messages on the way.
async fn next_text(ws: &mut Ws, binaries: &mut usize, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a state message in time")
            .expect("socket open")
            .expect("frame");
        match msg {
            Message::Text(t) => return t.to_string(),
            Message::Binary(_) => *binaries += 1,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_publish_goes_live_then_ends_into_a_replay() {
    let o = start(2).await;
    assert_eq!(state(&o, "studio").await, "offline");
    let (status, _) = get(&format!("{}/live/studio/index.m3u8", o.http)).await;
    assert_eq!(status, 404, "nothing to play before the broadcast");

    let ws_url = format!("{}/live/studio/ll", o.http.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let mut binaries = 0;
    assert_eq!(
        next_text(&mut ws, &mut binaries, Duration::from_secs(5)).await,
        "offline"
    );

    let ffmpeg = publish(&format!("{}/secret-1", o.rtmp), 4.0, H264);
    // The waiting viewer gets the init segment and chunks by itself.
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("media arrives")
        .unwrap()
        .unwrap();
    let Message::Binary(init) = first else {
        panic!("expected the init segment, got {first:?}");
    };
    assert_eq!(&init[4..8], b"ftyp");
    wait_state(&o, "studio", "live", Duration::from_secs(5)).await;
    let (_, room) = get(&format!("{}/api/rooms/studio", o.http)).await;
    assert!(room.contains("\"streamState\":\"live\""), "{room}");

    // The publisher stops: viewers hear "offline" at once, "ended" after the grace.
    assert!(wait_exit(ffmpeg, Duration::from_secs(20)).await.success());
    assert_eq!(
        next_text(&mut ws, &mut binaries, Duration::from_secs(5)).await,
        "offline"
    );
    assert!(
        binaries >= 20,
        "about 10 chunks a second were pushed: {binaries}"
    );
    assert_eq!(
        next_text(&mut ws, &mut binaries, Duration::from_secs(5)).await,
        "ended"
    );
    assert_eq!(state(&o, "studio").await, "ended");
    let (_, room) = get(&format!("{}/api/rooms/studio", o.http)).await;
    assert!(room.contains("\"streamState\":\"ended\""), "{room}");

    // The replay: a VOD playlist whose every file is served.
    let (status, vod) = get(&format!("{}/live/studio/index.m3u8", o.http)).await;
    assert_eq!(status, 200);
    assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{vod}");
    assert!(vod.ends_with("#EXT-X-ENDLIST\n"), "{vod}");
    let listed = msns(&vod);
    assert!(listed.len() >= 3, "{vod}");
    assert!(listed.windows(2).all(|w| w[1] == w[0] + 1), "{vod}");
    for line in vod.lines() {
        let uri = line
            .strip_prefix("#EXT-X-MAP:URI=\"")
            .map(|u| u.trim_end_matches('"'))
            .or((!line.starts_with('#')).then_some(line));
        if let Some(uri) = uri.filter(|u| !u.is_empty()) {
            let r = reqwest::get(format!("{}{uri}", o.http)).await.unwrap();
            assert_eq!(r.status(), 200, "{uri}");
            assert!(!r.bytes().await.unwrap().is_empty(), "{uri}");
        }
    }
    o.server.shutdown().await;
}

#[tokio::test]
async fn a_publisher_that_returns_within_the_grace_period_continues_the_broadcast() {
    let o = start(8).await;
    let url = format!("{}/secret-1", o.rtmp);
    let first = publish(&url, 3.0, H264);
    wait_state(&o, "studio", "live", Duration::from_secs(10)).await;
    let ws_url = format!("{}/live/studio/ll", o.http.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    assert!(wait_exit(first, Duration::from_secs(20)).await.success());
    let mut binaries = 0;
    assert_eq!(
        next_text(&mut ws, &mut binaries, Duration::from_secs(5)).await,
        "offline"
    );
    let before = msns(&get(&format!("{}/live/studio/index.m3u8", o.http)).await.1);

    let second = publish(&url, 3.0, H264);
    assert_eq!(
        next_text(&mut ws, &mut binaries, Duration::from_secs(10)).await,
        "live"
    );
    assert!(wait_exit(second, Duration::from_secs(20)).await.success());
    assert_eq!(
        next_text(&mut ws, &mut binaries, Duration::from_secs(5)).await,
        "offline"
    );
    let after = get(&format!("{}/live/studio/index.m3u8", o.http)).await.1;
    let listed = msns(&after);
    // Same stream, same init, numbering and timeline continuing: no discontinuity.
    assert!(
        listed.contains(before.last().unwrap()),
        "{before:?} then {after}"
    );
    assert!(listed.windows(2).all(|w| w[1] == w[0] + 1), "{after}");
    assert!(!after.contains("DISCONTINUITY"), "{after}");
    assert!(after.contains("URI=\"init.mp4\""), "{after}");
    o.server.shutdown().await;
}

#[tokio::test]
async fn two_streams_go_live_at_once() {
    let o = start(2).await;
    let a = publish(&format!("{}/secret-1", o.rtmp), 3.0, H264);
    let b = publish(&format!("{}/secret-2", o.rtmp), 3.0, H264);
    wait_state(&o, "studio", "live", Duration::from_secs(10)).await;
    wait_state(&o, "stage", "live", Duration::from_secs(10)).await;
    assert!(wait_exit(a, Duration::from_secs(20)).await.success());
    assert!(wait_exit(b, Duration::from_secs(20)).await.success());
    o.server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    let o = start(2).await;
    let ffmpeg = publish(&format!("{}/not-the-key", o.rtmp), 5.0, H264);
    let status = wait_exit(ffmpeg, Duration::from_secs(15)).await;
    assert!(!status.success(), "ffmpeg was let in");
    assert_eq!(state(&o, "studio").await, "offline");
    o.server.shutdown().await;
}

/// Connects and does the simple RTMP handshake (C0/C1, S0/S1/S2, C2).
async fn handshake(rtmp: &str) -> tokio::net::TcpStream {
    let addr = rtmp.trim_start_matches("rtmp://").trim_end_matches("/live");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536).map(|i| if i < 8 { 0 } else { (i * 7) as u8 }));
    tcp.write_all(&c0c1).await.unwrap();
    let mut s = vec![0u8; 1 + 1536 * 2];
    tcp.read_exact(&mut s).await.unwrap();
    tcp.write_all(&s[1..1537]).await.unwrap();
    tcp
}

/// True once the server closes the connection (or resets it).
async fn closed_by_server(tcp: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn malformed_publishers_are_refused_and_the_server_stays_up() {
    let o = start(2).await;

    // Not RTMP at all.
    let addr = o
        .rtmp
        .trim_start_matches("rtmp://")
        .trim_end_matches("/live");
    let mut junk = tokio::net::TcpStream::connect(addr).await.unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    junk.write_all(&[0u8; 4000]).await.unwrap();
    assert!(
        closed_by_server(&mut junk).await,
        "junk connection left open"
    );

    // An absurd message length (16 MB) in the first chunk header.
    let mut huge = handshake(&o.rtmp).await;
    huge.write_all(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0])
        .await
        .unwrap();
    huge.write_all(&[0x05; 512]).await.unwrap();
    assert!(closed_by_server(&mut huge).await, "absurd size accepted");

    // A chunk cut short, then silence.
    let mut cut = handshake(&o.rtmp).await;
    cut.write_all(&[0x03, 0, 0, 0, 0, 0, 100, 0x14, 0, 0, 0, 0, 0x02, 0x00])
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut cut).await,
        "a stalled publisher is kept forever"
    );

    // Random bytes after a good handshake.
    let mut noise = handshake(&o.rtmp).await;
    let bytes: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = noise.write_all(&bytes).await;
    assert!(closed_by_server(&mut noise).await, "noise accepted");

    // A real publisher with a video codec lucarne cannot play (Sorenson H.263).
    let h263 = publish(&format!("{}/secret-1", o.rtmp), 4.0, &["-c:v", "flv1"]);
    let status = wait_exit(h263, Duration::from_secs(15)).await;
    assert!(!status.success(), "an H.263 publish was accepted");
    assert_eq!(state(&o, "studio").await, "unsupported");

    // Through all that the server kept serving, and a good publisher still goes live.
    let good = publish(&format!("{}/secret-1", o.rtmp), 3.0, H264);
    wait_state(&o, "studio", "live", Duration::from_secs(10)).await;
    assert!(wait_exit(good, Duration::from_secs(20)).await.success());
    o.server.shutdown().await;
}

/// The next `streamState` the chat socket says.
async fn next_chat_state(chat: &mut Ws, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, chat.next())
            .await
            .expect("a streamState frame in time")
            .expect("socket open")
            .expect("frame");
        let Message::Text(t) = msg else { continue };
        let v: serde_json::Value = serde_json::from_str(&t).expect("json");
        let state = match v["type"].as_str() {
            Some("streamState") => &v["state"],
            Some("welcome") => &v["streamState"],
            _ => continue,
        };
        return state.as_str().unwrap_or_default().to_owned();
    }
}

#[tokio::test]
async fn a_publisher_refused_for_its_codec_is_told_to_viewers_not_left_offline() {
    let o = start(2).await;
    let ws = o.http.replace("http", "ws");
    let (mut push, _) = tokio_tungstenite::connect_async(format!("{ws}/live/studio/ll"))
        .await
        .unwrap();
    let mut binaries = 0;
    assert_eq!(
        next_text(&mut push, &mut binaries, Duration::from_secs(5)).await,
        "offline"
    );
    let (mut chat, _) = tokio_tungstenite::connect_async(format!("{ws}/chat/studio"))
        .await
        .unwrap();
    futures_util::SinkExt::send(
        &mut chat,
        Message::Text(r#"{"type":"hello","protocolVersion":1}"#.into()),
    )
    .await
    .unwrap();
    assert_eq!(
        next_chat_state(&mut chat, Duration::from_secs(5)).await,
        "offline"
    );

    // Sorenson H.263: lucarne cannot play it without transcoding.
    let h263 = publish(&format!("{}/secret-1", o.rtmp), 4.0, &["-c:v", "flv1"]);
    assert_eq!(
        next_text(&mut push, &mut binaries, Duration::from_secs(10)).await,
        "unsupported"
    );
    assert_eq!(
        next_chat_state(&mut chat, Duration::from_secs(5)).await,
        "unsupported"
    );
    assert!(!wait_exit(h263, Duration::from_secs(15)).await.success());
    assert_eq!(state(&o, "studio").await, "unsupported");
    let (_, room) = get(&format!("{}/api/rooms/studio", o.http)).await;
    assert!(room.contains("\"streamState\":\"unsupported\""), "{room}");
    assert_eq!(binaries, 0, "no media from a refused publisher");

    // The broadcaster fixes the settings: everyone hears "live", media follows.
    let good = publish(&format!("{}/secret-1", o.rtmp), 3.0, H264);
    let first = tokio::time::timeout(Duration::from_secs(10), push.next())
        .await
        .expect("media arrives")
        .unwrap()
        .unwrap();
    assert!(
        matches!(&first, Message::Binary(b) if &b[4..8] == b"ftyp"),
        "expected the init segment, got {first:?}"
    );
    assert_eq!(
        next_chat_state(&mut chat, Duration::from_secs(5)).await,
        "live"
    );
    assert_eq!(state(&o, "studio").await, "live");
    assert!(wait_exit(good, Duration::from_secs(20)).await.success());
    o.server.shutdown().await;
}

#[tokio::test]
async fn new_encoder_settings_after_a_reconnect_get_a_new_init_segment() {
    let o = start(8).await;
    let url = format!("{}/secret-1", o.rtmp);
    let small = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180:rate=30",
            "-t",
            "2",
        ])
        .args(H264)
        .args([
            "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p", "-an", "-f", "flv", &url,
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_state(&o, "studio", "live", Duration::from_secs(10)).await;
    let ws_url = format!("{}/live/studio/ll", o.http.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    assert!(wait_exit(small, Duration::from_secs(20)).await.success());

    // Back with a bigger picture and audio: same broadcast, new codec configuration.
    let big = publish(&url, 2.0, H264);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut inits = 0;
    while inits < 2 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a second init segment")
            .unwrap()
            .unwrap();
        if let Message::Binary(b) = msg {
            if b.len() > 8 && &b[4..8] == b"ftyp" {
                inits += 1;
            }
        }
    }
    let playlist = get(&format!("{}/live/studio/index.m3u8", o.http)).await.1;
    assert!(
        playlist.contains("#EXT-X-MAP:URI=\"init.mp4?v=1\""),
        "{playlist}"
    );
    let (status, _) = get(&format!("{}/live/studio/init.mp4?v=1", o.http)).await;
    assert_eq!(status, 200);
    assert!(wait_exit(big, Duration::from_secs(20)).await.success());
    o.server.shutdown().await;
}
