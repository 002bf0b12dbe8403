//! CPU time of another process, read from `/proc/PID/stat`.

use anyhow::{Context as _, Result, anyhow};

/// `utime + stime` in clock ticks from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may contain spaces or parentheses itself,
/// so fields are counted from the last `)`: after it come field 3 (state) onwards, which puts
/// utime (field 14) and stime (field 15) at positions 11 and 12.
pub(crate) fn parse_stat_ticks(stat: &str) -> Result<u64> {
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
    Ok(field(11, "utime")? + field(12, "stime")?)
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
