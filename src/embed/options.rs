//! Widget options, read from `data-*` attributes or a JS object, validated without the
//! DOM so every error message is tested. Pure.

/// Validated options of one widget.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// HLS playlist URL (`data-stream`), as written.
    pub stream: Option<String>,
    /// Low-latency WebSocket URL (`data-ll`), as written.
    pub low_latency: Option<String>,
    /// Start muted (autoplay needs it). Default true.
    pub muted: bool,
    /// Language forced by `data-lang`; `None` follows the page, then the browser.
    pub lang: Option<crate::i18n::Lang>,
    /// `data-theme="light"`; dark otherwise.
    pub light: bool,
    /// `data-layout`: `auto` (chat over the video when narrow, beside it when wide),
    /// `video` (no chat), `chat` (chat only, no video), `overlay` (the chat's messages
    /// and hearts alone on a transparent background, read-only: OBS's Browser Source).
    pub layout: Layout,
    /// `data-accent`, `data-radius`, `data-font`: CSS values for the theme's custom
    /// properties, checked to be plain values (no `;`, `{`, `url(`).
    pub accent: Option<String>,
    /// See `accent`.
    pub radius: Option<String>,
    /// See `accent`.
    pub font: Option<String>,
    /// `data-poster`: image shown before the first frame.
    pub poster: Option<String>,
    /// `data-chat`: the chat WebSocket URL; no chat without it.
    pub chat: Option<String>,
    /// `data-mod-token`: shows moderation actions (the server checks the token).
    pub mod_token: Option<String>,
    /// `data-max-height`: no rendition taller than this many pixels is loaded (a
    /// multivariant stream); the viewer's quality menu cannot go above it either.
    pub max_height: Option<u32>,
}

/// How the widget arranges video and chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Chat over the video when narrow, beside it when wide.
    #[default]
    Auto,
    /// Video only, even if a chat URL is given.
    Video,
    /// Chat only: no video is loaded.
    Chat,
    /// The broadcast's overlay: messages and floating hearts on a transparent
    /// background, nothing to type or tap, no video (see `/overlay/{stream}`).
    Overlay,
}

impl Layout {
    /// No video is loaded.
    pub fn without_video(self) -> bool {
        matches!(self, Layout::Chat | Layout::Overlay)
    }
}

/// A problem with the options, naming the attribute to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The attribute, e.g. `data-stream`.
    pub attribute: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.attribute, self.problem)
    }
}

fn url_option(
    value: Option<String>,
    attribute: &'static str,
    schemes: &[&str],
) -> Result<Option<String>, OptionError> {
    let Some(v) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let scheme = v.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    let relative = v.starts_with('/') || v.starts_with('.') || scheme.is_none();
    if relative || scheme.as_deref().is_some_and(|s| schemes.contains(&s)) {
        Ok(Some(v))
    } else {
        Err(OptionError {
            attribute,
            problem: format!("\"{v}\" is not a {} URL", slash_list(schemes)),
        })
    }
}

impl Options {
    /// Reads options through `get`, which answers for a camelCase key (`stream`, `ll`,
    /// `muted`) — a script's `dataset` or a plain object.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<Options, OptionError> {
        let stream = url_option(get("stream"), "data-stream", &["http", "https"])?;
        let low_latency = url_option(get("ll"), "data-ll", &["ws", "wss", "http", "https"])?;
        let chat_only = matches!(
            get("layout").as_deref().map(str::trim),
            Some("chat") | Some("overlay")
        );
        if stream.is_none() && low_latency.is_none() && !chat_only {
            return Err(OptionError {
                attribute: "data-stream",
                problem: "missing: give the URL of an HLS playlist (.m3u8)".into(),
            });
        }
        let muted = match get("muted").as_deref().map(str::trim) {
            None | Some("") | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => {
                return Err(OptionError {
                    attribute: "data-muted",
                    problem: format!("\"{other}\" is not true or false"),
                })
            }
        };
        let lang = match get("lang")
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
        {
            None => None,
            Some(tag) => Some(
                crate::i18n::Lang::from_tag(&tag).ok_or_else(|| OptionError {
                    attribute: "data-lang",
                    problem: format!("\"{tag}\" is not a supported language (en, fr)"),
                })?,
            ),
        };
        let light = match get("theme").as_deref().map(str::trim) {
            None | Some("") | Some("dark") => false,
            Some("light") => true,
            Some(other) => {
                return Err(OptionError {
                    attribute: "data-theme",
                    problem: format!("\"{other}\" is not light or dark"),
                })
            }
        };
        let layout = match get("layout").as_deref().map(str::trim) {
            None | Some("") | Some("auto") => Layout::Auto,
            Some("video") => Layout::Video,
            Some("chat") => Layout::Chat,
            Some("overlay") => Layout::Overlay,
            Some(other) => {
                return Err(OptionError {
                    attribute: "data-layout",
                    problem: format!("\"{other}\" is not auto, video, chat or overlay"),
                })
            }
        };
        let chat = url_option(get("chat"), "data-chat", &["ws", "wss", "http", "https"])?;
        if layout.without_video() && chat.is_none() {
            return Err(OptionError {
                attribute: "data-chat",
                problem: "missing: this data-layout needs the chat URL".into(),
            });
        }
        Ok(Options {
            layout,
            stream,
            low_latency,
            muted,
            lang,
            light,
            accent: css_value(get("accent"), "data-accent")?,
            radius: css_value(get("radius"), "data-radius")?,
            font: css_value(get("font"), "data-font")?,
            poster: url_option(get("poster"), "data-poster", &["http", "https", "data"])?,
            chat: if layout == Layout::Video { None } else { chat },
            mod_token: get("modToken")
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
            max_height: max_height(get("maxHeight"))?,
        })
    }
}

/// `data-max-height`: a whole number of pixels, at least 1.
fn max_height(value: Option<String>) -> Result<Option<u32>, OptionError> {
    let Some(v) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match crate::player::playlist::integer(&v).and_then(|n| u32::try_from(n).ok()) {
        Some(n) if n > 0 => Ok(Some(n)),
        _ => Err(OptionError {
            attribute: "data-max-height",
            problem: format!("\"{v}\" is not a height in pixels (such as 720)"),
        }),
    }
}

/// `list.join("/")` by hand: std's join is about 1 KB of wasm for this message alone.
fn slash_list(list: &[&str]) -> String {
    let mut out = String::new();
    for s in list {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(s);
    }
    out
}

/// A CSS value safe to put in a custom property: no way out of the declaration.
fn css_value(
    value: Option<String>,
    attribute: &'static str,
) -> Result<Option<String>, OptionError> {
    let Some(v) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let lower = v.to_ascii_lowercase();
    let bad = v.len() > 100
        || v.chars()
            .any(|c| matches!(c, ';' | '{' | '}' | '<' | '>' | '\\' | '@') || c.is_control())
        || contains(&lower, "url(")
        || contains(&lower, "expression(");
    if bad {
        return Err(OptionError {
            attribute,
            problem: format!("\"{v}\" is not a plain CSS value"),
        });
    }
    Ok(Some(v))
}

/// `haystack.contains(needle)` by a plain scan: `str::contains` brings core's Two-Way
/// substring searcher, about 2 KB of wasm, for these two short needles.
pub(crate) fn contains(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Turns an absolute `http(s)` URL into the matching `ws(s)` URL; leaves others alone.
pub fn websocket_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Options, OptionError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Options::read(|k| map.get(k).cloned())
    }

    #[test]
    fn stream_alone_is_enough() {
        let o = read(&[("stream", "https://cdn.example/live/index.m3u8")]).unwrap();
        assert_eq!(
            o.stream.as_deref(),
            Some("https://cdn.example/live/index.m3u8")
        );
        assert_eq!(o.low_latency, None);
        assert!(o.muted);
    }

    #[test]
    fn missing_stream_names_the_attribute() {
        let e = read(&[]).unwrap_err();
        assert_eq!(e.attribute, "data-stream");
        assert!(e.to_string().starts_with("data-stream: missing"));
        assert_eq!(
            read(&[("stream", "  ")]).unwrap_err().attribute,
            "data-stream"
        );
    }

    #[test]
    fn bad_schemes_are_refused() {
        assert_eq!(
            read(&[("stream", "javascript:alert(1)")])
                .unwrap_err()
                .attribute,
            "data-stream"
        );
        assert_eq!(
            read(&[("stream", "/a.m3u8"), ("ll", "ftp://x/ll")])
                .unwrap_err()
                .attribute,
            "data-ll"
        );
        assert_eq!(
            read(&[("stream", "/a.m3u8"), ("muted", "maybe")])
                .unwrap_err()
                .attribute,
            "data-muted"
        );
    }

    #[test]
    fn theme_language_and_css_values() {
        let o = read(&[
            ("stream", "/a.m3u8"),
            ("lang", "fr-CA"),
            ("theme", "light"),
            ("accent", "#0af"),
            ("font", "\"Inter\", sans-serif"),
        ])
        .unwrap();
        assert_eq!(o.lang, Some(crate::i18n::Lang::Fr));
        assert!(o.light);
        assert_eq!(o.accent.as_deref(), Some("#0af"));
        assert_eq!(o.font.as_deref(), Some("\"Inter\", sans-serif"));
        assert_eq!(
            read(&[("stream", "/a"), ("lang", "de")])
                .unwrap_err()
                .attribute,
            "data-lang"
        );
        assert_eq!(
            read(&[("stream", "/a"), ("theme", "neon")])
                .unwrap_err()
                .attribute,
            "data-theme"
        );
        for evil in [
            "red; background: url(x)",
            "red}body{",
            "url(https://x)",
            "</style>",
        ] {
            assert_eq!(
                read(&[("stream", "/a"), ("accent", evil)])
                    .unwrap_err()
                    .attribute,
                "data-accent",
                "{evil}"
            );
        }
    }

    #[test]
    fn layouts() {
        assert_eq!(read(&[("stream", "/a")]).unwrap().layout, Layout::Auto);
        let video = read(&[("stream", "/a"), ("chat", "/chat/x"), ("layout", "video")]).unwrap();
        assert_eq!(
            (video.layout, video.chat),
            (Layout::Video, None),
            "video only drops the chat"
        );
        let chat = read(&[("chat", "/chat/x"), ("layout", "chat")]).unwrap();
        assert_eq!(chat.layout, Layout::Chat, "chat only needs no stream");
        assert_eq!(
            read(&[("layout", "chat")]).unwrap_err().attribute,
            "data-chat"
        );
        let overlay = read(&[("chat", "/chat/x"), ("layout", "overlay")]).unwrap();
        assert_eq!(
            overlay.layout,
            Layout::Overlay,
            "the overlay needs no stream"
        );
        assert!(overlay.layout.without_video() && !Layout::Auto.without_video());
        assert_eq!(
            read(&[("layout", "overlay")]).unwrap_err().attribute,
            "data-chat"
        );
        assert_eq!(
            read(&[("stream", "/a"), ("layout", "grid")])
                .unwrap_err()
                .attribute,
            "data-layout"
        );
    }

    #[test]
    fn max_height_is_a_whole_number_of_pixels() {
        assert_eq!(read(&[("stream", "/a")]).unwrap().max_height, None);
        let o = read(&[("stream", "/a"), ("maxHeight", " 360 ")]).unwrap();
        assert_eq!(o.max_height, Some(360));
        assert_eq!(
            read(&[("stream", "/a"), ("maxHeight", "")])
                .unwrap()
                .max_height,
            None,
            "empty: no maximum"
        );
        for bad in ["0", "360p", "-1", "7.5", "high", "99999999999"] {
            let e = read(&[("stream", "/a"), ("maxHeight", bad)]).unwrap_err();
            assert_eq!(e.attribute, "data-max-height", "{bad}");
            assert!(e.problem.contains("height in pixels"), "{e}");
        }
    }

    #[test]
    fn relative_urls_and_websocket_schemes() {
        let o = read(&[
            ("stream", "/live/demo/index.m3u8"),
            ("ll", "wss://h/live/demo/ll"),
            ("muted", "false"),
        ])
        .unwrap();
        assert_eq!(o.low_latency.as_deref(), Some("wss://h/live/demo/ll"));
        assert!(!o.muted);
        assert_eq!(websocket_url("https://h/ll"), "wss://h/ll");
        assert_eq!(websocket_url("http://h:1/ll"), "ws://h:1/ll");
        assert_eq!(websocket_url("ws://h/ll"), "ws://h/ll");
    }
}
