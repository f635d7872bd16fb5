//! Operations over HTTP: the probes a load balancer and a supervisor ask, the metrics a
//! scraper reads, and the drain state that stopping moves through.
//!
//! - `GET /healthz`: `200 ok` while the process serves HTTP. Liveness only: it checks
//!   nothing else, because a liveness probe that failed on a store outage would have
//!   every node restarted at once, which mends nothing.
//! - `GET /readyz`: `200 ok` while this node should be sent viewers: it is not stopping
//!   and the chat store answers a ping (a write that changes nothing, see
//!   [`Store::ping`](crate::hub::store::Store::ping)) within [`STORE_DEADLINE`].
//!   Otherwise `503` with the reason on one line of text.
//! - `GET /metrics`: Prometheus text, see [`crate::metrics`].
//!
//! # Drain
//! [`Drain`] holds the node's [`Phase`]. [`Server::shutdown`](crate::Server::shutdown)
//! moves it to [`Phase::Draining`] first: `/readyz` turns 503 while everything else is
//! served as before, for `--drain-delay-secs`, so load balancers stop sending viewers
//! here before any is sent away. Then the server stops accepting, ends broadcasts
//! (replays written), closes chat sockets with 1001 (widgets reconnect, through the
//! balancer, to another node and resume), and moves to [`Phase::Closing`]: push sockets
//! (see [`super::push`]) are closed with 1001 too, after the state word of a broadcast
//! that just ended, so players go elsewhere instead of waiting on a silent socket.
//!
//! [`Drain`] also counts open push sockets per stream: shutdown waits for them to go,
//! and `/metrics` reports them.
//!
//! Must not: make `/healthz` depend on anything; answer `/readyz` from a cached result
//! (each probe pings: the store's queue is where trouble shows).

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long `/readyz` waits for the chat store's answer. Well under the usual health
/// check timeouts (2 s and more), and far above a healthy store's (a queued write batch
/// takes milliseconds).
pub const STORE_DEADLINE: Duration = Duration::from_secs(1);

/// Where the node is in its life; only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Taking traffic.
    Serving,
    /// Told to stop: `/readyz` answers 503, everything else is served as before.
    Draining,
    /// Closing: push sockets are told to go.
    Closing,
}

/// The node's phase and its open push sockets (see the module doc).
#[derive(Debug)]
pub struct Drain {
    phase: watch::Sender<Phase>,
    /// Open push sockets per stream id. Only ids of existing streams get here (checked
    /// before the upgrade), so `/metrics` labels stay bounded.
    push: Mutex<HashMap<String, usize>>,
    /// Notified when the last push socket closes.
    push_gone: Notify,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            phase: watch::channel(Phase::Serving).0,
            push: Mutex::default(),
            push_gone: Notify::new(),
        }
    }
}

impl Drain {
    /// The phase now.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Moves to `phase` unless already there or beyond.
    fn advance(&self, phase: Phase) {
        self.phase.send_if_modified(|p| {
            let later = phase > *p;
            if later {
                *p = phase;
            }
            later
        });
    }

    /// Leaves the load balancer's rotation: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.advance(Phase::Draining);
    }

    /// Tells every push socket to close (1001) and waits at most `grace` for them to be
    /// gone.
    pub async fn close_push(&self, grace: Duration) {
        self.advance(Phase::Closing);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let gone = self.push_gone.notified();
            let open = self.push_sockets();
            if open == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, gone).await.is_err() {
                tracing::info!("{open} push sockets still open after {grace:?}");
                return;
            }
        }
    }

    /// Tells push sockets to close without waiting (for `Drop`).
    pub fn start_closing(&self) {
        self.advance(Phase::Closing);
    }

    /// Open push sockets on stream `id`.
    pub fn push_subscribers(&self, id: &str) -> usize {
        lock(&self.push).get(id).copied().unwrap_or(0)
    }

    /// Open push sockets on all streams.
    pub fn push_sockets(&self) -> usize {
        lock(&self.push).values().sum()
    }

    /// Counts a push socket on stream `id` until the returned guard is dropped.
    pub(super) fn push_opened(self: &Arc<Self>, id: &str) -> PushSocket {
        *lock(&self.push).entry(id.to_owned()).or_default() += 1;
        PushSocket {
            drain: self.clone(),
            id: id.to_owned(),
        }
    }

    /// What a push socket watches to know when to close.
    pub(super) fn stopping(&self) -> Stopping {
        Stopping(self.phase.subscribe())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One open push socket, counted in [`Drain`] while it lives.
#[derive(Debug)]
pub(super) struct PushSocket {
    drain: Arc<Drain>,
    id: String,
}

impl Drop for PushSocket {
    fn drop(&mut self) {
        let mut push = lock(&self.drain.push);
        if let Some(n) = push.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                push.remove(&self.id);
            }
        }
        let none = push.is_empty();
        drop(push);
        if none {
            self.drain.push_gone.notify_waiters();
        }
    }
}

/// A push socket's view of the [`Phase`].
#[derive(Debug)]
pub(super) struct Stopping(watch::Receiver<Phase>);

impl Stopping {
    /// Resolves once push sockets must close (also if the drain state is gone).
    pub(super) async fn closing(&mut self) {
        let _ = self.0.wait_for(|p| *p == Phase::Closing).await;
    }
}

/// The operations routes (see the module doc).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// A short answer no cache keeps.
fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n".into())
}

async fn readyz(State(state): State<AppState>) -> Response {
    match ready(&state).await {
        Ok(()) => plain(StatusCode::OK, "ok\n".into()),
        Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// Why this node should not be sent viewers now, if it should not.
async fn ready(state: &AppState) -> Result<(), String> {
    let stopping = || match state.drain.phase() {
        Phase::Serving => Ok(()),
        Phase::Draining | Phase::Closing => Err("stopping: the server is draining".to_owned()),
    };
    stopping()?;
    match tokio::time::timeout(STORE_DEADLINE, state.hub.ping_store()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!("not ready: chat store: {e}");
            return Err(format!("chat store: {e}"));
        }
        Err(_) => {
            tracing::warn!("not ready: chat store: no answer within {STORE_DEADLINE:?}");
            return Err(format!(
                "chat store: no answer within {} ms",
                STORE_DEADLINE.as_millis()
            ));
        }
    }
    // A stop that began during the ping.
    stopping()
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("encoding metrics: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_phase_only_moves_forward_and_closing_waits_for_push_sockets() {
        let drain = Arc::new(Drain::default());
        let mut stopping = drain.stopping();
        let a = drain.push_opened("demo");
        let b = drain.push_opened("demo");
        let c = drain.push_opened("studio");
        assert_eq!(drain.push_subscribers("demo"), 2);
        assert_eq!(drain.push_sockets(), 3);
        drain.start_draining();
        assert_eq!(drain.phase(), Phase::Draining);
        let closed = tokio::spawn({
            let drain = drain.clone();
            async move { drain.close_push(Duration::from_secs(10)).await }
        });
        tokio::time::timeout(Duration::from_secs(5), stopping.closing())
            .await
            .expect("sockets are told to close");
        drain.start_draining();
        assert_eq!(drain.phase(), Phase::Closing, "never moves back");
        drop((a, b));
        assert_eq!(drain.push_subscribers("demo"), 0);
        assert!(!closed.is_finished());
        drop(c);
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("close_push returns once the last socket is gone")
            .unwrap();
    }
}
