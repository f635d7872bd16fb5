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
//! Read from `/proc` (Linux): each process's parent, name and its main thread's CPU
//! ticks (`/proc/PID/task/PID/stat`).

use std::collections::HashMap;
use std::time::Duration;

/// What xtask reads in a failed test's output to know the engine hung, not the page's
/// scripts (`xtask/src/test.rs`, `ENGINE_HUNG`, says the same words).
pub const ENGINE_HUNG: &str = "the engine hung its page, not a script";

/// Share of one core above which the busiest process counts as busy.
const BUSY_SHARE: f64 = 0.5;

/// One process of the browser's tree, as its main thread's `stat` says.
#[derive(Debug, Clone, PartialEq)]
struct Stat {
    name: String,
    parent: u32,
    /// The main thread's user plus system CPU time, clock ticks.
    ticks: u64,
}

/// Parses a `stat` file: `pid (comm) state ppid … utime stime …`; `comm` may hold
/// spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After `)`: state(0) ppid(1) … utime(11) stime(12).
    let parent = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Stat {
        name,
        parent,
        ticks: utime + stime,
    })
}

/// Every process now, by pid, with its main thread's CPU time.
fn processes() -> HashMap<u32, Stat> {
    let mut all = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return all;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let main_thread = entry.path().join("task").join(pid.to_string()).join("stat");
        if let Some(stat) = std::fs::read_to_string(main_thread)
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            all.insert(pid, stat);
        }
    }
    all
}

/// The processes under `root` now (its descendants, not `root` itself).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut pids = tree(&processes(), root);
    pids.retain(|&pid| pid != root);
    pids
}

/// `root` and its descendants in `all`.
fn tree(all: &HashMap<u32, Stat>, root: u32) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        let mut children: Vec<u32> = (all.iter())
            .filter(|(_, s)| s.parent == parent)
            .map(|(pid, _)| *pid)
            .collect();
        children.sort_unstable();
        found.extend(children);
        i += 1;
    }
    found.retain(|pid| all.contains_key(pid));
    found
}

/// The process whose main thread was busiest between two readings: (pid, name, CPU
/// seconds).
fn busiest(
    before: &HashMap<u32, Stat>,
    after: &HashMap<u32, Stat>,
    pids: &[u32],
    ticks_per_s: f64,
) -> Option<(u32, String, f64)> {
    pids.iter()
        .filter_map(|pid| {
            let (b, a) = (before.get(pid)?, after.get(pid)?);
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

/// Watches the processes under `root` (the driver: the browser and its page processes
/// are its descendants) for `over`, and says whether the page was busy or blocked.
pub async fn diagnose(root: u32, over: Duration) -> String {
    let ticks_per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as f64;
    let before = processes();
    tokio::time::sleep(over).await;
    let after = processes();
    let pids = tree(&after, root);
    verdict(busiest(&before, &after, &pids, ticks_per_s), over)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(name: &str, parent: u32, ticks: u64) -> Stat {
        Stat {
            name: name.into(),
            parent,
            ticks,
        }
    }

    #[test]
    fn reads_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (Web Content (x)) S 4200 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 31 0 0 20 0 30 0 12345 0 0";
        assert_eq!(parse_stat(line), Some(stat("Web Content (x)", 4200, 281)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn finds_the_drivers_descendants_only() {
        let all = HashMap::from([
            (10, stat("WebKitWebDriver", 1, 0)),
            (11, stat("MiniBrowser", 10, 0)),
            (12, stat("WebKitWebProcess", 11, 0)),
            (20, stat("unrelated", 1, 0)),
        ]);
        assert_eq!(tree(&all, 10), [10, 11, 12]);
    }

    #[test]
    fn a_page_process_burning_a_core_is_busy_and_one_burning_nothing_is_the_engines() {
        let pids = [10, 12];
        let before = HashMap::from([
            (10, stat("d", 1, 0)),
            (12, stat("WebKitWebProcess", 10, 100)),
        ]);
        let spinning = HashMap::from([
            (10, stat("d", 1, 1)),
            (12, stat("WebKitWebProcess", 10, 395)),
        ]);
        let blocked = HashMap::from([
            (10, stat("d", 1, 1)),
            (12, stat("WebKitWebProcess", 10, 102)),
        ]);
        let over = Duration::from_secs(3);
        let busy = verdict(busiest(&before, &spinning, &pids, 100.0), over);
        assert!(
            busy.contains("busy (2.95 s") && !busy.contains(ENGINE_HUNG),
            "{busy}"
        );
        let hung = verdict(busiest(&before, &blocked, &pids, 100.0), over);
        assert!(
            hung.contains("idle (0.02 s") && hung.contains(ENGINE_HUNG),
            "{hung}"
        );
    }
}
