//! A third-party live HLS stream: ffmpeg writing fMP4 HLS (1 s segments, sliding
//! window of 6) into a temp dir that a [`StaticServer`] serves, like any CDN
//! origin lucarne does not control. [`HlsSource::Ladder`] makes it a multivariant
//! stream of three renditions ([`LADDER`], 2 s segments, numbered alike).
//!
//! Owns the ffmpeg process (killed on drop), the temp dir and its server. Also
//! parses media playlists, so tests can pick a segment ahead of the live edge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::process::{which, Output, Spawned};
use crate::static_server::StaticServer;
use crate::wait::{wait_until, Check};

/// What ffmpeg broadcasts.
#[derive(Clone, Debug)]
pub enum HlsSource {
    /// testsrc2 + a 1 kHz sine, encoded live (libx264, 1 s GOP, no B-frames, AAC).
    TestPattern,
    /// [`HlsSource::TestPattern`] in MPEG-TS segments (`-hls_segment_type mpegts`,
    /// `segN.ts`), as nginx-rtmp, hardware encoders and many CDN origins serve.
    TestPatternTs,
    /// A clip laid out like `media/demo.mp4` (16 s loop, keyframe every second),
    /// looped forever and stamped with unix time exactly as lucarne-server does
    /// with its demo: clip frame n goes out at the wall time t with
    /// t mod 16 = n/30, with media time t. Copied, not re-encoded. Lets
    /// bench/measure.js measure latency of any player without lucarne-server.
    LiveClip(PathBuf),
    /// The three-rendition ladder ([`LADDER`]): testsrc2 with noise (so each
    /// rendition's segments really weigh its bitrate) and a 1 kHz sine, encoded live
    /// three times with `-var_stream_map` into `master.m3u8` and `v0/`, `v1/`, `v2/`
    /// (highest first), 2 s segments on keyframes shared by all three.
    Ladder,
    /// Demuxed audio, as CMAF packagers publish it: a video-only variant
    /// (testsrc2, `video/`) naming an `AUDIO` group of two renditions with their own
    /// playlists, English (a 440 Hz sine, `DEFAULT=YES`, `en/`) and French (880 Hz,
    /// `fr/`), in `master.m3u8`.
    DemuxedAudio,
}

/// [`HlsSource::DemuxedAudio`]'s folders: the video, then each audio language.
pub const DEMUXED_FOLDERS: [&str; 3] = ["video", "en", "fr"];

/// The ladder's renditions: (width, height, video kbit/s). With 64 kbit/s of audio
/// and the 10 % ffmpeg adds, `BANDWIDTH` is 2 490 400, 796 400 and 246 400: the
/// issue's 2.5 Mbit/s, 800 kbit/s and 250 kbit/s.
pub const LADDER: [(u32, u32, u32); 3] = [(960, 540, 2200), (640, 360, 660), (320, 180, 160)];

/// Where [`FfmpegHls::start`] puts the playlist and segments in the served dir.
pub const DEFAULT_DIR: &str = "hls";

/// A running ffmpeg HLS broadcast and the origin serving it.
#[derive(Debug)]
pub struct FfmpegHls {
    /// The ffmpeg process (stopped first on drop: field order).
    process: Spawned,
    /// Serves `dir`: `/hls/index.m3u8`, `/hls/init.mp4`, `/hls/segN.m4s`, and any page a test writes.
    server: StaticServer,
    /// The served directory (deleted on drop).
    dir: TempDir,
    /// Path inside `dir` (and URL path) of the playlist's folder, e.g. "hls".
    subdir: String,
    /// A multivariant stream's folder of the (highest) video rendition
    /// ([`HlsSource::Ladder`], [`HlsSource::DemuxedAudio`]); `None`: a media playlist.
    media_folder: Option<String>,
    /// The segments' file extension: "m4s", or "ts" for [`HlsSource::TestPatternTs`].
    ext: &'static str,
    /// [`HlsSource::LiveClip`]: see [`FfmpegHls::program_date_time_late`].
    program_date_time_late: Option<f64>,
}

impl FfmpegHls {
    /// Starts broadcasting to `/hls/index.m3u8` and waits until the playlist
    /// lists 2 segments.
    pub async fn start(source: HlsSource) -> Result<Self> {
        Self::start_at(source, DEFAULT_DIR).await
    }

    /// Like [`FfmpegHls::start`], with the playlist at `/{subdir}/index.m3u8`
    /// (e.g. "live/demo" to stand in for lucarne-server's demo stream).
    pub async fn start_at(source: HlsSource, subdir: &str) -> Result<Self> {
        let ffmpeg =
            which("ffmpeg").context("ffmpeg not found on PATH (apt-get install ffmpeg)")?;
        let dir = tempfile::Builder::new()
            .prefix("lucarne-e2e-hls-")
            .tempdir()?;
        let subdir = subdir.trim_matches('/').to_owned();
        let hls = dir.path().join(&subdir);
        std::fs::create_dir_all(&hls)?;
        let mut args: Vec<String> = ["-hide_banner", "-loglevel", "warning", "-nostats"]
            .map(String::from)
            .to_vec();
        // temp_file: a segment only appears under its name once complete.
        let mut flags = "delete_segments+independent_segments+temp_file".to_owned();
        let ladder = matches!(source, HlsSource::Ladder);
        let demuxed = matches!(source, HlsSource::DemuxedAudio);
        let mut media_start = None;
        let ts = matches!(source, HlsSource::TestPatternTs);
        match &source {
            HlsSource::TestPattern | HlsSource::TestPatternTs => args.extend(test_pattern_args()),
            HlsSource::Ladder => args.extend(ladder_args()),
            HlsSource::DemuxedAudio => args.extend(demuxed_args()),
            HlsSource::LiveClip(clip) => {
                let (clip_args, start) = live_clip_args(clip, dir.path()).await?;
                args.extend(clip_args);
                media_start = Some(start);
                // Players that rebase timestamps (hls.js) still know the wall
                // time of the playhead through EXT-X-PROGRAM-DATE-TIME.
                flags.push_str("+program_date_time");
            }
        }
        args.extend(
            [
                "-f",
                "hls",
                "-hls_segment_type",
                if ts { "mpegts" } else { "fmp4" },
                "-hls_time",
                if ladder { "2" } else { "1" },
                "-hls_list_size",
                "6",
                "-hls_flags",
                &flags,
            ]
            .map(str::to_owned),
        );
        if !ts {
            args.extend(["-hls_fmp4_init_filename", "init.mp4"].map(str::to_owned));
        }
        let ext = if ts { "ts" } else { "m4s" };
        // One folder per rendition (`%v`: 0 is the highest), init_0.mp4 and so on.
        let folder = if demuxed {
            args.extend(
                [
                    "-master_pl_name",
                    "master.m3u8",
                    "-var_stream_map",
                    "v:0,agroup:aud,name:video a:0,agroup:aud,language:en,name:en,default:yes \
                     a:1,agroup:aud,language:fr,name:fr",
                ]
                .map(str::to_owned),
            );
            hls.join("%v")
        } else if ladder {
            args.extend(
                [
                    "-master_pl_name",
                    "master.m3u8",
                    "-var_stream_map",
                    "v:0,a:0 v:1,a:1 v:2,a:2",
                ]
                .map(str::to_owned),
            );
            hls.join("v%v")
        } else {
            hls.clone()
        };
        args.push("-hls_segment_filename".into());
        args.push(
            folder
                .join(format!("seg%d.{ext}"))
                .to_string_lossy()
                .into_owned(),
        );
        args.push(folder.join("index.m3u8").to_string_lossy().into_owned());

        let (process, _) = Spawned::start("ffmpeg", &ffmpeg, &args, &[], Output::Capture)?;
        let server = StaticServer::start(dir.path()).await?;
        let mut me = Self {
            process,
            server,
            dir,
            subdir,
            media_folder: if demuxed {
                Some(DEMUXED_FOLDERS[0].to_owned())
            } else if ladder {
                Some(Self::rendition_folder(0))
            } else {
                None
            },
            ext,
            program_date_time_late: None,
        };
        me.wait_for_segments(2, Duration::from_secs(20)).await?;
        if let Some(start) = media_start {
            // Segment 0 is still listed: the playlist keeps 6.
            let playlist = std::fs::read_to_string(hls.join("index.m3u8"))?;
            let dated = first_program_date_time(&playlist)
                .context("ffmpeg's live clip playlist dates no segment 0")?;
            me.program_date_time_late = Some(dated - start as f64);
        }
        Ok(me)
    }

    /// The playlist URL, on the static server's origin (the multivariant playlist
    /// of a ladder).
    pub fn url(&self) -> String {
        format!("{}{}", self.server.url(), self.path())
    }

    /// The URL path of the playlist the viewer is given, e.g. "/hls/index.m3u8".
    pub fn path(&self) -> String {
        let name = if self.media_folder.is_some() {
            "master.m3u8"
        } else {
            "index.m3u8"
        };
        format!("/{}/{name}", self.subdir)
    }

    /// The folder of a ladder's rendition `i` (0 is the highest) inside the playlist's,
    /// as URL paths use it: "v0".
    pub fn rendition_folder(i: usize) -> String {
        format!("v{i}")
    }

    /// The origin serving the stream (and any page written to [`FfmpegHls::dir`]).
    pub fn server(&self) -> &StaticServer {
        &self.server
    }

    /// Mutable access, to stop and start the origin.
    pub fn server_mut(&mut self) -> &mut StaticServer {
        &mut self.server
    }

    /// The served directory: write a page here and open `{server.url()}/page.html`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// [`HlsSource::LiveClip`]: how much later, in seconds, the playlist's
    /// `EXT-X-PROGRAM-DATE-TIME` is than the media's own time (unix time). ffmpeg dates
    /// segment 0 by the wall clock when its muxer starts, a moment after that segment's
    /// first frame is due (0.09-0.14 s here alone, 0.2-0.28 s beside busy loops); the later segments
    /// add their durations to it. `None` for the other sources.
    pub fn program_date_time_late(&self) -> Option<f64> {
        self.program_date_time_late
    }

    /// URL path of segment `n` (what a fault rule matches); of the highest rendition
    /// for a ladder.
    pub fn segment_path(&self, n: u64) -> String {
        format!(
            "/{}/{}seg{n}.{}",
            self.subdir,
            self.media_folder(),
            self.ext
        )
    }

    /// "v0/" for a ladder (whose media playlists all number segments alike), "video/"
    /// for demuxed audio, else "".
    fn media_folder(&self) -> String {
        match &self.media_folder {
            Some(f) => format!("{f}/"),
            None => String::new(),
        }
    }

    /// The media playlist as ffmpeg last wrote it (the highest rendition's for a
    /// ladder).
    pub fn playlist(&self) -> Result<MediaPlaylist> {
        let path = self
            .dir
            .path()
            .join(&self.subdir)
            .join(format!("{}index.m3u8", self.media_folder()));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        MediaPlaylist::parse(&text)
    }

    /// A replay of `seconds` of the [`HlsSource::DemuxedAudio`] stream: each segment
    /// every rendition lists while it records is copied to `replay/` beside the live
    /// folders, and the replay's playlists keep the sequence numbers all renditions
    /// have (so video and audio start together) and end with `EXT-X-ENDLIST`. Returns
    /// the replay's multivariant playlist URL.
    pub async fn record_replay(&self, seconds: u64) -> Result<String> {
        if self.media_folder.as_deref() != Some(DEMUXED_FOLDERS[0]) {
            bail!("record_replay is for HlsSource::DemuxedAudio");
        }
        let live = self.dir.path().join(&self.subdir);
        let replay = live.join("replay");
        // Per rendition: its header lines, and (tags, URI) by sequence number.
        type Recorded = (Vec<String>, BTreeMap<u64, (Vec<String>, String)>);
        let mut recorded: Vec<Recorded> = vec![Default::default(); DEMUXED_FOLDERS.len()];
        let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while tokio::time::Instant::now() < end {
            for (folder, (header, segments)) in DEMUXED_FOLDERS.iter().zip(&mut recorded) {
                let (dir, out) = (live.join(folder), replay.join(folder));
                std::fs::create_dir_all(&out)?;
                let text = std::fs::read_to_string(dir.join("index.m3u8"))?;
                let (head, listed) = split_playlist(&text)?;
                if header.is_empty() {
                    let init = (head.iter())
                        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
                        .and_then(|l| l.split('"').next())
                        .with_context(|| format!("{folder}/index.m3u8 has no EXT-X-MAP"))?;
                    std::fs::copy(dir.join(init), out.join(init))
                        .with_context(|| format!("copying {folder}/{init}"))?;
                    *header = head;
                }
                for (msn, tags, uri) in listed {
                    if let std::collections::btree_map::Entry::Vacant(e) = segments.entry(msn) {
                        std::fs::copy(dir.join(&uri), out.join(&uri))
                            .with_context(|| format!("copying {folder}/{uri}"))?;
                        e.insert((tags, uri));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let first = (recorded.iter())
            .filter_map(|(_, s)| s.keys().next().copied())
            .max()
            .unwrap_or(0);
        let last = (recorded.iter())
            .filter_map(|(_, s)| s.keys().next_back().copied())
            .min()
            .unwrap_or(0);
        if last < first + 2 {
            bail!("the renditions recorded fewer than 3 segments in common ({first}..={last})");
        }
        for (folder, (header, segments)) in DEMUXED_FOLDERS.iter().zip(&recorded) {
            let mut text = String::new();
            for line in header {
                if line.starts_with("#EXT-X-MEDIA-SEQUENCE:") {
                    text.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n"));
                    text.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
                } else {
                    text.push_str(&format!("{line}\n"));
                }
            }
            for msn in first..=last {
                let (tags, uri) = segments
                    .get(&msn)
                    .with_context(|| format!("{folder}: segment {msn} was never listed"))?;
                text.push_str(&format!("{}\n{uri}\n", tags.join("\n")));
            }
            text.push_str("#EXT-X-ENDLIST\n");
            std::fs::write(replay.join(folder).join("index.m3u8"), text)?;
        }
        std::fs::copy(live.join("master.m3u8"), replay.join("master.m3u8"))
            .context("copying master.m3u8")?;
        Ok(format!(
            "{}/{}/replay/master.m3u8",
            self.server.url(),
            self.subdir
        ))
    }

    /// ffmpeg's last output lines.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log().tail(n)
    }

    /// Waits until the playlist lists at least `n` segments.
    pub async fn wait_for_segments(&mut self, n: usize, deadline: Duration) -> Result<()> {
        wait_until(
            &format!("ffmpeg to list {n} HLS segments"),
            deadline,
            || {
                let exited = self.process.exited();
                let listed = self.playlist().map(|p| p.segments.len());
                let log = self.process.log().tail(10);
                async move {
                    if let Some(status) = exited {
                        bail!("ffmpeg exited ({status}):\n{log}");
                    }
                    Ok(match listed {
                        Ok(k) if k >= n => Check::Done(()),
                        Ok(k) => Check::NotYet(format!("{k} segments listed")),
                        Err(e) => Check::NotYet(format!("no playlist yet ({e:#})")),
                    })
                }
            },
        )
        .await
    }
}

fn test_pattern_args() -> Vec<String> {
    [
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
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        "500k",
        "-g",
        "30",
        "-keyint_min",
        "30",
        "-sc_threshold",
        "0",
        "-bf",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ac",
        "2",
    ]
    .map(String::from)
    .to_vec()
}

/// [`HlsSource::DemuxedAudio`]'s inputs and encoders: the test pattern's video, and
/// two sines, one per language.
fn demuxed_args() -> Vec<String> {
    let mut args = test_pattern_args();
    // The test pattern's one sine becomes the English one; the French one is added.
    let sine = args
        .iter()
        .position(|a| a.starts_with("sine="))
        .expect("the test pattern has a sine");
    args[sine] = "sine=frequency=440:sample_rate=48000".into();
    let maps = args
        .iter()
        .position(|a| a == "-map")
        .expect("the test pattern maps its inputs");
    let french = [
        "-re",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880:sample_rate=48000",
    ];
    args.splice(maps..maps, french.map(String::from));
    args.extend(["-map", "2:a"].map(String::from));
    args
}

/// [`HlsSource::Ladder`]'s input and encoders, ultrafast so three live encodes keep
/// up on a 2-core machine. `-var_stream_map` needs the audio mapped once per rendition.
fn ladder_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=960x540:rate=30",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-filter_complex",
        "[0:v]noise=alls=30:allf=t,split=3[v0][a1][a2];[a1]scale=640:360[v1];[a2]scale=320:180[v2]",
    ]
    .map(String::from)
    .to_vec();
    for i in 0..LADDER.len() {
        args.extend(["-map".to_owned(), format!("[v{i}]")]);
    }
    for _ in 0..LADDER.len() {
        args.extend(["-map", "1:a"].map(String::from));
    }
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            // A keyframe every 2 s in every rendition: segments start together.
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-bf",
            "0",
        ]
        .map(String::from),
    );
    for (i, (_, _, kbps)) in LADDER.iter().enumerate() {
        for opt in ["b", "maxrate", "bufsize"] {
            args.push(format!("-{opt}:v:{i}"));
            args.push(format!("{kbps}k"));
        }
    }
    args.extend(["-c:a", "aac", "-b:a", "64k", "-ac", "2"].map(String::from));
    args
}

/// The clip lasts 16 s and loops from the unix epoch (see media/make-demo-clip.sh).
const CLIP_S: u64 = 16;

/// ffmpeg input args that play `clip` in real time from the position the wall
/// clock says, looped, stamped with unix time. Sleeps until the next whole
/// second so the stream starts on a keyframe (the clip has one every second),
/// which makes a stream copy exact.
/// Also returns the unix time of the stream's first frame.
async fn live_clip_args(clip: &Path, dir: &Path) -> Result<(Vec<String>, u64)> {
    if !clip.is_file() {
        bail!("{} missing: run media/make-demo-clip.sh", clip.display());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let start = now.as_secs() + 1;
    let offset = start % CLIP_S;
    // The concat demuxer plays the first copy from `offset`, then whole copies;
    // 2000 copies is almost 9 hours, longer than any test.
    let mut list = format!(
        "ffconcat version 1.0\nfile '{}'\ninpoint {offset}\n",
        clip.display()
    );
    for _ in 0..2000 {
        list.push_str(&format!("file '{}'\n", clip.display()));
    }
    let list_path = dir.join("clip.ffconcat");
    std::fs::write(&list_path, list)?;
    let wait =
        Duration::from_secs(start).saturating_sub(SystemTime::now().duration_since(UNIX_EPOCH)?);
    tokio::time::sleep(wait).await;
    let args = vec![
        "-re".into(),
        "-f".into(),
        "concat".into(),
        "-safe".into(),
        "0".into(),
        "-i".into(),
        list_path.to_string_lossy().into_owned(),
        "-map".into(),
        "0".into(),
        "-c".into(),
        "copy".into(),
        // Keep the clip's timestamps exact (video frame at inpoint = 0), shift them
        // to unix time, and write that absolute time into every fragment's tfdt
        // (without frag_discont the HLS muxer restarts fragment times at 0).
        "-copyts".into(),
        "-output_ts_offset".into(),
        start.to_string(),
        "-hls_segment_options".into(),
        "movflags=+frag_discont".into(),
    ];
    Ok((args, start))
}

/// Unix time of segment 0's `EXT-X-PROGRAM-DATE-TIME` in an ffmpeg media playlist
/// (`2026-11-30T11:32:10.440+0000`); `None` when the playlist starts later or has none.
fn first_program_date_time(playlist: &str) -> Option<f64> {
    if MediaPlaylist::parse(playlist).ok()?.media_sequence != 0 {
        return None;
    }
    let dated = playlist
        .lines()
        .find_map(|l| l.trim().strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))?;
    let format = time::format_description::parse_borrowed::<2>(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory]\
         [offset_minute]",
    )
    .ok()?;
    let t = time::OffsetDateTime::parse(dated, &format).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// A media playlist as its header lines and its segments: (sequence number, the tag
/// lines before the URI, the URI).
type SplitPlaylist = (Vec<String>, Vec<(u64, Vec<String>, String)>);

/// Splits a media playlist (see [`SplitPlaylist`]); at least one segment.
fn split_playlist(text: &str) -> Result<SplitPlaylist> {
    let first = MediaPlaylist::parse(text)?.media_sequence;
    let mut header = Vec::new();
    let mut segments = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !line.starts_with('#') {
            let msn = first + segments.len() as u64;
            segments.push((msn, std::mem::take(&mut tags), line.to_owned()));
        } else if segments.is_empty() && !line.starts_with("#EXTINF") && tags.is_empty() {
            header.push(line.to_owned());
        } else if line != "#EXT-X-ENDLIST" {
            tags.push(line.to_owned());
        }
    }
    if segments.is_empty() {
        bail!("the playlist lists no segment");
    }
    Ok((header, segments))
}

/// The parts of a media playlist the tests use.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlaylist {
    /// `#EXT-X-MEDIA-SEQUENCE`: sequence number of the first listed segment.
    pub media_sequence: u64,
    /// `#EXT-X-TARGETDURATION`, seconds.
    pub target_duration: f64,
    /// Segment URIs, oldest first.
    pub segments: Vec<String>,
}

impl MediaPlaylist {
    /// Parses a media playlist (only what the tests need).
    pub fn parse(text: &str) -> Result<Self> {
        if !text.starts_with("#EXTM3U") {
            bail!(
                "not a playlist: {:?}",
                text.chars().take(40).collect::<String>()
            );
        }
        let mut media_sequence = 0;
        let mut target_duration = 0.0;
        let mut segments = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                media_sequence = v.parse().context("bad #EXT-X-MEDIA-SEQUENCE")?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                target_duration = v.parse().context("bad #EXT-X-TARGETDURATION")?;
            } else if !line.starts_with('#') {
                segments.push(line.to_owned());
            }
        }
        Ok(Self {
            media_sequence,
            target_duration,
            segments,
        })
    }

    /// Sequence number of the newest listed segment (the live edge).
    pub fn last_sequence(&self) -> Option<u64> {
        (self.segments.len() as u64)
            .checked_sub(1)
            .map(|i| self.media_sequence + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_date_of_segment_0_as_ffmpeg_writes_it() {
        let dated = |sequence: u64| {
            format!(
                "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n\
                 #EXT-X-MEDIA-SEQUENCE:{sequence}\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1.000000,\n\
                 #EXT-X-PROGRAM-DATE-TIME:2026-11-30T11:32:10.440+0100\nseg0.m4s\n"
            )
        };
        // 10:32:10.440 UTC.
        let t = first_program_date_time(&dated(0)).unwrap();
        assert!((t - 1_796_034_730.44).abs() < 1e-6, "{t}");
        assert_eq!(first_program_date_time(&dated(3)), None);
        assert_eq!(
            first_program_date_time("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nseg0.m4s\n"),
            None
        );
    }

    #[test]
    fn parses_an_ffmpeg_playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:12\n\
                    #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1.000000,\nseg12.m4s\n\
                    #EXTINF:1.000000,\nseg13.m4s\n";
        let p = MediaPlaylist::parse(text).unwrap();
        assert_eq!(p.media_sequence, 12);
        assert_eq!(p.target_duration, 1.0);
        assert_eq!(p.segments, ["seg12.m4s", "seg13.m4s"]);
        assert_eq!(p.last_sequence(), Some(13));
        assert!(MediaPlaylist::parse("<html>").is_err());
    }
}
