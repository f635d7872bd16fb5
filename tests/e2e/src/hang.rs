//! Why a page stopped answering WebDriver. A request that times out means the page's
//! main thread did not run the harness's script for [`crate::engine::REQUEST_TIMEOUT`]:
//! either a script in the page keeps it busy (a loop in the widget: a bug to fail on),
//! or the engine blocked it (WebKitGTK's web process waiting on its media pipeline,
//! seen under a full run's load). The two look the same from WebDriver; the CPU time of
//! the main threads of the browser's processes tells them apart (a page's scripts run
//! on its process's main thread; decoders and the compositor have threads of their
//! own). A busy page burns a core there; a blocked one burns nothing, and no script can
//! block a page without burning CPU (a page has no blocking wait on its main thread;
//! `alert()` answers WebDriver with an error instead).
//!
//! The browser is the driver's process group ([`crate::procstat`]); each member's main
//! thread is read from `/proc/PID/task/PID/stat`.

use crate::procstat::{self, Stat};
use std::collections::HashMap;
use std::time::Duration;

/// What xtask reads in a failed test's output to know the engine hung, not the page's
/// scripts (`xtask/src/test.rs`, `ENGINE_HUNG`, says the same words).
pub const ENGINE_HUNG: &str = "the engine hung its page, not a script";

/// Share of one core above which the busiest main thread counts as busy.
const BUSY_SHARE: f64 = 0.5;

/// The main thread of each process in group `pgid`, by pid.
fn main_threads(pgid: u32) -> HashMap<u32, Stat> {
    (procstat::group(pgid).into_iter())
        .filter_map(|(pid, _)| Some((pid, Stat::of_main_thread(pid)?)))
        .collect()
}

/// The process whose main thread was busiest between two readings: (pid, name, CPU
/// seconds).
fn busiest(
    before: &HashMap<u32, Stat>,
    after: &HashMap<u32, Stat>,
    ticks_per_s: f64,
) -> Option<(u32, String, f64)> {
    (after.iter())
        .filter_map(|(pid, a)| {
            let b = before.get(pid)?;
            let cpu = a.ticks.saturating_sub(b.ticks) as f64 / ticks_per_s;
            Some((*pid, a.name.clone(), cpu))
        })
        .max_by(|x, y| x.2.total_cmp(&y.2))
}

/// The verdict on a page that did not answer, from the CPU the busiest main thread of
/// its browser used over `over`.
fn verdict(busiest: Option<(u32, String, f64)>, over: Duration) -> String {
    let secs = over.as_secs_f64();
    match busiest {
        None => "its browser's processes could not be read".into(),
        Some((pid, name, cpu)) if cpu >= BUSY_SHARE * secs => format!(
            "{name} ({pid})'s main thread was busy ({cpu:.2} s of CPU in {secs:.0} s): a \
             script in the page may be looping"
        ),
        Some((pid, name, cpu)) => format!(
            "the busiest main thread, {name} ({pid})'s, was idle ({cpu:.2} s of CPU in \
             {secs:.0} s): {ENGINE_HUNG}"
        ),
    }
}

/// Watches the browser, process group `pgid` (the driver's), for `over`, and says
/// whether its page was busy or blocked.
pub async fn diagnose(pgid: u32, over: Duration) -> String {
    let ticks_per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as f64;
    let before = main_threads(pgid);
    tokio::time::sleep(over).await;
    verdict(busiest(&before, &main_threads(pgid), ticks_per_s), over)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(name: &str, ticks: u64) -> Stat {
        Stat {
            name: name.into(),
            group: 10,
            ticks,
        }
    }

    #[test]
    fn a_page_process_burning_a_core_is_busy_and_one_burning_nothing_is_the_engines() {
        let before = HashMap::from([(10, stat("d", 0)), (12, stat("WebKitWebProcess", 100))]);
        let spinning = HashMap::from([(10, stat("d", 1)), (12, stat("WebKitWebProcess", 395))]);
        let blocked = HashMap::from([(10, stat("d", 1)), (12, stat("WebKitWebProcess", 102))]);
        let over = Duration::from_secs(3);
        let busy = verdict(busiest(&before, &spinning, 100.0), over);
        assert!(
            busy.contains("busy (2.95 s") && !busy.contains(ENGINE_HUNG),
            "{busy}"
        );
        let hung = verdict(busiest(&before, &blocked, 100.0), over);
        assert!(
            hung.contains("idle (0.02 s") && hung.contains(ENGINE_HUNG),
            "{hung}"
        );
    }
}
