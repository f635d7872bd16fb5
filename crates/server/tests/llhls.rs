//! LL-HLS from lucarne-server over real sockets on 127.0.0.1:0, with the demo stream
//! (30 fps, a keyframe every second, 100 ms chunks): the playlist's parts and numbers,
//! blocking playlist reload, preload-hinted parts, cache headers, the parts' bytes, and
//! ffmpeg reading the playlist.

use lucarne_server::{Config, Server};
use mp4_atom::{Any, DecodeMaybe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dist: dir.join("dist"),
        pages: workspace().join("static"),
        media: workspace().join("media"),
        no_demo: false,
        hls_window: 6,
        chunk_ms: 100,
        data_dir: dir.join("data"),
        hub: Default::default(),
        ingest: Default::default(),
        serve: Default::default(),
        access: Default::default(),
        edge: Default::default(),
    }
}

struct Origin {
    _server: Server,
    _dir: tempfile::TempDir,
    base: String,
    http: reqwest::Client,
}

async fn start() -> Origin {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()))
        .await
        .expect("server starts");
    Origin {
        base: format!("http://{}/live/demo", server.local_addr()),
        _server: server,
        _dir: dir,
        http: reqwest::Client::new(),
    }
}

impl Origin {
    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}/{path}", self.base);
        tokio::time::timeout(Duration::from_secs(10), self.http.get(&url).send())
            .await
            .unwrap_or_else(|_| panic!("{url}: no answer within 10 s"))
            .unwrap()
    }

    async fn playlist(&self, query: &str) -> Playlist {
        let r = self.get(&format!("index.m3u8{query}")).await;
        assert_eq!(r.status(), 200, "index.m3u8{query}");
        Playlist::parse(&r.text().await.unwrap())
    }

    async fn bytes(&self, path: &str) -> Vec<u8> {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().await.unwrap().to_vec()
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[derive(Debug, Clone)]
struct Part {
    uri: String,
    duration: f64,
    independent: bool,
}

#[derive(Debug, Clone)]
struct Segment {
    msn: u64,
    /// `EXT-X-PROGRAM-DATE-TIME`, unix seconds.
    start: f64,
    /// `EXTINF`; `None` for the segment in progress.
    duration: Option<f64>,
    parts: Vec<Part>,
}

impl Segment {
    /// Wall-clock time at which part `i` ends (the demo releases it then).
    fn part_end(&self, i: usize) -> f64 {
        self.start + self.parts[..=i].iter().map(|p| p.duration).sum::<f64>()
    }
}

/// A media playlist as this test reads it: every line it does not know is an error, so
/// the test notices when the server starts writing something new.
#[derive(Debug, Default)]
struct Playlist {
    text: String,
    version: u32,
    target: f64,
    part_target: f64,
    part_hold_back: f64,
    hold_back: f64,
    can_block_reload: bool,
    media_sequence: u64,
    /// Complete segments then the one in progress (`duration: None`).
    segments: Vec<Segment>,
    hint: Option<String>,
}

fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    list.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

/// `2026-11-29T07:00:01.300Z` → unix seconds.
fn pdt(s: &str) -> f64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap();
    let date = time::Date::from_calendar_date(
        n(0..4) as i32,
        time::Month::try_from(n(5..7) as u8).unwrap(),
        n(8..10) as u8,
    )
    .unwrap();
    let t = time::Time::from_hms_milli(
        n(11..13) as u8,
        n(14..16) as u8,
        n(17..19) as u8,
        n(20..23) as u16,
    )
    .unwrap();
    assert_eq!(&s[23..], "Z", "{s}");
    time::PrimitiveDateTime::new(date, t)
        .assume_utc()
        .unix_timestamp_nanos() as f64
        / 1e9
}

impl Playlist {
    fn parse(text: &str) -> Playlist {
        let mut p = Playlist {
            text: text.to_owned(),
            ..Playlist::default()
        };
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("#EXTM3U"), "{text}");
        let mut next: Option<Segment> = None;
        let mut extinf = None;
        for line in lines {
            let (tag, value) = line.split_once(':').unwrap_or((line, ""));
            let current = || Segment {
                msn: 0,
                start: f64::NAN,
                duration: None,
                parts: Vec::new(),
            };
            match tag {
                "#EXT-X-VERSION" => p.version = value.parse().unwrap(),
                "#EXT-X-TARGETDURATION" => p.target = value.parse().unwrap(),
                "#EXT-X-MEDIA-SEQUENCE" => p.media_sequence = value.parse().unwrap(),
                "#EXT-X-SERVER-CONTROL" => {
                    p.can_block_reload = attribute(value, "CAN-BLOCK-RELOAD") == Some("YES");
                    p.part_hold_back = attribute(value, "PART-HOLD-BACK").unwrap().parse().unwrap();
                    p.hold_back = attribute(value, "HOLD-BACK").unwrap().parse().unwrap();
                }
                "#EXT-X-PART-INF" => {
                    p.part_target = attribute(value, "PART-TARGET").unwrap().parse().unwrap()
                }
                "#EXT-X-INDEPENDENT-SEGMENTS" | "#EXT-X-MAP" => {}
                "#EXT-X-PROGRAM-DATE-TIME" => {
                    assert!(next.is_none(), "two dates for one segment:\n{text}");
                    next = Some(Segment {
                        start: pdt(value),
                        ..current()
                    });
                }
                // The segment in progress has parts but no date: it follows the last.
                "#EXT-X-PART" => next.get_or_insert_with(current).parts.push(Part {
                    uri: attribute(value, "URI").unwrap().to_owned(),
                    duration: attribute(value, "DURATION").unwrap().parse().unwrap(),
                    independent: attribute(value, "INDEPENDENT") == Some("YES"),
                }),
                "#EXTINF" => extinf = Some(value.trim_end_matches(',').parse::<f64>().unwrap()),
                "#EXT-X-PRELOAD-HINT" => {
                    assert_eq!(attribute(value, "TYPE"), Some("PART"));
                    p.hint = Some(attribute(value, "URI").unwrap().to_owned());
                }
                _ if !line.starts_with('#') => {
                    let mut s = next.take().expect("a dated segment");
                    s.msn = line.strip_suffix(".m4s").unwrap().parse().unwrap();
                    s.duration = Some(extinf.take().expect("EXTINF before the URI"));
                    p.segments.push(s);
                }
                _ => panic!("unexpected line {line:?} in\n{text}"),
            }
        }
        if let Some(mut open) = next {
            assert!(
                open.start.is_nan(),
                "a date for the segment in progress:\n{text}"
            );
            let last = p.segments.last().expect("a complete segment");
            open.msn = last.msn + 1;
            open.start = last.start + last.duration.unwrap();
            p.segments.push(open);
        }
        p
    }

    fn open(&self) -> &Segment {
        let open = self.segments.last().unwrap();
        assert!(
            open.duration.is_none(),
            "no segment in progress:\n{}",
            self.text
        );
        open
    }

    /// The newest part: (segment, index).
    fn last_part(&self) -> (u64, usize) {
        let open = self.open();
        (open.msn, open.parts.len() - 1)
    }

    fn lists_part(&self, msn: u64, i: usize) -> bool {
        self.text.contains(&format!("URI=\"{msn}.{i}.m4s\""))
    }
}

#[tokio::test]
async fn the_playlist_lists_parts_with_consistent_numbers() {
    let origin = start().await;
    let p = origin.playlist("").await;
    println!("{}", p.text);
    assert!(p.version >= 7, "EXT-X-MAP with fMP4");
    assert_eq!(p.target, 1.0);
    assert!(p.can_block_reload, "{}", p.text);
    assert_eq!(p.part_target, 0.1, "PART-TARGET is the chunk length");
    assert!(p.part_hold_back >= 3.0 * p.part_target, "{}", p.text);
    assert!(p.hold_back >= 3.0 * p.target, "{}", p.text);

    let complete: Vec<&Segment> = p.segments.iter().filter(|s| s.duration.is_some()).collect();
    assert_eq!(complete.len(), 6, "the HLS window is unchanged");
    assert_eq!(complete[0].msn, p.media_sequence);
    assert!(complete.windows(2).all(|w| w[1].msn == w[0].msn + 1));
    let with_parts: Vec<&&Segment> = complete.iter().filter(|s| !s.parts.is_empty()).collect();
    assert!(
        (1..=3).contains(&with_parts.len()),
        "parts of the last few segments only:\n{}",
        p.text
    );
    for s in &complete {
        assert!(
            (s.start - s.msn as f64).abs() < 1e-3,
            "the demo's segment {} starts at its own unix second",
            s.msn
        );
    }
    for s in &with_parts {
        let sum: f64 = s.parts.iter().map(|x| x.duration).sum();
        let extinf = s.duration.unwrap();
        assert!(
            (sum - extinf).abs() < 0.001,
            "segment {}: parts sum to {sum}, EXTINF {extinf}",
            s.msn
        );
    }
    let open = p.open();
    assert_eq!(open.msn, complete.last().unwrap().msn + 1);
    assert!(!open.parts.is_empty());
    for s in p.segments.iter().filter(|s| !s.parts.is_empty()) {
        for (i, part) in s.parts.iter().enumerate() {
            assert_eq!(part.uri, format!("{}.{i}.m4s", s.msn));
            assert!(
                part.duration <= p.part_target && part.duration > 0.0,
                "{} lasts {}",
                part.uri,
                part.duration
            );
            assert_eq!(
                part.independent,
                i == 0,
                "{}: a segment's first part starts with its keyframe",
                part.uri
            );
        }
    }
    let (m, i) = p.last_part();
    let hint = p.hint.as_deref().expect("a preload hint");
    assert!(
        hint == format!("{m}.{}.m4s", i + 1) || hint == format!("{}.0.m4s", m + 1),
        "the hint {hint} names the part after {m}.{i}"
    );
    assert!(p
        .text
        .ends_with(&format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"\n")));
    // The newest part ended less than two parts ago: the playlist is at the live edge.
    let edge = open.part_end(i);
    let now = unix_now();
    assert!(
        now - edge < 0.25 && now >= edge - 0.01,
        "edge {edge}, now {now}"
    );
}

#[tokio::test]
async fn a_blocking_reload_returns_each_next_part_as_it_appears() {
    let origin = start().await;
    let mut p = origin.playlist("").await;
    let started = Instant::now();
    let mut delays = Vec::new();
    let mut blocked = 0;
    for _ in 0..12 {
        let (m, i) = p.last_part();
        // As hls.js asks in low-latency mode: the part after the newest.
        let asked = unix_now();
        let next = origin
            .playlist(&format!("?_HLS_msn={m}&_HLS_part={}", i + 1))
            .await;
        let answered = unix_now();
        // The part after m.i: m.(i+1), or, when segment m ended after i+1 parts, (m+1).0.
        let (nm, ni) = if next.lists_part(m, i + 1) {
            (m, i + 1)
        } else {
            assert!(
                next.lists_part(m + 1, 0),
                "asked {m}.{}, got\n{}",
                i + 1,
                next.text
            );
            (m + 1, 0)
        };
        let segment = next.segments.iter().find(|s| s.msn == nm).unwrap();
        let available = segment.part_end(ni);
        if asked < available - 0.02 {
            blocked += 1;
        }
        delays.push(answered - available);
        assert_eq!(
            next.last_part(),
            (nm, ni),
            "answered as soon as that part existed"
        );
        p = next;
    }
    let took = started.elapsed();
    // Twelve parts of 100 ms: the answers came at the stream's pace, not at once and
    // not after a 3 s timeout.
    assert!(
        took > Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert!(blocked >= 10, "only {blocked} of 12 requests were held");
    assert!(
        delays.iter().all(|d| *d > -0.01 && *d < 0.15),
        "seconds from a part's end to the answer listing it: {delays:?}"
    );
}

#[tokio::test]
async fn a_reload_for_a_whole_segment_waits_for_it_to_be_complete() {
    let origin = start().await;
    let p = origin.playlist("").await;
    let open = p.open().msn;
    let t = Instant::now();
    let next = origin.playlist(&format!("?_HLS_msn={open}")).await;
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let last = next
        .segments
        .iter()
        .rfind(|s| s.duration.is_some())
        .unwrap();
    assert_eq!(
        last.msn, open,
        "the segment that was in progress is complete"
    );
}

#[tokio::test]
async fn blocking_requests_too_far_ahead_or_malformed_get_400_at_once() {
    let origin = start().await;
    let p = origin.playlist("").await;
    let (m, i) = p.last_part();
    let last_complete = m - 1;
    for query in [
        format!("?_HLS_msn={}", last_complete + 3),
        format!("?_HLS_msn={}&_HLS_part=0", last_complete + 10),
        // 3 s of parts past the newest is the Advance Part Limit (30 at 100 ms).
        format!("?_HLS_msn={m}&_HLS_part={}", i + 31),
        "?_HLS_part=1".to_owned(),
        "?_HLS_msn=abc".to_owned(),
        format!("?_HLS_msn={m}&_HLS_part=-1"),
    ] {
        let t = Instant::now();
        let r = origin.get(&format!("index.m3u8{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{query}: {:?}",
            t.elapsed()
        );
        assert_eq!(r.headers()["cache-control"], "no-cache", "{query}");
    }
    // Two segments past the last complete one is still a fair question.
    let t = Instant::now();
    let r = origin
        .get(&format!("index.m3u8?_HLS_msn={}", last_complete + 2))
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() > Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_preload_hinted_part_is_held_then_sent_and_is_a_slice_of_its_segment() {
    let origin = start().await;
    let p = origin.playlist("").await;
    let hint = p.hint.clone().unwrap();
    let (msn, part): (u64, usize) = {
        let mut it = hint.trim_end_matches(".m4s").split('.');
        (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        )
    };
    let asked = unix_now();
    let r = origin.get(&hint).await;
    let answered = unix_now();
    assert_eq!(
        r.status(),
        200,
        "the demo's steady GOP makes the hint right"
    );
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=86400, immutable"
    );
    assert_eq!(r.headers()["content-type"], "video/iso.segment");
    let hinted = r.bytes().await.unwrap().to_vec();

    // Once its segment is complete, the part is a slice of the segment.
    let done = origin.playlist(&format!("?_HLS_msn={msn}")).await;
    let segment = done.segments.iter().find(|s| s.msn == msn).unwrap();
    let available = segment.part_end(part);
    assert!(
        asked < available,
        "asked {asked}, the part ends at {available}"
    );
    assert!(
        answered >= available - 0.01 && answered < available + 0.15,
        "answered {:.3} s after the part ended",
        answered - available
    );
    let whole = origin.bytes(&format!("{msn}.m4s")).await;
    let mut parts = Vec::new();
    for i in 0..segment.parts.len() {
        parts.push(origin.bytes(&format!("{msn}.{i}.m4s")).await);
    }
    assert_eq!(parts[part], hinted);
    let offset: usize = parts[..part].iter().map(Vec::len).sum();
    assert_eq!(&whole[offset..offset + hinted.len()], &hinted[..]);
    assert_eq!(
        parts.concat(),
        whole,
        "a segment is its parts, concatenated"
    );
}

#[tokio::test]
async fn parts_that_will_not_come_are_404_at_once() {
    let origin = start().await;
    let p = origin.playlist("").await;
    let (m, i) = p.last_part();
    for name in [
        // Far enough from the edge that no part made meanwhile makes them the next one.
        format!("{m}.{}.m4s", i + 5),
        format!("{}.3.m4s", m + 1),
        format!("{}.0.m4s", m + 5),
        format!("{m}.0{i}.m4s"),
        "1.0.m4s".to_owned(),
    ] {
        let t = Instant::now();
        let r = origin.get(&name).await;
        assert_eq!(r.status(), 404, "{name}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{name}");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{name}: {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn cache_headers_keep_media_for_good_and_playlists_briefly() {
    let origin = start().await;
    let r = origin.get("index.m3u8").await;
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=0, s-maxage=1"
    );
    let p = Playlist::parse(&r.text().await.unwrap());
    let (m, i) = p.last_part();

    let r = origin
        .get(&format!("index.m3u8?_HLS_msn={m}&_HLS_part={}", i + 1))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=3",
        "a blocking answer stays right: cacheable for 3 target durations"
    );
    let segment = p
        .segments
        .iter()
        .rfind(|s| s.duration.is_some())
        .unwrap()
        .msn;
    for path in [format!("{m}.0.m4s"), format!("{segment}.m4s")] {
        let r = origin.get(&path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=86400, immutable",
            "{path}"
        );
    }
}

/// `(track id, base decode time, summed sample durations, first sample is sync)` of
/// each `traf` of a part, which must be exactly one `moof` then one `mdat`.
fn moof_mdat(part: &[u8]) -> Vec<(u32, u64, u64, bool)> {
    let mut buf = part;
    let Some(Any::Moof(moof)) = Any::decode_maybe(&mut buf).unwrap() else {
        panic!("a part starts with moof");
    };
    let Some(Any::Mdat(_)) = Any::decode_maybe(&mut buf).unwrap() else {
        panic!("then mdat");
    };
    assert!(buf.is_empty(), "nothing after the mdat");
    moof.traf
        .iter()
        .map(|t| {
            let entries = &t.trun[0].samples;
            let duration = entries.iter().map(|e| u64::from(e.duration.unwrap())).sum();
            // sample_depends_on = 2: a sync sample (see media::cmaf).
            let sync = entries.get(0).unwrap().flags.unwrap() & 0x0300_0000 == 0x0200_0000;
            (
                t.tfhd.track_id,
                t.tfdt.as_ref().unwrap().base_media_decode_time,
                duration,
                sync,
            )
        })
        .collect()
}

#[tokio::test]
async fn parts_are_moof_mdat_whose_decode_times_continue_the_previous_part() {
    let origin = start().await;
    let p = origin.playlist("").await;
    let mut next_dts = std::collections::HashMap::new();
    let mut checked = 0;
    for s in p.segments.iter().filter(|s| !s.parts.is_empty()) {
        for part in &s.parts {
            let trafs = moof_mdat(&origin.bytes(&part.uri).await);
            assert_eq!(trafs[0].0, 1, "{}: video first", part.uri);
            assert_eq!(
                trafs[0].3, part.independent,
                "{}: INDEPENDENT=YES iff keyframe",
                part.uri
            );
            for (track, base, duration, _) in trafs {
                if let Some(expected) = next_dts.insert(track, base + duration) {
                    assert_eq!(base, expected, "{}: track {track} tfdt", part.uri);
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 11,
        "parts of a segment and of the next: {checked}"
    );
}

#[tokio::test]
async fn ffmpeg_reads_the_low_latency_playlist() {
    let origin = start().await;
    let Ok(version) = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
    else {
        eprintln!("SKIPPED ffmpeg_reads_the_low_latency_playlist: ffmpeg is not installed");
        return;
    };
    assert!(version.status.success());
    let run = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(format!("{}/index.m3u8", origin.base))
        .args(["-t", "3", "-f", "null", "-"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("ffmpeg done within 60 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
}
