//! Shared by the ingest tests: ffmpeg as an RTMP publisher of a live test source.

#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Command, Stdio};

/// H.264 as a low-latency encoder would send it.
pub const H264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-tune",
    "zerolatency",
];

/// ffmpeg publishing `secs` of a 320×180, 30 fps test pattern (a keyframe every
/// second, no B-frames) encoded with `video_codec`, and with `tone` a 48 kHz AAC tone,
/// to `url` in real time. Its stdout is discarded and stdin closed; stderr is the
/// caller's to choose before [`spawn`].
pub fn command(url: &str, secs: f64, video_codec: &[&str], tone: bool) -> Command {
    command_with(url, secs, video_codec, tone, &[])
}

/// [`command`] with `extra` options just before the output (where a later `-g` wins
/// over the default, and `-progress pipe:1` reports what was sent).
pub fn command_with(
    url: &str,
    secs: f64,
    video_codec: &[&str],
    tone: bool,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=30"]);
    if tone {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    cmd.args(["-t", &secs.to_string()])
        .args(video_codec)
        .args(["-g", "30", "-bf", "0", "-pix_fmt", "yuv420p"]);
    if tone {
        cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    } else {
        cmd.arg("-an");
    }
    cmd.args(extra)
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Starts `cmd`, saying how to install ffmpeg when it is missing.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.spawn()
        .expect("ffmpeg runs (install it: apt-get install ffmpeg)")
}
