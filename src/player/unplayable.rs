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
        }
    }
}

/// A codec of an RFC 6381 list named for people: `hvc1.1.6.L93.B0` is
/// "HEVC (hvc1)". Unknown ones are their sample entry (the part before the first dot).
pub fn codec_name(codec: &str) -> String {
    let fourcc = codec.trim().split('.').next().unwrap_or("");
    let family = match fourcc {
        "hvc1" | "hev1" => "HEVC",
        "dvh1" | "dvhe" | "dva1" | "dvav" => "Dolby Vision",
        "av01" => "AV1",
        "vp09" | "vp9" => "VP9",
        "vp08" | "vp8" => "VP8",
        "avc1" | "avc3" => "H.264",
        "ac-3" => "AC-3",
        "ec-3" => "E-AC-3",
        "ac-4" => "AC-4",
        "opus" | "Opus" => "Opus",
        "fLaC" => "FLAC",
        "mp4a" if codec.contains(".6B") || codec.contains(".69") || codec.contains(".6b") => "MP3",
        "mp4a" => "AAC",
        _ => return fourcc.to_owned(),
    };
    format!("{family} ({fourcc})")
}

/// The container type to ask `isTypeSupported` about one codec alone.
fn mime_of(codec: &str) -> String {
    let video = !matches!(
        codec.split('.').next().unwrap_or(""),
        "mp4a" | "ac-3" | "ec-3" | "ac-4" | "opus" | "Opus" | "fLaC"
    );
    let kind = if video { "video" } else { "audio" };
    format!("{kind}/mp4; codecs=\"{codec}\"")
}

/// Why a comma-separated `codecs` list the browser refused cannot play: the codecs
/// it refuses one by one (`supported` is `isTypeSupported`), or all of them when each
/// alone passes (only the combination is refused).
pub fn codecs(list: &str, supported: impl Fn(&str) -> bool) -> Reason {
    let all: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let lacking: Vec<&str> = all
        .iter()
        .copied()
        .filter(|c| !supported(&mime_of(c)))
        .collect();
    let named = if lacking.is_empty() { &all } else { &lacking };
    let names: Vec<String> = named.iter().map(|c| codec_name(c)).collect();
    Reason::Codec(names.join(", "))
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
}

/// What a failed playlist load means: `None` is a passing trouble (reconnect with
/// backoff), `Some` a reason to stop and say why. Only a first load decides: once a
/// playlist was read from the URL, the same failure is an outage (a captive portal's
/// page, a network cut), not a wrong address.
pub fn playlist_failure(failure: Failure, ever_loaded: bool) -> Option<Reason> {
    if ever_loaded {
        return None;
    }
    match failure {
        Failure::Network { reachable: true } => Some(Reason::Cors),
        Failure::Network { reachable: false } => None,
        Failure::NotM3u8 => Some(Reason::NotHls),
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
        assert_eq!(codec_name("mp4a.6B"), "MP3 (mp4a)");
        assert_eq!(codec_name("ec-3"), "E-AC-3 (ec-3)");
        assert_eq!(codec_name(" xyz1.2 "), "xyz1");
    }

    #[test]
    fn an_hevc_stream_on_a_browser_without_hevc_names_hevc_alone() {
        // A browser with H.264 and AAC only, as Chromium and Firefox on Linux.
        let h264_aac = |m: &str| m.contains("avc1") || m.contains("mp4a");
        assert_eq!(
            codecs("hvc1.1.6.L93.B0,mp4a.40.2", h264_aac),
            Reason::Codec("HEVC (hvc1)".into())
        );
        assert_eq!(
            codecs("hev1.1.6.L93.B0, ec-3", h264_aac),
            Reason::Codec("HEVC (hev1), E-AC-3 (ec-3)".into())
        );
    }

    #[test]
    fn audio_codecs_are_asked_as_audio() {
        let asked = std::cell::RefCell::new(Vec::new());
        let _ = codecs("avc1.64001f,mp4a.40.2", |m: &str| {
            asked.borrow_mut().push(m.to_owned());
            false
        });
        assert_eq!(
            *asked.borrow(),
            [
                "video/mp4; codecs=\"avc1.64001f\"",
                "audio/mp4; codecs=\"mp4a.40.2\""
            ]
        );
    }

    #[test]
    fn a_refused_combination_of_supported_codecs_names_them_all() {
        assert_eq!(
            codecs("avc1.64001f,mp4a.40.2", |_| true),
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
