//! Replays: every broadcast of an ingested stream is recorded to disk as it goes, and
//! becomes a VOD HLS presentation when it ends.
//!
//! Layout: `<data-dir>/replays/<stream>/<broadcast>/` where `<broadcast>` is the unix
//! second the broadcast started; inside, `init-<n>.mp4` (one per codec configuration),
//! `<msn>.m4s` (the same bytes the live origin served) and, once the broadcast ended,
//! `index.m3u8` (`EXT-X-PLAYLIST-TYPE:VOD`, `EXT-X-ENDLIST`). They are served under
//! `/replays/...`, and the playlist names its files by absolute path so it can also be
//! served as the stream's own playlist after the end.
//!
//! Writing happens on a dedicated thread fed through a channel, so a slow disk delays
//! the recording, never the live stream. A write error stops the recording (logged
//! once) and leaves the broadcast alone.
//!
//! # Surviving a crash
//! The VOD playlist is written when the broadcast ends, which a process killed by a
//! signal or the OOM killer never reaches. So each finished segment is
//! also appended, as one line, to `segments.journal` in the broadcast's directory
//! (appends, not playlist rewrites: a three-hour broadcast would otherwise rewrite a
//! megabyte every second). At start-up [`ReplayStore::recover`] turns every broadcast
//! left with a journal and no playlist into a finished replay, so a crash loses at most
//! the segment being written.

use super::live::PackagedChunk;
use bytes::Bytes;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Where replays live and for how long.
#[derive(Debug, Clone)]
pub struct ReplayStore {
    root: PathBuf,
    retention: Duration,
}

impl ReplayStore {
    /// Replays under `root`, deleted once older than `retention`.
    pub fn new(root: PathBuf, retention: Duration) -> ReplayStore {
        ReplayStore { root, retention }
    }

    /// The directory served at `/replays`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts recording a broadcast of `stream` that began at unix second `started`.
    pub fn begin(&self, stream: &str, started: u64) -> std::io::Result<Recorder> {
        let dir = self.root.join(stream).join(started.to_string());
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::channel();
        let url = format!("/replays/{stream}/{started}");
        let store = self.clone();
        std::thread::Builder::new()
            .name(format!("record-{stream}"))
            .spawn(move || {
                let mut w = Writer {
                    dir,
                    url,
                    init_gen: None,
                    open: None,
                    done: Vec::new(),
                    journal: None,
                };
                let mut done = None;
                while let Ok(rec) = rx.recv() {
                    if let Rec::Finish(reply) = rec {
                        done = reply;
                        break;
                    }
                    if let Err(e) = w.apply(rec) {
                        tracing::error!(dir = %w.dir.display(), "recording stopped: {e}");
                        return;
                    }
                }
                // Also when the sender went away without a `Finish` (server stopping):
                // the playlist is still written, so what was recorded stays watchable.
                if let Err(e) = w.apply(Rec::Finish(None)) {
                    tracing::error!(dir = %w.dir.display(), "replay playlist: {e}");
                }
                store.purge();
                if let Some(reply) = done {
                    let _ = reply.send(());
                }
            })?;
        Ok(Recorder { tx })
    }

    /// The newest finished replay of `stream`: its `/replays/...` playlist URL and path.
    pub fn latest(&self, stream: &str) -> Option<(String, PathBuf)> {
        let dir = self.root.join(stream);
        let newest = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .filter(|b| dir.join(b.to_string()).join("index.m3u8").is_file())
            .max()?;
        Some((
            format!("/replays/{stream}/{newest}/index.m3u8"),
            dir.join(newest.to_string()).join("index.m3u8"),
        ))
    }

    /// Finishes the replays of broadcasts that a stopped process left unfinished (a
    /// journal and no playlist), so they can be watched; returns how many.
    pub fn recover(&self) -> usize {
        let mut recovered = 0;
        for b in self.broadcasts() {
            if b.dir.join("index.m3u8").exists() || !b.dir.join(JOURNAL).exists() {
                continue;
            }
            let url = format!("/replays/{}/{}", b.stream, b.started);
            match finish_from_journal(&b.dir, &url) {
                Ok(0) => {}
                Ok(n) => {
                    recovered += 1;
                    tracing::info!(dir = %b.dir.display(), segments = n, "unfinished broadcast recovered as a replay");
                }
                Err(e) => {
                    tracing::warn!(dir = %b.dir.display(), "cannot recover an unfinished broadcast: {e}")
                }
            }
        }
        recovered
    }

    /// Deletes broadcasts older than the retention period.
    pub fn purge(&self) {
        let now = (super::now_ns() / 1_000_000_000) as u64;
        for b in self.broadcasts() {
            if b.started.saturating_add(self.retention.as_secs()) < now {
                match std::fs::remove_dir_all(&b.dir) {
                    Ok(()) => tracing::info!(path = %b.dir.display(), "replay expired"),
                    Err(e) => {
                        tracing::warn!(path = %b.dir.display(), "cannot delete expired replay: {e}")
                    }
                }
            }
        }
    }

    /// Every broadcast directory (`<stream>/<started>/`) under the root.
    fn broadcasts(&self) -> Vec<Broadcast> {
        let mut out = Vec::new();
        for stream in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let Some(name) = stream.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            for b in std::fs::read_dir(stream.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Some(started) = b.file_name().to_str().and_then(|n| n.parse().ok()) {
                    out.push(Broadcast {
                        stream: name.clone(),
                        started,
                        dir: b.path(),
                    });
                }
            }
        }
        out
    }
}

/// One recorded broadcast's directory.
struct Broadcast {
    stream: String,
    /// Unix second it started (the directory's name).
    started: u64,
    dir: PathBuf,
}

enum Rec {
    Init(Bytes),
    Chunk(PackagedChunk),
    /// The end; the sender hears when the playlist is on disk.
    Finish(Option<tokio::sync::oneshot::Sender<()>>),
}

/// Feeds one broadcast's recording. Dropping it finishes the recording.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Rec>,
}

impl Recorder {
    /// A (new) init segment: later chunks use it.
    pub fn init(&self, init: Bytes) {
        let _ = self.tx.send(Rec::Init(init));
    }

    /// A chunk, as published live.
    pub fn chunk(&self, chunk: PackagedChunk) {
        let _ = self.tx.send(Rec::Chunk(chunk));
    }

    /// Ends the recording; resolves once the VOD playlist is written (or the
    /// recording had already stopped on an error).
    pub fn finish(self) -> tokio::sync::oneshot::Receiver<()> {
        let (reply, done) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Rec::Finish(Some(reply)));
        done
    }
}

struct Written {
    msn: u64,
    duration: f64,
    start: f64,
    init_gen: u32,
}

struct OpenSegment {
    file: File,
    seg: Written,
}

/// The file, in a broadcast's directory, listing its finished segments (see "Surviving
/// a crash" above): one `msn init_gen start duration` line each.
const JOURNAL: &str = "segments.journal";

impl Written {
    fn journal_line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.msn, self.init_gen, self.start, self.duration
        )
    }

    /// A journal line back; `None` for a torn or foreign line (a crash mid-append).
    fn parse(line: &str) -> Option<Written> {
        let mut f = line.split(' ');
        let w = Written {
            msn: f.next()?.parse().ok()?,
            init_gen: f.next()?.parse().ok()?,
            start: f.next()?.parse().ok()?,
            duration: f.next()?.parse().ok()?,
        };
        let sane =
            f.next().is_none() && w.start.is_finite() && w.duration.is_finite() && w.duration > 0.0;
        sane.then_some(w)
    }
}

/// Writes the VOD playlist of the broadcast in `dir` from its journal; the number of
/// segments it lists.
fn finish_from_journal(dir: &Path, url: &str) -> std::io::Result<usize> {
    let text = std::fs::read_to_string(dir.join(JOURNAL))?;
    let segments: Vec<Written> = text
        .lines()
        .filter_map(Written::parse)
        // Only segments whose media is on disk (the journal line follows the flush).
        .filter(|w| dir.join(format!("{}.m4s", w.msn)).is_file())
        .filter(|w| dir.join(format!("init-{}.mp4", w.init_gen)).is_file())
        .collect();
    if !segments.is_empty() {
        write_playlist(dir, url, &segments)?;
    }
    Ok(segments.len())
}

fn write_playlist(dir: &Path, url: &str, segments: &[Written]) -> std::io::Result<()> {
    let tmp = dir.join("index.m3u8.tmp");
    std::fs::write(&tmp, vod_playlist(url, segments))?;
    std::fs::rename(tmp, dir.join("index.m3u8"))
}

struct Writer {
    dir: PathBuf,
    url: String,
    init_gen: Option<u32>,
    open: Option<OpenSegment>,
    done: Vec<Written>,
    /// `segments.journal`, opened with the first segment.
    journal: Option<File>,
}

impl Writer {
    fn apply(&mut self, rec: Rec) -> std::io::Result<()> {
        match rec {
            Rec::Init(bytes) => {
                self.close_segment()?;
                let g = self.init_gen.map_or(0, |g| g + 1);
                std::fs::write(self.dir.join(format!("init-{g}.mp4")), &bytes)?;
                self.init_gen = Some(g);
            }
            Rec::Chunk(c) => {
                let Some(init_gen) = self.init_gen else {
                    return Ok(());
                };
                if c.starts_segment {
                    self.close_segment()?;
                    let file = File::create(self.dir.join(format!("{}.m4s", c.segment_msn)))?;
                    self.open = Some(OpenSegment {
                        file,
                        seg: Written {
                            msn: c.segment_msn,
                            duration: 0.0,
                            start: c.start,
                            init_gen,
                        },
                    });
                }
                if let Some(open) = &mut self.open {
                    open.file.write_all(&c.bytes)?;
                    open.seg.duration = c.start + c.duration - open.seg.start;
                }
            }
            Rec::Finish(_) => {
                self.close_segment()?;
                if !self.done.is_empty() {
                    write_playlist(&self.dir, &self.url, &self.done)?;
                }
            }
        }
        Ok(())
    }

    fn close_segment(&mut self) -> std::io::Result<()> {
        if let Some(mut open) = self.open.take() {
            open.file.flush()?;
            let journal = match &mut self.journal {
                Some(j) => j,
                None => self.journal.insert(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(self.dir.join(JOURNAL))?,
                ),
            };
            // One write per line: a crash tears at most the last line, which
            // `Written::parse` skips.
            journal.write_all(open.seg.journal_line().as_bytes())?;
            self.done.push(open.seg);
        }
        Ok(())
    }
}

/// The VOD playlist of a finished broadcast whose files are under `url`.
fn vod_playlist(url: &str, segments: &[Written]) -> String {
    let target = segments
        .iter()
        .map(|s| s.duration.ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let first = segments.first().map_or(0, |s| s.msn);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    let mut init = None;
    for s in segments {
        if init != Some(s.init_gen) {
            if init.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{url}/init-{}.mp4\"", s.init_gen);
            init = Some(s.init_gen);
        }
        let _ = write!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.5},\n{url}/{}.m4s\n",
            super::playlist::rfc3339_millis(s.start),
            s.duration,
            s.msn
        );
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(msn: u64, start: f64, key: bool) -> PackagedChunk {
        PackagedChunk {
            bytes: Bytes::from(vec![msn as u8; 3]),
            starts_segment: key,
            segment_msn: msn,
            start,
            duration: 0.5,
        }
    }

    #[test]
    fn a_broadcast_becomes_a_vod_playlist_with_its_files() {
        let root = tempfile::tempdir().unwrap();
        let store = ReplayStore::new(root.path().to_owned(), Duration::from_secs(3600));
        let now = (super::super::now_ns() / 1_000_000_000) as u64;
        let rec = store.begin("studio", now).unwrap();
        rec.chunk(chunk(9, 9.0, true)); // before any init: not recorded
        rec.init(Bytes::from_static(b"init-a"));
        for i in 0..3u64 {
            rec.chunk(chunk(10 + i, 10.0 + i as f64, true));
            rec.chunk(chunk(10 + i, 10.5 + i as f64, false));
        }
        rec.init(Bytes::from_static(b"init-b"));
        rec.chunk(chunk(20, 20.0, true));
        rec.finish()
            .blocking_recv()
            .expect("the recording finishes");
        let dir = root.path().join("studio").join(now.to_string());
        let playlist = dir.join("index.m3u8");
        let text = std::fs::read_to_string(&playlist).unwrap();
        let url = format!("/replays/studio/{now}");
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{text}");
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
        assert!(text.contains(&format!("#EXT-X-MAP:URI=\"{url}/init-0.mp4\"")));
        assert!(text.contains(&format!(
            "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"{url}/init-1.mp4\""
        )));
        assert_eq!(text.matches("#EXTINF:1.00000,").count(), 3, "{text}");
        assert!(!text.contains("/9.m4s"), "{text}");
        assert_eq!(std::fs::read(dir.join("11.m4s")).unwrap(), [11; 6]);
        assert_eq!(std::fs::read(dir.join("init-1.mp4")).unwrap(), b"init-b");
        assert_eq!(
            store.latest("studio").unwrap().0,
            format!("{url}/index.m3u8")
        );
    }

    #[test]
    fn a_broadcast_cut_short_by_a_crash_is_recovered_from_its_journal() {
        let root = tempfile::tempdir().unwrap();
        let store = ReplayStore::new(root.path().to_owned(), Duration::from_secs(3600));
        let now = (super::super::now_ns() / 1_000_000_000) as u64;
        let rec = store.begin("studio", now).unwrap();
        rec.init(Bytes::from_static(b"init-a"));
        for i in 0..4u64 {
            rec.chunk(chunk(10 + i, 10.0 + i as f64, true));
            rec.chunk(chunk(10 + i, 10.5 + i as f64, false));
        }
        rec.finish().blocking_recv().unwrap();
        let dir = root.path().join("studio").join(now.to_string());
        let finished = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
        // What a killed process leaves: no playlist, maybe a torn last journal line.
        std::fs::remove_file(dir.join("index.m3u8")).unwrap();
        let mut journal = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL))
            .unwrap();
        journal.write_all(b"14 0 14.0").unwrap();
        assert!(store.latest("studio").is_none(), "not watchable yet");

        assert_eq!(store.recover(), 1);
        let recovered = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
        assert_eq!(recovered, finished);
        assert!(store.latest("studio").is_some());
        assert_eq!(store.recover(), 0, "a finished replay is left alone");
    }

    #[test]
    fn a_journal_naming_missing_files_recovers_only_what_is_on_disk() {
        let root = tempfile::tempdir().unwrap();
        let store = ReplayStore::new(root.path().to_owned(), Duration::from_secs(3600));
        let dir = root.path().join("studio").join("1000");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("init-0.mp4"), b"init").unwrap();
        std::fs::write(dir.join("5.m4s"), b"media").unwrap();
        std::fs::write(
            dir.join(JOURNAL),
            "5 0 5 1\n6 0 6 1\n7 1 7 1\nnonsense\n8 0 NaN 1\n",
        )
        .unwrap();
        assert_eq!(store.recover(), 1);
        let text = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
        assert_eq!(text.matches("#EXTINF").count(), 1, "{text}");
        assert!(text.contains("/replays/studio/1000/5.m4s"), "{text}");
        // Nothing usable at all: no playlist, no error.
        let empty = root.path().join("studio").join("2000");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join(JOURNAL), "9 0 9 1\n").unwrap();
        assert_eq!(store.recover(), 0);
        assert!(!empty.join("index.m3u8").exists());
    }

    #[test]
    fn old_broadcasts_are_purged() {
        let root = tempfile::tempdir().unwrap();
        let store = ReplayStore::new(root.path().to_owned(), Duration::from_secs(3600));
        let now = (super::super::now_ns() / 1_000_000_000) as u64;
        let old = root.path().join("studio").join((now - 7200).to_string());
        let recent = root.path().join("studio").join((now - 60).to_string());
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&recent).unwrap();
        store.purge();
        assert!(!old.exists());
        assert!(recent.exists());
    }
}
