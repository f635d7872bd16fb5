//! HLS playlist parsing (RFC 8216), reduced to what a live fMP4 client acts on, and
//! the choice of where to start and what to load next.
//!
//! Written by hand rather than with `m3u8-rs`: that crate brings `nom` and `chrono`
//! into the WebAssembly binary for tags this player never reads, and the widget's whole
//! size budget is that of hls.js's light build. Unknown tags are ignored, as the RFC
//! asks. Pure: no web-sys.

/// At most this many parts are read from a playlist (a server lists those of the last
/// three target durations: about 30 with 100 ms parts).
const MAX_PARTS: usize = 2000;

/// A parsed playlist.
#[derive(Debug, Clone, PartialEq)]
pub enum Playlist {
    /// A multivariant playlist: pick a variant and load its media playlist.
    Multivariant(Vec<Variant>),
    /// A media playlist.
    Media(MediaPlaylist),
}

/// One `EXT-X-STREAM-INF` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// URI of the media playlist, as written (resolve against the playlist URL).
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// The `CODECS` attribute, when given.
    pub codecs: Option<String>,
    /// `RESOLUTION=WxH` in pixels; 0 × 0 when not given (or not two integers).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// The `AUDIO` attribute: the group of `EXT-X-MEDIA` audio renditions to play with
    /// this variant (demuxed audio), when given.
    pub audio: Option<String>,
}

/// One `EXT-X-MEDIA:TYPE=AUDIO` rendition of a multivariant playlist (demuxed audio,
/// as CMAF packagers publish it: the variants carry video only).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRendition {
    /// `GROUP-ID`: variants name it in their `AUDIO` attribute.
    pub group: String,
    /// `NAME`, for people.
    pub name: String,
    /// `LANGUAGE` (a BCP 47 tag), when given.
    pub language: Option<String>,
    /// `DEFAULT=YES`: the one to play without another preference.
    pub default: bool,
    /// `URI` of its media playlist; `None` when the audio is in the variant's own
    /// segments.
    pub uri: Option<String>,
}

/// At most this many audio renditions are read from a playlist (a bound on what a
/// hostile playlist can make the widget hold).
const MAX_AUDIO_RENDITIONS: usize = 64;

/// The `EXT-X-MEDIA:TYPE=AUDIO` renditions of a multivariant playlist, in its order;
/// entries without `GROUP-ID` or `NAME` (required by RFC 8216 4.3.4.1) are skipped.
pub fn audio_renditions(text: &str) -> Vec<AudioRendition> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("#EXT-X-MEDIA:"))
        .filter(|a| attribute(a, "TYPE") == Some("AUDIO"))
        .filter_map(|a| {
            Some(AudioRendition {
                group: attribute(a, "GROUP-ID")?.to_owned(),
                name: attribute(a, "NAME")?.to_owned(),
                language: attribute(a, "LANGUAGE").map(str::to_owned),
                default: attribute(a, "DEFAULT") == Some("YES"),
                uri: attribute(a, "URI").map(str::to_owned),
            })
        })
        .take(MAX_AUDIO_RENDITIONS)
        .collect()
}

/// Which audio rendition of `group` to play, for a viewer whose languages are
/// `languages` in order of preference (the page's `lang`, then the browser's): the
/// first language some rendition has, matched on the whole tag then on its primary
/// subtag (`fr-CA` takes `fr`, `fr` takes `fr-FR`), case-insensitive; without a match,
/// the `DEFAULT=YES` one, else the group's first. `None`: the group has none.
pub fn choose_audio<'a>(
    renditions: &'a [AudioRendition],
    group: &str,
    languages: &[String],
) -> Option<&'a AudioRendition> {
    let in_group: Vec<&AudioRendition> = renditions.iter().filter(|r| r.group == group).collect();
    let primary = |tag: &str| {
        tag.split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    for wanted in languages.iter().filter(|l| !l.trim().is_empty()) {
        let wanted = wanted.trim();
        let lang = |r: &&&AudioRendition| r.language.as_deref().unwrap_or_default().to_owned();
        if let Some(r) = in_group
            .iter()
            .find(|r| lang(r).eq_ignore_ascii_case(wanted))
        {
            return Some(r);
        }
        if let Some(r) = in_group
            .iter()
            .find(|r| r.language.is_some() && primary(&lang(r)) == primary(wanted))
        {
            return Some(r);
        }
    }
    in_group
        .iter()
        .find(|r| r.default)
        .or(in_group.first())
        .copied()
}

/// A media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// URI as written.
    pub uri: String,
    /// Seconds (`EXTINF`).
    pub duration: f64,
    /// Preceded by `EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// The `EXT-X-MAP` URI in force for this segment.
    pub map: Option<String>,
    /// Marked `EXT-X-GAP`: do not load.
    pub gap: bool,
    /// The `EXT-X-KEY` in force for this segment (`None`: clear, `METHOD=NONE`).
    pub key: Option<Key>,
}

/// How segments are encrypted (`EXT-X-KEY`, RFC 8216 4.3.2.4).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// `METHOD=AES-128`: each whole segment is AES-128-CBC with PKCS#7 padding.
    Aes128 {
        /// The key's URI, as written (16 raw bytes there).
        uri: String,
        /// `IV`; without one, the segment's media sequence number is the IV
        /// (see [`Key::iv`]).
        iv: Option<[u8; 16]>,
    },
    /// A method or key system this player does not decrypt, named for the viewer:
    /// `SAMPLE-AES`, `SAMPLE-AES-CTR`, or the method and its `KEYFORMAT` when that is
    /// not `identity` (a DRM's).
    Unsupported(String),
}

impl Key {
    /// The AES-128 IV of segment `msn`: the tag's `IV`, else the media sequence number
    /// as a big-endian 128-bit integer (RFC 8216 5.2).
    pub fn iv(given: Option<[u8; 16]>, msn: u64) -> [u8; 16] {
        given.unwrap_or_else(|| {
            let mut iv = [0; 16];
            iv[8..].copy_from_slice(&msn.to_be_bytes());
            iv
        })
    }

    /// Reads an `EXT-X-KEY` attribute list; `Ok(None)` for `METHOD=NONE`.
    fn parse(list: &str) -> Option<Option<Key>> {
        let method = attribute(list, "METHOD")?;
        let format = attribute(list, "KEYFORMAT").unwrap_or("identity");
        if method == "NONE" {
            return Some(None);
        }
        if format != "identity" {
            return Some(Some(Key::Unsupported(format!("{method} ({format})"))));
        }
        if method != "AES-128" {
            return Some(Some(Key::Unsupported(method.to_owned())));
        }
        let iv = match attribute(list, "IV") {
            Some(hex) => Some(iv_hex(hex)?),
            None => None,
        };
        Some(Some(Key::Aes128 {
            uri: attribute(list, "URI")?.to_owned(),
            iv,
        }))
    }
}

/// `0x` and at most 32 hexadecimal digits, as a 128-bit big-endian number.
fn iv_hex(s: &str) -> Option<[u8; 16]> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    let mut n = 0u128;
    for c in digits.chars() {
        n = n << 4 | u128::from(c.to_digit(16)?);
    }
    Some(n.to_be_bytes())
}

/// One `EXT-X-PART` (LL-HLS, RFC 8216bis 4.4.4.9): a piece of a segment, listed as soon
/// as it exists, before the segment it belongs to is complete.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The segment it belongs to.
    pub msn: u64,
    /// Its place in that segment, from 0.
    pub index: u32,
    /// URI as written.
    pub uri: String,
    /// Seconds.
    pub duration: f64,
    /// `INDEPENDENT=YES`: it starts with a frame that needs no earlier one.
    pub independent: bool,
}

/// What to do next when following the live edge part by part ([`MediaPlaylist::part_step`]).
#[derive(Debug, PartialEq)]
pub enum PartStep<'a> {
    /// Load this part.
    Part(&'a Part),
    /// The segment is complete and none of it was loaded: load it whole.
    Segment,
    /// The segment is complete and its listed parts from here on are loaded: go on at
    /// part 0 of the next one.
    Next,
    /// Not listed yet: ask for it with a blocking reload.
    Wait,
    /// Out of the playlist (fell out of its window, or far ahead): start again.
    Lost,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    /// `EXT-X-TARGETDURATION`, seconds.
    pub target_duration: f64,
    /// Sequence number of the first segment.
    pub media_sequence: u64,
    /// Segments, oldest first.
    pub segments: Vec<Segment>,
    /// `EXT-X-ENDLIST`: the broadcast is over.
    pub ended: bool,
    /// LL-HLS parts, oldest first: those of the last few complete segments, then those
    /// of the segment being made (after the last segment line).
    pub parts: Vec<Part>,
    /// `EXT-X-PART-INF:PART-TARGET`, seconds; 0 without parts.
    pub part_target: f64,
    /// `EXT-X-SERVER-CONTROL:PART-HOLD-BACK`, seconds; 0 when not given.
    pub part_hold_back: f64,
    /// `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`: the server holds a reload asking
    /// for a part (`_HLS_msn`, `_HLS_part`) until that part exists.
    pub can_block_reload: bool,
}

/// Why a playlist was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistError {
    /// Does not start with `#EXTM3U`.
    NotM3u8,
    /// A media playlist without `EXT-X-TARGETDURATION`.
    NoTargetDuration,
    /// A tag with a value that does not parse.
    BadTag(String),
}

impl std::fmt::Display for PlaylistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaylistError::NotM3u8 => f.write_str("not an HLS playlist (no #EXTM3U)"),
            PlaylistError::NoTargetDuration => {
                f.write_str("media playlist without #EXT-X-TARGETDURATION")
            }
            PlaylistError::BadTag(t) => write!(f, "malformed tag: {t}"),
        }
    }
}

/// Parses a decimal number as HLS writes them (`6`, `1.000000`, `0.5`); no exponent,
/// no sign. Hand-rolled because `f64::from_str` costs 4 KB of WebAssembly.
pub fn decimal(s: &str) -> Option<f64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for b in int.bytes() {
        value = value * 10.0 + f64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
    }
    let mut scale = 1f64;
    for b in frac.bytes() {
        scale /= 10.0;
        value += scale * f64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
    }
    Some(value)
}

/// `s.parse::<u64>()` by hand (same answers: an optional `+`, then at least one digit,
/// no overflow): std's integer parser would be the only user of its code in the widget.
pub fn integer(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    let mut n = 0u64;
    for b in digits.bytes() {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// `WxH` (`RESOLUTION`), two decimal integers that fit in `u32`.
fn resolution(v: &str) -> Option<(u32, u32)> {
    let (w, h) = v.split_once('x')?;
    let px = |s: &str| integer(s).and_then(|n| u32::try_from(n).ok());
    Some((px(w)?, px(h)?))
}

/// Reads `NAME=value` or `NAME="value"` from an attribute list.
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], after.get(end + 1..).unwrap_or(""))
        };
        if key == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// Parses a playlist.
pub fn parse(text: &str) -> Result<Playlist, PlaylistError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next().map(|l| l.trim_start_matches('\u{feff}')) != Some("#EXTM3U") {
        return Err(PlaylistError::NotM3u8);
    }
    let bad = |l: &str| PlaylistError::BadTag(l.chars().take(80).collect());

    let mut variants = Vec::new();
    let mut pending_variant: Option<Variant> = None;
    let mut media = MediaPlaylist::default();
    let mut target = None;
    let mut duration = None;
    let mut discontinuity = false;
    let mut gap = false;
    let mut map = None;
    let mut msn = None;
    let mut key = None;
    // The last tag was an `EXT-X-KEY`: a further one offers the same segments in
    // another key system, and one this player decrypts is kept over one it cannot.
    let mut keys_offered = false;
    // Parts listed since the last segment line: they belong to the next segment.
    let mut part_index = 0u32;

    for line in lines {
        if let Some(tag) = line.strip_prefix('#') {
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            match name {
                "EXT-X-STREAM-INF" => {
                    let bw = attribute(value, "BANDWIDTH")
                        .and_then(integer)
                        .ok_or_else(|| bad(line))?;
                    let (width, height) = attribute(value, "RESOLUTION")
                        .and_then(resolution)
                        .unwrap_or((0, 0));
                    pending_variant = Some(Variant {
                        uri: String::new(),
                        bandwidth: bw,
                        codecs: attribute(value, "CODECS").map(str::to_owned),
                        width,
                        height,
                        audio: attribute(value, "AUDIO").map(str::to_owned),
                    });
                }
                "EXT-X-TARGETDURATION" => target = Some(decimal(value).ok_or_else(|| bad(line))?),
                // Only before the first segment (RFC 8216 4.4.3.2): later, it would
                // renumber segments already read and `get` would find the wrong ones.
                "EXT-X-MEDIA-SEQUENCE" => {
                    if msn.is_some() {
                        return Err(bad(line));
                    }
                    media.media_sequence = integer(value).ok_or_else(|| bad(line))?;
                }
                "EXTINF" => {
                    let d = value.split(',').next().unwrap_or("");
                    duration = Some(decimal(d.trim()).ok_or_else(|| bad(line))?);
                }
                "EXT-X-DISCONTINUITY" => discontinuity = true,
                "EXT-X-GAP" => gap = true,
                "EXT-X-MAP" => {
                    map = Some(attribute(value, "URI").ok_or_else(|| bad(line))?.to_owned())
                }
                "EXT-X-ENDLIST" => media.ended = true,
                "EXT-X-PART-INF" => {
                    media.part_target = attribute(value, "PART-TARGET")
                        .and_then(decimal)
                        .ok_or_else(|| bad(line))?
                }
                "EXT-X-SERVER-CONTROL" => {
                    media.can_block_reload = attribute(value, "CAN-BLOCK-RELOAD") == Some("YES");
                    if let Some(v) = attribute(value, "PART-HOLD-BACK") {
                        media.part_hold_back = decimal(v).ok_or_else(|| bad(line))?;
                    }
                }
                "EXT-X-PART" => {
                    if media.parts.len() >= MAX_PARTS {
                        return Err(PlaylistError::BadTag("more than 2000 parts".into()));
                    }
                    let uri = attribute(value, "URI").ok_or_else(|| bad(line))?;
                    let duration = attribute(value, "DURATION")
                        .and_then(decimal)
                        .ok_or_else(|| bad(line))?;
                    media.parts.push(Part {
                        msn: *msn.get_or_insert(media.media_sequence),
                        index: part_index,
                        uri: uri.to_owned(),
                        duration,
                        independent: attribute(value, "INDEPENDENT") == Some("YES"),
                    });
                    part_index = part_index.saturating_add(1);
                }
                "EXT-X-KEY" => {
                    let k = Key::parse(value).ok_or_else(|| bad(line))?;
                    let keep = keys_offered && !matches!(key, Some(Key::Unsupported(_)));
                    if !keep || matches!(k, Some(Key::Aes128 { .. })) {
                        key = k;
                    }
                    keys_offered = true;
                    continue;
                }
                _ => {}
            }
            keys_offered = false;
        } else if let Some(v) = pending_variant.take() {
            variants.push(Variant {
                uri: line.to_owned(),
                ..v
            });
        } else if let Some(d) = duration.take() {
            let n = *msn.get_or_insert(media.media_sequence);
            part_index = 0;
            media.segments.push(Segment {
                msn: n,
                uri: line.to_owned(),
                duration: d,
                discontinuity: std::mem::take(&mut discontinuity),
                map: map.clone(),
                gap: std::mem::take(&mut gap),
                key: key.clone(),
            });
            // A segment numbered u64::MAX has no successor: `end_msn` would overflow.
            msn =
                Some(n.checked_add(1).ok_or_else(|| {
                    PlaylistError::BadTag("EXT-X-MEDIA-SEQUENCE too large".into())
                })?);
        }
    }
    if !variants.is_empty() {
        return Ok(Playlist::Multivariant(variants));
    }
    media.target_duration = target.ok_or(PlaylistError::NoTargetDuration)?;
    Ok(Playlist::Media(media))
}

impl MediaPlaylist {
    /// The segment with sequence number `msn`.
    pub fn get(&self, msn: u64) -> Option<&Segment> {
        let i = msn.checked_sub(self.media_sequence)?;
        self.segments.get(usize::try_from(i).ok()?)
    }

    /// Sequence number after the last segment.
    pub fn end_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }

    /// Seconds of media from the start of `msn` to the end of the playlist.
    pub fn duration_from(&self, msn: u64) -> f64 {
        self.segments
            .iter()
            .filter(|s| s.msn >= msn)
            .map(|s| s.duration)
            .sum()
    }

    /// Parts are listed, the server blocks reloads for them, and the broadcast goes on:
    /// the live edge can be followed part by part. Only for fMP4 segments in the clear
    /// (parts of MPEG-TS or AES-128 segments are loaded as whole segments).
    pub fn low_latency(&self) -> bool {
        self.part_target > 0.0
            && self.can_block_reload
            && !self.ended
            && self
                .segments
                .last()
                .is_some_and(|s| s.map.is_some() && s.key.is_none())
    }

    /// Where to start following parts `hold_back` seconds behind the newest: the
    /// newest independent part that leaves at least that much after its start (a
    /// decoder can begin there). `None` when no listed part does.
    pub fn part_start(&self, hold_back: f64) -> Option<(u64, u32)> {
        let mut acc = 0.0;
        self.parts.iter().rev().find_map(|p| {
            acc += p.duration;
            (p.independent && acc >= hold_back - 1e-6).then_some((p.msn, p.index))
        })
    }

    /// What comes next when following parts at part `index` of segment `msn`.
    pub fn part_step(&self, msn: u64, index: u32) -> PartStep<'_> {
        if let Some(p) = self.part(msn, index) {
            return PartStep::Part(p);
        }
        if msn < self.media_sequence {
            return PartStep::Lost;
        }
        if self.get(msn).is_some() {
            return if index == 0 {
                PartStep::Segment
            } else {
                PartStep::Next
            };
        }
        // The segment being made, or the first part of the next one (what a blocking
        // reload for a part past the last of a segment waits for, §6.2.5.2).
        if msn == self.end_msn() || (msn == self.end_msn() + 1 && index == 0) {
            PartStep::Wait
        } else {
            PartStep::Lost
        }
    }

    /// How far behind the newest part to play: `PART-HOLD-BACK`, else the three part
    /// targets the spec asks servers for.
    pub fn part_hold_back(&self) -> f64 {
        if self.part_hold_back > 0.0 {
            self.part_hold_back
        } else {
            3.0 * self.part_target
        }
    }

    /// Part `index` of segment `msn`, when listed.
    pub fn part(&self, msn: u64, index: u32) -> Option<&Part> {
        self.parts
            .iter()
            .rev()
            .find(|p| p.msn == msn && p.index == index)
    }

    /// Seconds of parts listed after part `index` of segment `msn`.
    pub fn duration_after_part(&self, msn: u64, index: u32) -> f64 {
        self.parts
            .iter()
            .filter(|p| (p.msn, p.index) > (msn, index))
            .map(|p| p.duration)
            .sum()
    }

    /// Where to start playing `target_latency` seconds behind the live edge: the
    /// latest segment that still leaves that much media to the end.
    pub fn live_start(&self, target_latency: f64) -> Option<u64> {
        let mut acc = 0.0;
        for s in self.segments.iter().rev() {
            acc += s.duration;
            if acc >= target_latency - 1e-6 {
                return Some(s.msn);
            }
        }
        self.segments.first().map(|s| s.msn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_answers_like_u64_from_str() {
        for s in [
            "0",
            "12",
            "+7",
            "",
            "+",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "12a",
            "٣",
            "18446744073709551615",
            "18446744073709551616",
            "00042",
        ] {
            assert_eq!(integer(s), s.parse::<u64>().ok(), "{s:?}");
        }
    }

    const FFMPEG_LIVE: &str =
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:12\n\
#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1.000000,\nstream12.m4s\n\
#EXTINF:1.000000,\nstream13.m4s\n#EXTINF:0.966667,\nstream14.m4s\n";

    fn media(text: &str) -> MediaPlaylist {
        match parse(text).unwrap() {
            Playlist::Media(m) => m,
            other => panic!("expected media playlist, got {other:?}"),
        }
    }

    #[test]
    fn parses_ffmpeg_fmp4_live_playlist() {
        let m = media(FFMPEG_LIVE);
        assert_eq!(m.target_duration, 1.0);
        assert_eq!(m.segments.len(), 3);
        assert_eq!(m.segments[0].msn, 12);
        assert_eq!(m.segments[2].uri, "stream14.m4s");
        assert_eq!(m.segments[2].map.as_deref(), Some("init.mp4"));
        assert!((m.duration_from(13) - 1.966667).abs() < 1e-9);
        assert_eq!(m.end_msn(), 15);
        assert!(!m.ended);
    }

    #[test]
    fn live_start_leaves_the_target_latency_to_the_edge() {
        let m = media(FFMPEG_LIVE);
        assert_eq!(m.live_start(1.5), Some(13));
        assert_eq!(m.live_start(0.5), Some(14));
        assert_eq!(
            m.live_start(10.0),
            Some(12),
            "short playlist: start at its first segment"
        );
        assert_eq!(MediaPlaylist::default().live_start(3.0), None);
    }

    #[test]
    fn discontinuity_gap_endlist_and_unknown_tags() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n#EXTINF:2,\na.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\",BYTERANGE=\"10@0\"\n#EXT-X-GAP\n#EXTINF:2,\nb.m4s\n\
             #EXT-X-FUTURE-TAG:X=1\n#EXTINF:2.0,title\nc.m4s\n#EXT-X-ENDLIST\n",
        );
        assert_eq!(m.media_sequence, 0);
        assert!(!m.segments[0].discontinuity && m.segments[1].discontinuity);
        assert!(m.segments[1].gap && !m.segments[2].gap);
        assert_eq!(m.segments[0].map, None);
        assert_eq!(m.segments[2].map.as_deref(), Some("init2.mp4"));
        assert!(m.ended);
    }

    #[test]
    fn multivariant_lists_variants_with_codecs() {
        let p = parse(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360\nlow/index.m3u8\n\
             #EXT-X-STREAM-INF:RESOLUTION=1280x720,BANDWIDTH=2000000\nhigh/index.m3u8\n",
        )
        .unwrap();
        let Playlist::Multivariant(v) = p else {
            panic!("not multivariant")
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(v[1].bandwidth, 2_000_000);
        assert_eq!(v[1].uri, "high/index.m3u8");
        assert_eq!((v[0].width, v[0].height), (640, 360));
        assert_eq!(
            (v[1].width, v[1].height),
            (1280, 720),
            "RESOLUTION before BANDWIDTH"
        );
    }

    #[test]
    fn ffmpeg_var_stream_map_ladder_keeps_bandwidth_resolution_and_codecs() {
        // ffmpeg 5.1, -var_stream_map "v:0,a:0 v:1,a:1 v:2,a:2" -master_pl_name.
        let p = parse(
            "#EXTM3U\n#EXT-X-VERSION:7\n             #EXT-X-STREAM-INF:BANDWIDTH=2490400,RESOLUTION=960x540,CODECS=\"avc1.42c01f,mp4a.40.2\"\nv0/index.m3u8\n\n             #EXT-X-STREAM-INF:BANDWIDTH=796400,RESOLUTION=640x360,CODECS=\"avc1.42c01e,mp4a.40.2\"\nv1/index.m3u8\n\n             #EXT-X-STREAM-INF:BANDWIDTH=246400,RESOLUTION=320x180,CODECS=\"avc1.42c00d,mp4a.40.2\"\nv2/index.m3u8\n",
        )
        .unwrap();
        let Playlist::Multivariant(v) = p else {
            panic!("not multivariant")
        };
        let got: Vec<_> = v
            .iter()
            .map(|v| (v.uri.as_str(), v.bandwidth, v.width, v.height))
            .collect();
        assert_eq!(
            got,
            [
                ("v0/index.m3u8", 2_490_400, 960, 540),
                ("v1/index.m3u8", 796_400, 640, 360),
                ("v2/index.m3u8", 246_400, 320, 180),
            ]
        );
        assert_eq!(v[2].codecs.as_deref(), Some("avc1.42c00d,mp4a.40.2"));
    }

    #[test]
    fn a_missing_or_odd_resolution_is_zero_not_an_error() {
        let p = parse(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=wide\na\n             #EXT-X-STREAM-INF:BANDWIDTH=2,RESOLUTION=640x\nb\n             #EXT-X-STREAM-INF:BANDWIDTH=3,RESOLUTION=99999999999x2\nc\n             #EXT-X-STREAM-INF:BANDWIDTH=4\nd\n",
        )
        .unwrap();
        let Playlist::Multivariant(v) = p else {
            panic!("not multivariant")
        };
        assert_eq!(v.len(), 4);
        assert!(v.iter().all(|v| v.width == 0 && v.height == 0), "{v:?}");
    }

    #[test]
    fn broken_playlists_are_errors_not_panics() {
        assert_eq!(parse("<html>404</html>"), Err(PlaylistError::NotM3u8));
        assert_eq!(parse(""), Err(PlaylistError::NotM3u8));
        assert_eq!(
            parse("#EXTM3U\n#EXTINF:1,\na.ts\n"),
            Err(PlaylistError::NoTargetDuration)
        );
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-TARGETDURATION:x\n"),
            Err(PlaylistError::BadTag(_))
        ));
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:abc,\na\n"),
            Err(PlaylistError::BadTag(_))
        ));
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"x\"\na\n"),
            Err(PlaylistError::BadTag(_))
        ));
        // A URI line with no EXTINF before it is ignored, not a segment.
        assert!(media("#EXTM3U\n#EXT-X-TARGETDURATION:1\nstray.m4s\n")
            .segments
            .is_empty());
    }

    #[test]
    fn a_media_sequence_that_overflows_is_an_error_not_a_panic() {
        // Found by the playlist fuzz target: the segment after u64::MAX overflowed.
        let last = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:18446744073709551614\n";
        let one = format!("{last}#EXTINF:1,\na\n");
        let Ok(Playlist::Media(m)) = parse(&one) else {
            panic!("the last numberable segment is fine");
        };
        assert_eq!(m.end_msn(), u64::MAX);
        let two = format!("{one}#EXTINF:1,\nb\n#EXTINF:1,\nc\n");
        assert!(matches!(parse(&two), Err(PlaylistError::BadTag(_))));
        let fuzzed = include_bytes!("../../fuzz/regressions/playlist/media_sequence_overflow");
        assert!(parse(&String::from_utf8_lossy(fuzzed)).is_err());
    }

    #[test]
    fn a_media_sequence_after_a_segment_is_an_error_not_a_renumbering() {
        // Found by the playlist fuzz target: segment 0 was then found as segment 1.
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na\n#EXT-X-MEDIA-SEQUENCE:1\n";
        assert!(matches!(parse(text), Err(PlaylistError::BadTag(_))));
        let fuzzed =
            include_bytes!("../../fuzz/regressions/playlist/media_sequence_after_a_segment");
        if let Ok(Playlist::Media(m)) = parse(&String::from_utf8_lossy(fuzzed)) {
            for s in &m.segments {
                assert_eq!(m.get(s.msn), Some(s));
            }
        }
    }

    #[test]
    fn aes_128_keys_apply_to_the_segments_after_them() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXTINF:1,\nclear.m4s\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\n#EXTINF:1,\na.m4s\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k2\",IV=0x000102030405060708090A0B0C0D0E0F\n#EXTINF:1,\nb.m4s\n\
             #EXT-X-KEY:METHOD=NONE\n#EXTINF:1,\nc.m4s\n",
        );
        let keys: Vec<_> = m.segments.iter().map(|s| s.key.clone()).collect();
        let iv: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            keys,
            [
                None,
                Some(Key::Aes128 {
                    uri: "key.bin".into(),
                    iv: None
                }),
                Some(Key::Aes128 {
                    uri: "k2".into(),
                    iv: Some(iv)
                }),
                None
            ]
        );
    }

    #[test]
    fn without_an_iv_the_media_sequence_number_is_the_iv() {
        let mut want = [0u8; 16];
        want[14] = 0x01;
        want[15] = 0x2c;
        assert_eq!(Key::iv(None, 300), want, "300 = 0x12c, big-endian");
        assert_eq!(Key::iv(Some([9; 16]), 300), [9; 16]);
        assert_eq!(Key::iv(None, u64::MAX)[..8], [0; 8]);
    }

    #[test]
    fn short_ivs_are_numbers_and_bad_ones_are_errors() {
        let key = |iv: &str| {
            parse(&format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV={iv}\n#EXTINF:1,\na\n"
            ))
        };
        let Ok(Playlist::Media(m)) = key("0x1F") else {
            panic!("short IV")
        };
        let mut want = [0u8; 16];
        want[15] = 0x1f;
        assert_eq!(
            m.segments[0].key,
            Some(Key::Aes128 {
                uri: "k".into(),
                iv: Some(want)
            })
        );
        for bad in ["1F", "0x", "0xZZ", "0x000102030405060708090A0B0C0D0E0F00"] {
            assert!(matches!(key(bad), Err(PlaylistError::BadTag(_))), "{bad}");
        }
        assert!(matches!(
            parse("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-KEY:METHOD=AES-128\n"),
            Err(PlaylistError::BadTag(_))
        ));
    }

    #[test]
    fn sample_aes_and_drm_key_formats_are_named_as_unsupported() {
        let first_key = |tags: &str| {
            media(&format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:1\n{tags}#EXTINF:1,\na\n"
            ))
            .segments[0]
                .key
                .clone()
        };
        assert_eq!(
            first_key("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\n"),
            Some(Key::Unsupported("SAMPLE-AES".into()))
        );
        assert_eq!(
            first_key("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:x\"\n"),
            Some(Key::Unsupported("SAMPLE-AES-CTR".into()))
        );
        assert_eq!(
            first_key("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"),
            Some(Key::Unsupported("SAMPLE-AES (com.apple.streamingkeydelivery)".into()))
        );
        // The same segments offered in a DRM and in AES-128: AES-128 is kept,
        // whichever comes first.
        let aes = Some(Key::Aes128 {
            uri: "k".into(),
            iv: None,
        });
        let drm = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n";
        let clear = "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",KEYFORMAT=\"identity\"\n";
        assert_eq!(first_key(&format!("{drm}{clear}")), aes);
        assert_eq!(first_key(&format!("{clear}{drm}")), aes);
    }

    #[test]
    fn decimals_as_hls_writes_them() {
        assert_eq!(decimal("6"), Some(6.0));
        assert!((decimal("0.966667").unwrap() - 0.966667).abs() < 1e-12);
        assert_eq!(decimal(".5"), Some(0.5));
        assert_eq!(decimal("2."), Some(2.0));
        for bad in ["", ".", "1e3", "-1", "1.2.3", "x", "1,5"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
    }

    /// What ffmpeg writes for `-var_stream_map "a:0,agroup:aud,language:fr,name:fr
    /// a:0,agroup:aud,language:en,name:en,default:yes v:0,agroup:aud"` (CMAF: video
    /// variant, two audio renditions).
    const DEMUXED: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"fr\",LANGUAGE=\"fr\",DEFAULT=NO,URI=\"fr/index.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"en\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"en/index.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"fr\",LANGUAGE=\"fr\",URI=\"subs.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=1140800,RESOLUTION=480x270,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_aud\"\n\
        v/index.m3u8\n";

    fn langs(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn audio_renditions_and_the_variants_group_are_read() {
        let r = audio_renditions(DEMUXED);
        assert_eq!(r.len(), 2, "subtitles are not audio: {r:?}");
        assert_eq!(
            r[0],
            AudioRendition {
                group: "group_aud".into(),
                name: "fr".into(),
                language: Some("fr".into()),
                default: false,
                uri: Some("fr/index.m3u8".into()),
            }
        );
        assert!(r[1].default && r[1].language.as_deref() == Some("en"));
        let Ok(Playlist::Multivariant(v)) = parse(DEMUXED) else {
            panic!("not multivariant");
        };
        assert_eq!(v[0].audio.as_deref(), Some("group_aud"));
        assert_eq!(v[0].uri, "v/index.m3u8");
        // Required attributes missing: skipped, not an error.
        assert!(audio_renditions("#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"x\"\n").is_empty());
    }

    #[test]
    fn the_audio_language_follows_the_page_then_the_browser_then_default() {
        let r = audio_renditions(DEMUXED);
        let pick = |l: &[&str]| choose_audio(&r, "group_aud", &langs(l)).map(|r| r.name.as_str());
        assert_eq!(pick(&["fr"]), Some("fr"), "a French page gets French");
        assert_eq!(pick(&["fr-CA", "en-US"]), Some("fr"), "primary subtag");
        assert_eq!(pick(&["", "FR"]), Some("fr"), "no page lang: the browser's");
        assert_eq!(pick(&["de", "en-GB"]), Some("en"), "first language offered");
        assert_eq!(pick(&["de"]), Some("en"), "none offered: DEFAULT=YES");
        assert_eq!(pick(&[]), Some("en"));
        assert_eq!(choose_audio(&r, "other", &langs(&["fr"])), None);
        let no_default: Vec<_> = r
            .iter()
            .cloned()
            .map(|mut x| {
                x.default = false;
                x
            })
            .collect();
        assert_eq!(
            choose_audio(&no_default, "group_aud", &langs(&["de"])).map(|r| r.name.as_str()),
            Some("fr"),
            "no default: the group's first"
        );
    }

    #[test]
    fn a_playlist_cannot_make_the_widget_hold_unbounded_renditions() {
        let line = "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\"\n";
        assert_eq!(
            audio_renditions(&line.repeat(1000)).len(),
            MAX_AUDIO_RENDITIONS
        );
    }

    #[test]
    fn attribute_lists_with_quoted_commas() {
        assert_eq!(attribute("A=1,CODECS=\"a,b\",C=x", "CODECS"), Some("a,b"));
        assert_eq!(attribute("A=1,CODECS=\"a,b\",C=x", "C"), Some("x"));
        assert_eq!(attribute("A=\"unterminated", "A"), None);
    }

    /// lucarne-server's LL-HLS playlist as it serves it (abridged to two segments).
    const LLHLS: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.500,HOLD-BACK=3.000\n\
        #EXT-X-PART-INF:PART-TARGET=0.100\n#EXT-X-MEDIA-SEQUENCE:41\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXT-X-PART:DURATION=0.10000,URI=\"41.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.10000,URI=\"41.1.m4s\"\n\
        #EXTINF:0.20000,\n41.m4s\n\
        #EXT-X-PART:DURATION=0.10000,URI=\"42.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.08000,URI=\"42.1.m4s\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"42.2.m4s\"\n";

    #[test]
    fn ll_hls_parts_belong_to_their_segment_and_the_open_one() {
        let m = media(LLHLS);
        assert!(m.low_latency());
        assert_eq!(m.part_target, 0.1);
        assert_eq!(m.part_hold_back(), 0.5);
        assert_eq!(m.segments.len(), 1);
        assert_eq!(m.end_msn(), 42);
        let names: Vec<_> = m.parts.iter().map(|p| (p.msn, p.index)).collect();
        assert_eq!(names, [(41, 0), (41, 1), (42, 0), (42, 1)]);
        assert_eq!(m.part(42, 1).map(|p| p.uri.as_str()), Some("42.1.m4s"));
        assert!(m.part(42, 0).is_some_and(|p| p.independent));
        assert!(!m.part(42, 1).unwrap().independent);
        assert_eq!(m.part(42, 2), None);
        assert!((m.duration_after_part(41, 1) - 0.18).abs() < 1e-9);
        assert_eq!(m.duration_after_part(42, 1), 0.0);
    }

    #[test]
    fn following_parts_loads_listed_ones_waits_for_the_next_and_skips_complete_segments() {
        let m = media(LLHLS);
        assert!(matches!(m.part_step(42, 1), PartStep::Part(p) if p.uri == "42.1.m4s"));
        // The hinted part, and the first of the segment after the open one.
        assert_eq!(m.part_step(42, 2), PartStep::Wait);
        assert_eq!(m.part_step(43, 0), PartStep::Wait);
        assert_eq!(m.part_step(43, 1), PartStep::Lost);
        assert_eq!(m.part_step(44, 0), PartStep::Lost);
        // Segment 41 is complete: past its last part, on to 42; nothing of it yet, whole.
        assert_eq!(m.part_step(41, 2), PartStep::Next);
        // Its parts no longer listed (older than the part window): whole.
        let older = LLHLS
            .replace(
                "#EXT-X-PART:DURATION=0.10000,URI=\"41.0.m4s\",INDEPENDENT=YES\n",
                "",
            )
            .replace("#EXT-X-PART:DURATION=0.10000,URI=\"41.1.m4s\"\n", "");
        assert_eq!(media(&older).part_step(41, 0), PartStep::Segment);
        assert_eq!(media(&older).part_step(41, 1), PartStep::Next);
        assert_eq!(m.part_step(40, 0), PartStep::Lost);
    }

    #[test]
    fn parts_start_on_an_independent_part_at_the_hold_back() {
        let m = media(LLHLS);
        // 0.18 s after 42.0's start: not enough for 0.5 s, so 41.0 (0.38 s) is too
        // short too; none qualifies.
        assert_eq!(m.part_start(0.5), None);
        assert_eq!(m.part_start(0.3), Some((41, 0)));
        assert_eq!(m.part_start(0.15), Some((42, 0)));
        assert_eq!(m.part_start(0.0), Some((42, 0)));
    }

    #[test]
    fn parts_without_blocking_or_after_the_end_are_not_followed() {
        let plain = LLHLS.replace("CAN-BLOCK-RELOAD=YES,", "");
        assert!(!media(&plain).low_latency());
        assert!(!media(&format!("{LLHLS}#EXT-X-ENDLIST\n")).low_latency());
        // Without PART-HOLD-BACK, three part targets.
        let no_hold = LLHLS.replace(",PART-HOLD-BACK=0.500", "");
        assert!((media(&no_hold).part_hold_back() - 0.3).abs() < 1e-9);
        assert!(!media("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.m4s\n").low_latency());
        // MPEG-TS (no EXT-X-MAP) and AES-128 segments go whole.
        assert!(!media(&LLHLS.replace("#EXT-X-MAP:URI=\"init.mp4\"\n", "")).low_latency());
        let key = "#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-MAP";
        assert!(!media(&LLHLS.replace("#EXT-X-MAP", key)).low_latency());
    }

    #[test]
    fn broken_parts_are_errors_and_a_flood_of_parts_is_refused() {
        let no_uri = LLHLS.replace("URI=\"42.1.m4s\"", "X=1");
        assert!(matches!(parse(&no_uri), Err(PlaylistError::BadTag(_))));
        let bad_duration = LLHLS.replace("DURATION=0.08000", "DURATION=soon");
        assert!(matches!(
            parse(&bad_duration),
            Err(PlaylistError::BadTag(_))
        ));
        let mut flood = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:1\n");
        for i in 0..=MAX_PARTS {
            flood.push_str(&format!("#EXT-X-PART:DURATION=0.1,URI=\"{i}.m4s\"\n"));
        }
        assert!(matches!(parse(&flood), Err(PlaylistError::BadTag(_))));
        // A media sequence after a part would renumber it.
        let late = LLHLS.replace("#EXT-X-MEDIA-SEQUENCE:41\n", "") + "#EXT-X-MEDIA-SEQUENCE:9\n";
        assert!(matches!(parse(&late), Err(PlaylistError::BadTag(_))));
    }
}
