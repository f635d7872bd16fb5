//! Streams the widget must either play or say why it cannot, for
//! `tests/cannot_play.rs`: an HEVC live stream (ffmpeg's libx265), an AES-128 live
//! stream, and a server that sends no CORS headers.
//!
//! ffmpeg 5.1 refuses to encrypt fMP4 HLS ("Encrypted fmp4 not yet supported"), so
//! [`Aes128Hls`] does what a packager would: ffmpeg writes the clear live stream and a
//! thread encrypts each new segment with `openssl enc -aes-128-cbc` (the key and, as
//! RFC 8216 5.2 says when the tag has no IV, the media sequence number as IV) and
//! publishes a playlist with `EXT-X-KEY:METHOD=AES-128` that lists only encrypted
//! segments.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::Router;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tower_http::services::ServeDir;

use crate::ffmpeg::{FfmpegHls, HlsSource, MediaPlaylist};
use crate::process::{which, Output, Spawned};
use crate::static_server::StaticServer;
use crate::wait::{wait_until, Check};

/// The codec string the widget derives from an `hvc1` init segment (`mp4.rs`), to
/// ask the browser whether it decodes HEVC the way the widget will.
pub const HEVC_CODECS: &str = "hvc1.1.6.L93.B0";

/// A live fMP4 HLS stream whose video is HEVC (libx265, `hvc1`) and audio AAC, at
/// `/hls/index.m3u8` on a CORS-enabled [`StaticServer`].
#[derive(Debug)]
pub struct HevcHls {
    process: Spawned,
    server: StaticServer,
    dir: TempDir,
}

impl HevcHls {
    /// Starts ffmpeg and waits for two segments. Fails if ffmpeg has no libx265.
    pub async fn start() -> Result<Self> {
        let ffmpeg =
            which("ffmpeg").context("ffmpeg not found on PATH (apt-get install ffmpeg)")?;
        let dir = tempfile::Builder::new()
            .prefix("lucarne-e2e-hevc-")
            .tempdir()?;
        let hls = dir.path().join("hls");
        std::fs::create_dir_all(&hls)?;
        let mut args: Vec<String> = [
            "-hide_banner",
            "-loglevel",
            "warning",
            "-nostats",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=480x270:rate=30",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-x265-params",
            "keyint=30:min-keyint=30:scenecut=0:bframes=0:log-level=error",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-f",
            "hls",
            "-hls_segment_type",
            "fmp4",
            "-hls_time",
            "1",
            "-hls_list_size",
            "6",
            "-hls_flags",
            "delete_segments+independent_segments+temp_file",
            "-hls_fmp4_init_filename",
            "init.mp4",
            "-hls_segment_filename",
        ]
        .map(String::from)
        .to_vec();
        args.push(hls.join("seg%d.m4s").to_string_lossy().into_owned());
        args.push(hls.join("index.m3u8").to_string_lossy().into_owned());
        let (process, _) = Spawned::start("ffmpeg", &ffmpeg, &args, &[], Output::Capture)?;
        let server = StaticServer::start(dir.path()).await?;
        let mut me = Self {
            process,
            server,
            dir,
        };
        let playlist = hls.join("index.m3u8");
        wait_until(
            "ffmpeg to list 2 HEVC segments",
            Duration::from_secs(30),
            || {
                let exited = me.process.exited();
                let log = me.process.log().tail(10);
                let listed = read_playlist(&playlist).map(|p| p.segments.len());
                async move {
                    if let Some(status) = exited {
                        bail!("ffmpeg (libx265) exited ({status}):\n{log}");
                    }
                    Ok(match listed {
                        Ok(n) if n >= 2 => Check::Done(()),
                        other => Check::NotYet(format!("{other:?}")),
                    })
                }
            },
        )
        .await?;
        Ok(me)
    }

    /// The playlist URL.
    pub fn url(&self) -> String {
        format!("{}/hls/index.m3u8", self.server.url())
    }

    /// The origin serving the stream (and any page written to [`HevcHls::dir`]).
    pub fn server(&self) -> &StaticServer {
        &self.server
    }

    /// The served directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// ffmpeg's last output lines.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log().tail(n)
    }
}

fn read_playlist(path: &Path) -> Result<MediaPlaylist> {
    MediaPlaylist::parse(&std::fs::read_to_string(path)?)
}

/// ffmpeg's test pattern live stream, served AES-128 encrypted at
/// `/hls/aes.m3u8` (segments `aes-segN.m4s`, key `/hls/aes.key`; the init segment
/// stays clear, as the `EXT-X-KEY` comes after the `EXT-X-MAP`).
#[derive(Debug)]
pub struct Aes128Hls {
    /// Stops the encrypting thread (first: field order).
    stop: Arc<AtomicBool>,
    stream: FfmpegHls,
}

impl Aes128Hls {
    /// Starts the stream and waits until the encrypted playlist lists 2 segments.
    pub async fn start() -> Result<Self> {
        let openssl = which("openssl").context("openssl not found on PATH")?;
        let stream = FfmpegHls::start(HlsSource::TestPattern).await?;
        let hls = stream.dir().join("hls");
        let key: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a);
        std::fs::write(hls.join("aes.key"), key)?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (stop, hls) = (stop.clone(), hls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = encrypt_new(&openssl, &hls, &key) {
                        eprintln!("aes128 stream: {e:#}");
                    }
                    std::thread::sleep(Duration::from_millis(150));
                }
            });
        }
        let playlist = hls.join("aes.m3u8");
        wait_until(
            "2 encrypted segments listed",
            Duration::from_secs(20),
            || {
                let listed = read_playlist(&playlist).map(|p| p.segments.len());
                async move {
                    Ok(match listed {
                        Ok(n) if n >= 2 => Check::Done(()),
                        other => Check::NotYet(format!("{other:?}")),
                    })
                }
            },
        )
        .await?;
        Ok(Self { stop, stream })
    }

    /// The encrypted playlist's URL.
    pub fn url(&self) -> String {
        format!("{}/hls/aes.m3u8", self.stream.server().url())
    }

    /// The clear stream underneath (its server, its dir, ffmpeg's log).
    pub fn stream(&self) -> &FfmpegHls {
        &self.stream
    }
}

impl Drop for Aes128Hls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Encrypts the segments of `hls/index.m3u8` not yet encrypted and writes
/// `hls/aes.m3u8` listing them.
fn encrypt_new(openssl: &Path, hls: &Path, key: &[u8; 16]) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(hls.join("index.m3u8")) else {
        return Ok(());
    };
    let playlist = MediaPlaylist::parse(&text)?;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut out = String::new();
    let mut msn = playlist.media_sequence;
    let mut keyed = false;
    for line in text.lines() {
        if line.starts_with("#EXTINF") && !keyed {
            out.push_str("#EXT-X-KEY:METHOD=AES-128,URI=\"aes.key\"\n");
            keyed = true;
        }
        if line.is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let clear = hls.join(line);
        let sealed = hls.join(format!("aes-{line}"));
        if !sealed.exists() {
            let mut iv = [0u8; 16];
            iv[8..].copy_from_slice(&msn.to_be_bytes());
            let tmp: PathBuf = hls.join(format!(".aes-{line}.tmp"));
            let status = std::process::Command::new(openssl)
                .args([
                    "enc",
                    "-aes-128-cbc",
                    "-K",
                    &hex(key),
                    "-iv",
                    &hex(&iv),
                    "-in",
                ])
                .arg(&clear)
                .arg("-out")
                .arg(&tmp)
                .status()?;
            if !status.success() {
                // ffmpeg deleted it meanwhile: the next round has a newer playlist.
                return Ok(());
            }
            std::fs::rename(&tmp, &sealed)?;
        }
        out.push_str(&format!("aes-{line}\n"));
        msn += 1;
    }
    let tmp = hls.join(".aes.m3u8.tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(tmp, hls.join("aes.m3u8"))?;
    Ok(())
}

/// A server on 127.0.0.1 that serves a directory and sends no CORS headers: a
/// page on another origin may not read what it serves.
#[derive(Debug)]
pub struct NoCorsServer {
    url: String,
    task: JoinHandle<()>,
}

impl NoCorsServer {
    /// Serves `root` on a free port.
    pub async fn start(root: &Path) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = Router::new().fallback_service(ServeDir::new(root));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for NoCorsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
