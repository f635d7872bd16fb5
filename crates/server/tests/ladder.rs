//! The rendition ladder over real sockets: ffmpeg publishes a 640×360 broadcast over
//! RTMP to lucarne-server started with `--ladder 360,180`, which must transcode it with
//! a real ffmpeg child and publish a multivariant playlist (the source, untouched, and
//! a 320×180 rendition; no 360p, the source being 360 high), whose rendition decodes at
//! its height and numbers its segments like the source, on the same clock; the child
//! must go when the publisher does. And the start-up errors: `--ladder` without ffmpeg,
//! a `--ladder` value that is no height.
//!
//! Needs `ffmpeg` and `ffprobe` on PATH (`cargo xtask test` installs them).

use futures_util::StreamExt;
use lucarne_server::{Config, Server};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Origin {
    _server: Server,
    http: String,
    rtmp: String,
    dir: tempfile::TempDir,
}

async fn start(ladder: &[u32]) -> Origin {
    start_with(ladder, true, None).await
}

async fn start_with(ladder: &[u32], no_demo: bool, ffmpeg: Option<PathBuf>) -> Origin {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dist: dir.path().join("dist"),
        pages: workspace().join("static"),
        media: workspace().join("media"),
        no_demo,
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
    config.ingest.stream_keys = vec!["key-1=studio".into()];
    config.ingest.ladder = ladder.to_vec();
    config.ingest.ladder_preset = "ultrafast".into();
    config.ingest.ffmpeg = ffmpeg;
    let server = Server::start(config).await.expect("server starts");
    Origin {
        http: format!("http://{}", server.local_addr()),
        rtmp: format!("rtmp://{}/live", server.rtmp_addr().expect("ingest runs")),
        _server: server,
        dir,
    }
}

/// ffmpeg publishing `secs` of a 640×360, 25 fps test pattern (a keyframe every
/// second) with an AAC tone, in real time.
fn publish(url: &str, secs: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "25", "-bf", "0", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("ffmpeg runs (install it: apt-get install ffmpeg)")
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn bytes(url: &str) -> Vec<u8> {
    let r = reqwest::get(url).await.expect("request");
    assert_eq!(r.status().as_u16(), 200, "{url}");
    r.bytes().await.expect("body").to_vec()
}

/// The complete segments of a media playlist: (msn, program date-time as listed).
fn segments(playlist: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut date = String::new();
    for l in playlist.lines() {
        if let Some(d) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            date = d.to_owned();
        } else if let Some(msn) = l.strip_suffix(".m4s").and_then(|n| n.parse().ok()) {
            out.push((msn, date.clone()));
        }
    }
    out
}

/// Seconds of the day in an RFC 3339 date-time with milliseconds.
fn seconds_of_day(date: &str) -> f64 {
    let time = date.split('T').nth(1).expect("a time");
    let hms: Vec<f64> = time
        .trim_end_matches('Z')
        .split(':')
        .map(|p| p.parse().expect("a number"))
        .collect();
    hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

/// The ffmpeg children of this process that transcode a ladder.
fn ladder_children() -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) != Some(me) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("force_key_frames") {
            found.push(pid);
        }
    }
    found
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// ffprobe's height of the video in `file`, and the frames ffmpeg decodes from it.
fn probe(file: &Path) -> (u32, u32) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut it = text.split(',').map(|n| n.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_gets_aligned_lower_renditions_and_its_ffmpeg_goes_with_the_publisher() {
    let o = start(&[360, 180]).await;
    let mut publisher = publish(&format!("{}/key-1", o.rtmp), 60);
    let index = format!("{}/live/studio/index.m3u8", o.http);

    // The multivariant playlist: the source, then the 180p rendition once it has a
    // complete segment.
    let deadline = Instant::now() + Duration::from_secs(40);
    let master = loop {
        let (status, body) = get(&index).await;
        if status == 200 && body.contains("180p/index.m3u8") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no 180p rendition in index.m3u8: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(master.starts_with("#EXTM3U"), "{master}");
    let variants: Vec<(&str, &str)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(l, _)| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), 2, "the source and 180p, no 360p: {master}");
    let (source_inf, source_uri) = variants[0];
    assert_eq!(source_uri, "source.m3u8");
    assert!(source_inf.contains("RESOLUTION=640x360"), "{source_inf}");
    let (low_inf, low_uri) = variants[1];
    assert_eq!(low_uri, "180p/index.m3u8");
    assert!(low_inf.contains("RESOLUTION=320x180"), "{low_inf}");
    for inf in [source_inf, low_inf] {
        assert!(
            inf.contains("CODECS=\"avc1.") && inf.contains(",mp4a.40.2\""),
            "{inf}"
        );
        let bandwidth: u64 = inf
            .split("BANDWIDTH=")
            .nth(1)
            .and_then(|b| b.split(',').next())
            .and_then(|b| b.parse().ok())
            .expect("a BANDWIDTH");
        assert!(bandwidth > 10_000, "{inf}");
    }
    let bw = |inf: &str| -> u64 {
        inf.split("BANDWIDTH=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(bw(low_inf) < bw(source_inf), "180p costs less: {master}");
    let (status, _) = get(&format!("{}/live/studio/360p/index.m3u8", o.http)).await;
    assert_eq!(status, 404, "no rendition as high as the source");

    // Both playlists have a few complete segments.
    let source_url = format!("{}/live/studio/source.m3u8", o.http);
    let low_url = format!("{}/live/studio/180p/index.m3u8", o.http);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (source, low) = loop {
        let source = segments(&get(&source_url).await.1);
        let low = segments(&get(&low_url).await.1);
        if source.len() >= 4 && low.len() >= 4 {
            break (source, low);
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 4 segments: source {source:?}, 180p {low:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Segment numbers align: the same number starts at the same time in both.
    let mut shared = 0;
    for (msn, date) in &low {
        if let Some((_, source_date)) = source.iter().find(|(m, _)| m == msn) {
            let drift = (seconds_of_day(date) - seconds_of_day(source_date)).abs();
            assert!(
                drift < 0.05,
                "segment {msn} starts at {date} in 180p and {source_date} in the source"
            );
            shared += 1;
        }
    }
    assert!(
        shared >= 3,
        "segment numbers shared by both playlists: source {source:?}, 180p {low:?}"
    );

    // Each rendition segment decodes, at its height; the source's at 360.
    let low_init = bytes(&format!("{}/live/studio/180p/init.mp4", o.http)).await;
    for (msn, _) in low.iter().take(3) {
        let mut file = low_init.clone();
        file.extend(bytes(&format!("{}/live/studio/180p/{msn}.m4s", o.http)).await);
        let path = o.dir.path().join(format!("180p-{msn}.mp4"));
        std::fs::write(&path, file).unwrap();
        let (height, frames) = probe(&path);
        assert_eq!(height, 180, "segment {msn}");
        assert!(frames >= 10, "segment {msn} decodes {frames} frames");
    }
    let mut file = bytes(&format!("{}/live/studio/init.mp4", o.http)).await;
    file.extend(bytes(&format!("{}/live/studio/{}.m4s", o.http, source[0].0)).await);
    let path = o.dir.path().join("source.mp4");
    std::fs::write(&path, file).unwrap();
    assert_eq!(probe(&path).0, 360, "the source is untouched");

    // The rendition's low-latency push: its init segment, then its chunks.
    let ws_url = format!("{}/live/studio/180p/ll", o.http.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("the 180p push opens");
    let mut pushed = Vec::new();
    while pushed.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the 180p push sends in time")
            .expect("the socket stays open")
            .expect("a frame");
        if let Message::Binary(b) = msg {
            pushed.push(b.to_vec());
        }
    }
    assert_eq!(
        pushed[0], low_init,
        "the push starts with the rendition's init"
    );
    assert_eq!(&pushed[1][4..8], b"moof", "then its chunks");
    drop(ws);

    // One ffmpeg transcodes while the publisher publishes; none once it has gone.
    assert_eq!(ladder_children().len(), 1, "one ladder child while live");
    let _ = publisher.kill();
    let _ = publisher.wait();
    wait_until(
        Duration::from_secs(10),
        "the ladder's ffmpeg to exit",
        || async { ladder_children().is_empty() },
    )
    .await;
    let (_, master) = get(&index).await;
    assert!(
        !master.contains("180p"),
        "the rendition is no longer offered: {master}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loop_gets_its_ladder_from_the_clip() {
    // The clip is 480×270: of 360 and 180, only 180 is made.
    let o = start_with(&[360, 180], false, None).await;
    let (status, master) = get(&format!("{}/live/demo/index.m3u8", o.http)).await;
    assert_eq!(status, 200);
    assert!(master.contains("RESOLUTION=480x270"), "{master}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (source, low) = loop {
        let source = segments(&get(&format!("{}/live/demo/source.m3u8", o.http)).await.1);
        let low = segments(
            &get(&format!("{}/live/demo/180p/index.m3u8", o.http))
                .await
                .1,
        );
        // Three segments listed in both with the same numbers and times. The rendition
        // may lag the source by a segment or two (ffmpeg on a loaded machine), so
        // early on their windows can overlap by less: look again.
        let shared = low
            .iter()
            .filter(|l| source.iter().any(|s| s == *l))
            .count();
        if shared >= 3 {
            break (source, low);
        }
        assert!(
            Instant::now() < deadline,
            "no demo ladder whose segments line up with the source's (same numbers, same \
             times) in 20 s: {source:?} {low:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (_, master) = get(&format!("{}/live/demo/index.m3u8", o.http)).await;
    assert!(
        master.contains("RESOLUTION=320x180") && !master.contains("360p"),
        "{master}"
    );
    // None of the rendition's segments has a number the source gives another time.
    for (n, t) in &low {
        if let Some(s) = source.iter().find(|(m, _)| m == n) {
            assert_eq!(s.1, *t, "segment {n}: {source:?} {low:?}");
        }
    }
    let mut file = bytes(&format!("{}/live/demo/180p/init.mp4", o.http)).await;
    file.extend(bytes(&format!("{}/live/demo/180p/{}.m4s", o.http, low[0].0)).await);
    let path = o.dir.path().join("demo-180p.mp4");
    std::fs::write(&path, file).unwrap();
    let (height, frames) = probe(&path);
    assert_eq!(height, 180);
    assert!(frames >= 10, "{frames} frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_ffmpeg_leaves_the_source_playing_alone() {
    // An ffmpeg that passes the start-up check, then fails every transcode.
    let dir = tempfile::tempdir().unwrap();
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v ffmpeg"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let script = dir.path().join("ffmpeg");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" -encoders \"*) exec {} \"$@\";; esac\n\
             echo 'simulated encoder crash' >&2\nexit 1\n",
            real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let o = start_with(&[180], true, Some(script)).await;
    let mut publisher = publish(&format!("{}/key-1", o.rtmp), 60);
    let source_url = format!("{}/live/studio/source.m3u8", o.http);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let now = segments(&get(&source_url).await.1);
        if now.len() >= 5 {
            seen = now;
            break;
        }
        assert!(Instant::now() < deadline, "the source stopped: {seen:?}");
        seen = now;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, master) = get(&format!("{}/live/studio/index.m3u8", o.http)).await;
    assert_eq!(
        master.matches("#EXT-X-STREAM-INF").count(),
        1,
        "only the source: {master}"
    );
    assert!(master.contains("source.m3u8"), "{master}");
    // And it keeps going.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = segments(&get(&source_url).await.1);
    assert!(
        later.last().map(|s| s.0) > seen.last().map(|s| s.0),
        "the source did not advance: {seen:?} then {later:?}"
    );
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// Whether process `pid` is gone (or a zombie waiting for its new parent to reap it).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The ladder ffmpeg children of process `parent`.
fn ladder_children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("force_key_frames") {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_kills_its_ladder_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let rtmp = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_lucarne-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-demo",
            "--stream-key",
            "k=s",
        ])
        .args([
            "--rtmp-listen",
            &rtmp.to_string(),
            "--drain-delay-secs",
            "0",
        ])
        .args([
            "--ladder",
            "180",
            "--ladder-preset",
            "ultrafast",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("LUCARNE_FFMPEG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server binary runs");
    let pid = server.id();
    // Ingest listens once the server is up: publish until ffmpeg takes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut publisher = None;
    let child = loop {
        if publisher
            .as_mut()
            .is_none_or(|p: &mut Child| p.try_wait().unwrap().is_some())
        {
            publisher = Some(publish(&format!("rtmp://{rtmp}/live/k"), 60));
        }
        if let Some(&c) = ladder_children_of(pid).first() {
            break c;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("no ladder ffmpeg under the server in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(child) {
        assert!(
            Instant::now() < deadline,
            "the ladder's ffmpeg ({child}) outlived the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(mut p) = publisher {
        let _ = p.kill();
        let _ = p.wait();
    }
}

/// The server binary with `args`, with `path` as its PATH; its exit status and stderr.
fn run_server(args: &[&str], path: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lucarne-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-demo",
            "--stream-key",
            "k=s",
        ])
        .args(["--rtmp-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .env("PATH", path)
        .env_remove("LUCARNE_FFMPEG")
        .env_remove("LUCARNE_LADDER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lucarne-server {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ladder_without_ffmpeg_stops_the_start_and_names_the_fix() {
    let (status, stderr) = run_server(&["--ladder", "360,180"], "/nonexistent");
    assert!(!status.success());
    assert!(
        stderr.contains("--ladder needs ffmpeg")
            && stderr.contains("no `ffmpeg` on PATH")
            && stderr.contains("LUCARNE_FFMPEG"),
        "{stderr}"
    );
    let (status, stderr) = run_server(
        &["--ladder", "360", "--ffmpeg", "/nonexistent/ffmpeg"],
        "/nonexistent",
    );
    assert!(!status.success());
    assert!(stderr.contains("/nonexistent/ffmpeg"), "{stderr}");
}

#[test]
fn a_ladder_value_that_is_no_height_is_refused_with_why() {
    let path = std::env::var("PATH").unwrap_or_default();
    for (bad, says) in [
        ("720,abc", "is not a height"),
        ("721", "an even number"),
        ("0", "an even number"),
    ] {
        let (status, stderr) = run_server(&["--ladder", bad], &path);
        assert!(!status.success(), "--ladder {bad}");
        assert!(stderr.contains(says), "--ladder {bad}: {stderr}");
    }
}
