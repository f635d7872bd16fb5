//! A real `redis-server` for tests: started on a free loopback port with no persistence
//! (or, with [`RedisServer::start_persistent`], with an append-only file that survives a
//! stop and restart), killed when dropped. A machine without `redis-server` fails the test with a message
//! saying how to install it (`.ci/run` does); it never skips.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// Where the append-only file lives, when persistent.
    data: Option<std::path::PathBuf>,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`.
    ///
    /// Tests run in parallel, each with its own server: a port handed out by the OS and
    /// released may be handed out again to another test before its server binds it, and
    /// the loser's `redis-server` exits while `PING` is answered by the winner's. So
    /// the server answering must be this one (`INFO`'s `process_id`), else another port
    /// is tried.
    pub fn start() -> RedisServer {
        RedisServer::start_in(None)
    }

    /// Like [`RedisServer::start`], keeping its data in `dir` with an append-only file
    /// written on every command (`appendfsync always`), as a deployment that must lose
    /// nothing acknowledged runs it.
    pub fn start_persistent(dir: &std::path::Path) -> RedisServer {
        RedisServer::start_in(Some(dir.to_path_buf()))
    }

    fn start_in(data: Option<std::path::PathBuf>) -> RedisServer {
        for _ in 0..10 {
            // A port the OS just handed out and released: free unless raced (see `start`).
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            if let Some(server) = RedisServer::try_start(port, data.clone()) {
                return server;
            }
        }
        panic!("redis-server: no free port after 10 tries");
    }

    /// Stops the server the way an operator does (`SIGTERM`: it writes its data and
    /// exits) and waits for it to be gone.
    pub fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM to redis-server");
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same data (after [`RedisServer::stop`]).
    pub fn restart(&mut self) {
        let again = RedisServer::try_start(self.port, self.data.clone()).unwrap_or_else(|| {
            panic!(
                "redis-server could not start again on port {} (taken meanwhile?)",
                self.port
            )
        });
        // The old one's process has exited (stop waited for it): dropping it is harmless.
        *self = again;
    }

    fn try_start(port: u16, data: Option<std::path::PathBuf>) -> Option<RedisServer> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"]);
        match &data {
            Some(dir) => command.arg("--dir").arg(dir).args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]),
            None => command.args(["--save", "", "--appendonly", "no"]),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): these tests need a real Redis; install \
                     it with `apt-get install redis-server` (.ci/run does)"
                )
            });
        let mut server = RedisServer { child, port, data };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                eprintln!("redis-server exited at start ({status}); trying another port");
                return None;
            }
            match server.answering_pid() {
                Some(pid) if pid == server.child.id() => return Some(server),
                // Another test's server on this port: ours cannot bind it.
                Some(_) => return None,
                None => {}
            }
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing is answered,
    /// and the port stays taken, so no other test's server can appear on it.
    pub fn pause(&self) {
        let status = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGSTOP to redis-server");
    }

    /// The process id of the server answering on the port, once it answers.
    fn answering_pid(&self) -> Option<u32> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(b"INFO server\r\n").ok()?;
        // A bulk string: `$LEN\r\n` then LEN bytes; the field is well inside.
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !reply.windows(11).any(|w| w == b"process_id:") || !reply.ends_with(b"\r\n") {
            let n = s.read(&mut buf).ok()?;
            if n == 0 || reply.len() > 64 * 1024 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&reply);
        let line = text.lines().find_map(|l| l.strip_prefix("process_id:"))?;
        line.trim().parse().ok()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
