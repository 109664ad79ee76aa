//! Readings from `/proc` for the benchmark: a process tree's CPU time and
//! proportional memory (PSS), and the whole machine's busy time, so that a run
//! can report how much else was using the CPUs.

use std::time::Duration;

/// Clock ticks per second of `/proc`'s CPU times (USER_HZ: 100 on Linux).
const TICKS: u64 = 100;

/// The process `pid` and all its descendants.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let children =
                    std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                all.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// CPU time (user + system) used by `pid`'s tree, including reaped children.
pub fn cpu(pid: u32) -> Duration {
    let ticks: u64 = tree(pid)
        .iter()
        .map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // Fields after the command name (which may hold spaces).
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // utime, stime, cutime, cstime are fields 14–17 (index 11–14 here).
            f.get(11..15).map_or(0, |v| v.iter().sum())
        })
        .sum();
    Duration::from_millis(ticks * 1000 / TICKS)
}

/// Proportional set size of `pid`'s tree, in KiB.
pub fn pss_kib(pid: u32) -> u64 {
    tree(pid)
        .iter()
        .map(|p| {
            std::fs::read_to_string(format!("/proc/{p}/smaps_rollup"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Busy CPU time of the whole machine so far (all CPUs, idle and iowait
/// excluded).
pub fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = f
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| *v)
        .sum();
    Duration::from_millis(busy * 1000 / TICKS)
}

/// Online CPUs.
pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}
