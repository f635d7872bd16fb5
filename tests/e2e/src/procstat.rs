//! What `/proc` (Linux) says of a process, for the harness's diagnoses and the soak's
//! resource watch: its `stat` line (name, process group, CPU ticks) and the members of a
//! process group. A driver the harness starts leads its own group, and the browser it
//! launches stays in it (`process::Spawned` signals the group for that reason), so a
//! group is "the browser".

/// One `stat` line: of a process (`/proc/PID/stat`) or of one of its threads
/// (`/proc/PID/task/TID/stat`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    /// The command name (`comm`, at most 15 bytes).
    pub name: String,
    /// Its process group.
    pub group: u32,
    /// User plus system CPU time, clock ticks.
    pub ticks: u64,
}

impl Stat {
    /// Parses a `stat` line: `pid (comm) state ppid pgrp … utime stime …`; `comm` may
    /// hold spaces and parentheses, so the fields are counted from the last `)`.
    pub fn parse(text: &str) -> Option<Stat> {
        let open = text.find('(')?;
        let (comm, rest) = text.get(open + 1..)?.rsplit_once(')')?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After `)`: state(0) ppid(1) pgrp(2) … utime(11) stime(12).
        let num = |i: usize| f.get(i)?.parse::<u64>().ok();
        Some(Stat {
            name: comm.to_owned(),
            group: u32::try_from(num(2)?).ok()?,
            ticks: num(11)? + num(12)?,
        })
    }

    /// Process `pid`'s line; `None` once it is gone.
    pub fn of(pid: u32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// The line of `pid`'s main thread (whose CPU is its own, not its other threads').
    pub fn of_main_thread(pid: u32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?)
    }
}

/// The processes now in process group `pgid`, the leader included, with their lines,
/// by pid.
pub fn group(pgid: u32) -> Vec<(u32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut members: Vec<(u32, Stat)> = (dir.flatten())
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, Stat::of(pid).filter(|s| s.group == pgid)?))
        })
        .collect();
    members.sort_unstable_by_key(|(pid, _)| *pid);
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let line = "4242 (Web Content (x)) S 4200 4201 4242 0 -1 4194560 100 0 0 0 \
                    250 31 0 0 20 0 30 0 12345 0 0";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                name: "Web Content (x)".into(),
                group: 4201,
                ticks: 281
            })
        );
        assert_eq!(Stat::parse("garbage"), None);
    }

    #[test]
    fn finds_this_process_in_its_own_group() {
        let me = std::process::id();
        let mine = Stat::of(me).expect("this process's stat");
        assert!(group(mine.group).iter().any(|(pid, _)| *pid == me));
        assert!(Stat::of_main_thread(me).is_some());
    }
}
