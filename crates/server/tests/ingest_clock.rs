//! An ffmpeg publisher's audio and video stay on one clock through RTMP ingest.
//!
//! ffmpeg sends an audio frame whose size and timestamp delta equal the previous one's
//! with a Type 3 chunk header (no timestamp at all: the receiver adds the last delta
//! again). The RTMP crate gave such a frame the previous frame's timestamp, so the audio
//! fell about 1 % behind the video — 0.6 s a minute — and since a player can only play
//! where both tracks are buffered, its latency grew by as much (seen in the soak:
//! 0.6 s → 2.7 s in three minutes). Fixed in `patches/scuffle-rtmp`.
//!
//! Needs `ffmpeg` on PATH (`cargo xtask test` installs it).

mod hub_support;
mod publisher;

use lucarne_server::Server;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The track start times (seconds) in a CMAF segment: (video, audio) from the first
/// `tfdt` of each track, with the init segment's timescales.
fn track_starts(init: &[u8], segment: &[u8]) -> (f64, f64) {
    fn boxes(b: &[u8]) -> impl Iterator<Item = (&[u8; 4], &[u8])> {
        let mut off = 0;
        std::iter::from_fn(move || {
            let size = u32::from_be_bytes(b.get(off..off + 4)?.try_into().ok()?) as usize;
            let kind: &[u8; 4] = b.get(off + 4..off + 8)?.try_into().ok()?;
            let body = b.get(off + 8..off + size)?;
            off += size.max(8);
            Some((kind, body))
        })
    }
    fn find<'a>(b: &'a [u8], path: &[&[u8; 4]], out: &mut Vec<&'a [u8]>) {
        for (kind, body) in boxes(b) {
            if kind == path[0] {
                if path.len() == 1 {
                    out.push(body);
                } else {
                    find(body, &path[1..], out);
                }
            }
        }
    }
    let mut mdhds = Vec::new();
    find(init, &[b"moov", b"trak", b"mdia", b"mdhd"], &mut mdhds);
    let scale = |m: &[u8]| {
        let at = if m[0] == 1 { 20 } else { 12 };
        f64::from(u32::from_be_bytes(m[at..at + 4].try_into().unwrap()))
    };
    let scales: Vec<f64> = mdhds.iter().map(|m| scale(m)).collect();
    let mut trafs = Vec::new();
    find(segment, &[b"moof", b"traf"], &mut trafs);
    let mut first = [None::<f64>; 2];
    for traf in trafs {
        let mut tfhd = Vec::new();
        let mut tfdt = Vec::new();
        find(traf, &[b"tfhd"], &mut tfhd);
        find(traf, &[b"tfdt"], &mut tfdt);
        let track = u32::from_be_bytes(tfhd[0][4..8].try_into().unwrap()) as usize;
        let t = tfdt[0];
        let dts = if t[0] == 1 {
            u64::from_be_bytes(t[4..12].try_into().unwrap())
        } else {
            u64::from(u32::from_be_bytes(t[4..8].try_into().unwrap()))
        };
        let slot = &mut first[track - 1];
        slot.get_or_insert(dts as f64 / scales[track - 1]);
    }
    (
        first[0].expect("video in the segment"),
        first[1].expect("audio in the segment"),
    )
}

#[tokio::test]
async fn an_ffmpeg_publishers_audio_keeps_up_with_its_video() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hub_support::config(dir.path());
    config.hub.chat_db = Some(":memory:".into());
    config.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    config.ingest.stream_keys = vec!["k=clock".into()];
    let server = Server::start(config).await.expect("server starts");
    let http = format!("http://{}", server.local_addr());
    let rtmp = format!("rtmp://{}/live/k", server.rtmp_addr().unwrap());

    // 24 s of a 30 fps pattern and a tone, in real time: both clocks are ffmpeg's own
    // (frame and sample counts), so they agree at the source.
    let mut ffmpeg = publisher::spawn(
        publisher::command(&rtmp, 24.0, publisher::H264, true).stderr(Stdio::null()),
    );

    // Read the newest whole segment until it starts 20 s after the first one seen.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_video = None;
    let (video, audio) = loop {
        assert!(Instant::now() < deadline, "20 s of media never arrived");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(newest) = get(&format!("{http}/live/clock/index.m3u8"))
            .await
            .and_then(|p| {
                let p = String::from_utf8_lossy(&p).into_owned();
                p.lines()
                    .rev()
                    .find(|l| l.ends_with(".m4s"))
                    .map(str::to_owned)
            })
        else {
            continue;
        };
        let (Some(init), Some(seg)) = (
            get(&format!("{http}/live/clock/init.mp4")).await,
            get(&format!("{http}/live/clock/{newest}")).await,
        ) else {
            continue;
        };
        let (video, audio) = track_starts(&init, &seg);
        let first = *first_video.get_or_insert(video);
        if video - first >= 20.0 {
            break (video, audio);
        }
    };
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    assert!(
        (video - audio).abs() < 0.1,
        "after 20 s the audio starts {:.3} s from the video in the same segment",
        video - audio
    );
    server.shutdown().await;
}

/// The body of a 200 answer.
async fn get(url: &str) -> Option<Vec<u8>> {
    let r = reqwest::get(url).await.ok()?;
    if r.status() != 200 {
        return None;
    }
    Some(r.bytes().await.ok()?.to_vec())
}
