//! Constant literals as Jaeger's Go code reads them: `strconv` numbers and booleans,
//! `time.ParseDuration` durations (with `µs`), RFC 3339 timestamps, and the span kind and
//! status words. Every parser takes any text and answers `None` (or an error message) rather
//! than panicking or wrapping around.

/// The span kind words, lower case only.
pub(super) const SPAN_KIND_WORDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];

/// The span status words, lower case only.
pub(super) const SPAN_STATUS_WORDS: [&str; 3] = ["unset", "ok", "error"];

/// Go's `strconv.ParseInt(text, 10, 64)`: an optional sign and decimal digits.
pub(super) fn parse_go_int(text: &str) -> Option<i64> {
    // Rust's parser takes exactly that syntax (no underscores, no spaces, `+` allowed).
    text.parse().ok()
}

/// Go's `strconv.ParseFloat(text, 64)` for decimal syntax (`1.5`, `.5`, `5.`, `1e-3`, `Inf`,
/// `NaN`). Out-of-range values are refused as Go refuses them; Go's hexadecimal floats are
/// refused too (Rust's parser lacks them).
pub(super) fn parse_go_float(text: &str) -> Option<f64> {
    let parsed: f64 = text.parse().ok()?;
    if parsed.is_infinite() {
        let unsigned = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if unsigned != "inf" && unsigned != "infinity" {
            return None;
        }
    }
    Some(parsed)
}

/// Go's `strconv.ParseBool`.
pub(super) fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Go's `time.ParseDuration`: an optional sign, then one or more number+unit groups
/// (`ns us µs μs ms s m h`, fractions allowed: `1.5h`); only `0` may omit the unit. The result
/// must fit Go's `int64` nanoseconds.
pub(super) fn parse_go_duration(text: &str) -> Result<i128, &'static str> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or("")),
        Some(b'+') => (false, text.get(1..).unwrap_or("")),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("empty duration");
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let integer_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (integer_digits, after_integer) = rest.split_at(integer_len);
        let (fraction_digits, after_number) = match after_integer.strip_prefix('.') {
            Some(after_dot) => {
                let fraction_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(fraction_len)
            }
            None if integer_digits.is_empty() => return Err("expected a number"),
            None => ("", after_integer),
        };
        if integer_digits.is_empty() && fraction_digits.is_empty() {
            return Err("expected a number");
        }
        let unit_len = after_number
            .bytes()
            .take_while(|byte| *byte != b'.' && !byte.is_ascii_digit())
            .count();
        let (unit_text, after_unit) = after_number.split_at(unit_len);
        let unit: u128 = match unit_text {
            "" => return Err("missing unit (only \"0\" may omit it)"),
            "ns" => 1,
            "us" | "\u{00b5}s" | "\u{03bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err("unknown unit (expected ns, us, µs, ms, s, m or h)"),
        };
        let integer = digits_value(integer_digits).ok_or("out of range")?;
        // Digits past the 19th change the value by less than a nanosecond even in hours.
        let kept_fraction = fraction_digits.get(..19).unwrap_or(fraction_digits);
        let fraction = digits_value(kept_fraction).ok_or("out of range")?;
        let fraction_scale = 10u128.pow(u32::try_from(kept_fraction.len()).unwrap_or(19));
        let group = integer
            .checked_mul(unit)
            .and_then(|whole| whole.checked_add(fraction * unit / fraction_scale))
            .ok_or("out of range")?;
        total = total.checked_add(group).ok_or("out of range")?;
        if total > 1u128 << 63 {
            return Err("out of range");
        }
        rest = after_unit;
    }
    let magnitude = i128::try_from(total).map_err(|_| "out of range")?;
    if negative {
        Ok(-magnitude)
    } else if magnitude > i128::from(i64::MAX) {
        Err("out of range")
    } else {
        Ok(magnitude)
    }
}

/// The value of a run of ASCII digits (`0` when empty), `None` past `u128`.
fn digits_value(digits: &str) -> Option<u128> {
    let mut value: u128 = 0;
    for byte in digits.bytes() {
        value = value
            .checked_mul(10)?
            .checked_add(u128::from(byte.checked_sub(b'0')?))?;
    }
    Some(value)
}

/// An RFC 3339 timestamp with a required offset (`Z` or `±hh:mm`) and at most nine fractional
/// digits (`2026-08-16T18:56:20.123456789Z`), as nanoseconds since the Unix epoch.
pub(super) fn parse_rfc3339(text: &str) -> Option<i128> {
    let bytes = text.as_bytes();
    let year = fixed_number(bytes, 0, 4)?;
    expect_byte(bytes, 4, b'-')?;
    let month = fixed_number(bytes, 5, 2)?;
    expect_byte(bytes, 7, b'-')?;
    let day = fixed_number(bytes, 8, 2)?;
    expect_byte(bytes, 10, b'T')?;
    let hour = fixed_number(bytes, 11, 2)?;
    expect_byte(bytes, 13, b':')?;
    let minute = fixed_number(bytes, 14, 2)?;
    expect_byte(bytes, 16, b':')?;
    let second = fixed_number(bytes, 17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut position = 19;
    let mut fraction_nanos: i128 = 0;
    if bytes.get(position) == Some(&b'.') {
        let digits = bytes
            .get(position + 1..)?
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let fraction = fixed_number(bytes, position + 1, digits)?;
        let scale = 10i128.pow(u32::try_from(9 - digits).ok()?);
        fraction_nanos = fraction * scale;
        position += 1 + digits;
    }
    let offset_seconds = match bytes.get(position..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), ..] if bytes.len() == position + 6 => {
            let offset_hours = fixed_number(bytes, position + 1, 2)?;
            expect_byte(bytes, position + 3, b':')?;
            let offset_minutes = fixed_number(bytes, position + 4, 2)?;
            if offset_hours > 23 || offset_minutes > 59 {
                return None;
            }
            let magnitude = offset_hours * 3600 + offset_minutes * 60;
            if *sign == b'-' { -magnitude } else { magnitude }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * NANOS_PER_SECOND + fraction_nanos)
}

fn fixed_number(bytes: &[u8], start: usize, len: usize) -> Option<i128> {
    let digits = bytes.get(start..start + len)?;
    let mut value: i128 = 0;
    for byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i128::from(byte - b'0');
    }
    Some(value)
}

fn expect_byte(bytes: &[u8], position: usize, expected: u8) -> Option<()> {
    (bytes.get(position) == Some(&expected)).then_some(())
}

fn days_in_month(year: i128, month: i128) -> i128 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i128, month: i128, day: i128) -> i128 {
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go_syntax() {
        assert_eq!(parse_go_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("50µs"), Ok(50_000));
        assert_eq!(parse_go_duration("50\u{03bc}s"), Ok(50_000));
        assert_eq!(parse_go_duration("8us"), Ok(8_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_go_duration("-1.5ms"), Ok(-1_500_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-0"), Ok(0));
        assert_eq!(parse_go_duration("0s"), Ok(0));
        assert_eq!(
            parse_go_duration("9223372036854775807ns"),
            Ok(i128::from(i64::MAX))
        );
        assert_eq!(
            parse_go_duration("-9223372036854775808ns"),
            Ok(i128::from(i64::MIN))
        );
        for refused in [
            "",
            "2000",
            "2",
            "1d",
            "s",
            ".s",
            "1.s5",
            "+",
            "1 s",
            "2S",
            "1e3s",
            "9223372036854775808ns",
            "3000000h",
        ] {
            assert!(parse_go_duration(refused).is_err(), "{refused:?}");
        }
        assert_eq!(parse_go_duration("1.s"), Ok(1_000_000_000));
    }

    #[test]
    fn timestamps_are_rfc3339_with_offset() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-08-16T18:56:20.123456789Z"),
            Some(1_786_906_580_123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2026-08-16T20:56:20.5+02:00"),
            Some(1_786_906_580_500_000_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000_000_000)
        );
        for refused in [
            "2026-08-16T18:56:20",
            "2026-08-16 18:56:20Z",
            "2026-08-16t18:56:20Z",
            "2026-08-16T18:56:20z",
            "2026-08-16T18:56:20.1234567891Z",
            "2026-08-16T18:56:20.Z",
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-08-16T24:00:00Z",
            "2026-08-16T18:56:60Z",
            "2026-08-16T18:56:20+0200",
            "2026-08-16T18:56:20+24:00",
            "2026-08-16",
            "",
            "２026-08-16T18:56:20Z",
        ] {
            assert_eq!(parse_rfc3339(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn numbers_and_bools_follow_strconv() {
        assert_eq!(parse_go_int("+42"), Some(42));
        assert_eq!(parse_go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int("9223372036854775808"), None);
        assert_eq!(parse_go_int("1_000"), None);
        assert_eq!(parse_go_int("1.0"), None);
        assert_eq!(parse_go_float("1.50"), Some(1.5));
        assert_eq!(parse_go_float(".5"), Some(0.5));
        assert_eq!(parse_go_float("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_go_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_go_float("1e400"), None);
        assert_eq!(parse_go_float("abc"), None);
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("False"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
        assert_eq!(parse_go_bool("tRUE"), None);
    }
}
