//! Polling with a deadline: the only way tests wait for the page. A probe says
//! either "done" or "not yet, and here is what I saw", so a timeout reports the
//! last thing observed instead of a bare "timed out".

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// One observation made by a probe.
#[derive(Debug)]
pub enum Check<T> {
    /// The awaited condition holds; here is the value.
    Done(T),
    /// Not yet; what was seen (goes into the timeout message).
    NotYet(String),
}

/// How often probes run. Short enough to catch a 1 s state, long enough not to
/// load a 2-core machine with WebDriver round trips.
pub const POLL: Duration = Duration::from_millis(200);

/// Runs `probe` every [`POLL`] until it returns [`Check::Done`] or `deadline`
/// passes. An `Err` from the probe (a WebDriver failure) stops the wait at once.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check<T>>>,
{
    let start = Instant::now();
    loop {
        let seen = match probe().await? {
            Check::Done(v) => return Ok(v),
            Check::NotYet(s) => s,
        };
        if start.elapsed() >= deadline {
            bail!(
                "waited {:.1} s for {what}; last seen: {seen}",
                start.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_message_says_what_was_seen() {
        let err = wait_until("the moon", Duration::from_millis(300), || async {
            Ok(Check::<()>::NotYet("only clouds".into()))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("the moon") && err.contains("only clouds"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn returns_the_value_once_done() {
        let mut n = 0;
        let v = wait_until("three polls", Duration::from_secs(5), || {
            n += 1;
            let now = n;
            async move {
                Ok(if now >= 3 {
                    Check::Done(now)
                } else {
                    Check::NotYet(format!("{now}"))
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
    }
}
