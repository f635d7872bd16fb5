//! Several lucarne-server nodes as a deployment runs them: one real `redis-server`
//! (`--redis`), N real nodes, and the real nginx with `deploy/nginx.conf` (the
//! deployment's own file, its ports and paths changed) balancing them. Pages are opened
//! through nginx, so a widget's sockets go wherever the balancer sends them, and move
//! when a node dies.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::origin::{Origin, OriginConfig};
use crate::process::{free_port, which, Output, Spawned};
use crate::wait::{wait_until, Check};
use crate::workspace::root;

/// A running `redis-server` on a free loopback port: nothing persisted, or (with
/// [`Redis::start_persistent`]) an append-only file written on every command, as a
/// deployment that must lose nothing acknowledged runs it (`deploy/compose.yaml`).
pub struct Redis {
    process: Option<Spawned>,
    port: u16,
    /// The data directory, when persistent.
    data: Option<TempDir>,
    /// The output of the processes stopped so far.
    earlier: String,
}

impl Redis {
    /// Starts one and waits until it accepts connections.
    pub async fn start() -> Result<Self> {
        Self::start_with(None).await
    }

    /// Starts one that keeps its data across [`Redis::stop`] and [`Redis::restart`].
    pub async fn start_persistent() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lucarne-redis-")
            .tempdir()?;
        Self::start_with(Some(dir)).await
    }

    async fn start_with(data: Option<TempDir>) -> Result<Self> {
        let mut redis = Self {
            process: None,
            port: free_port()?,
            data,
            earlier: String::new(),
        };
        redis.spawn().await?;
        Ok(redis)
    }

    async fn spawn(&mut self) -> Result<()> {
        let bin = which("redis-server").context(
            "redis-server is not installed: `apt-get install redis-server` (.ci/run does)",
        )?;
        let mut args = vec![
            "--port".to_owned(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
        ];
        match &self.data {
            Some(dir) => args.extend([
                "--dir".to_owned(),
                dir.path().display().to_string(),
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "always".into(),
            ]),
            None => args.extend(["--appendonly".to_owned(), "no".into()]),
        }
        let (process, _) = Spawned::start("redis-server", &bin, args, &[], Output::Capture)?;
        self.process = Some(process);
        listening(self.port, "redis-server").await
    }

    /// Stops it (SIGTERM: it writes its data and exits).
    pub async fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            self.earlier = p.log().tail(50);
            p.terminate().await;
        }
    }

    /// Starts it again on the same port, with the same data when persistent.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        self.spawn()
            .await
            .with_context(|| format!("redis-server again on port {}", self.port))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its output, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let now = self.process.as_ref().map(|p| p.log().tail(n));
        format!("{}{}", self.earlier, now.unwrap_or_default())
    }
}

/// nginx with `deploy/nginx.conf` in front of some nodes.
pub struct Nginx {
    _process: Spawned,
    port: u16,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx on `port` (see [`free_port`]) with the deployment's configuration,
    /// its upstream pointed at `nodes` (`127.0.0.1:PORT` each).
    pub async fn start(port: u16, nodes: &[u16]) -> Result<Self> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .context("nginx is not installed: `apt-get install nginx` (.ci/run does)")?;
        let dir = tempfile::Builder::new()
            .prefix("lucarne-nginx-")
            .tempdir()?;
        // nginx's workers may run as another user: let them write the cache.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        }
        let conf = std::fs::read_to_string(root().join("deploy/nginx.conf"))
            .context("reading deploy/nginx.conf")?;
        let d = dir.path().display();
        let upstream: String = nodes
            .iter()
            .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=2s; "))
            .collect();
        let mut conf = conf;
        for (from, to) in [
            ("listen 8000;", format!("listen 127.0.0.1:{port};")),
            (
                "server 127.0.0.1:8080 max_fails=1 fail_timeout=2s;",
                upstream,
            ),
            ("/run/nginx-lucarne.pid", format!("{d}/nginx.pid")),
            ("/var/log/nginx/lucarne-error.log", format!("{d}/error.log")),
            (
                "/var/log/nginx/lucarne-access.log",
                format!("{d}/access.log"),
            ),
            ("/var/cache/nginx/lucarne", format!("{d}/cache")),
            ("worker_processes auto;", "worker_processes 1;".into()),
        ] {
            if !conf.contains(from) {
                bail!("deploy/nginx.conf no longer has {from:?}");
            }
            conf = conf.replace(from, &to);
        }
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, conf)?;
        let args = [
            "-p".to_owned(),
            d.to_string(),
            "-c".into(),
            file.display().to_string(),
            "-g".into(),
            "daemon off;".into(),
        ];
        let (process, _) = Spawned::start("nginx", bin, args, &[], Output::Capture)?;
        let nginx = Self {
            _process: process,
            port,
            dir,
        };
        listening(port, "nginx")
            .await
            .with_context(|| nginx.log_tail(20))?;
        Ok(nginx)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The end of its error log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.dir.path().join("error.log"), n)
    }

    /// The end of its access log (`URI cache-status status`).
    pub fn access_tail(&self, n: usize) -> String {
        tail(&self.dir.path().join("access.log"), n)
    }
}

fn tail(file: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Redis, nodes sharing it, and nginx in front.
pub struct Cluster {
    /// The shared Redis.
    pub redis: Redis,
    /// The nodes, each started with `--redis` and nginx's URL as a public origin.
    pub nodes: Vec<Origin>,
    /// The balancer.
    pub nginx: Nginx,
}

impl Cluster {
    /// Starts Redis, `n` nodes (the demo stream on each: every node makes it alike, on
    /// the wall clock) and nginx in front of them.
    pub async fn start(n: usize) -> Result<Self> {
        Self::start_on(n, Redis::start().await?).await
    }

    /// Like [`Cluster::start`], on `redis`.
    pub async fn start_on(n: usize, redis: Redis) -> Result<Self> {
        let front = free_port()?;
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let mut config = OriginConfig::from_env()?;
            config.extra_args.extend([
                "--redis".to_owned(),
                redis.url(),
                "--public-origin".into(),
                format!("http://127.0.0.1:{front}"),
                "--client-ip-header".into(),
                "X-Forwarded-For".into(),
            ]);
            nodes.push(Origin::start_with(config).await?);
        }
        let ports: Vec<u16> = nodes.iter().map(Origin::port).collect();
        let nginx = Nginx::start(front, &ports).await?;
        Ok(Self {
            redis,
            nodes,
            nginx,
        })
    }

    /// A node's `/metrics` value for `name`, summed over its labels (0 when absent).
    pub async fn metric(&self, node: usize, name: &str) -> Result<f64> {
        let url = format!("{}/metrics", self.nodes[node].url());
        let text = reqwest::get(&url).await?.text().await?;
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                let bare = key.split('{').next()?;
                (bare == name).then(|| value.trim().parse::<f64>().ok())?
            })
            .sum())
    }

    /// Every node's, nginx's and Redis's recent output, for a failed test's artifacts.
    pub fn logs(&self) -> Vec<(&'static str, String)> {
        const NODES: [&str; 4] = ["node0.log", "node1.log", "node2.log", "node3.log"];
        let mut logs: Vec<(&'static str, String)> = NODES
            .iter()
            .zip(&self.nodes)
            .map(|(name, n)| (*name, n.log_tail(200)))
            .collect();
        logs.push(("nginx-error.log", self.nginx.log_tail(100)));
        logs.push(("nginx-access.log", self.nginx.access_tail(300)));
        logs.push(("redis.log", self.redis.log_tail(50)));
        logs
    }
}

/// Waits (≤ 10 s) until something accepts TCP connections on `port`.
async fn listening(port: u16, what: &str) -> Result<()> {
    wait_until(
        &format!("{what} to listen on 127.0.0.1:{port}"),
        Duration::from_secs(10),
        || async move {
            Ok(
                match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(_) => Check::Done(()),
                    Err(e) => Check::NotYet(e.to_string()),
                },
            )
        },
    )
    .await
}
