//! Which web pages may open a chat socket: the `Origin` allowlist.
//!
//! Browsers always send `Origin` on a WebSocket handshake and pages cannot forge it, so
//! this is what stops a foreign page from putting its visitors into our chat (and their
//! messages under identities it controls). Allowed: the server's own origin (the
//! `Origin`'s host equals the `Host` header: the demo pages) and the configured embed
//! origins; `*` allows any. A request without `Origin` is not from a browser page (a bot
//! can set any header anyway) and is let through, which is what non-browser tools need.
//! Media routes are not covered: video is public and carries CORS `*`.

use axum::http::{header, HeaderMap};

/// True when the request's `Origin` may use the chat.
pub fn allowed(headers: &HeaderMap, embed_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if embed_origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/'))
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn own_origin_and_configured_embeds_only() {
        let embeds = vec!["https://blog.example".to_owned()];
        assert!(allowed(
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
            &embeds
        ));
        assert!(allowed(
            &headers(Some("https://Blog.Example"), "live.example"),
            &embeds
        ));
        assert!(allowed(
            &headers(Some("https://blog.example/"), "live.example"),
            &embeds
        ));
        assert!(!allowed(
            &headers(Some("https://evil.example"), "live.example"),
            &embeds
        ));
        // Same host, other port: another origin.
        assert!(!allowed(
            &headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080"),
            &[]
        ));
        assert!(!allowed(&headers(Some("null"), "127.0.0.1:8080"), &[]));
        assert!(!allowed(
            &headers(Some("https://blog.example.evil"), "x"),
            &embeds
        ));
        assert!(allowed(&headers(None, "127.0.0.1:8080"), &[]));
        assert!(allowed(
            &headers(Some("https://any.example"), "x"),
            &["*".into()]
        ));
    }
}
