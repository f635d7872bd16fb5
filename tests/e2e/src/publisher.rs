//! A broadcaster: ffmpeg publishing a live test pattern with a tone over RTMP, the way
//! OBS or a phone app would (H.264 with a 1 s keyframe interval and no B-frames, AAC).

use anyhow::Result;

use crate::process::{Output, Spawned};

/// A running publisher; killing (or dropping) it is the broadcaster vanishing.
#[derive(Debug)]
pub struct RtmpPublisher {
    process: Spawned,
}

impl RtmpPublisher {
    /// Starts publishing to `url` (`rtmp://HOST:PORT/live/KEY`) until killed.
    pub fn start(url: &str) -> Result<Self> {
        let args = [
            "-hide_banner",
            "-loglevel",
            "warning",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "flv",
            url,
        ];
        let (process, _) = Spawned::start("ffmpeg", "ffmpeg", args, &[], Output::Capture)?;
        Ok(Self { process })
    }

    /// What ffmpeg said.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log().tail(n)
    }

    /// SIGKILLs it: the connection drops without an unpublish, as when a phone loses
    /// its network.
    pub async fn kill(self) {
        self.process.kill().await;
    }
}

/// A free TCP port on 127.0.0.1 (for `--rtmp-listen`).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
