//! Just enough ISO-BMFF reading for the player: the codecs string of an init segment
//! (for `addSourceBuffer`), each track's timescale, and a fragment's start time.
//!
//! Hand-written on purpose: a full MP4 crate in the WebAssembly binary would cost more
//! than the rest of the player for three fields. Every read is bounds-checked; malformed
//! input yields `None`, never a panic. Pure.

/// A box: its type and its payload (after the header).
#[derive(Debug, Clone, Copy)]
struct Bx<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

/// Iterates the boxes laid end to end in `data`, stopping at the first malformed one.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = Bx<'_>> {
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?) as u64;
        let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            1 => (16, u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)),
            0 => (8, data.len() as u64),
            n => (8, n),
        };
        let size = usize::try_from(size).ok()?;
        if size < header || size > data.len() {
            return None;
        }
        let body = &data[header..size];
        data = &data[size..];
        Some(Bx { kind, body })
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|b| &b.kind == kind).map(|b| b.body)
}

fn path<'a>(mut data: &'a [u8], kinds: &[&[u8; 4]]) -> Option<&'a [u8]> {
    for k in kinds {
        data = child(data, k)?;
    }
    Some(data)
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// True if `data` begins with an init segment (`ftyp` or `moov` first).
pub fn is_init_segment(data: &[u8]) -> bool {
    matches!(data.get(4..8), Some(b"ftyp") | Some(b"moov"))
}

/// What the player needs from an init segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InitInfo {
    /// RFC 6381 codecs, e.g. `avc1.64001e,mp4a.40.2`.
    pub codecs: Vec<String>,
    /// `(track_id, timescale)` of each track.
    pub timescales: Vec<(u32, u32)>,
    /// Has a video track.
    pub has_video: bool,
}

impl InitInfo {
    /// The MIME type for `MediaSource.addSourceBuffer`.
    pub fn mime(&self) -> String {
        let kind = if self.has_video { "video" } else { "audio" };
        // Joined by hand: `[String]::join` would be a second copy of std's join code
        // (the widget already has the one for `[&str]`), about 1 KB of wasm.
        let mut codecs = String::new();
        for c in &self.codecs {
            if !codecs.is_empty() {
                codecs.push(',');
            }
            codecs.push_str(c);
        }
        format!("{kind}/mp4; codecs=\"{codecs}\"")
    }
}

/// Reads the tracks of an init segment.
pub fn parse_init(data: &[u8]) -> Option<InitInfo> {
    let moov = child(data, b"moov")?;
    let mut info = InitInfo::default();
    for trak in boxes(moov).filter(|b| &b.kind == b"trak") {
        let tkhd = child(trak.body, b"tkhd")?;
        let track_id = be_u32(tkhd, if tkhd.first() == Some(&1) { 20 } else { 12 })?;
        let mdia = child(trak.body, b"mdia")?;
        let mdhd = child(mdia, b"mdhd")?;
        let timescale = be_u32(mdhd, if mdhd.first() == Some(&1) { 20 } else { 12 })?;
        let handler: [u8; 4] = child(mdia, b"hdlr")?.get(8..12)?.try_into().ok()?;
        let stsd = path(mdia, &[b"minf", b"stbl", b"stsd"])?;
        // stsd: version/flags (4), entry count (4), then sample entries.
        let entry = boxes(stsd.get(8..)?).next()?;
        info.timescales.push((track_id, timescale));
        if &handler == b"vide" {
            info.has_video = true;
        }
        if let Some(codec) = codec_string(entry) {
            info.codecs.push(codec);
        }
    }
    (!info.codecs.is_empty()).then_some(info)
}

fn codec_string(entry: Bx<'_>) -> Option<String> {
    let fourcc = std::str::from_utf8(&entry.kind).ok()?;
    match &entry.kind {
        b"avc1" | b"avc3" => {
            // VisualSampleEntry is 78 bytes before its child boxes.
            let avcc = child(entry.body.get(78..)?, b"avcC")?;
            let p = avcc.get(1..4)?;
            Some(format!("{fourcc}.{:02x}{:02x}{:02x}", p[0], p[1], p[2]))
        }
        b"mp4a" => {
            // AudioSampleEntry is 28 bytes; the AAC object type is in the esds's
            // DecoderSpecificInfo, first five bits.
            let esds = child(entry.body.get(28..)?, b"esds")?;
            Some(format!("mp4a.40.{}", aac_object_type(esds).unwrap_or(2)))
        }
        b"hvc1" | b"hev1" => Some(format!("{fourcc}.1.6.L93.B0")),
        b"Opus" => Some("opus".into()),
        b"fLaC" => Some("flac".into()),
        b"av01" => Some("av01.0.08M.08".into()),
        _ => None,
    }
}

/// Reads one MPEG-4 descriptor header at `at`: `(tag, payload start, payload end)`.
fn descriptor(d: &[u8], at: usize) -> Option<(u8, usize, usize)> {
    let tag = *d.get(at)?;
    let (mut len, mut i) = (0usize, at + 1);
    for _ in 0..4 {
        let b = *d.get(i)?;
        i += 1;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    Some((tag, i, i.checked_add(len)?.min(d.len())))
}

/// The AAC audio object type from an `esds` box body: ES_Descriptor (3) >
/// DecoderConfigDescriptor (4) > DecoderSpecificInfo (5), whose first five bits it is.
fn aac_object_type(esds: &[u8]) -> Option<u8> {
    let (tag, es, _) = descriptor(esds, 4)?;
    if tag != 3 {
        return None;
    }
    let flags = *esds.get(es + 2)?;
    let mut at = es + 3;
    if flags & 0x80 != 0 {
        at += 2; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*esds.get(at)?); // URL
    }
    if flags & 0x20 != 0 {
        at += 2; // OCR_ES_Id
    }
    let (tag, dc, _) = descriptor(esds, at)?;
    if tag != 4 {
        return None;
    }
    let (tag, dsi, _) = descriptor(esds, dc + 13)?;
    let ot = (tag == 5).then(|| esds.get(dsi).map(|b| b >> 3))??;
    (ot > 0).then_some(ot)
}

/// The start of a media fragment: the smallest `tfdt` time, in seconds, over its
/// tracks, using the init segment's timescales.
pub fn fragment_start(data: &[u8], init: &InitInfo) -> Option<f64> {
    let moof = child(data, b"moof")?;
    boxes(moof)
        .filter(|b| &b.kind == b"traf")
        .filter_map(|traf| {
            let track_id = be_u32(child(traf.body, b"tfhd")?, 4)?;
            let tfdt = child(traf.body, b"tfdt")?;
            let t = if tfdt.first() == Some(&1) {
                u64::from_be_bytes(tfdt.get(4..12)?.try_into().ok()?)
            } else {
                u64::from(be_u32(tfdt, 4)?)
            };
            let ts = init.timescales.iter().find(|(id, _)| *id == track_id)?.1;
            (ts > 0).then(|| t as f64 / f64::from(ts))
        })
        .reduce(f64::min)
}

/// Whether a media fragment starts on a frame a decoder can begin at: the first
/// sample of every track is a sync sample (`sample_is_non_sync_sample` clear in its
/// `trun` flags, else `tfhd`'s defaults). Flags found nowhere (the `trex` defaults of
/// the init segment) count as sync; a fragment that is not one is not.
pub fn starts_on_keyframe(data: &[u8]) -> bool {
    let Some(moof) = child(data, b"moof") else {
        return false;
    };
    boxes(moof)
        .filter(|b| &b.kind == b"traf")
        .all(|traf| first_sample_flags(traf.body).is_none_or(|f| f & 0x0001_0000 == 0))
}

/// The first sample's flags in a `traf`: `trun`'s `first_sample_flags`, its first
/// per-sample flags, or `tfhd`'s `default_sample_flags`.
fn first_sample_flags(traf: &[u8]) -> Option<u32> {
    if let Some(trun) = child(traf, b"trun") {
        let flags = be_u32(trun, 0)? & 0x00ff_ffff;
        let mut at = 8 + if flags & 0x1 != 0 { 4 } else { 0 };
        if flags & 0x4 != 0 {
            return be_u32(trun, at);
        }
        if flags & 0x400 != 0 {
            at += [0x100, 0x200].iter().filter(|&&f| flags & f != 0).count() * 4;
            return be_u32(trun, at);
        }
    }
    let tfhd = child(traf, b"tfhd")?;
    let flags = be_u32(tfhd, 0)? & 0x00ff_ffff;
    if flags & 0x20 == 0 {
        return None;
    }
    let at = 8 + [(0x1, 8), (0x2, 4), (0x8, 4), (0x10, 4)]
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| n)
        .sum::<usize>();
    be_u32(tfhd, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_fragment_that_starts_on_a_keyframe() {
        // trun with data offset and per-sample duration, size, flags (as the origin
        // writes it), two samples.
        let trun = |first: u32| {
            let mut t = vec![0, 0, 0x07, 0x01];
            t.extend_from_slice(&2u32.to_be_bytes());
            t.extend_from_slice(&0u32.to_be_bytes());
            for f in [first, 0x0101_0000] {
                t.extend_from_slice(&512u32.to_be_bytes());
                t.extend_from_slice(&100u32.to_be_bytes());
                t.extend_from_slice(&f.to_be_bytes());
            }
            bx(b"trun", &t)
        };
        let frag = |flags: u32| {
            let tfhd = bx(b"tfhd", &[0, 2, 0, 0, 0, 0, 0, 1]);
            let moof = bx(b"moof", &bx(b"traf", &[tfhd, trun(flags)].concat()));
            [moof, bx(b"mdat", b"x")].concat()
        };
        assert!(starts_on_keyframe(&frag(0x0200_0000)));
        assert!(!starts_on_keyframe(&frag(0x0101_0000)));
        // first_sample_flags, and tfhd's default flags.
        let mut t = vec![0, 0, 0, 0x05];
        t.extend_from_slice(&1u32.to_be_bytes());
        t.extend_from_slice(&0u32.to_be_bytes());
        t.extend_from_slice(&0x0101_0000u32.to_be_bytes());
        let moof = bx(b"moof", &bx(b"traf", &bx(b"trun", &t)));
        assert!(!starts_on_keyframe(&moof));
        let mut tfhd = vec![0, 0x02, 0, 0x20];
        tfhd.extend_from_slice(&1u32.to_be_bytes());
        tfhd.extend_from_slice(&0x0101_0000u32.to_be_bytes());
        let moof = bx(b"moof", &bx(b"traf", &bx(b"tfhd", &tfhd)));
        assert!(!starts_on_keyframe(&moof));
        assert!(!starts_on_keyframe(b"garbage"));
        let seg = include_bytes!("../../tests/fixtures/demo-0.m4s");
        assert!(starts_on_keyframe(seg));
    }

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn trak(id: u32, handler: &[u8; 4], timescale: u32, entry: Vec<u8>) -> Vec<u8> {
        let mut tkhd = vec![0u8; 12];
        tkhd.extend_from_slice(&id.to_be_bytes());
        tkhd.extend_from_slice(&[0; 60]);
        let mut mdhd = vec![0u8; 12];
        mdhd.extend_from_slice(&timescale.to_be_bytes());
        mdhd.extend_from_slice(&[0; 8]);
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0; 13]);
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(entry);
        let stbl = bx(b"stbl", &bx(b"stsd", &stsd));
        let minf = bx(b"minf", &stbl);
        let mdia = bx(
            b"mdia",
            &[bx(b"mdhd", &mdhd), bx(b"hdlr", &hdlr), minf].concat(),
        );
        bx(b"trak", &[bx(b"tkhd", &tkhd), mdia].concat())
    }

    fn init() -> Vec<u8> {
        let mut avc1 = vec![0u8; 78];
        avc1.extend(bx(b"avcC", &[1, 0x64, 0x00, 0x1e, 0xff]));
        // esds: ES_Descriptor(3) > DecoderConfig(4) > DecoderSpecificInfo(5) = AAC-LC.
        let esds = [
            0, 0, 0, 0, 3, 25, 0, 1, 0, 4, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2,
            0x11, 0x90,
        ];
        let mut mp4a = vec![0u8; 28];
        mp4a.extend(bx(b"esds", &esds));
        let moov = bx(
            b"moov",
            &[
                trak(1, b"vide", 15360, bx(b"avc1", &avc1)),
                trak(2, b"soun", 48000, bx(b"mp4a", &mp4a)),
            ]
            .concat(),
        );
        [bx(b"ftyp", b"iso6\0\0\0\0"), moov].concat()
    }

    #[test]
    fn reads_codecs_and_timescales() {
        let info = parse_init(&init()).unwrap();
        assert_eq!(info.codecs, ["avc1.64001e", "mp4a.40.2"]);
        assert_eq!(info.timescales, [(1, 15360), (2, 48000)]);
        assert_eq!(info.mime(), "video/mp4; codecs=\"avc1.64001e,mp4a.40.2\"");
        assert!(is_init_segment(&init()));
    }

    #[test]
    fn reads_fragment_start_from_tfdt() {
        let info = parse_init(&init()).unwrap();
        let traf = |id: u32, t: u64| {
            let mut tfhd = vec![0, 2, 0, 0];
            tfhd.extend_from_slice(&id.to_be_bytes());
            let mut tfdt = vec![1, 0, 0, 0];
            tfdt.extend_from_slice(&t.to_be_bytes());
            bx(b"traf", &[bx(b"tfhd", &tfhd), bx(b"tfdt", &tfdt)].concat())
        };
        let frag = [
            bx(
                b"moof",
                &[traf(1, 15360 * 10), traf(2, 48000 * 10 - 480)].concat(),
            ),
            bx(b"mdat", b"x"),
        ]
        .concat();
        assert!(!is_init_segment(&frag));
        assert_eq!(fragment_start(&frag, &info), Some(9.99));
    }

    #[test]
    fn reads_the_origins_real_init_segment() {
        let info = parse_init(include_bytes!("../../tests/fixtures/demo-init.mp4")).unwrap();
        assert!(info.codecs[0].starts_with("avc1.64"), "{:?}", info.codecs);
        assert_eq!(info.codecs[1], "mp4a.40.2");
        assert!(info.has_video);
        let seg = include_bytes!("../../tests/fixtures/demo-0.m4s");
        let start = fragment_start(seg, &info).unwrap();
        assert!(start > 1.7e9, "decode times are unix time, got {start}");
    }

    #[test]
    fn malformed_input_is_none_not_a_panic() {
        let good = init();
        for cut in 0..good.len() {
            let _ = parse_init(&good[..cut]);
            let _ = fragment_start(&good[..cut], &InitInfo::default());
        }
        assert_eq!(parse_init(&[0, 0, 0, 1, b'm', b'o', b'o', b'v']), None);
        assert_eq!(parse_init(&[0xff; 64]), None);
    }
}
