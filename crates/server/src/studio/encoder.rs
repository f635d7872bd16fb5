//! The ffmpeg child that turns a console's recorder chunks into an RTMP publish to the
//! server's own ingest.
//!
//! Owns the child and a bounded queue of chunks for its stdin; must not know about
//! WebSockets or secrets beyond the publish URL it is handed.
//!
//! - Input: the recorder's container (WebM from Chromium and Firefox, fragmented MP4
//!   from Safari) on stdin, probed briefly (the codecs are in the container's header,
//!   so there is nothing to wait for).
//! - Video: copied when the recorder makes H.264, else libx264 (`veryfast`,
//!   `zerolatency`, a keyframe every second, so segments are one second as with OBS).
//! - Audio: always AAC (recorders make Opus, which FLV cannot carry).
//! - Output: FLV over RTMP to `rtmp://{ingest}/live/{key}`.
//!
//! Back-pressure: [`QUEUE`] chunks wait for stdin at most; a recorder further ahead
//! than that means ffmpeg cannot keep up (a CPU too small to transcode), and
//! [`Encoder::push`] says so instead of buffering without end. Dropping the
//! [`Encoder`] closes stdin (after at most [`EXIT_GRACE`] for the queue to drain):
//! ffmpeg flushes, ends the publish and exits; a child still running [`EXIT_GRACE`]
//! later is killed, so a stuck ffmpeg never outlives its console by more than that.

use bytes::Bytes;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

/// Chunks waiting for ffmpeg's stdin: at 200 ms a chunk, some 12 s of media.
pub const QUEUE: usize = 60;
/// How long ffmpeg gets to finish after its input closed.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Lines of ffmpeg's stderr kept to explain a failure.
const STDERR_LINES: usize = 8;

/// Why the encoder cannot take more.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// No ffmpeg could be started.
    #[error("the server cannot run ffmpeg ({0}): install it (e.g. `apt-get install ffmpeg`) or point LUCARNE_FFMPEG (--ffmpeg) at it")]
    NoFfmpeg(String),
    /// ffmpeg is [`QUEUE`] chunks behind.
    #[error("the server's encoder cannot keep up with the camera ({QUEUE} chunks behind): lower the resolution, or broadcast with OBS")]
    TooSlow,
    /// ffmpeg exited (or its input closed) while chunks were still coming.
    #[error("the server's encoder stopped")]
    Stopped,
}

/// True when a recorder `mime_type` names H.264 video (`h264`, `avc1...`).
pub fn is_h264(mime_type: &str) -> bool {
    let m = mime_type.to_ascii_lowercase();
    m.contains("h264") || m.contains("avc1") || m.contains("avc3")
}

/// ffmpeg's arguments: the recorder's container on stdin, FLV to `target`.
pub fn ffmpeg_args(h264: bool, target: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostats",
        // Not `+nobuffer`: it drops the packets read while probing, and with them the
        // recording's first keyframe; a VP8 recording (one keyframe, at the start) then
        // never decodes at all.
        "-fflags",
        "+genpts",
        // The codecs are in the container's header: no need to read seconds of media.
        "-probesize",
        "65536",
        "-analyzeduration",
        "500000",
        "-i",
        "pipe:0",
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
    ]
    .map(str::to_owned)
    .to_vec();
    if h264 {
        a.extend(["-c:v", "copy"].map(str::to_owned));
    } else {
        a.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-pix_fmt",
                "yuv420p",
                "-b:v",
                "2500k",
                "-maxrate",
                "2500k",
                "-bufsize",
                "5000k",
                "-force_key_frames",
                "expr:gte(t,n_forced*1)",
                "-x264-params",
                "scenecut=0",
            ]
            .map(str::to_owned),
        );
    }
    a.extend(
        [
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            "44100",
            "-ac",
            "2",
            "-f",
            "flv",
            "-flvflags",
            "no_duration_filesize",
            target,
        ]
        .map(str::to_owned),
    );
    a
}

/// A running ffmpeg fed by one console.
#[derive(Debug)]
pub struct Encoder {
    input: mpsc::Sender<Bytes>,
    /// Dropped with the encoder: tells the child's task to close its input even when
    /// a write to a stuck ffmpeg is pending.
    _stop: oneshot::Sender<()>,
}

/// How the child ended, told once.
#[derive(Debug)]
pub struct Ended {
    /// Whether it exited with success.
    pub success: bool,
    /// The end of its stderr.
    pub tail: String,
}

impl Encoder {
    /// Starts `ffmpeg` publishing to `target`; the receiver is told when it ends.
    pub fn start(
        ffmpeg: &Path,
        h264: bool,
        target: &str,
    ) -> Result<(Encoder, oneshot::Receiver<Ended>), EncoderError> {
        let mut child = Command::new(ffmpeg)
            .args(ffmpeg_args(h264, target))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| EncoderError::NoFfmpeg(format!("{}: {e}", ffmpeg.display())))?;
        let (input, mut rx) = mpsc::channel::<Bytes>(QUEUE);
        let (tell, ended) = oneshot::channel();
        let stdin = child.stdin.take();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().map(|stderr| {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == STDERR_LINES {
                        t.pop_front();
                    }
                    t.push_back(line.chars().take(200).collect::<String>());
                }
            })
        });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            // Owns stdin: dropping this future closes ffmpeg's input.
            let mut write = Box::pin(async move {
                if let Some(mut stdin) = stdin {
                    while let Some(chunk) = rx.recv().await {
                        if stdin.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                }
            });
            let exited = tokio::select! {
                status = child.wait() => Some(status),
                () = &mut write => None,
                // The encoder was dropped: what is queued gets a moment to reach ffmpeg
                // (a stuck ffmpeg does not read it).
                _ = stopped => {
                    let _ = tokio::time::timeout(EXIT_GRACE, &mut write).await;
                    None
                }
            };
            // The console ended (or ffmpeg stopped reading): close its input.
            drop(write);
            let status = match exited {
                Some(status) => status,
                None => match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        tracing::warn!("studio: ffmpeg still running {EXIT_GRACE:?} after its input closed: killed");
                        let _ = child.kill().await;
                        child.wait().await
                    }
                },
            };
            // Its last words may still be in the pipe.
            if let Some(reader) = stderr {
                let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            }
            let tail = tail
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ");
            let success = matches!(&status, Ok(s) if s.success());
            let _ = tell.send(Ended { success, tail });
        });
        Ok((Encoder { input, _stop: stop }, ended))
    }

    /// Queues one chunk for ffmpeg; fails rather than wait when it is [`QUEUE`] behind.
    pub fn push(&self, chunk: Bytes) -> Result<(), EncoderError> {
        self.input.try_send(chunk).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EncoderError::TooSlow,
            mpsc::error::TrySendError::Closed(_) => EncoderError::Stopped,
        })
    }
}

/// The ffmpeg to run: `--ffmpeg`, else `ffmpeg` on PATH (`None`: none found).
pub fn find_ffmpeg(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return Some(p.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_recordings_are_copied_others_transcoded_with_a_keyframe_a_second() {
        assert!(is_h264("video/webm;codecs=h264,opus"));
        assert!(is_h264("video/mp4;codecs=avc1.42E01F,mp4a.40.2"));
        assert!(!is_h264("video/webm;codecs=vp8,opus"));
        let copy = ffmpeg_args(true, "rtmp://x/live/k");
        assert!(copy.windows(2).any(|w| w == ["-c:v", "copy"]));
        let x264 = ffmpeg_args(false, "rtmp://x/live/k");
        assert!(x264.windows(2).any(|w| w == ["-c:v", "libx264"]));
        assert!(x264
            .windows(2)
            .any(|w| w == ["-force_key_frames", "expr:gte(t,n_forced*1)"]));
        // Regression: `+nobuffer` lost the first keyframe (Firefox's VP8 never played).
        assert!(!x264.iter().any(|a| a.contains("nobuffer")));
        for a in [copy, x264] {
            assert!(a.windows(2).any(|w| w == ["-c:a", "aac"]));
            assert_eq!(a.last().map(String::as_str), Some("rtmp://x/live/k"));
        }
    }
}
