//! CPU time of another process, read from `/proc/PID/stat`.

use anyhow::{Context as _, Result, anyhow};

/// `utime + stime` in clock ticks from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may contain spaces or parentheses itself,
/// so fields are counted from the last `)`: after it come field 3 (state) onwards, which puts
/// utime (field 14) and stime (field 15) at positions 11 and 12.
pub(crate) fn parse_stat_ticks(stat: &str) -> Result<u64> {
    Ok(parse_stat(stat)?.ticks)
}

/// What a `/proc/PID/stat` line says about a process's CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatTicks {
    /// Field 4.
    pub(crate) parent: u32,
    /// `utime + stime` (fields 14 and 15).
    pub(crate) ticks: u64,
    /// `cutime + cstime` (fields 16 and 17): the children it has waited for.
    pub(crate) reaped_children_ticks: u64,
}

/// Parses a `/proc/PID/stat` line (fields counted from the last `)`, as [`parse_stat_ticks`]
/// explains).
pub(crate) fn parse_stat(stat: &str) -> Result<StatTicks> {
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow!("no ')' in /proc stat line"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize, name: &str| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("stat line has no {name} field"))?
            .parse::<u64>()
            .with_context(|| format!("bad {name} field"))
    };
    Ok(StatTicks {
        parent: u32::try_from(field(1, "ppid")?).context("bad ppid field")?,
        ticks: field(11, "utime")? + field(12, "stime")?,
        reaped_children_ticks: field(13, "cutime")? + field(14, "cstime")?,
    })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, read safely through rustix).
pub(crate) fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// CPU seconds (user + system) consumed so far by process `pid`.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let ticks = parse_stat_ticks(&text).with_context(|| format!("cannot parse {path}"))?;
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

/// CPU seconds consumed so far by process `pid` and its children: its own time, the time of
/// the children it has reaped, and that of its children still running (found by scanning
/// `/proc` for processes whose parent is `pid`). A database server that forks a process per
/// connection is measured whole this way, as long as its children do not fork again.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn tree_cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let main = parse_stat(&text).with_context(|| format!("cannot parse {path}"))?;
    let mut ticks = main.ticks + main.reaped_children_ticks;
    for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
        let Ok(entry) = entry else { continue };
        let is_process = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.bytes().all(|byte| byte.is_ascii_digit()));
        if !is_process {
            continue;
        }
        // A process may end between the listing and the read: it is then counted in its
        // parent's reaped time instead (if it was ours).
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Ok(child) = parse_stat(&text)
            && child.parent == pid
        {
            ticks += child.ticks;
        }
    }
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime() {
        let line = "12345 (jaeger-remote-s) S 1 12345 12345 0 -1 4194560 5000 0 0 0 \
                    1234 567 0 0 20 0 9 0 100 1000000 2000 18446744073709551615 0";
        assert_eq!(parse_stat_ticks(line).unwrap(), 1234 + 567);
    }

    #[test]
    fn parses_the_parent_and_the_reaped_children() {
        let line = "77 (postgres: a) b) S 42 77 77 0 -1 4194560 5000 0 0 0 \
                    10 20 300 400 20 0 9 0 100 1000000 2000 18446744073709551615 0";
        assert_eq!(
            parse_stat(line).unwrap(),
            StatTicks {
                parent: 42,
                ticks: 30,
                reaped_children_ticks: 700,
            }
        );
    }

    #[test]
    fn a_process_tree_counts_its_reaped_children() {
        let pid = std::process::id();
        let (own_before, tree_before) = (cpu_seconds(pid).unwrap(), tree_cpu_seconds(pid).unwrap());
        // A child that burns CPU and is waited for: its time moves into our cutime.
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let (own_after, tree_after) = (cpu_seconds(pid).unwrap(), tree_cpu_seconds(pid).unwrap());
        let children = (tree_after - tree_before) - (own_after - own_before);
        assert!(
            children >= 0.1,
            "the child's CPU was not counted: {children} s"
        );
    }

    #[test]
    fn command_names_with_spaces_and_parens() {
        let line = "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat_ticks(line).unwrap(), 30);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_stat_ticks("no parens here").is_err());
        assert!(parse_stat_ticks("1 (x) S 1 2").is_err());
        assert!(parse_stat_ticks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 2").is_err());
    }

    #[test]
    fn reads_own_process() {
        let s = cpu_seconds(std::process::id()).unwrap();
        assert!(s >= 0.0);
        assert!(clock_ticks_per_second() >= 1);
    }
}
