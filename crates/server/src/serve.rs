//! Accepting HTTP connections: the listener, what a connection may cost before it sends a
//! request, how many may be open at once, TCP tuning, graceful shutdown. The routes are
//! [`crate::http`]'s; nothing here looks at a request.
//!
//! # Limits
//! - **Header-read timeout** (`--header-timeout-secs`, 10 s): a connection must deliver a
//!   whole request head within this long after it opens and after each response (idle
//!   keep-alive counts). hyper's http1 `header_read_timeout`; a request body or a slow
//!   response is not timed by it. An upgraded WebSocket has left hyper and is not
//!   affected: the chat has its own idle timeout, the push its send deadline.
//! - **Connection cap** (`--max-connections`): each connection holds a permit that
//!   travels with its socket, through a WebSocket upgrade too, so chat and push sockets
//!   count. At the cap the loop stops accepting and newcomers wait in the kernel's
//!   backlog instead of the process running out of file descriptors (which starved
//!   every route: 200 silent sockets stayed open for good under `axum::serve`).
//!
//! # Why not `axum::serve`
//! It has neither limit. It also sniffs HTTP/1 or HTTP/2 (hyper-util's auto builder) by
//! reading the first bytes with no timeout at all. Connections here are HTTP/1 only:
//! WebSocket needs HTTP/1.1, and browsers speak HTTP/2 only over TLS, which a proxy in
//! front terminates.
//!
//! # Shutdown
//! As `axum::serve`'s graceful shutdown: when the signal resolves (or its sender is
//! dropped) the listener closes, idle connections close, open requests finish, and the
//! loop's task ends when the last HTTP connection has. Upgraded sockets are not waited
//! for (the hub closes its own, the push its own). Before the signal, the server has
//! drained for `--drain-delay-secs` (see [`crate::http::ops`]).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// Connection options (flattened into the server's [`crate::Config`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Seconds a connection may take to send a request's headers, counted from when it
    /// opens and from each response (idle keep-alive); slower or silent clients are
    /// disconnected. Open WebSockets are not affected.
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Connections open at once at most (HTTP, chat and low-latency sockets together);
    /// more wait to be accepted. Default: the open-files limit (`ulimit -n`) less 128
    /// for the server's own files, at least 64.
    #[arg(long, env = "LUCARNE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Origins (`scheme://host[:port]`) where this server's own pages are reached, which
    /// may open the chat like its listen address may: needed behind a proxy, or when
    /// listening on 0.0.0.0 and visited by another name than localhost. Repeat, or
    /// separate with commas.
    #[arg(
        long = "public-origin",
        env = "LUCARNE_PUBLIC_ORIGINS",
        value_delimiter = ','
    )]
    pub public_origins: Vec<String>,
    /// Seconds between being told to stop (SIGTERM) and closing anything: `/readyz`
    /// answers 503 meanwhile while everything else is still served, so load balancers
    /// take this node out of rotation before its viewers are sent elsewhere. Set it
    /// above the balancer's health-check interval times its failure threshold.
    #[arg(long, default_value_t = 5, env = "LUCARNE_DRAIN_DELAY_SECS")]
    pub drain_delay_secs: u64,
}

impl Default for ServeConfig {
    /// The command line's defaults, but no drain delay: a server started from code
    /// (tests) has no load balancer to wait for.
    fn default() -> Self {
        ServeConfig {
            header_timeout_secs: 10,
            max_connections: None,
            public_origins: Vec::new(),
            drain_delay_secs: 0,
        }
    }
}

/// File descriptors kept for the server's own files (chat store, replays, RTMP).
const RESERVED_FILES: u64 = 128;

impl ServeConfig {
    /// `--max-connections`, else what the open-files limit leaves.
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let limit = std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|l| open_files_limit(&l))
                .unwrap_or(1024);
            usize::try_from(limit.saturating_sub(RESERVED_FILES).max(64)).unwrap_or(usize::MAX)
        })
    }
}

/// The soft "Max open files" limit in a `/proc/<pid>/limits` text.
fn open_files_limit(limits: &str) -> Option<u64> {
    match limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
    {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Serves `app` on `listener` until `stop` resolves or its sender is dropped; see the
/// module doc for the limits and the shutdown.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    config: &ServeConfig,
    mut stop: oneshot::Receiver<()>,
) -> io::Result<()> {
    let header_timeout = Duration::from_secs(config.header_timeout_secs);
    let permits = Arc::new(Semaphore::new(config.connection_cap()));
    // Connections watch `stopping`; the loop waits until every `open` clone is dropped.
    let (stopping, stopping_rx) = watch::channel(false);
    let (open, open_rx) = watch::channel(());
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors or memory: let some close before retrying.
                    tracing::error!("accepting a connection: {e}");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = &mut stop => break,
                    }
                }
            },
            _ = &mut stop => break,
        };
        tune_connection(&tcp);
        let io = TokioIo::new(Counted {
            tcp,
            _permit: permit,
        });
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let mut stopping = stopping_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(io, service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut graceful = false;
            loop {
                tokio::select! {
                    served = conn.as_mut() => {
                        if let Err(e) = served {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                        break;
                    }
                    // A dropped sender (the loop's task aborted) also means stop.
                    _ = stopping.wait_for(|s| *s), if !graceful => {
                        conn.as_mut().graceful_shutdown();
                        graceful = true;
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(open_rx);
    open.closed().await;
    Ok(())
}

/// Errors of one connection, not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Unsent bytes the kernel may queue per connection. A client that stops reading then
/// blocks our writes within this much (and the chat drops it at its send deadline)
/// instead of parking megabytes in an auto-tuned send buffer; throughput is unaffected
/// (bytes in flight are not counted).
const NOTSENT_LOWAT: u32 = 128 * 1024;

fn tune_connection(tcp: &TcpStream) {
    // Chat frames and low-latency chunks are small writes that must leave at once.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(NOTSENT_LOWAT) {
        tracing::debug!("TCP_NOTSENT_LOWAT: {e}");
    }
}

/// A connection's socket with its place under the cap, released when the socket is
/// dropped: after the last response, or when an upgraded WebSocket ends.
struct Counted {
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63450                63450                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_files_limit(unlimited), Some(u64::MAX));
        assert_eq!(open_files_limit(""), None);
    }

    #[test]
    fn the_default_cap_leaves_room_for_the_servers_own_files() {
        let cap = ServeConfig::default().connection_cap();
        assert!(cap >= 64, "{cap}");
        let set = ServeConfig {
            max_connections: Some(7),
            ..ServeConfig::default()
        };
        assert_eq!(set.connection_cap(), 7);
    }
}
