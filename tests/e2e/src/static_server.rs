//! "Another origin": an axum server on 127.0.0.1 serving a directory with CORS `*`
//! and `Cache-Control: no-store` (everything it serves is live), with faults a
//! test switches on and off while the page plays ([`Faults`]) and a stop/start
//! that keeps the port.
//!
//! Hosts the third-party pages, ffmpeg's HLS output and the bench pages. It must
//! not know about lucarne: faults are expressed on request paths only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;

/// Decides whether a request path gets a fault.
type PathPredicate = Box<dyn Fn(&str) -> bool + Send + Sync>;

struct Rule {
    /// Shown in [`Faults::describe`] and failure messages.
    name: String,
    matches: PathPredicate,
    status: StatusCode,
}

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The request path (no query).
    pub path: String,
    /// The status sent.
    pub status: u16,
    /// Whether a fault rule produced it.
    pub injected: bool,
}

#[derive(Default)]
struct FaultState {
    rules: Vec<Rule>,
    /// Every request, in order (bounded), so tests can assert a fault was hit.
    served: Vec<Served>,
}

/// The fault rules of one [`StaticServer`], shared with its request handler:
/// changes apply to the next request.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<FaultState>>);

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Faults {
    const KEEP: usize = 10_000;

    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers `status` (e.g. 404) for exactly `path` (e.g. "/hls/seg12.m4s").
    pub fn fail_path(&self, path: &str, status: u16) {
        let want = path.to_owned();
        self.fail_matching(&format!("{status} for {path}"), status, move |p| p == want);
    }

    /// Answers `status` for every path `matches` accepts.
    pub fn fail_matching(
        &self,
        name: &str,
        status: u16,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.state().rules.push(Rule {
            name: name.to_owned(),
            matches: Box::new(matches),
            status,
        });
    }

    /// Removes every rule: the origin behaves again.
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// Every request answered so far, oldest first.
    pub fn served(&self) -> Vec<Served> {
        self.state().served.clone()
    }

    /// Requests that a fault rule answered.
    pub fn injected(&self) -> Vec<Served> {
        self.state()
            .served
            .iter()
            .filter(|s| s.injected)
            .cloned()
            .collect()
    }

    /// The active rules, one per line.
    pub fn describe(&self) -> String {
        let state = self.state();
        if state.rules.is_empty() {
            return "no faults".to_owned();
        }
        state
            .rules
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The status a fault rule imposes on `path`, if any.
    fn check(&self, path: &str) -> Option<StatusCode> {
        self.state()
            .rules
            .iter()
            .find(|r| (r.matches)(path))
            .map(|r| r.status)
    }

    fn record(&self, path: &str, status: StatusCode, injected: bool) {
        let mut state = self.state();
        if state.served.len() == Self::KEEP {
            state.served.remove(0);
        }
        state.served.push(Served {
            path: path.to_owned(),
            status: status.as_u16(),
            injected,
        });
    }
}

async fn apply_faults(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut response = match faults.check(&path) {
        Some(status) => {
            faults.record(&path, status, true);
            (
                status,
                format!("fault injected by the test: {status} for {path}\n"),
            )
                .into_response()
        }
        None => {
            let response = next.run(req).await;
            faults.record(&path, response.status(), false);
            response
        }
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A running static file server. Stops when dropped.
#[derive(Debug)]
pub struct StaticServer {
    /// The served directory.
    root: PathBuf,
    /// Bound address; kept across [`StaticServer::stop`] / [`StaticServer::start_again`].
    addr: SocketAddr,
    /// Shared with the handler.
    faults: Faults,
    /// Present while serving: the shutdown trigger and the server task.
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl StaticServer {
    /// Serves `root` on 127.0.0.1 on a free port.
    pub async fn start(root: impl Into<PathBuf>) -> Result<Self> {
        let mut server = Self {
            root: root.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            faults: Faults::default(),
            running: None,
        };
        server.start_again().await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port, stable across stop/start.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The fault rules (change them at any time).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops accepting connections and closes the open ones once their current
    /// response is sent: the origin is gone (connection refused).
    pub async fn stop(&mut self) {
        if let Some((trigger, task)) = self.running.take() {
            let _ = trigger.send(());
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Serves again on the same port (or binds the first port, from [`StaticServer::start`]).
    pub async fn start_again(&mut self) -> Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = bind_retrying(self.addr).await?;
        self.addr = listener.local_addr()?;
        let app = Router::new()
            .fallback_service(ServeDir::new(&self.root))
            .layer(middleware::from_fn_with_state(
                self.faults.clone(),
                apply_faults,
            ))
            .layer(CorsLayer::very_permissive());
        let (trigger, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.running = Some((trigger, task));
        Ok(())
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        if let Some((trigger, task)) = self.running.take() {
            let _ = trigger.send(());
            task.abort();
        }
    }
}

/// Binds `addr`; for a fixed port, retries for a few seconds (a port just
/// released can take a moment to be free again).
async fn bind_retrying(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if addr.port() != 0 => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("binding the static server"),
        }
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow::anyhow!("bind failed")))
    .with_context(|| format!("binding the static server again on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Minimal HTTP/1.0 GET, so the unit test needs no HTTP client crate.
    async fn get(addr: &str, path: &str) -> Result<(u16, String)> {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.0\r\nHost: x\r\nOrigin: http://elsewhere\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).await?;
        let status = buf.split(' ').nth(1).unwrap_or("0").parse()?;
        Ok((status, buf))
    }

    #[tokio::test]
    async fn serves_files_with_cors_and_injects_faults() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a.txt"), "hello")?;
        std::fs::write(dir.path().join("b.txt"), "world")?;
        let mut server = StaticServer::start(dir.path()).await?;
        let addr = server.addr.to_string();

        let (status, body) = get(&addr, "/a.txt").await?;
        assert_eq!(status, 200, "{body}");
        assert!(body.ends_with("hello"), "{body}");
        let lower = body.to_ascii_lowercase();
        assert!(
            lower.contains("access-control-allow-origin"),
            "no CORS header: {body}"
        );
        assert!(lower.contains("cache-control: no-store"), "{body}");

        server.faults().fail_path("/a.txt", 404);
        server
            .faults()
            .fail_matching("503 for b*", 503, |p| p.starts_with("/b"));
        assert_eq!(get(&addr, "/a.txt").await?.0, 404);
        assert_eq!(get(&addr, "/b.txt").await?.0, 503);
        assert_eq!(server.faults().injected().len(), 2);
        server.faults().clear();
        assert_eq!(get(&addr, "/b.txt").await?.0, 200);

        server.stop().await;
        assert!(
            get(&addr, "/a.txt").await.is_err(),
            "still answering after stop()"
        );
        server.start_again().await?;
        assert_eq!(server.addr.to_string(), addr, "port changed across restart");
        assert_eq!(get(&addr, "/a.txt").await?.0, 200);
        Ok(())
    }
}
