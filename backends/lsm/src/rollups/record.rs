//! The value of a call record: `format ‖ n services ‖ lp(service)… ‖ n entries ‖ (position
//! after the record's base ‖ parent index ‖ child index ‖ zigzag delta)…`, all LEB128. A block
//! record's positions are minutes (its base the block's first minute); a minute record's are
//! callee starts in nanoseconds (its base the minute's first nanosecond).

use crate::error::LsmError;
use crate::keys::{put_bytes, put_len, put_varint, take_bytes, take_varint};

const FORMAT_V1: u8 = 1;

/// Encodes call deltas at positions (absolute) not below `base`.
pub(crate) fn encode_calls<'a>(
    base: u64,
    entries: impl IntoIterator<Item = (u64, &'a str, &'a str, i64)>,
) -> Vec<u8> {
    let mut services: Vec<&str> = Vec::new();
    let mut body = Vec::new();
    let mut count = 0;
    for (position, parent, child, delta) in entries {
        put_varint(&mut body, position.saturating_sub(base));
        for service in [parent, child] {
            let index = match services.iter().position(|known| *known == service) {
                Some(index) => index,
                None => {
                    services.push(service);
                    services.len() - 1
                }
            };
            put_len(&mut body, index);
        }
        // Zigzag, so small negative deltas stay one byte.
        let zigzag = (delta << 1) ^ (delta >> 63);
        put_varint(&mut body, zigzag.cast_unsigned());
        count += 1;
    }
    let mut out = Vec::with_capacity(8 + body.len() + services.len() * 12);
    out.push(FORMAT_V1);
    put_len(&mut out, services.len());
    for service in &services {
        put_bytes(&mut out, service.as_bytes());
    }
    put_len(&mut out, count);
    out.extend_from_slice(&body);
    out
}

/// Calls `each(position, parent, child, delta)` for every entry of a record written with
/// `base`.
pub(crate) fn decode_calls<'v>(
    base: u64,
    value: &'v [u8],
    each: impl FnMut(u64, &'v str, &'v str, i64),
) -> Result<(), LsmError> {
    match value.split_first() {
        Some((&FORMAT_V1, rest)) => decode_inner(base, rest, each)
            .ok_or_else(|| LsmError::corrupt("call record is truncated")),
        _ => Err(LsmError::corrupt("call record has an unknown format")),
    }
}

fn decode_inner<'v>(
    base: u64,
    mut input: &'v [u8],
    mut each: impl FnMut(u64, &'v str, &'v str, i64),
) -> Option<()> {
    let service_count = usize::try_from(take_varint(&mut input)?).ok()?;
    let mut services = Vec::with_capacity(service_count.min(1024));
    for _ in 0..service_count {
        services.push(std::str::from_utf8(take_bytes(&mut input)?).ok()?);
    }
    let count = take_varint(&mut input)?;
    for _ in 0..count {
        let position = base.checked_add(take_varint(&mut input)?)?;
        let parent = *services.get(usize::try_from(take_varint(&mut input)?).ok()?)?;
        let child = *services.get(usize::try_from(take_varint(&mut input)?).ok()?)?;
        let zigzag = take_varint(&mut input)?;
        let delta = (zigzag >> 1).cast_signed() ^ -((zigzag & 1).cast_signed());
        each(position, parent, child, delta);
    }
    input.is_empty().then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_records_round_trip() {
        let base = 470_000 * 60;
        let entries = vec![
            (base, "frontend", "backend", 3),
            (base + 59, "backend", "backend", -1),
            (base + 7, "db", "frontend", i64::MAX),
            (base + 8, "db", "db", i64::MIN),
        ];
        let value = encode_calls(base, entries.iter().copied());
        let mut decoded = Vec::new();
        decode_calls(base, &value, |minute, parent, child, delta| {
            decoded.push((minute, parent, child, delta));
        })
        .unwrap();
        assert_eq!(decoded, entries);
        assert!(decode_calls(base, &value[..value.len() - 1], |_, _, _, _| {}).is_err());
    }
}
