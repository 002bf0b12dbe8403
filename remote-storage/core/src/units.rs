//! Durations and byte sizes as operators write them (`72h`, `7d`, `64MiB`), for flags and
//! config files. Each type parses what it displays, so a default written once as a value shows
//! up in `--help` and parses back to the same value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written `0`, `500ms`, `30s`, `5m`, `72h`, `7d` or any `humantime` form
/// (`1h 30m`). Displays in the largest unit that divides it exactly (days only beyond three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Wraps a duration.
    pub const fn new(duration: Duration) -> Self {
        Self(duration)
    }

    /// A whole number of seconds.
    pub const fn from_secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<HumanDuration> for Duration {
    fn from(value: HumanDuration) -> Self {
        value.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed == "0" {
            return Ok(Self(Duration::ZERO));
        }
        humantime::parse_duration(trimmed)
            .map(Self)
            .map_err(|error| format!("{text:?} is not a duration: {error} (e.g. 72h, 30m, 7d)"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u128, &str); 6] = [
            (86_400_000_000_000, "d"),
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
        ];
        // Retentions read best in hours up to three days (`72h`), in days beyond (`7d`).
        const DAYS_FROM: u128 = 3 * 86_400_000_000_000;
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0");
        }
        let units = if nanos > DAYS_FROM {
            &UNITS[..]
        } else {
            &UNITS[1..]
        };
        for &(size, unit) in units {
            if nanos.is_multiple_of(size) {
                return write!(f, "{}{unit}", nanos / size);
            }
        }
        write!(f, "{nanos}ns")
    }
}

/// A size in bytes written `1048576`, `512KiB`, `64MiB` or `1GiB` (also `K`, `M`, `G`, `B`;
/// case-insensitive; units are binary). Displays in the largest unit that divides it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The size as a `usize`, or an error naming `flag` when it does not fit this machine.
    pub fn to_usize(self, flag: &str) -> Result<usize, String> {
        usize::try_from(self.0).map_err(|_| format!("{flag}: {self} is too large for this machine"))
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|character: char| !character.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?} is not a size such as 1048576, 512KiB or 64MiB"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {text:?}; use B, KiB, MiB or GiB"
                ));
            }
        };
        number
            .checked_mul(multiplier)
            .map(Self)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            let size = 1_u64 << shift;
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_what_they_display() {
        for (text, seconds) in [
            ("0", 0),
            ("72h", 72 * 3600),
            ("7d", 7 * 86_400),
            ("5m", 300),
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.get(), Duration::from_secs(seconds), "{text}");
            assert_eq!(parsed.to_string(), text);
        }
        let odd = HumanDuration(Duration::from_millis(1_500));
        assert_eq!(odd.to_string(), "1500ms");
        assert_eq!(odd.to_string().parse::<HumanDuration>().unwrap(), odd);
        assert_eq!(
            "1h 30m".parse::<HumanDuration>().unwrap().to_string(),
            "90m"
        );
        let error = "soon".parse::<HumanDuration>().unwrap_err();
        assert!(error.contains("\"soon\""), "{error}");
    }

    #[test]
    fn byte_sizes_accept_plain_numbers_and_binary_units() {
        let parse = |text: &str| text.parse::<ByteSize>().map(ByteSize::bytes);
        assert_eq!(parse("1048576"), Ok(1 << 20));
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("64mib"), Ok(64 << 20));
        assert_eq!(parse("512 KiB"), Ok(512 << 10));
        assert_eq!(parse("1G"), Ok(1 << 30));
        assert_eq!(parse("10B"), Ok(10));
        assert!(parse("MiB").is_err());
        assert!(parse("5TB").is_err());
        assert!(parse("99999999999999999999GiB").is_err());
        for size in [
            ByteSize::mib(64),
            ByteSize(1 << 30),
            ByteSize(1000),
            ByteSize(3 << 10),
        ] {
            assert_eq!(size.to_string().parse::<ByteSize>(), Ok(size));
        }
        assert_eq!(ByteSize::mib(2).to_string(), "2MiB");
    }
}
