//! The chat socket's WebSocket handshake (RFC 6455 §4.2), done here instead of with
//! axum's `WebSocketUpgrade` because the session needs tungstenite's own socket: axum's
//! wrapper hides raw frames, and sending the welcome as several fragments is what keeps
//! an idle viewer small (tungstenite keeps its write buffer at the size of the largest
//! write, for the connection's whole life).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// The server side of an upgraded chat connection.
pub(crate) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// True when the request asks for a WebSocket (`Upgrade: websocket`), well-formed or not.
pub(crate) fn is_handshake(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// Answers `101 Switching Protocols` and runs `serve` on the socket once the connection
/// is upgraded; a request that is not a WebSocket handshake gets `400`/`426`, and so does
/// one over HTTP/1.0 (RFC 6455 §4.1 needs 1.1: such a connection ends with the response,
/// so a `101` would be answered by a dropped socket).
pub(crate) fn accept<F, Fut>(mut req: Request, config: WebSocketConfig, serve: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let headers = req.headers();
    if req.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(header::UPGRADE, "websocket")],
            "this is a WebSocket endpoint",
        )
            .into_response();
    }
    if req.version() != Version::HTTP_11 {
        return (StatusCode::BAD_REQUEST, "WebSocket needs HTTP/1.1").into_response();
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return (StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13").into_response();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return (StatusCode::BAD_REQUEST, "Sec-WebSocket-Key missing").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve(socket).await;
            }
            Err(e) => tracing::debug!("chat upgrade failed: {e}"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .expect("static response parts")
}
