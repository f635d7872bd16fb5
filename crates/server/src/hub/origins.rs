//! Which web pages may open a chat socket: the `Origin` allowlist.
//!
//! Browsers always send `Origin` on a WebSocket handshake and pages cannot forge it, so
//! this is what stops a foreign page from putting its visitors into our chat (and their
//! messages under identities it controls). Allowed: the configured embed origins (`*`
//! allows any) and the server's own, which [`own`] derives from configuration and
//! `Server::start` adds to that list: the listen address and `--public-origin`. Never
//! from the `Host` header: a page on `http://evil.example` that reaches us under that
//! name (its DNS, a shared proxy) sends `Host: evil.example` too. A request without
//! `Origin` is not from a browser page (a bot can set any header anyway) and is let
//! through, which is what non-browser tools need. Media routes are not covered: video
//! is public and carries CORS `*`.

use axum::http::{header, HeaderMap};
use std::net::SocketAddr;

/// The server's own origins: where its pages are served from. A loopback or wildcard
/// listen address is reached as `localhost`, `127.0.0.1` or `[::1]`; any other by its
/// address; names and `https` (a proxy in front) only through `public`.
pub fn own(listen: SocketAddr, public: &[String]) -> Vec<String> {
    let port = listen.port();
    let hosts = if listen.ip().is_loopback() || listen.ip().is_unspecified() {
        vec!["localhost".to_owned(), "127.0.0.1".into(), "[::1]".into()]
    } else {
        vec![match listen {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }]
    };
    let mut origins = Vec::new();
    for host in hosts {
        origins.push(format!("http://{host}:{port}"));
        // Browsers leave the default port out.
        if port == 80 {
            origins.push(format!("http://{host}"));
        }
    }
    origins.extend(public.iter().cloned());
    origins
}

/// True when the request's `Origin` is in `allowed_origins` (or that list has `*`).
pub fn allowed(headers: &HeaderMap, allowed_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    allowed_origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/'))
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
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
        let mut embeds = vec!["https://blog.example".to_owned()];
        embeds.extend(own("127.0.0.1:8080".parse().unwrap(), &[]));
        assert!(allowed(
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
            &embeds
        ));
        assert!(allowed(
            &headers(Some("http://localhost:8080"), "localhost:8080"),
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
        // The Host header proves nothing: it names whatever the page's origin names.
        assert!(!allowed(
            &headers(Some("http://evil.example"), "evil.example"),
            &embeds
        ));
        // Same host, other port: another origin.
        assert!(!allowed(
            &headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080"),
            &embeds
        ));
        assert!(!allowed(&headers(Some("null"), "127.0.0.1:8080"), &embeds));
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

    #[test]
    fn own_origins_come_from_the_listen_address_and_the_public_origins() {
        let wildcard = own(
            "0.0.0.0:80".parse().unwrap(),
            &["https://live.example".into()],
        );
        for o in [
            "http://localhost:80",
            "http://localhost",
            "http://127.0.0.1",
            "http://[::1]:80",
            "https://live.example",
        ] {
            assert!(wildcard.iter().any(|w| w == o), "{o} in {wildcard:?}");
        }
        assert_eq!(
            own("192.0.2.7:8080".parse().unwrap(), &[]),
            ["http://192.0.2.7:8080"]
        );
        assert_eq!(
            own("[2001:db8::1]:8080".parse().unwrap(), &[]),
            ["http://[2001:db8::1]:8080"]
        );
    }
}
