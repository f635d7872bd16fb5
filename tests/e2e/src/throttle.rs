//! A slow link in front of a server: a TCP relay whose server-to-browser bytes leave
//! at a rate the test sets, and changes while the page plays (4 → 1 → 4 Mbit/s), as a
//! viewer's access link would. Every connection through it shares the one rate, as
//! they share a link: a browser fetching a playlist and a segment at once gets the
//! rate between them, not twice it.
//!
//! The link is a queue, as a router's is: each chunk read from the server is stamped
//! when it arrives, and leaves `bytes × 8 / rate` seconds after the later of its
//! arrival and the departure of the chunk before it. A relay that wakes late (a loaded
//! machine: the browser, ffmpeg and the test share two cores) then sends what was
//! queued at once and catches up, so the link still carries its rate on average; an
//! idle link banks nothing (no burst after a pause). A rate change applies from the
//! next chunk. Browser-to-server bytes (requests) pass
//! at once. Owns its listener and the relayed connections; knows nothing of HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Bytes read from the server at a time: 8 KB take 16 ms at 4 Mbit/s, so delivery is
/// smooth on the scale a player measures (tens of milliseconds).
const CHUNK: usize = 8192;
/// Chunks read ahead of the link per connection (256 KB): the queue in front of it.
/// Bounded, so a stalled browser holds back the server, as TCP would.
const QUEUE: usize = 32;

/// The shared link.
#[derive(Debug)]
struct Link {
    /// Bits per second, downstream.
    bps: AtomicU64,
    /// When the link is free again (the end of the last chunk given a slot).
    free_at: Mutex<Instant>,
    /// Bytes delivered to browsers so far.
    delivered: AtomicU64,
}

impl Link {
    /// Takes the link's next slot for `n` bytes that arrived at `arrived`; returns when
    /// they have gone through.
    fn slot(&self, n: usize, arrived: Instant) -> Instant {
        let bps = self.bps.load(Ordering::SeqCst).max(1);
        let took = Duration::from_secs_f64(n as f64 * 8.0 / bps as f64);
        let mut free = self.free_at.lock().expect("link lock");
        let end = (*free).max(arrived) + took;
        *free = end;
        end
    }
}

/// Relays connections made to 127.0.0.1:PORT to `upstream` through a link of the
/// rate set. Stops when dropped.
#[derive(Debug)]
pub struct Throttle {
    addr: SocketAddr,
    link: Arc<Link>,
    task: JoinHandle<()>,
}

impl Throttle {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream` at `bps` bits per
    /// second (server to browser).
    pub async fn start(upstream: SocketAddr, bps: u64) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the throttled relay")?;
        let addr = listener.local_addr()?;
        let link = Arc::new(Link {
            bps: AtomicU64::new(bps),
            free_at: Mutex::new(Instant::now()),
            delivered: AtomicU64::new(0),
        });
        let shared = link.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let link = shared.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, link).await;
                    }
                });
            }
        });
        Ok(Self { addr, link, task })
    }

    /// `http://127.0.0.1:PORT`: the upstream server's URLs through the link.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the rate, from the next chunk on.
    pub fn set_bps(&self, bps: u64) {
        self.link.bps.store(bps, Ordering::SeqCst);
    }

    /// The rate now, bits per second.
    pub fn bps(&self) -> u64 {
        self.link.bps.load(Ordering::SeqCst)
    }

    /// Bytes delivered to browsers since the start.
    pub fn delivered(&self) -> u64 {
        self.link.delivered.load(Ordering::SeqCst)
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Requests go up at once; responses come down through the link. Ends when either
/// side closes (a browser aborting a download closes its connection).
async fn relay(client: TcpStream, server: TcpStream, link: Arc<Link>) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    };
    let (queued, mut queue) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if queued
                        .send((Instant::now(), buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let down = async {
        while let Some((arrived, chunk)) = queue.recv().await {
            tokio::time::sleep_until(link.slot(chunk.len(), arrived)).await;
            if to_client.write_all(&chunk).await.is_err() {
                break;
            }
            link.delivered
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        let _ = to_client.shutdown().await;
    };
    // Either direction ending ends the connection (the other is dropped with it).
    // The reader ends with the server's side; the queue drains before `down` ends.
    tokio::select! {
        () = up => {}
        ((), ()) = async { tokio::join!(read, down) } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `size` bytes to every connection, then closes it.
    async fn source(size: usize) -> Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(&vec![7u8; size]).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Ok(addr)
    }

    async fn fetch_all(addr: SocketAddr) -> Result<usize> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"x").await?;
        let mut got = Vec::new();
        s.read_to_end(&mut got).await?;
        Ok(got.len())
    }

    #[tokio::test]
    async fn delivers_at_the_rate_set_and_follows_a_change() -> Result<()> {
        // 100 KB at 4 Mbit/s: 0.2 s; at 1 Mbit/s: 0.8 s.
        let up = source(100_000).await?;
        let link = Throttle::start(up, 4_000_000).await?;
        let t = std::time::Instant::now();
        assert_eq!(fetch_all(link.addr).await?, 100_000);
        let fast = t.elapsed().as_secs_f64();
        assert!((0.18..0.4).contains(&fast), "4 Mbit/s took {fast} s");
        link.set_bps(1_000_000);
        let t = std::time::Instant::now();
        fetch_all(link.addr).await?;
        let slow = t.elapsed().as_secs_f64();
        assert!((0.75..1.1).contains(&slow), "1 Mbit/s took {slow} s");
        assert_eq!(link.delivered(), 200_000);
        Ok(())
    }

    #[test]
    fn a_late_relay_does_not_lose_link_time_and_an_idle_link_banks_none() {
        let link = Link {
            bps: AtomicU64::new(8_000_000),
            free_at: Mutex::new(Instant::now()),
            delivered: AtomicU64::new(0),
        };
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // 1000 bytes take 1 ms at 8 Mbit/s. Three chunks queued at t0 leave 1 ms apart,
        // however late each slot is asked for.
        assert_eq!(link.slot(1000, t0), t0 + ms(1));
        assert_eq!(link.slot(1000, t0), t0 + ms(2));
        assert_eq!(link.slot(1000, t0), t0 + ms(3));
        // A chunk arriving after the link went idle leaves one chunk's time after it.
        assert_eq!(link.slot(1000, t0 + ms(50)), t0 + ms(51));
    }

    #[tokio::test]
    async fn two_connections_share_the_link() -> Result<()> {
        let up = source(50_000).await?;
        let link = Throttle::start(up, 2_000_000).await?;
        let t = std::time::Instant::now();
        let (a, b) = tokio::join!(fetch_all(link.addr), fetch_all(link.addr));
        assert_eq!((a?, b?), (50_000, 50_000));
        // 100 KB in all at 2 Mbit/s: 0.4 s, not the 0.2 s of two links.
        let took = t.elapsed().as_secs_f64();
        assert!((0.38..0.7).contains(&took), "took {took} s");
        Ok(())
    }
}
