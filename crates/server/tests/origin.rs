//! lucarne-server over real sockets on 127.0.0.1:0: the HLS playlist, its segments, the
//! low-latency WebSocket push, the widget files and the errors a client can cause.

use futures_util::StreamExt;
use lucarne_server::{Config, Server};
use mp4_atom::{Any, DecodeMaybe, Moof};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(dist: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dist: dist.to_path_buf(),
        pages: workspace().join("static"),
        media: workspace().join("media"),
        no_demo: false,
        hls_window: 6,
        chunk_ms: 100,
        data_dir: dist.join("data"),
        hub: Default::default(),
        ingest: Default::default(),
        serve: Default::default(),
        access: Default::default(),
        edge: Default::default(),
    }
}

async fn start() -> (Server, String, tempfile::TempDir) {
    let dist = tempfile::tempdir().unwrap();
    let server = Server::start(config(dist.path()))
        .await
        .expect("server starts");
    let base = format!("http://{}", server.local_addr());
    (server, base, dist)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Every `traf` in a run of fragments, as `(track index, start s, duration s)`.
fn fragments(mut bytes: &[u8], timescales: &[u32]) -> Vec<(usize, f64, f64)> {
    let mut out = Vec::new();
    while let Some(atom) = Any::decode_maybe(&mut bytes).unwrap() {
        if let Any::Moof(Moof { traf, .. }) = atom {
            for t in &traf {
                let track = (t.tfhd.track_id - 1) as usize;
                let ts = f64::from(timescales[track]);
                let start = t.tfdt.as_ref().unwrap().base_media_decode_time as f64 / ts;
                let dur: u64 = t.trun[0]
                    .samples
                    .iter()
                    .map(|e| u64::from(e.duration.unwrap()))
                    .sum();
                out.push((track, start, dur as f64 / ts));
            }
        }
    }
    out
}

/// Asserts each track's fragments follow one another with no gap or overlap; `next`
/// carries each track's expected next start across calls.
fn assert_continuous(next: &mut [Option<f64>; 2], frags: Vec<(usize, f64, f64)>) {
    for (track, start, dur) in frags {
        if let Some(expected) = next[track] {
            assert!(
                (start - expected).abs() < 1e-6,
                "track {track}: gap or overlap at {start} (expected {expected})"
            );
        }
        next[track] = Some(start + dur);
    }
}

fn timescales(init: &[u8]) -> Vec<u32> {
    let mut buf = init;
    while let Some(atom) = Any::decode_maybe(&mut buf).unwrap() {
        if let Any::Moov(moov) = atom {
            return moov.trak.iter().map(|t| t.mdia.mdhd.timescale).collect();
        }
    }
    panic!("init segment without moov");
}

#[tokio::test]
async fn playlist_is_a_live_sliding_window_tied_to_the_wall_clock() {
    let (_server, base, _dist) = start().await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{base}/live/demo/index.m3u8"))
        .header("Origin", "https://blog.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("s-maxage=1"));
    let text = r.text().await.unwrap();
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    assert!(text.contains("#EXT-X-TARGETDURATION:1\n"), "{text}");
    assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{text}");
    let segments: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_suffix(".m4s"))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(segments.len(), 6, "{text}");
    assert!(segments.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 6);
    // The newest complete segment ended within the last two seconds.
    let last_end = *segments.last().unwrap() as f64 + 1.0;
    let now = unix_now();
    assert!(
        now - last_end < 2.0 && now >= last_end - 0.05,
        "last segment ends at {last_end}, now {now}"
    );
}

#[tokio::test]
async fn segments_are_cmaf_with_continuous_wall_clock_decode_times() {
    let (_server, base, _dist) = start().await;
    let client = reqwest::Client::new();
    let init = client
        .get(format!("{base}/live/demo/init.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.headers()["content-type"], "video/mp4");
    let init = init.bytes().await.unwrap();
    let ts = timescales(&init);
    assert_eq!(ts.len(), 2, "video and audio tracks");

    let text = client
        .get(format!("{base}/live/demo/index.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names: Vec<&str> = text.lines().filter(|l| l.ends_with(".m4s")).collect();
    let mut next = [None::<f64>; 2];
    for name in &names[names.len() - 3..] {
        let r = client
            .get(format!("{base}/live/demo/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "video/iso.segment");
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let msn: f64 = name.trim_end_matches(".m4s").parse().unwrap();
        let frags = fragments(&r.bytes().await.unwrap(), &ts);
        assert!(
            frags.len() >= 18,
            "~100 ms chunks with two tracks, got {}",
            frags.len()
        );
        assert_eq!(
            frags[0].1, msn,
            "segment {name} starts at its own unix second"
        );
        assert_continuous(&mut next, frags);
    }
}

#[tokio::test]
async fn missing_and_malformed_requests_get_clear_errors() {
    let (_server, base, _dist) = start().await;
    let client = reqwest::Client::new();
    for path in [
        "/live/nope/index.m3u8",
        "/live/demo/abc.m4s",
        "/live/demo/99999999999999999999999.m4s",
        "/live/demo/1.m4s",
        "/api/streams/nope",
        "/overlay/nope",
    ] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(
            r.headers()["cache-control"],
            "no-cache",
            "{path}: 404s must not be cached"
        );
    }
    let r = client
        .get(format!("{base}/..%2f..%2fCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "no path traversal out of the served directories"
    );
    // A segment that will exist a moment from now is not served early.
    let future = unix_now() as u64 + 5;
    let r = client
        .get(format!("{base}/live/demo/{future}.m4s"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let info = client
        .get(format!("{base}/api/streams/demo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["hls"], "/live/demo/index.m3u8");
    assert_eq!(info["ll"], "/live/demo/ll");
    // The broadcast's overlay for OBS: a page loading the widget as the stream's overlay.
    let r = client
        .get(format!("{base}/overlay/demo?lang=fr"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(
        page.contains("data-layout=\"overlay\" data-chat=\"/chat/demo\" data-lang=\"fr\""),
        "{page}"
    );
}

#[tokio::test]
async fn low_latency_push_sends_init_then_chunks_in_real_time() {
    let (server, _base, _dist) = start().await;
    let url = format!("ws://{}/live/demo/ll", server.local_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    let first = match ws.next().await.unwrap().unwrap() {
        Message::Binary(b) => b,
        other => panic!("expected binary init, got {other:?}"),
    };
    assert_eq!(&first[4..8], b"ftyp");
    let ts = timescales(&first);

    let mut frags = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut delays = Vec::new();
    while tokio::time::Instant::now() < deadline {
        let Ok(Some(Ok(Message::Binary(b)))) =
            tokio::time::timeout(Duration::from_secs(2), ws.next()).await
        else {
            panic!("push stopped");
        };
        let f = fragments(&b, &ts);
        let end = f.iter().map(|(_, s, d)| s + d).fold(0.0, f64::max);
        delays.push(unix_now() - end);
        frags.extend(f);
    }
    // The backlog starts on the current segment's keyframe (a whole second).
    assert_eq!(frags[0].1.fract(), 0.0, "first chunk at {}", frags[0].1);
    // After the backlog, each chunk arrives right after its media ends.
    let tail = &delays[delays.len() / 2..];
    assert!(
        tail.iter().all(|d| *d >= -0.01 && *d < 0.3),
        "chunk delays behind the wall clock: {tail:?}"
    );
    assert_continuous(&mut [None; 2], frags);
}

#[tokio::test]
async fn a_restarted_origin_continues_the_same_timeline() {
    let dist = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(config(dist.path())).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let text = client
        .get(format!("{base}/live/demo/index.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let name = text
        .lines()
        .rfind(|l| l.ends_with(".m4s"))
        .unwrap()
        .to_owned();
    let before = client
        .get(format!("{base}/live/demo/{name}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    server.shutdown().await;

    let server = Server::start(config(dist.path())).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let after = client
        .get(format!("{base}/live/demo/{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        200,
        "segment {name} is served again after the restart"
    );
    assert_eq!(
        after.bytes().await.unwrap(),
        before,
        "same bytes: the timeline is the wall clock"
    );
}

#[tokio::test]
async fn widget_files_have_types_compression_and_cors() {
    let dist = tempfile::tempdir().unwrap();
    let wasm = b"\0asm\x01\0\0\0".repeat(100);
    std::fs::write(dist.path().join("lucarne_widget_bg.wasm"), &wasm).unwrap();
    std::fs::write(
        dist.path().join("lucarne_widget_bg.wasm.br"),
        b"pretend-brotli",
    )
    .unwrap();
    std::fs::write(
        dist.path().join("lucarne_widget.js"),
        "export default function(){}",
    )
    .unwrap();
    let server = Server::start(config(dist.path())).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();

    let r = client
        .get(format!("{base}/lucarne_widget_bg.wasm"))
        .header("Accept-Encoding", "br")
        .header("Origin", "https://agency.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/wasm");
    assert_eq!(r.headers()["content-encoding"], "br");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"pretend-brotli");

    let r = client
        .get(format!("{base}/lucarne_widget_bg.wasm"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.bytes().await.unwrap().len(), wasm.len());

    let r = client
        .get(format!("{base}/lucarne_widget.js"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    // The loader and the demo page come from the pages directory.
    let r = client
        .get(format!("{base}/lucarne.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = client
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/lucarne.js"), "demo page embeds the widget");
}
