//! LL-HLS behind a CDN: HTTP clients that follow a stream's live edge part by part as
//! hls.js's low-latency mode does (a blocking playlist reload for the playlist's
//! preload hint, then that part), and the tally of nginx's access log that says how
//! many of the part requests reached the origin. Used by the CDN e2e test
//! (`tests/llhls.rs`) and by `bench_scale`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The next part a client asks for: the playlist's preload hint, `(msn, part)`.
pub fn hint(playlist: &str) -> Option<(u64, u64)> {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let mut n = uri.strip_suffix(".m4s")?.split('.');
    Some((n.next()?.parse().ok()?, n.next()?.parse().ok()?))
}

/// `n` clients following `base`'s `stream` for `follow_for`, at once; the parts they
/// received in all.
pub async fn follow_many(
    base: &str,
    stream: &str,
    n: usize,
    follow_for: Duration,
) -> Result<usize> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let (http, base, stream) = (http.clone(), base.to_owned(), stream.to_owned());
            tokio::spawn(async move { follow(&http, &base, &stream, follow_for).await })
        })
        .collect();
    let mut received = 0;
    for c in clients {
        received += c.await.context("a client panicked")??;
    }
    Ok(received)
}

/// One client following the live edge part by part for `follow_for`; returns the
/// number of parts it received.
pub async fn follow(
    http: &reqwest::Client,
    base: &str,
    stream: &str,
    follow_for: Duration,
) -> Result<usize> {
    let text = |url: String| async move {
        let r = http.get(&url).send().await?;
        if r.status() != 200 {
            bail!("{url}: {}", r.status());
        }
        Ok::<String, anyhow::Error>(r.text().await?)
    };
    let playlist = text(format!("{base}/live/{stream}/index.m3u8")).await?;
    let mut next = hint(&playlist).context("no preload hint in the playlist")?;
    let mut got = 0;
    let end = Instant::now() + follow_for;
    while Instant::now() < end {
        let (msn, part) = next;
        let playlist = text(format!(
            "{base}/live/{stream}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
        ))
        .await?;
        let r = http
            .get(format!("{base}/live/{stream}/{msn}.{part}.m4s"))
            .send()
            .await?;
        if r.status() != 200 {
            bail!("part {msn}.{part}: {}", r.status());
        }
        r.bytes().await?;
        got += 1;
        next = hint(&playlist).context("no preload hint in the playlist")?;
    }
    Ok(got)
}

/// What nginx's access log (`deploy/nginx.conf`'s `cache` format: `URI cache-status
/// status`) says of `stream`'s parts.
#[derive(Debug, Default)]
pub struct PartTally {
    /// Per part URI: requests from clients, and those nginx did not answer from its
    /// cache (they went to the origin).
    pub asked: HashMap<String, (u32, u32)>,
}

impl PartTally {
    /// Reads `log`.
    pub fn read(log: &str, stream: &str) -> Self {
        let prefix = format!("/live/{stream}/");
        let mut asked: HashMap<String, (u32, u32)> = HashMap::new();
        for line in log.lines() {
            let mut f = line.split(' ');
            let (Some(uri), Some(cache)) = (f.next(), f.next()) else {
                continue;
            };
            let is_part = uri
                .strip_prefix(&prefix)
                .and_then(|u| u.strip_suffix(".m4s"))
                .is_some_and(|u| u.split('.').count() == 2 && !u.contains('?'));
            if !is_part {
                continue;
            }
            let e = asked.entry(uri.to_owned()).or_default();
            e.0 += 1;
            if cache != "HIT" {
                e.1 += 1;
            }
        }
        PartTally { asked }
    }

    /// Distinct parts asked for.
    pub fn parts(&self) -> usize {
        self.asked.len()
    }

    /// Part requests from clients.
    pub fn client_requests(&self) -> u32 {
        self.asked.values().map(|v| v.0).sum()
    }

    /// Part requests that reached the origin.
    pub fn to_origin(&self) -> u32 {
        self.asked.values().map(|v| v.1).sum()
    }

    /// Origin requests per distinct part (NaN with none).
    pub fn per_part(&self) -> f64 {
        f64::from(self.to_origin()) / self.parts() as f64
    }
}
