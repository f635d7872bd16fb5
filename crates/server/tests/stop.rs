//! Stopping the real `lucarne-server` binary with a signal, as systemd, a container
//! runtime or the OOM killer would, while a broadcast is live and viewers chat and send
//! hearts; then starting it again on the same data directory.
//!
//! - SIGTERM: chat viewers are told to come back (1001), the process exits cleanly, and
//!   after the restart every acknowledged message, the hearts total and a playable
//!   replay of the broadcast are there.
//! - SIGKILL: nothing runs at all, yet after the restart the broadcast is a playable
//!   replay (recovered from its journal) and acknowledged messages are there.
//!
//! Needs `ffmpeg` on PATH (`cargo xtask test` installs it).

mod hub_support;
mod publisher;

use hub_support::{named, Client, DEADLINE};
use lucarne_protocol::{close, ClientMessage, RoomEvent, SendHearts, ServerMessage};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The server binary running as a child process.
struct Running {
    child: Child,
    http: SocketAddr,
    rtmp: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `lucarne-server` on free ports with the `studio` stream (key `k`) and its
/// data in `dir`, and waits for the lines that give its addresses.
fn spawn_server(dir: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lucarne-server"))
        .args(["--listen", "127.0.0.1:0", "--rtmp-listen", "127.0.0.1:0"])
        .args(["--stream-key", "k=studio", "--no-demo"])
        // No load balancer to wait for (tests/ops.rs covers the drain).
        .args(["--drain-delay-secs", "0"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--dist")
        .arg(dir.join("dist"))
        .arg("--pages")
        .arg(workspace().join("static"))
        .arg("--media")
        .arg(workspace().join("media"))
        .env("RUST_LOG", "lucarne_server=info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lucarne-server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut http = None;
    let mut rtmp = None;
    while http.is_none() || rtmp.is_none() {
        let line = lines
            .next()
            .expect("the server prints its addresses")
            .unwrap();
        if let Some(a) = line.strip_prefix("lucarne-server listening on http://") {
            http = Some(a.trim().parse().unwrap());
        } else if let Some(a) = line.strip_prefix("lucarne-server rtmp ingest on ") {
            rtmp = Some(a.trim().to_owned());
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        http: http.unwrap(),
        rtmp: rtmp.unwrap(),
    }
}

/// ffmpeg publishing a live test pattern with audio for up to `secs`.
fn publish(url: &str, secs: u32) -> Child {
    publisher::spawn(
        publisher::command(url, f64::from(secs), publisher::H264, true).stderr(Stdio::null()),
    )
}

async fn get(url: &str) -> (u16, bytes::Bytes) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.bytes().await.unwrap_or_default()),
        Err(_) => (0, bytes::Bytes::new()),
    }
}

/// Polls `url` until `ok` holds for its body, or fails after `limit`.
async fn until(url: &str, limit: Duration, ok: impl Fn(u16, &str) -> bool) -> String {
    let end = Instant::now() + limit;
    loop {
        let (status, body) = get(url).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        if ok(status, &text) {
            return text;
        }
        assert!(
            Instant::now() < end,
            "{url} never became what was expected; last: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Goes live and waits until the live playlist lists three segments.
async fn go_live(server: &Running) -> Child {
    let ffmpeg = publish(&format!("{}/k", server.rtmp), 120);
    let playlist = format!("http://{}/live/studio/index.m3u8", server.http);
    until(&playlist, Duration::from_secs(30), |s, t| {
        s == 200 && t.matches("#EXTINF").count() >= 3
    })
    .await;
    ffmpeg
}

/// Posts `texts` and waits until the room has echoed each one (acknowledged).
async fn chat_acknowledged(client: &mut Client, texts: &[&str]) {
    for (i, text) in texts.iter().enumerate() {
        client.chat(text, &format!("c{i}")).await;
        let want = text.to_string();
        client
            .next_where(move |m| matches!(m, ServerMessage::Chat(c) if c.text == want))
            .await;
    }
}

/// Sends hearts in batches of 5, paced under the per-connection rate (10/s), waiting
/// each time until the room has counted them, up to `total`.
async fn hearts_acknowledged(client: &mut Client, total: u64) {
    let mut sent = 0;
    while sent < total {
        client
            .send(&ClientMessage::Hearts(SendHearts {
                count: 5,
                colour: None,
            }))
            .await;
        sent += 5;
        client
            .next_where(move |m| matches!(m, ServerMessage::Hearts(h) if h.total == sent))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn history(w: &lucarne_protocol::Welcome) -> Vec<String> {
    w.history
        .iter()
        .filter_map(|e| match e {
            RoomEvent::Chat(c) => Some(c.text.clone()),
            _ => None,
        })
        .collect()
}

/// After a restart: the channel is `ended` with a replay whose playlist is finished
/// and whose init segment and media answer.
async fn assert_replay_playable(server: &Running) {
    let info = until(
        &format!("http://{}/api/streams/studio", server.http),
        Duration::from_secs(10),
        |s, _| s == 200,
    )
    .await;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["state"], "ended", "{info}");
    let replay = info["replay"]
        .as_str()
        .unwrap_or_else(|| panic!("a replay is offered: {info}"));
    let (status, body) = get(&format!("http://{}{replay}", server.http)).await;
    let playlist = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{playlist}");
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    assert!(
        playlist.matches("#EXTINF").count() >= 3,
        "the broadcast's seconds are in the replay: {playlist}"
    );
    let init = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("an init segment");
    let first = playlist
        .lines()
        .find(|l| l.ends_with(".m4s"))
        .expect("a media segment");
    for uri in [init, first] {
        let (status, body) = get(&format!("http://{}{uri}", server.http)).await;
        assert_eq!(status, 200, "{uri}");
        assert!(body.len() > 100, "{uri} has media");
    }
    // The live playlist of the ended channel is the replay's.
    let (status, body) = get(&format!("http://{}/live/studio/index.m3u8", server.http)).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("#EXT-X-ENDLIST"));
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < end,
            "the server did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Within the default burst (3), so none is refused as a flood.
const TEXTS: [&str; 3] = ["first", "second", "third"];

#[tokio::test]
async fn sigterm_then_restart_keeps_messages_hearts_and_a_playable_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_server(dir.path());
    let mut ffmpeg = go_live(&server).await;
    let (mut ana, _) = Client::join(server.http, "studio", named("Ana")).await;
    chat_acknowledged(&mut ana, &TEXTS).await;
    hearts_acknowledged(&mut ana, 40).await;

    signal(&server.child, "-TERM");
    assert_eq!(
        ana.closed().await,
        Some(close::GOING_AWAY),
        "viewers are told to come back"
    );
    let status = wait_exit(&mut server.child, Duration::from_secs(20));
    assert!(
        status.success(),
        "a clean exit, not death by signal: {status}"
    );
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    drop(server);

    let server = spawn_server(dir.path());
    assert_replay_playable(&server).await;
    let (_bob, w) = Client::join(server.http, "studio", named("Bob")).await;
    assert_eq!(history(&w), TEXTS, "every acknowledged message is kept");
    assert_eq!(w.hearts_total, 40, "the hearts total is kept");
}

#[tokio::test]
async fn sigkill_then_restart_recovers_the_replay_and_acknowledged_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_server(dir.path());
    let mut ffmpeg = go_live(&server).await;
    let (mut ana, _) = Client::join(server.http, "studio", named("Ana")).await;
    chat_acknowledged(&mut ana, &TEXTS).await;

    signal(&server.child, "-KILL");
    wait_exit(&mut server.child, DEADLINE);
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    drop(server);

    let server = spawn_server(dir.path());
    assert_replay_playable(&server).await;
    let (_bob, w) = Client::join(server.http, "studio", named("Bob")).await;
    assert_eq!(history(&w), TEXTS, "every acknowledged message is kept");
}
