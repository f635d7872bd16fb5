//! A TCP relay in front of the server, so a test can see from the server's side
//! which connections a page keeps open: point one URL of the page (the
//! low-latency WebSocket, say) at the relay and count its live connections.
//!
//! [`TcpProxy::cut`] drops every connection open at that moment, as a network that
//! goes away would (new connections are relayed as before).
//!
//! Owns its listener and the relayed connections; knows nothing of HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Connection counts, shared with the relay tasks.
#[derive(Debug, Default)]
struct Counts {
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// Connections whose both directions are still open.
    open: AtomicUsize,
}

/// Decrements `open` when a relayed connection ends, however it ends.
struct OpenGuard(Arc<Counts>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Relays every connection made to 127.0.0.1:PORT to `upstream`. Stops when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    /// Where it listens.
    addr: SocketAddr,
    /// Accepted and open connections.
    counts: Arc<Counts>,
    /// The accept loop (relay tasks end with their connections).
    task: JoinHandle<()>,
    /// Bumped by [`TcpProxy::cut`]: relays open at that moment end.
    cuts: tokio::sync::watch::Sender<u64>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the TCP relay")?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let (cuts, cut_rx) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                shared.open.fetch_add(1, Ordering::SeqCst);
                let guard = OpenGuard(shared.clone());
                let mut cut = cut_rx.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let _guard = guard;
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            counts,
            task,
            cuts,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// Drops every connection open now (both sides see it end without a goodbye).
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Connections still open (neither side has closed them completely).
    pub fn open(&self) -> usize {
        self.counts.open.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
