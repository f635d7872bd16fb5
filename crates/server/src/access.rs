//! Private broadcasts: which streams need a signed playback token, and the token rule.
//! Pure (no I/O, the clock passed in); `http::access` applies it to requests.
//!
//! A stream named with `--private STREAM` is played only with a token minted from the
//! playback secret (`--playback-secret`, or `LUCARNE_PLAYBACK_SECRET`): its playlists,
//! init segments, segments, parts, low-latency push, replays and chat all answer 403
//! without one, and with one from a page whose `Origin` is not allowed (the
//! `--embed-origin` list applies to the video of a private stream as it does to every
//! chat).
//!
//! # Token
//! `EXPIRY.MAC`: `EXPIRY` is the Unix time (seconds) after which the token is refused,
//! `MAC` the lowercase hex HMAC-SHA256, keyed with the playback secret, of
//! `lucarne-playback:STREAM:EXPIRY`. A site's backend mints one per page view, e.g. in
//! Python:
//!
//! ```text
//! exp = int(time.time()) + 3600
//! mac = hmac.new(secret.encode(), f"lucarne-playback:{stream}:{exp}".encode(),
//!                hashlib.sha256).hexdigest()
//! token = f"{exp}.{mac}"
//! ```
//!
//! or `lucarne-server token --stream STREAM --ttl-secs 3600` prints one. The token names
//! its stream, so one stream's token opens no other; it carries no viewer identity (a
//! token is a ticket to watch, not a login). The MAC is compared in constant time.
//!
//! # Where the token travels
//! As the `token` query parameter of the playlist, push and chat URLs. The server adds
//! it to every URI of the playlists it serves, so players (the widget, hls.js, Safari's
//! own) need nothing else. It is never logged: the server logs paths, not queries.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashSet;

/// Shortest playback secret accepted, in bytes: below this an HMAC key is guessable.
pub const MIN_SECRET_BYTES: usize = 16;

/// Options of private broadcasts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccessConfig {
    /// A stream played only with a signed playback token (repeatable).
    #[arg(long = "private", value_name = "STREAM")]
    pub private_streams: Vec<String>,
    /// The secret playback tokens are signed with (at least 16 bytes). Needed with
    /// `--private`.
    #[arg(long, env = "LUCARNE_PLAYBACK_SECRET", hide_env_values = true)]
    pub playback_secret: Option<String>,
}

/// Why the access options cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Private streams need a secret to check tokens against.
    #[error("--private needs --playback-secret (or LUCARNE_PLAYBACK_SECRET) to check tokens")]
    NoSecret,
    /// The secret is too short to be a key.
    #[error("the playback secret must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret,
}

/// Why a request for a private stream is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No `token` parameter.
    #[error("this broadcast is private: a playback token is required")]
    Missing,
    /// Not `EXPIRY.MAC`.
    #[error("the playback token is malformed")]
    Malformed,
    /// Past its expiry.
    #[error("the playback token has expired")]
    Expired,
    /// Not signed with the secret for this stream.
    #[error("the playback token is not valid for this stream")]
    Forged,
    /// The page's origin may not play this stream.
    #[error("this page's origin may not play this broadcast")]
    Origin,
}

/// Which streams are private, and the key their tokens are checked with.
#[derive(Debug, Default)]
pub struct Access {
    private: HashSet<String>,
    key: Option<Vec<u8>>,
}

impl Access {
    /// From the options; an error if private streams have no usable secret.
    pub fn new(config: &AccessConfig) -> Result<Access, AccessError> {
        let key = config
            .playback_secret
            .as_ref()
            .map(|s| s.as_bytes().to_vec());
        if let Some(k) = &key {
            if k.len() < MIN_SECRET_BYTES {
                return Err(AccessError::ShortSecret);
            }
        }
        if !config.private_streams.is_empty() && key.is_none() {
            return Err(AccessError::NoSecret);
        }
        Ok(Access {
            private: config.private_streams.iter().cloned().collect(),
            key,
        })
    }

    /// True when `stream` needs a token.
    pub fn is_private(&self, stream: &str) -> bool {
        self.private.contains(stream)
    }

    /// Checks `token` for `stream` at Unix time `now`; public streams need none.
    pub fn check(&self, stream: &str, token: Option<&str>, now: u64) -> Result<(), Denied> {
        if !self.is_private(stream) {
            return Ok(());
        }
        let key = self.key.as_deref().ok_or(Denied::Forged)?;
        verify(key, stream, token.ok_or(Denied::Missing)?, now)
    }
}

impl Access {
    /// A token for `stream` valid `ttl_secs` from `now`, when the stream is private
    /// (for the broadcaster console's own chat; `None` for a public stream).
    pub fn mint_for(&self, stream: &str, now: u64, ttl_secs: u64) -> Option<String> {
        let key = self.key.as_deref()?;
        self.is_private(stream)
            .then(|| mint(key, stream, now + ttl_secs))
    }
}

fn mac(secret: &[u8], stream: &str, expiry: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(b"lucarne-playback:");
    mac.update(stream.as_bytes());
    mac.update(b":");
    mac.update(expiry.to_string().as_bytes());
    mac
}

/// A token for `stream` valid until Unix time `expiry`.
pub fn mint(secret: &[u8], stream: &str, expiry: u64) -> String {
    let tag = mac(secret, stream, expiry).finalize().into_bytes();
    let mut out = expiry.to_string();
    out.push('.');
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks a token for `stream` at Unix time `now`.
pub fn verify(secret: &[u8], stream: &str, token: &str, now: u64) -> Result<(), Denied> {
    let (expiry, hex) = token.split_once('.').ok_or(Denied::Malformed)?;
    let expiry: u64 = expiry
        .parse()
        .ok()
        .filter(|_| expiry.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(Denied::Malformed)?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Denied::Malformed);
    }
    let tag: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    // Checked before the expiry, so a forged token never learns whether it expired.
    mac(secret, stream, expiry)
        .verify_slice(&tag)
        .map_err(|_| Denied::Forged)?;
    if now > expiry {
        return Err(Denied::Expired);
    }
    Ok(())
}

/// The `token` parameter of a URL's query.
pub fn token_in(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// `playlist` with `token` added to every URI it names (media lines and `URI="..."`
/// attributes: maps, parts, preload hints, renditions), so a player that resolves them
/// against the playlist's URL keeps the token. `token` is a checked token, so it needs
/// no escaping (digits, a dot, hex).
pub fn sign_playlist(playlist: &str, token: &str) -> String {
    let add = |uri: &str| {
        let sep = if uri.contains('?') { '&' } else { '?' };
        format!("{uri}{sep}token={token}")
    };
    let mut out = String::with_capacity(playlist.len() + 64 * 16);
    for line in playlist.lines() {
        if !line.starts_with('#') {
            if !line.is_empty() {
                out.push_str(&add(line));
            }
        } else if let Some(at) = line.find("URI=\"") {
            let start = at + 5;
            match line[start..].find('"') {
                Some(len) => {
                    out.push_str(&line[..start]);
                    out.push_str(&add(&line[start..start + len]));
                    out.push_str(&line[start + len..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-secret-of-some-length";

    fn access() -> Access {
        Access::new(&AccessConfig {
            private_streams: vec!["board".into()],
            playback_secret: Some(String::from_utf8(SECRET.to_vec()).unwrap()),
        })
        .unwrap()
    }

    #[test]
    fn a_minted_token_opens_its_stream_until_it_expires() {
        let t = mint(SECRET, "board", 1_000);
        assert_eq!(access().check("board", Some(&t), 999), Ok(()));
        assert_eq!(access().check("board", Some(&t), 1_000), Ok(()));
        assert_eq!(
            access().check("board", Some(&t), 1_001),
            Err(Denied::Expired)
        );
    }

    #[test]
    fn a_token_opens_no_other_stream_and_a_changed_one_opens_nothing() {
        let t = mint(SECRET, "other", 1_000);
        assert_eq!(access().check("board", Some(&t), 0), Err(Denied::Forged));
        let good = mint(SECRET, "board", 1_000);
        // A later expiry with the old MAC, one flipped digit, another secret.
        let later = good.replacen("1000", "9000", 1);
        assert_eq!(
            access().check("board", Some(&later), 0),
            Err(Denied::Forged)
        );
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            access().check("board", Some(&flipped), 0),
            Err(Denied::Forged)
        );
        let foreign = mint(b"another-secret-entirely", "board", 1_000);
        assert_eq!(
            access().check("board", Some(&foreign), 0),
            Err(Denied::Forged)
        );
    }

    #[test]
    fn missing_and_malformed_tokens_are_refused_and_public_streams_need_none() {
        let a = access();
        assert_eq!(a.check("board", None, 0), Err(Denied::Missing));
        for bad in ["", "1000", "x.y", "-1.00", "1000.zz", "+1000.", "1000.abc"] {
            assert_eq!(
                a.check("board", Some(bad), 0),
                Err(Denied::Malformed),
                "{bad}"
            );
        }
        assert_eq!(a.check("demo", None, 0), Ok(()));
    }

    #[test]
    fn private_streams_need_a_secret_long_enough_to_be_a_key() {
        let no_secret = AccessConfig {
            private_streams: vec!["board".into()],
            playback_secret: None,
        };
        assert!(matches!(
            Access::new(&no_secret),
            Err(AccessError::NoSecret)
        ));
        let short = AccessConfig {
            private_streams: vec![],
            playback_secret: Some("short".into()),
        };
        assert!(matches!(Access::new(&short), Err(AccessError::ShortSecret)));
    }

    #[test]
    fn the_token_is_read_from_the_query() {
        assert_eq!(token_in(Some("token=1.ab")), Some("1.ab"));
        assert_eq!(token_in(Some("_HLS_msn=3&token=1.ab")), Some("1.ab"));
        assert_eq!(token_in(Some("token=")), None);
        assert_eq!(token_in(Some("x=1")), None);
        assert_eq!(token_in(None), None);
    }

    #[test]
    fn every_uri_of_a_playlist_carries_the_token() {
        let playlist = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1.0,\n7.m4s\n\
                        #EXT-X-PART:DURATION=0.1,URI=\"8.0.m4s\",INDEPENDENT=YES\n\
                        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"8.1.m4s\"\nlow.m3u8?x=1\n";
        let signed = sign_playlist(playlist, "9.ab");
        assert_eq!(
            signed,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?token=9.ab\"\n#EXTINF:1.0,\n7.m4s?token=9.ab\n\
             #EXT-X-PART:DURATION=0.1,URI=\"8.0.m4s?token=9.ab\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"8.1.m4s?token=9.ab\"\nlow.m3u8?x=1&token=9.ab\n"
        );
    }
}
