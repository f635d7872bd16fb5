//! LL-HLS through a CDN: a real nginx with `deploy/nginx.conf` (the deployment's own
//! file, its ports and paths changed for the test) in front of a real server playing
//! the demo stream, and 50 clients following the live edge as hls.js's low-latency
//! mode does (a blocking playlist request for the next part, then the part). The origin
//! must see each part requested about once, however many clients ask: that is what
//! lets a broadcast reach more viewers than one node could serve.

mod hub_support;

use hub_support::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Clients following the stream.
const CLIENTS: usize = 50;
/// How long they follow it.
const FOLLOW: Duration = Duration::from_secs(5);

/// nginx as a child process, stopped when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers and cache manager before it exits (a
        // SIGKILL would leave them running, orphaned, holding the port).
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while stopped && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts nginx with `deploy/nginx.conf` pointed at `origins` (its upstream's nodes).
async fn nginx(origins: &[SocketAddr]) -> Nginx {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is not installed: apt-get install nginx (.ci/run does)");
    let dir = tempfile::tempdir().unwrap();
    // nginx's workers may run as another user: let them write the cache.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let port = free_port();
    let d = dir.path().display();
    let conf = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx.conf"),
    )
    .unwrap();
    let replace = |conf: String, from: &str, to: String| {
        assert!(
            conf.contains(from),
            "deploy/nginx.conf no longer has {from:?}"
        );
        conf.replace(from, &to)
    };
    let conf = replace(conf, "listen 8000;", format!("listen 127.0.0.1:{port};"));
    let nodes: String = origins
        .iter()
        .map(|o| format!("server {o} max_fails=1 fail_timeout=2s; "))
        .collect();
    let conf = replace(
        conf,
        "server 127.0.0.1:8080 max_fails=1 fail_timeout=2s;",
        nodes,
    );
    let conf = replace(conf, "/run/nginx-lucarne.pid", format!("{d}/nginx.pid"));
    let conf = replace(
        conf,
        "/var/log/nginx/lucarne-error.log",
        format!("{d}/error.log"),
    );
    let conf = replace(
        conf,
        "/var/log/nginx/lucarne-access.log",
        format!("{d}/access.log"),
    );
    let conf = replace(conf, "/var/cache/nginx/lucarne", format!("{d}/cache"));
    let conf = replace(conf, "worker_processes auto;", "worker_processes 2;".into());
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx starts");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            started.elapsed() < DEADLINE,
            "nginx did not listen on {addr}: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Nginx { child, addr, dir }
}

/// The next part a client asks for: the playlist's preload hint, `MSN.PART.m4s`.
fn hint(playlist: &str) -> Option<(u64, u64)> {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let mut n = uri.strip_suffix(".m4s")?.split('.');
    Some((n.next()?.parse().ok()?, n.next()?.parse().ok()?))
}

/// One client: follows the live edge part by part for [`FOLLOW`]; returns the parts
/// it received.
async fn follow(base: String) -> Vec<String> {
    let http = reqwest::Client::new();
    let text = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.text().await.unwrap()
        }
    };
    let mut next = hint(&text(format!("{base}/live/demo/index.m3u8")).await).expect("a hint");
    let mut got = Vec::new();
    let end = Instant::now() + FOLLOW;
    while Instant::now() < end {
        let (msn, part) = next;
        // Blocks until that part is in the playlist, as hls.js asks.
        let playlist = text(format!(
            "{base}/live/demo/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
        ))
        .await;
        let uri = format!("{msn}.{part}.m4s");
        assert!(
            playlist.contains(&uri),
            "{uri} not in the playlist it waited for"
        );
        let r = http
            .get(format!("{base}/live/demo/{uri}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{uri}");
        assert!(!r.bytes().await.unwrap().is_empty(), "{uri}");
        got.push(uri);
        next = hint(&playlist).expect("a hint");
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_ll_hls_clients_behind_nginx_cost_the_origin_about_one_request_per_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.no_demo = false;
    let server = start(cfg).await;
    let cdn = nginx(&[server.local_addr()]).await;
    let base = format!("http://{}", cdn.addr);

    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(follow(base.clone())))
        .collect();
    let mut received = 0;
    for c in clients {
        received += c.await.expect("a client panicked").len();
    }
    // Let nginx write its log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(cdn.dir.path().join("access.log")).unwrap();

    // Per part: requests from clients, and those that went to the origin.
    let mut asked: HashMap<&str, (u32, u32)> = HashMap::new();
    for line in log.lines() {
        let mut f = line.split(' ');
        let (Some(uri), Some(cache)) = (f.next(), f.next()) else {
            continue;
        };
        let is_part = uri
            .strip_prefix("/live/demo/")
            .and_then(|u| u.strip_suffix(".m4s"))
            .is_some_and(|u| u.split('.').count() == 2 && !u.contains('?'));
        if !is_part {
            continue;
        }
        let e = asked.entry(uri).or_default();
        e.0 += 1;
        if cache != "HIT" {
            e.1 += 1;
        }
    }
    let parts = asked.len() as f64;
    let origin: u32 = asked.values().map(|v| v.1).sum();
    let per_part = f64::from(origin) / parts;
    let fully_shared = asked.values().filter(|v| v.0 as usize >= CLIENTS).count();
    eprintln!(
        "cdn: {CLIENTS} clients received {received} parts; {} distinct parts, \
         {origin} origin requests ({per_part:.2} per part); {fully_shared} parts asked by every client",
        asked.len()
    );
    assert!(
        parts >= 20.0,
        "the clients followed too few parts: {asked:?}"
    );
    assert!(
        received >= CLIENTS * 20,
        "the clients received {received} parts in {FOLLOW:?}"
    );
    assert!(
        per_part <= 1.1,
        "the origin saw {per_part:.2} requests per part (more than 1.1): {asked:?}"
    );
    drop(cdn);
    server.shutdown().await;
}

/// Two nodes behind the deployment's nginx, the stream on one of them only (as an RTMP
/// broadcast is, on the node it is published to): every request through nginx, whichever
/// node the balancer picks first, gets the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_on_one_node_plays_through_the_balancer_in_front_of_two() {
    let (without, with) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let empty = start(config(without.path())).await;
    let mut cfg = config(with.path());
    cfg.no_demo = false;
    let live = start(cfg).await;
    let lonely = format!("http://{}/live/demo/index.m3u8", empty.local_addr());
    assert_eq!(
        reqwest::get(&lonely).await.unwrap().status(),
        404,
        "the node without the stream must not have it"
    );
    let cdn = nginx(&[empty.local_addr(), live.local_addr()]).await;
    let base = format!("http://{}", cdn.addr);

    let client = reqwest::Client::new();
    let mut fetched = 0;
    for _ in 0..20 {
        // A new playlist each time (`_HLS_msn` of a part that exists: not cached yet).
        let playlist = client
            .get(format!("{base}/live/demo/index.m3u8"))
            .header("cache-control", "no-cache")
            .send()
            .await
            .unwrap();
        assert_eq!(playlist.status(), 200, "the playlist through nginx");
        let text = playlist.text().await.unwrap();
        let segment = text
            .lines()
            .rfind(|l| l.ends_with(".m4s") && !l.starts_with('#'))
            .unwrap_or_else(|| panic!("no segment in {text}"));
        let got = client
            .get(format!("{base}/live/demo/{segment}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "segment {segment} through nginx");
        assert!(!got.bytes().await.unwrap().is_empty());
        fetched += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(cdn.dir.path().join("access.log")).unwrap();
    assert!(
        !log.lines().any(|l| l.ends_with(" 404")),
        "a viewer was answered 404: {log}"
    );
    eprintln!("cdn: {fetched} playlists and segments through nginx, none refused");
    drop(cdn);
    live.shutdown().await;
    empty.shutdown().await;
}
