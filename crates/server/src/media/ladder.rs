//! The rendition ladder (`--ladder 1080,720,480,240`): each RTMP broadcast is also
//! transcoded by ffmpeg into the listed heights below the source's, and the stream's
//! `index.m3u8` becomes a multivariant playlist (the source, untouched, on top), so a
//! viewer on a slow network gets a picture instead of a stall.
//!
//! # Design
//! One ffmpeg child per publisher connection. The ingest writes the FLV tags it receives
//! to the child's stdin (an FLV file as it goes: header, then each tag); the child
//! decodes once and encodes every rendition (libx264, `-force_key_frames source`, no
//! scene-cut or interval keyframes, frames passed through as they come), and writes
//! each rendition as FLV to a Unix socket this module listens on, in a directory only
//! this process can enter. Each rendition's FLV tags then go through the same
//! [`Remuxer`] as a publisher's, into a [`LiveStream`] kept by the source stream
//! ([`LiveStream::set_rendition`]); so HLS, LL-HLS parts and the low-latency push
//! serve a rendition exactly as they serve the source.
//!
//! Why not publish the renditions back to our own RTMP ingest as sub-streams (the
//! same pipeline, with no socket of our own): a publisher's timeline starts at the
//! wall clock of its connection and its segments are numbered from there, so the
//! renditions would neither share the source's timestamps nor its segment numbers,
//! and a player switching renditions would jump in time. They would also need stream
//! keys, take publishing slots and show up as channels (chat rooms, metrics).
//!
//! # Aligned renditions
//! ffmpeg starts at a source keyframe, and with `-force_key_frames source` every
//! rendition has a keyframe exactly where the source has one and nowhere else, so each
//! rendition's segments start where the source's do. Its first keyframe is the
//! source keyframe ffmpeg was started on: the rendition's [`Remuxer`] is started at
//! that keyframe's media time (by presentation time, so a source with B-frames and a
//! rendition without line up on screen) and segment number, and counts on from there
//! like the source does. ffmpeg may shift its output timestamps by a constant; only
//! differences from the first keyframe are used.
//!
//! # Failure
//! ffmpeg exiting, failing to start, or falling more than [`INPUT_QUEUE`] tags behind
//! stops the ladder of that connection with an error in the log; the source goes on
//! playing, and the multivariant playlist lists only the source. The child is killed
//! when the publisher stops (its feed dropped) and when the server stops (the task
//! owning it is dropped, `kill_on_drop`); a server killed outright closes the child's
//! stdin, and ffmpeg ends on its own.
//!
//! Must not decide anything about HTTP: [`multivariant`] renders the playlist from
//! what the HTTP layer hands it.

use super::live::{LiveStream, PackagedChunk};
use super::remux::{Output, Remuxer};
use super::Origin;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// FLV tags waiting for ffmpeg's stdin (some 15 s of a 30 fps broadcast with audio);
/// a child further behind cannot keep up and is stopped.
pub const INPUT_QUEUE: usize = 1024;
/// Heights a ladder may list.
pub const HEIGHTS: std::ops::RangeInclusive<u32> = 96..=4320;
/// x264 presets `--ladder-preset` takes.
pub const PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];
/// Largest FLV tag read back from ffmpeg (a keyframe of 4K video is a few MB).
const MAX_TAG: usize = 16 << 20;
/// Lines of ffmpeg's stderr kept for the error log.
const STDERR_LINES: usize = 12;

/// `--ladder`: one height. Used as clap's value parser.
pub fn parse_height(s: &str) -> Result<u32, String> {
    let h: u32 = s.trim().trim_end_matches('p').parse().map_err(|_| {
        format!("{s:?} is not a height: list heights in pixels, e.g. --ladder 1080,720,480,240")
    })?;
    if !HEIGHTS.contains(&h) || h % 2 == 1 {
        return Err(format!(
            "{h} is not a usable height: an even number from {} to {}",
            HEIGHTS.start(),
            HEIGHTS.end()
        ));
    }
    Ok(h)
}

/// Why the ladder cannot run.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    /// No ffmpeg to run.
    #[error("--ladder needs ffmpeg, and {0}: install it (e.g. `apt-get install ffmpeg`) or point LUCARNE_FFMPEG (or --ffmpeg) at it")]
    NoFfmpeg(String),
    /// ffmpeg runs but has no H.264 encoder.
    #[error("--ladder needs ffmpeg with libx264, and {0} has none: install a build with libx264 (Debian's ffmpeg has it)")]
    NoX264(String),
}

/// What the ladder makes, and with what.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// Heights, highest first, no duplicates.
    pub heights: Vec<u32>,
    /// The ffmpeg executable.
    pub ffmpeg: PathBuf,
    /// x264 preset.
    pub preset: String,
    /// Segments per rendition playlist (as the source's).
    pub window: usize,
    /// Low-latency chunk length (as the source's).
    pub chunk_ms: u32,
}

impl Ladder {
    /// A ladder of `heights` run by `ffmpeg` (else `ffmpeg` on PATH), after checking
    /// that it runs and can encode H.264.
    pub fn new(
        heights: &[u32],
        ffmpeg: Option<&Path>,
        preset: &str,
        window: usize,
        chunk_ms: u32,
    ) -> Result<Ladder, LadderError> {
        let ffmpeg = match ffmpeg {
            Some(p) => p.to_owned(),
            None => on_path("ffmpeg")
                .ok_or_else(|| LadderError::NoFfmpeg("there is no `ffmpeg` on PATH".into()))?,
        };
        let shown = ffmpeg.display().to_string();
        let encoders = std::process::Command::new(&ffmpeg)
            .args(["-hide_banner", "-encoders"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| LadderError::NoFfmpeg(format!("{shown} does not run ({e})")))?;
        if !encoders.status.success() {
            return Err(LadderError::NoFfmpeg(format!(
                "{shown} fails ({})",
                encoders.status
            )));
        }
        if !String::from_utf8_lossy(&encoders.stdout).contains("libx264") {
            return Err(LadderError::NoX264(shown));
        }
        let mut heights = heights.to_vec();
        heights.sort_unstable_by_key(|h| std::cmp::Reverse(*h));
        heights.dedup();
        Ok(Ladder {
            heights,
            ffmpeg,
            preset: preset.to_owned(),
            window,
            chunk_ms,
        })
    }

    /// The heights made of a source `source_height` high: those below it.
    pub fn below(&self, source_height: u32) -> Vec<u32> {
        self.heights
            .iter()
            .copied()
            .filter(|h| *h < source_height)
            .collect()
    }
}

/// `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A nominal bitrate for a rendition `height` high (16:9, about 0.08 bits per pixel
/// at 30 fps): 1080 → 5 Mbit/s, 720 → 2.2, 480 → 980 k, 360 → 550 k, 240 → 245 k.
pub fn bitrate_kbps(height: u32) -> u32 {
    let h = u64::from(height);
    (h * h * 16 / 9 * 24 / 10_000).max(64) as u32
}

/// ffmpeg's arguments: FLV on stdin, each of `outputs` (height, socket) as FLV to its
/// Unix socket.
pub fn ffmpeg_args(outputs: &[(u32, PathBuf)], preset: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostats",
        "-fflags",
        "+nobuffer",
        "-f",
        "flv",
        "-i",
        "pipe:0",
        // The source's timestamps go through, so keyframes can be matched.
        "-copyts",
    ]
    .map(str::to_owned)
    .to_vec();
    for (height, socket) in outputs {
        let kbps = bitrate_kbps(*height);
        a.extend([
            "-map".into(),
            "0:v:0".into(),
            "-map".into(),
            "0:a:0?".into(),
            "-vf".into(),
            format!("scale=-2:{height}"),
            "-c:v".into(),
            "libx264".into(),
            "-preset".into(),
            preset.to_owned(),
            "-tune".into(),
            "zerolatency".into(),
            "-pix_fmt".into(),
            "yuv420p".into(),
            "-b:v".into(),
            format!("{kbps}k"),
            "-maxrate".into(),
            format!("{kbps}k"),
            "-bufsize".into(),
            format!("{}k", kbps * 2),
            // Keyframes where the source has them, and nowhere else.
            "-force_key_frames".into(),
            "source".into(),
            "-x264-params".into(),
            "keyint=infinite:scenecut=0".into(),
            "-fps_mode".into(),
            "passthrough".into(),
            "-c:a".into(),
            "copy".into(),
            "-f".into(),
            "flv".into(),
            "-flvflags".into(),
            "no_duration_filesize".into(),
            format!("unix:{}", socket.display()),
        ]);
    }
    a
}

/// FLV tag types.
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;

/// An FLV file header with audio and video, and the first PreviousTagSize.
fn flv_header() -> Bytes {
    Bytes::from_static(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
}

/// One FLV tag and its PreviousTagSize; `None` if `data` is too long for a tag.
fn flv_tag(kind: u8, ts: u32, data: &[u8]) -> Option<Bytes> {
    let len = u32::try_from(data.len()).ok().filter(|l| *l < 1 << 24)?;
    let mut b = BytesMut::with_capacity(15 + data.len());
    b.put_u8(kind);
    b.put_slice(&len.to_be_bytes()[1..]);
    b.put_slice(&ts.to_be_bytes()[1..]);
    b.put_u8((ts >> 24) as u8);
    b.put_slice(&[0, 0, 0]);
    b.put_slice(data);
    b.put_u32(11 + len);
    Some(b.freeze())
}

/// What an FLV video tag body is, as far as the ladder cares (H.264 only; the remuxer
/// refuses anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoTag {
    Header,
    Keyframe { cts: i32 },
    Frame,
}

fn video_tag(data: &[u8]) -> Option<VideoTag> {
    let [b0, kind, c0, c1, c2, ..] = *data else {
        return None;
    };
    if b0 & 0x0f != 7 {
        return None;
    }
    match kind {
        0 => Some(VideoTag::Header),
        1 if b0 >> 4 == 1 => {
            // Signed 24-bit composition time offset.
            let cts = (i32::from_be_bytes([c0, c1, c2, 0])) >> 8;
            Some(VideoTag::Keyframe { cts })
        }
        1 => Some(VideoTag::Frame),
        _ => None,
    }
}

fn is_aac_header(data: &[u8]) -> bool {
    matches!(data, [b0, 0, ..] if b0 >> 4 == 10)
}

/// Where ffmpeg's input starts: the source keyframe its first frame is.
#[derive(Debug, Clone, Copy)]
struct Start {
    /// Media time of the keyframe's presentation, ms.
    pts_ms: u64,
    /// The segment it opens.
    msn: u64,
}

/// A publisher connection's side of the ladder: keeps the codec headers, starts
/// ffmpeg at the first keyframe once the source stream exists, and feeds it.
#[derive(Debug)]
pub struct Feed {
    ladder: Arc<Ladder>,
    origin: Arc<Origin>,
    stream_id: String,
    video_header: Option<Bytes>,
    audio_header: Option<Bytes>,
    running: Option<Transcoder>,
    /// The ladder stopped on this connection (or has nothing to make): no retry.
    off: bool,
}

impl Feed {
    /// The ladder for a publisher of `stream_id`.
    pub fn new(ladder: Arc<Ladder>, origin: Arc<Origin>, stream_id: &str) -> Feed {
        Feed {
            ladder,
            origin,
            stream_id: stream_id.to_owned(),
            video_header: None,
            audio_header: None,
            running: None,
            off: false,
        }
    }

    /// A video tag the source took; `position` is the source's
    /// [`Publisher::position`](super::channel::Publisher::position) of it.
    pub fn video(&mut self, ts: u32, data: &Bytes, position: Option<(u64, u64)>) {
        let kind = video_tag(data);
        if kind == Some(VideoTag::Header) {
            self.video_header = Some(data.clone());
        }
        if self.running.is_none() && !self.off {
            if let (Some(VideoTag::Keyframe { cts }), Some((ms, msn))) = (kind, position) {
                self.start(ms.saturating_add_signed(i64::from(cts)), msn);
            }
        }
        self.send(VIDEO, ts, data);
    }

    /// An audio tag the source took.
    pub fn audio(&mut self, ts: u32, data: &Bytes) {
        if is_aac_header(data) {
            self.audio_header = Some(data.clone());
        }
        self.send(AUDIO, ts, data);
    }

    fn start(&mut self, pts_ms: u64, msn: u64) {
        let Some(source) = self.origin.stream(&self.stream_id) else {
            return;
        };
        let Some(info) = describe_init(&source.init()) else {
            return;
        };
        let heights = self.ladder.below(u32::from(info.height));
        if heights.is_empty() {
            tracing::info!(stream = %self.stream_id, "ladder: the source is {}p, no rendition below it", info.height);
            self.off = true;
            return;
        }
        match Transcoder::start(&self.ladder, source, &heights, Start { pts_ms, msn }) {
            Ok(t) => {
                tracing::info!(stream = %self.stream_id, ?heights, "ladder: ffmpeg started");
                for header in [self.video_header.clone(), self.audio_header.clone()]
                    .into_iter()
                    .flatten()
                {
                    let kind = if is_aac_header(&header) { AUDIO } else { VIDEO };
                    let _ = t
                        .input
                        .try_send(flv_tag(kind, 0, &header).unwrap_or_default());
                }
                self.running = Some(t);
            }
            Err(e) => {
                tracing::error!(stream = %self.stream_id, "ladder: cannot start ffmpeg: {e}; the source plays alone");
                self.off = true;
            }
        }
    }

    fn send(&mut self, kind: u8, ts: u32, data: &[u8]) {
        let Some(t) = &self.running else {
            return;
        };
        let Some(tag) = flv_tag(kind, ts, data) else {
            return;
        };
        let why = match t.input.try_send(tag) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => {
                format!("ffmpeg fell {INPUT_QUEUE} tags behind")
            }
            // The child is gone; its task logged why.
            Err(mpsc::error::TrySendError::Closed(_)) => "ffmpeg stopped".to_owned(),
        };
        tracing::error!(stream = %self.stream_id, "ladder stopped: {why}; the source plays alone");
        self.running = None;
        self.off = true;
    }
}

/// A running ffmpeg child and the tasks around it; dropping it kills the child and
/// takes the renditions off the source.
#[derive(Debug)]
struct Transcoder {
    input: mpsc::Sender<Bytes>,
    /// Dropped with the transcoder: the child's task then kills it.
    _kill: oneshot::Sender<()>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    source: Arc<LiveStream>,
    /// Removed (with the sockets) when the transcoder goes.
    _dir: SocketDir,
}

impl Drop for Transcoder {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
        self.source.clear_renditions();
    }
}

/// A private directory for the rendition sockets, removed when dropped.
#[derive(Debug)]
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> std::io::Result<SocketDir> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "lucarne-ladder-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(SocketDir(dir))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Transcoder {
    fn start(
        ladder: &Ladder,
        source: Arc<LiveStream>,
        heights: &[u32],
        start: Start,
    ) -> std::io::Result<Transcoder> {
        let dir = SocketDir::new()?;
        let mut outputs = Vec::new();
        let mut readers = Vec::new();
        for &h in heights {
            let path = dir.0.join(format!("{h}.sock"));
            let listener = UnixListener::bind(&path)?;
            readers.push(tokio::spawn(read_rendition(
                listener,
                Rendition {
                    height: h,
                    source: source.clone(),
                    start,
                    window: ladder.window,
                    chunk_ms: ladder.chunk_ms,
                },
            )));
            outputs.push((h, path));
        }
        let mut child = Command::new(&ladder.ffmpeg)
            .args(ffmpeg_args(&outputs, &ladder.preset))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .inspect_err(|_| {
                for r in &readers {
                    r.abort();
                }
            })?;
        let (input, rx) = mpsc::channel(INPUT_QUEUE);
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        let (kill, killed) = oneshot::channel();
        let id = source.id.clone();
        tokio::spawn(supervise(
            child,
            stdin,
            stderr,
            rx,
            killed,
            id,
            source.clone(),
        ));
        Ok(Transcoder {
            input,
            _kill: kill,
            readers,
            source,
            _dir: dir,
        })
    }
}

/// Owns the child: writes its input, keeps the end of its stderr, and kills it when
/// the transcoder is dropped; logs its failure.
async fn supervise(
    mut child: Child,
    stdin: Option<tokio::process::ChildStdin>,
    stderr: Option<tokio::process::ChildStderr>,
    mut input: mpsc::Receiver<Bytes>,
    killed: oneshot::Receiver<()>,
    stream: String,
    source: Arc<LiveStream>,
) {
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = stderr {
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                if t.len() == STDERR_LINES {
                    t.pop_front();
                }
                t.push_back(line.chars().take(300).collect::<String>());
            }
        });
    }
    let write = async move {
        let Some(mut stdin) = stdin else {
            return std::future::pending().await;
        };
        stdin.write_all(&flv_header()).await?;
        while let Some(tag) = input.recv().await {
            stdin.write_all(&tag).await?;
        }
        // The publisher stopped: ffmpeg finishes its outputs and exits.
        drop(stdin);
        std::future::pending::<std::io::Result<()>>().await
    };
    let status = tokio::select! {
        status = child.wait() => status,
        written = write => {
            // ffmpeg closed its input: it is ending; its status says why.
            if let Err(e) = written {
                tracing::debug!(%stream, "ladder: ffmpeg's input closed: {e}");
            }
            child.wait().await
        }
        _ = killed => {
            let _ = child.kill().await;
            tracing::debug!(%stream, "ladder: ffmpeg stopped");
            return;
        }
    };
    source.clear_renditions();
    let tail = tail
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(" | ");
    match status {
        Ok(s) if s.success() => tracing::info!(%stream, "ladder: ffmpeg ended"),
        Ok(s) => {
            tracing::error!(%stream, "ladder: ffmpeg failed ({s}): {tail}; the source plays alone")
        }
        Err(e) => tracing::error!(%stream, "ladder: ffmpeg lost: {e}; the source plays alone"),
    }
}

/// One rendition being read back from ffmpeg.
struct Rendition {
    height: u32,
    source: Arc<LiveStream>,
    start: Start,
    window: usize,
    chunk_ms: u32,
}

/// Accepts ffmpeg's connection on `listener` and packages what it sends.
async fn read_rendition(listener: UnixListener, r: Rendition) {
    let (socket, _) = match listener.accept().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(stream = %r.source.id, height = r.height, "ladder: no rendition from ffmpeg: {e}");
            return;
        }
    };
    drop(listener);
    let mut packager = Packager::new(r);
    if let Err(e) = read_flv(socket, |kind, ts, data| packager.tag(kind, ts, data)).await {
        tracing::warn!(stream = %packager.r.source.id, height = packager.r.height, "ladder: rendition ended: {e}");
    }
    packager.finish();
}

/// Reads an FLV stream, handing each audio and video tag to `tag`.
async fn read_flv(
    mut src: impl AsyncRead + Unpin,
    mut tag: impl FnMut(u8, u32, Bytes),
) -> std::io::Result<()> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let mut header = [0u8; 9];
    src.read_exact(&mut header).await?;
    if &header[..3] != b"FLV" {
        return Err(bad("not FLV"));
    }
    let offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
    // The rest of the header (none in FLV 1) and the first PreviousTagSize.
    let mut skip = vec![0u8; offset.saturating_sub(9).min(64) + 4];
    src.read_exact(&mut skip).await?;
    loop {
        let mut h = [0u8; 11];
        match src.read_exact(&mut h).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        if len > MAX_TAG {
            return Err(bad("tag too large"));
        }
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let mut data = vec![0u8; len + 4];
        src.read_exact(&mut data).await?;
        data.truncate(len);
        if matches!(h[0] & 0x1f, AUDIO | VIDEO) {
            tag(h[0] & 0x1f, ts, Bytes::from(data));
        }
    }
}

/// A rendition's FLV tags → its [`LiveStream`], on the source's timeline.
struct Packager {
    r: Rendition,
    remuxer: Option<Remuxer>,
    video_header: Option<Bytes>,
    audio_header: Option<Bytes>,
    stream: Option<Arc<LiveStream>>,
}

impl Packager {
    fn new(r: Rendition) -> Packager {
        Packager {
            r,
            remuxer: None,
            video_header: None,
            audio_header: None,
            stream: None,
        }
    }

    fn tag(&mut self, kind: u8, ts: u32, data: Bytes) {
        if kind == VIDEO {
            let v = video_tag(&data);
            if v == Some(VideoTag::Header) {
                self.video_header = Some(data.clone());
            }
            if self.remuxer.is_none() {
                let Some(VideoTag::Keyframe { cts }) = v else {
                    return;
                };
                // ffmpeg's first keyframe is the source keyframe it started on.
                let base = self.r.start.pts_ms.saturating_add_signed(-i64::from(cts));
                let mut remuxer = Remuxer::new(base, self.r.start.msn, self.r.chunk_ms);
                let mut out = Vec::new();
                if let Some(h) = self.video_header.clone() {
                    out.extend(remuxer.video(ts, h).into_iter().flatten());
                }
                if let Some(h) = self.audio_header.clone() {
                    out.extend(remuxer.audio(ts, h).into_iter().flatten());
                }
                self.remuxer = Some(remuxer);
                self.apply(out);
            }
        } else if is_aac_header(&data) {
            self.audio_header = Some(data.clone());
        }
        let Some(remuxer) = self.remuxer.as_mut() else {
            return;
        };
        let out = if kind == VIDEO {
            remuxer.video(ts, data)
        } else {
            remuxer.audio(ts, data)
        };
        match out {
            Ok(out) => self.apply(out),
            Err(e) => {
                tracing::debug!(stream = %self.r.source.id, height = self.r.height, "ladder: tag dropped: {e}")
            }
        }
    }

    fn apply(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Init(init) => {
                    let stream = Arc::new(LiveStream::new(
                        format!("{}/{}p", self.r.source.id, self.r.height),
                        init,
                        self.r.window,
                    ));
                    self.r.source.set_rendition(self.r.height, stream.clone());
                    self.stream = Some(stream);
                }
                Output::Chunk(c) => self.push(c),
                Output::Warning(w) => {
                    tracing::debug!(stream = %self.r.source.id, height = self.r.height, "ladder: {w}")
                }
                Output::Frame(_) => {}
            }
        }
    }

    fn push(&self, chunk: PackagedChunk) {
        if let Some(s) = &self.stream {
            s.push_chunk(chunk);
        }
    }

    fn finish(&mut self) {
        if let Some(out) = self.remuxer.as_mut().and_then(|r| r.flush().ok()) {
            self.apply(out);
        }
        if let Some(s) = &self.stream {
            s.finish();
        }
    }
}

/// The demo stream's ladder: the committed clip transcoded once, at start, into each
/// height below its own (same keyframes, same length, audio copied), each looped like
/// the clip on the same clock, so its segments have the clip's numbers and times.
/// The demo is there to show the widget adapting: a failure here is logged and the
/// demo plays alone.
pub fn start_demo_ladder(
    ladder: &Ladder,
    origin: &Origin,
    id: &str,
    clip_path: &Path,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(source) = origin.stream(id) else {
        return Vec::new();
    };
    let Some(info) = describe_init(&source.init()) else {
        return Vec::new();
    };
    let heights = ladder.below(u32::from(info.height));
    let dir = match SocketDir::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(stream = id, "demo ladder: no scratch directory: {e}");
            return Vec::new();
        }
    };
    let mut tasks = Vec::new();
    for h in heights {
        let out = dir.0.join(format!("{h}p.mp4"));
        match transcode_clip(ladder, clip_path, h, &out)
            .and_then(|()| super::clip::Clip::load(&out).map_err(|e| e.to_string()))
        {
            Ok(clip) => match demo_rendition(&source, h, Arc::new(clip), ladder) {
                Ok(task) => tasks.push(task),
                Err(e) => tracing::warn!(stream = id, height = h, "demo ladder: {e}"),
            },
            Err(e) => tracing::warn!(stream = id, height = h, "demo ladder: {e}"),
        }
    }
    if !tasks.is_empty() {
        tracing::info!(stream = id, renditions = tasks.len(), "demo ladder ready");
    }
    tasks
}

/// ffmpeg: `clip` scaled to `height`, keyframes where the clip has them, to `out`.
fn transcode_clip(ladder: &Ladder, clip: &Path, height: u32, out: &Path) -> Result<(), String> {
    let kbps = bitrate_kbps(height);
    let status = std::process::Command::new(&ladder.ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(clip)
        .args(["-map", "0:v:0", "-map", "0:a:0?", "-vf"])
        .arg(format!("scale=-2:{height}"))
        .args(["-c:v", "libx264", "-preset", &ladder.preset, "-bf", "0"])
        .args(["-pix_fmt", "yuv420p", "-b:v", &format!("{kbps}k")])
        .args(["-maxrate", &format!("{kbps}k"), "-bufsize"])
        .arg(format!("{}k", kbps * 2))
        .args(["-force_key_frames", "source", "-x264-params"])
        .args(["keyint=infinite:scenecut=0", "-fps_mode", "passthrough"])
        .args(["-c:a", "copy", "-video_track_timescale", "90000"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("ffmpeg does not run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ffmpeg could not transcode the clip ({status})"))
    }
}

/// Loops `clip` as `source`'s rendition of `height`, on the demo's clock.
fn demo_rendition(
    source: &Arc<LiveStream>,
    height: u32,
    clip: Arc<super::clip::Clip>,
    ladder: &Ladder,
) -> Result<tokio::task::JoinHandle<()>, super::cmaf::MuxError> {
    let tracks: Vec<_> = clip.tracks.iter().map(|t| t.track.clone()).collect();
    let init = super::cmaf::init_segment(&tracks)?;
    let stream = Arc::new(LiveStream::new(
        format!("{}/{}", source.id, rendition_name(height)),
        init,
        ladder.window,
    ));
    source.set_rendition(height, stream.clone());
    Ok(super::loop_clip(
        clip,
        stream,
        ladder.window,
        ladder.chunk_ms,
    ))
}

/// What a multivariant playlist says of a variant, read from its init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantInfo {
    /// Pixels.
    pub width: u16,
    /// Pixels.
    pub height: u16,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// Reads width, height and codecs from a CMAF init segment; `None` without H.264 video.
pub fn describe_init(init: &[u8]) -> Option<VariantInfo> {
    use mp4_atom::{Any, Codec, DecodeMaybe};
    let mut buf = init;
    let mut video = None;
    let mut audio = None;
    while let Ok(Some(atom)) = Any::decode_maybe(&mut buf) {
        let Any::Moov(moov) = atom else { continue };
        for trak in &moov.trak {
            for codec in &trak.mdia.minf.stbl.stsd.codecs {
                match codec {
                    Codec::Avc1(v) => {
                        video = Some((
                            v.visual.width,
                            v.visual.height,
                            format!(
                                "avc1.{:02x}{:02x}{:02x}",
                                v.avcc.avc_profile_indication,
                                v.avcc.profile_compatibility,
                                v.avcc.avc_level_indication
                            ),
                        ))
                    }
                    Codec::Mp4a(a) => {
                        let aot = a
                            .esds
                            .es_desc
                            .dec_config
                            .dec_specific
                            .as_ref()
                            .map_or(2, |d| d.profile);
                        audio = Some(format!("mp4a.40.{aot}"));
                    }
                    _ => {}
                }
            }
        }
    }
    let (width, height, mut codecs) = video?;
    if let Some(a) = audio {
        codecs.push(',');
        codecs.push_str(&a);
    }
    Some(VariantInfo {
        width,
        height,
        codecs,
    })
}

/// A variant as the multivariant playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its media playlist, relative to the multivariant playlist.
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// Size and codecs.
    pub info: VariantInfo,
}

/// The multivariant playlist of `variants` (the source first).
pub fn multivariant(variants: &[Variant]) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        s.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\"\n{}\n",
            v.bandwidth.max(1),
            v.info.width,
            v.info.height,
            v.info.codecs,
            v.uri
        ));
    }
    s
}

/// The `{height}p` a rendition's URLs are named by.
pub fn rendition_name(height: u32) -> String {
    format!("{height}p")
}

/// The height in a rendition's name (`360p`).
pub fn parse_rendition_name(name: &str) -> Option<u32> {
    name.strip_suffix('p')?.parse().ok()
}

/// The multivariant playlist of `source`: itself (at `source.m3u8`), then each
/// rendition that has a complete segment (at `{height}p/index.m3u8`).
pub fn source_multivariant(source: &LiveStream) -> String {
    multivariant_of(source, &source.renditions())
}

/// The multivariant playlist of `source` and `renditions` (highest first): an edge's
/// (see `crate::edge`), whose renditions are relayed apart from the source.
pub fn multivariant_of(source: &LiveStream, renditions: &[(u32, Arc<LiveStream>)]) -> String {
    let mut variants = Vec::new();
    if let Some(info) = describe_init(&source.init()) {
        let bandwidth = source
            .peak_bitrate()
            .unwrap_or(u64::from(bitrate_kbps(u32::from(info.height))) * 1000);
        variants.push(Variant {
            uri: "source.m3u8".into(),
            bandwidth,
            info,
        });
    }
    for (height, stream) in renditions {
        let height = *height;
        let (Some(bandwidth), Some(info)) = (stream.peak_bitrate(), describe_init(&stream.init()))
        else {
            continue;
        };
        variants.push(Variant {
            uri: format!("{}/index.m3u8", rendition_name(height)),
            bandwidth,
            info,
        });
    }
    multivariant(&variants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_are_even_pixel_counts() {
        assert_eq!(parse_height("720"), Ok(720));
        assert_eq!(parse_height(" 480p"), Ok(480));
        for bad in ["", "abc", "-240", "721", "0", "10000"] {
            let e = parse_height(bad).unwrap_err();
            assert!(e.contains("height"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_ffmpeg_is_named_with_the_fix() {
        let e = Ladder::new(
            &[360],
            Some(Path::new("/nonexistent/ffmpeg")),
            "veryfast",
            6,
            100,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/nonexistent/ffmpeg") && e.contains("LUCARNE_FFMPEG"),
            "{e}"
        );
    }

    #[test]
    fn only_heights_below_the_source_are_made() {
        let l = Ladder {
            heights: vec![1080, 720, 480, 240],
            ffmpeg: "ffmpeg".into(),
            preset: "veryfast".into(),
            window: 6,
            chunk_ms: 100,
        };
        assert_eq!(l.below(720), vec![480, 240]);
        assert_eq!(l.below(1080), vec![720, 480, 240]);
        assert!(l.below(240).is_empty());
    }

    #[test]
    fn every_rendition_keeps_the_source_keyframes_and_no_others() {
        let args = ffmpeg_args(
            &[(360, "/d/360.sock".into()), (180, "/d/180.sock".into())],
            "ultrafast",
        );
        let joined = args.join(" ");
        assert_eq!(joined.matches("-force_key_frames source").count(), 2);
        assert_eq!(joined.matches("keyint=infinite:scenecut=0").count(), 2);
        assert!(joined.contains("scale=-2:360") && joined.contains("unix:/d/180.sock"));
        assert!(joined.starts_with("-hide_banner") && joined.contains("-copyts"));
    }

    #[test]
    fn flv_tags_round_trip_through_the_reader() {
        let mut file = flv_header().to_vec();
        file.extend_from_slice(&flv_tag(VIDEO, 0x0123_4567, &[0x17, 1, 0, 0, 40, 9]).unwrap());
        file.extend_from_slice(&flv_tag(AUDIO, 5, &[0xaf, 0, 0x12, 0x10]).unwrap());
        file.extend_from_slice(&flv_tag(18, 5, b"script").unwrap());
        let mut got = Vec::new();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read_flv(&file[..], |k, ts, d| got.push((k, ts, d))))
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, got[0].1), (VIDEO, 0x0123_4567));
        assert_eq!(video_tag(&got[0].2), Some(VideoTag::Keyframe { cts: 40 }));
        assert!(is_aac_header(&got[1].2));
    }

    #[test]
    fn a_negative_composition_offset_is_read_as_negative() {
        assert_eq!(
            video_tag(&[0x17, 1, 0xff, 0xff, 0xd8]),
            Some(VideoTag::Keyframe { cts: -40 })
        );
        assert_eq!(video_tag(&[0x27, 1, 0, 0, 0]), Some(VideoTag::Frame));
        assert_eq!(video_tag(&[0x17, 0, 0, 0, 0]), Some(VideoTag::Header));
        assert_eq!(video_tag(&[0x12, 1, 0, 0, 0]), None);
    }

    #[test]
    fn the_multivariant_playlist_lists_bandwidth_resolution_and_codecs() {
        let v = |uri: &str, bw, w, h| Variant {
            uri: uri.into(),
            bandwidth: bw,
            info: VariantInfo {
                width: w,
                height: h,
                codecs: "avc1.64001e,mp4a.40.2".into(),
            },
        };
        let text = multivariant(&[
            v("source.m3u8", 1_500_000, 640, 360),
            v("180p/index.m3u8", 200_000, 320, 180),
        ]);
        assert!(text.starts_with("#EXTM3U\n"));
        assert!(text.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\nsource.m3u8\n"
        ));
        assert!(
            text.contains("RESOLUTION=320x180,CODECS=\"avc1.64001e,mp4a.40.2\"\n180p/index.m3u8\n")
        );
    }

    #[test]
    fn rendition_names_are_heights() {
        assert_eq!(rendition_name(360), "360p");
        assert_eq!(parse_rendition_name("360p"), Some(360));
        assert_eq!(parse_rendition_name("source"), None);
    }
}
