//! Why a stream cannot play, in words a viewer can act on, decided from what went
//! wrong: a codec this browser lacks, an encryption the player does not do, an
//! address that is not an HLS playlist, a server that does not allow this page to
//! read it (CORS). The UI turns a [`Reason`] into French or English; the console gets
//! its `Display`.
//!
//! Pure: the browser's answers (`isTypeSupported`, whether a `no-cors` request
//! reached the server) are passed in, so every decision is tested natively.
//!
//! A 404 on the first playlist load is not here: lucarne's origin and nginx-rtmp
//! answer 404 for a stream that has not started yet, and the widget then says
//! "offline" and starts by itself once it has.

/// What the viewer is told when the stream cannot play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The browser cannot decode these codecs, named for people: "HEVC (hvc1)".
    Codec(String),
    /// Segments are encrypted with a method or key system the player does not
    /// decrypt: "SAMPLE-AES", "SAMPLE-AES (com.apple.streamingkeydelivery)".
    Encryption(String),
    /// The address answers, but not with an HLS playlist (an HTML page, JSON).
    NotHls,
    /// The stream's server answers but does not allow this page to read it: it
    /// must send `Access-Control-Allow-Origin`.
    Cors,
    /// The playlist answered 403: a private broadcast, and this page has no valid
    /// playback token (`data-token`), or it expired.
    Private,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Codec(c) => write!(f, "this browser cannot decode {c}"),
            Reason::Encryption(m) => write!(f, "segments encrypted with {m} are not supported"),
            Reason::NotHls => f.write_str("the address is not an HLS playlist"),
            Reason::Cors => f.write_str(
                "the stream's server does not send Access-Control-Allow-Origin for this page",
            ),
            Reason::Private => f.write_str(
                "the broadcast is private (HTTP 403): the page needs a valid data-token",
            ),
        }
    }
}

/// Sample entries named for people; the others are shown as they are.
const FAMILIES: [(&str, &str); 12] = [
    ("hvc1", "HEVC"),
    ("hev1", "HEVC"),
    ("dvh1", "Dolby Vision"),
    ("dvhe", "Dolby Vision"),
    ("av01", "AV1"),
    ("vp09", "VP9"),
    ("avc1", "H.264"),
    ("avc3", "H.264"),
    ("mp4a", "AAC"),
    ("ac-3", "AC-3"),
    ("ec-3", "E-AC-3"),
    ("opus", "Opus"),
];

/// A codec of an RFC 6381 list named for people: `hvc1.1.6.L93.B0` is
/// "HEVC (hvc1)". Unknown ones are their sample entry (the part before the first dot).
pub fn codec_name(codec: &str) -> String {
    let fourcc = codec.trim().split('.').next().unwrap_or("");
    match FAMILIES.iter().find(|(f, _)| *f == fourcc) {
        Some((_, family)) => format!("{family} ({fourcc})"),
        None => fourcc.to_owned(),
    }
}

/// Why codecs the browser refused together cannot play: the ones it refuses one by
/// one (`supported` is `isTypeSupported`), or all of them when each alone passes
/// (only the combination is refused). Built by hand, not with `join`: std's join
/// code is about 1 KB of wasm.
pub fn codecs<'a>(
    list: impl Iterator<Item = &'a str> + Clone,
    supported: impl Fn(&str) -> bool,
) -> Reason {
    let lacking = |c: &str| !supported(&format!("video/mp4; codecs=\"{}\"", c.trim()));
    let some_lacking = list.clone().any(lacking);
    let mut names = String::new();
    for c in list.filter(|c| !c.trim().is_empty() && (!some_lacking || lacking(c))) {
        if !names.is_empty() {
            names.push_str(", ");
        }
        names.push_str(&codec_name(c));
    }
    Reason::Codec(names)
}

/// How a playlist load failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `fetch` rejected (a TypeError: refused, reset, DNS, or CORS). `reachable`: a
    /// `no-cors` request to the same URL got an answer, so the server is there and
    /// only the CORS check failed.
    Network {
        /// The `no-cors` probe was answered.
        reachable: bool,
    },
    /// An answer whose body does not start with `#EXTM3U`.
    NotM3u8,
    /// HTTP 403.
    Forbidden,
}

/// What a failed playlist load means: `None` is a passing trouble (reconnect with
/// backoff), `Some` a reason to stop and say why. Only a first load decides: once a
/// playlist was read from the URL, the same failure is an outage (a captive portal's
/// page, a network cut), not a wrong address.
pub fn playlist_failure(failure: Failure, ever_loaded: bool) -> Option<Reason> {
    // A refusal the server will repeat, first load or not (a token that expired
    // mid-broadcast): asking again changes nothing.
    if failure == Failure::Forbidden {
        return Some(Reason::Private);
    }
    if ever_loaded {
        return None;
    }
    match failure {
        Failure::Network { reachable: true } => Some(Reason::Cors),
        Failure::Network { reachable: false } => None,
        Failure::NotM3u8 => Some(Reason::NotHls),
        Failure::Forbidden => Some(Reason::Private),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_are_named_for_people() {
        assert_eq!(codec_name("hvc1.1.6.L93.B0"), "HEVC (hvc1)");
        assert_eq!(codec_name("hev1.2.4.L120.B0"), "HEVC (hev1)");
        assert_eq!(codec_name("av01.0.04M.08"), "AV1 (av01)");
        assert_eq!(codec_name("avc1.64001f"), "H.264 (avc1)");
        assert_eq!(codec_name("mp4a.40.2"), "AAC (mp4a)");
        assert_eq!(codec_name("ec-3"), "E-AC-3 (ec-3)");
        assert_eq!(codec_name(" xyz1.2 "), "xyz1");
    }

    #[test]
    fn an_hevc_stream_on_a_browser_without_hevc_names_hevc_alone() {
        // A browser with H.264 and AAC only, as Chromium and Firefox on Linux.
        let h264_aac = |m: &str| m.contains("avc1") || m.contains("mp4a");
        assert_eq!(
            codecs("hvc1.1.6.L93.B0,mp4a.40.2".split(','), h264_aac),
            Reason::Codec("HEVC (hvc1)".into())
        );
        assert_eq!(
            codecs("hev1.1.6.L93.B0, ec-3".split(','), h264_aac),
            Reason::Codec("HEVC (hev1), E-AC-3 (ec-3)".into())
        );
    }

    #[test]
    fn each_codec_is_asked_alone() {
        let asked = std::cell::RefCell::new(Vec::new());
        let r = codecs(["avc1.64001f", " mp4a.40.2"].into_iter(), |m: &str| {
            asked.borrow_mut().push(m.to_owned());
            false
        });
        for want in ["avc1.64001f", "mp4a.40.2"] {
            let mime = format!("video/mp4; codecs=\"{want}\"");
            assert!(asked.borrow().contains(&mime), "{:?}", asked.borrow());
        }
        assert_eq!(r, Reason::Codec("H.264 (avc1), AAC (mp4a)".into()));
    }

    #[test]
    fn a_refused_combination_of_supported_codecs_names_them_all() {
        assert_eq!(
            codecs("avc1.64001f,mp4a.40.2".split(','), |_| true),
            Reason::Codec("H.264 (avc1), AAC (mp4a)".into())
        );
    }

    #[test]
    fn a_reachable_server_that_fails_the_fetch_is_a_cors_refusal() {
        let refused = Failure::Network { reachable: true };
        assert_eq!(playlist_failure(refused, false), Some(Reason::Cors));
    }

    #[test]
    fn an_unreachable_server_is_an_outage_not_cors() {
        let down = Failure::Network { reachable: false };
        assert_eq!(playlist_failure(down, false), None);
    }

    #[test]
    fn a_page_that_is_not_a_playlist_is_said_at_once() {
        assert_eq!(
            playlist_failure(Failure::NotM3u8, false),
            Some(Reason::NotHls)
        );
    }

    #[test]
    fn a_refused_playlist_is_a_private_broadcast_even_after_it_played() {
        assert_eq!(
            playlist_failure(Failure::Forbidden, false),
            Some(Reason::Private)
        );
        assert_eq!(
            playlist_failure(Failure::Forbidden, true),
            Some(Reason::Private)
        );
    }

    #[test]
    fn after_a_playlist_was_read_failures_are_outages() {
        for f in [Failure::NotM3u8, Failure::Network { reachable: true }] {
            assert_eq!(playlist_failure(f, true), None, "{f:?}");
        }
    }

    #[test]
    fn the_console_words_name_the_header() {
        assert!(Reason::Cors
            .to_string()
            .contains("Access-Control-Allow-Origin"));
        assert_eq!(
            Reason::Codec("HEVC (hvc1)".into()).to_string(),
            "this browser cannot decode HEVC (hvc1)"
        );
    }
}
