//! Shared by the integration tests: the committed fixtures, ffmpeg/ffprobe as the judge
//! of the output, and a tiny MPEG-TS writer for inputs ffmpeg cannot make (ID3,
//! HEVC-only PMTs, oversized PES, broken packets).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Path of a committed fixture.
pub(crate) fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Bytes of a committed fixture (`tests/fixtures/<name>`).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (made by tests/fixtures/make.sh)", path.display()))
}

/// The `EXTINF` durations of a committed playlist, in seconds.
pub(crate) fn extinf(playlist: &str) -> Vec<f64> {
    String::from_utf8(fixture(playlist))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| {
            l.trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// Runs an ffmpeg tool and returns its stdout; panics with its stderr on failure, and
/// with an install hint when the tool is missing: these tests check real decoding and
/// are never skipped.
pub(crate) fn tool(name: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {name} ({e}): the lucarne-ts tests decode their output with ffmpeg; \
             install it (apt-get install ffmpeg) — CI does"
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name} {args:?} failed: {stderr}");
    (stdout, stderr)
}

/// A fresh scratch directory for one test.
pub(crate) fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("lucarne-ts")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `parts` back to back into `dir/name` and returns its path.
pub(crate) fn write(dir: &Path, name: &str, parts: &[&[u8]]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, parts.concat()).unwrap();
    path
}

/// Decodes a file with ffmpeg and returns what it printed at level `error` (empty when
/// the file decodes cleanly).
pub(crate) fn decode_errors(path: &Path) -> String {
    let p = path.to_str().unwrap();
    tool(
        "ffmpeg",
        &["-hide_banner", "-v", "error", "-i", p, "-f", "null", "-"],
    )
    .1
}

/// Frames of the first stream of a kind (`v` or `a`) that ffprobe decodes.
pub(crate) fn frame_count(path: &Path, kind: &str) -> u64 {
    let sel = format!("{kind}:0");
    let (out, _) = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            &sel,
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    // A TS lists its streams once per program and once on their own: same numbers.
    let first = out
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())
        .unwrap_or("");
    first
        .parse()
        .unwrap_or_else(|_| panic!("frame count of {}: {out:?}", path.display()))
}

/// A demuxed packet as ffprobe reports it, in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pkt {
    /// Presentation time.
    pub(crate) pts: f64,
    /// Decode time.
    pub(crate) dts: f64,
    /// Duration (NaN when ffprobe does not know it).
    pub(crate) duration: f64,
}

/// The packets of the first stream of a kind, in file order.
pub(crate) fn packets(path: &Path, kind: &str) -> Vec<Pkt> {
    let sel = format!("{kind}:0");
    let (out, _) = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            &sel,
            "-show_entries",
            "packet=pts_time,dts_time,duration_time",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // "N/A" where ffprobe does not know (the first AAC packet's duration).
            let f: Vec<f64> = l
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap_or(f64::NAN))
                .collect();
            Pkt {
                pts: f[0],
                dts: f[1],
                duration: f[2],
            }
        })
        .collect()
}

/// The start time of the first stream of a kind, as ffprobe reports it (seconds).
pub(crate) fn start_time(path: &Path, kind: &str) -> f64 {
    let sel = format!("{kind}:0");
    let (out, _) = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            &sel,
            "-show_entries",
            "stream=start_time",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    let first = out
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())
        .unwrap_or("");
    first
        .parse()
        .unwrap_or_else(|_| panic!("start time of {}: {out:?}", path.display()))
}

/// One stream's codec name, width and height as ffprobe reports them.
pub(crate) fn codec(path: &Path, kind: &str) -> String {
    let sel = format!("{kind}:0");
    let (out, _) = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            &sel,
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    out.trim().to_string()
}

/// Asserts that presentation times, sorted, follow each other with no gap or overlap
/// larger than `tolerance` seconds, and returns the `(first, end)` of the run.
pub(crate) fn assert_continuous(pkts: &[Pkt], tolerance: f64, what: &str) -> (f64, f64) {
    let mut sorted: Vec<Pkt> = pkts.to_vec();
    sorted.sort_by(|a, b| a.pts.total_cmp(&b.pts));
    for w in sorted.windows(2).filter(|w| !w[0].duration.is_nan()) {
        let step = w[1].pts - (w[0].pts + w[0].duration);
        assert!(
            step.abs() <= tolerance,
            "{what}: {:.6} + {:.6} then {:.6} ({step:+.6} s)",
            w[0].pts,
            w[0].duration,
            w[1].pts
        );
    }
    let last = sorted.last().unwrap();
    (sorted[0].pts, last.pts + last.duration)
}

/// CRC-32/MPEG-2 of a PSI section.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A 188-byte packet; a short payload is preceded by adaptation field stuffing.
pub(crate) fn packet(pid: u16, start: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 184);
    let mut p = vec![0x47, (u8::from(start) << 6) | (pid >> 8) as u8, pid as u8];
    if payload.len() == 184 {
        p.push(0x10 | (cc & 15));
    } else {
        let af = 183 - payload.len();
        p.push(0x30 | (cc & 15));
        p.push(af as u8);
        if af > 0 {
            p.push(0);
            p.resize(p.len() + af - 1, 0xff);
        }
    }
    p.extend_from_slice(payload);
    assert_eq!(p.len(), 188);
    p
}

/// A section (table id, id, body) with its header and CRC.
fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![table_id, 0xb0 | (len >> 8) as u8, len as u8];
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&[0xc1, 0, 0]);
    s.extend_from_slice(body);
    let crc = crc32(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// A PAT packet naming program 1 on `pmt_pid`.
pub(crate) fn pat(pmt_pid: u16) -> Vec<u8> {
    let mut body = vec![0, 1];
    body.extend_from_slice(&(0xe000 | pmt_pid).to_be_bytes());
    let mut payload = vec![0];
    payload.extend(section(0, 1, &body));
    packet(0, true, 0, &payload)
}

/// A PMT packet with `(stream_type, pid, descriptors)` streams, PCR on the first.
pub(crate) fn pmt(pmt_pid: u16, streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
    let pcr = streams.first().map_or(0x1fff, |s| s.1);
    let mut body = (0xe000 | pcr).to_be_bytes().to_vec();
    body.extend_from_slice(&[0xf0, 0]);
    for (t, pid, d) in streams {
        body.push(*t);
        body.extend_from_slice(&(0xe000 | pid).to_be_bytes());
        body.extend_from_slice(&(0xf000 | d.len() as u16).to_be_bytes());
        body.extend_from_slice(d);
    }
    let mut payload = vec![0];
    payload.extend(section(2, 1, &body));
    packet(pmt_pid, true, 0, &payload)
}

/// The 5 bytes of a PES timestamp with a 4-bit prefix.
fn ts_bytes(prefix: u8, v: u64) -> [u8; 5] {
    [
        prefix << 4 | ((v >> 29) & 0x0e) as u8 | 1,
        (v >> 22) as u8,
        ((v >> 14) & 0xfe) as u8 | 1,
        (v >> 7) as u8,
        ((v << 1) & 0xfe) as u8 | 1,
    ]
}

/// A PES (header with a PTS) split into packets on `pid`, counters from `cc`.
pub(crate) fn pes(pid: u16, stream_id: u8, pts: u64, payload: &[u8], cc: u8) -> Vec<Vec<u8>> {
    let mut pes = vec![0, 0, 1, stream_id];
    let len = 3 + 5 + payload.len();
    pes.extend_from_slice(&(if len > 0xffff { 0 } else { len as u16 }).to_be_bytes());
    pes.extend_from_slice(&[0x80, 0x80, 5]);
    pes.extend(ts_bytes(2, pts));
    pes.extend_from_slice(payload);
    pes.chunks(184)
        .enumerate()
        .map(|(i, c)| packet(pid, i == 0, cc.wrapping_add(i as u8), c))
        .collect()
}

/// The packets of a TS file.
pub(crate) fn split(ts: &[u8]) -> Vec<Vec<u8>> {
    ts.chunks(188).map(<[u8]>::to_vec).collect()
}

/// The PID of a packet.
pub(crate) fn pid(p: &[u8]) -> u16 {
    u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])
}

/// A small deterministic generator (xorshift64*), so "random" tests replay exactly.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `n` random bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// PIDs ffmpeg's MPEG-TS muxer gives the fixtures' PMT, video and audio.
pub(crate) const FFMPEG_PMT: u16 = 0x1000;
/// The video PID in the fixtures.
pub(crate) const FFMPEG_VIDEO: u16 = 0x100;
/// The audio PID in the fixtures.
pub(crate) const FFMPEG_AUDIO: u16 = 0x101;

/// A fixture with its PMT replaced by one listing `streams`, and `extra` packets put
/// right after it.
pub(crate) fn with_pmt(name: &str, streams: &[(u8, u16, &[u8])], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut replaced = false;
    for p in split(&fixture(name)) {
        if pid(&p) == FFMPEG_PMT {
            assert!(!replaced, "one PMT per fixture segment");
            replaced = true;
            out.extend(pmt(FFMPEG_PMT, streams));
            out.extend(extra.concat());
        } else {
            out.extend(p);
        }
    }
    assert!(replaced, "{name} has its PMT on PID {FFMPEG_PMT:#x}");
    out
}

/// An ID3v2.4 tag with one `TXXX` frame.
pub(crate) fn id3_tag(description: &str, value: &str) -> Vec<u8> {
    let syncsafe = |n: usize| {
        [
            (n >> 21) as u8 & 0x7f,
            (n >> 14) as u8 & 0x7f,
            (n >> 7) as u8 & 0x7f,
            n as u8 & 0x7f,
        ]
    };
    let mut frame = vec![3]; // UTF-8
    frame.extend_from_slice(description.as_bytes());
    frame.push(0);
    frame.extend_from_slice(value.as_bytes());
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend(syncsafe(10 + frame.len()));
    tag.extend_from_slice(b"TXXX");
    tag.extend(syncsafe(frame.len()));
    tag.extend_from_slice(&[0, 0]);
    tag.extend(frame);
    tag
}
