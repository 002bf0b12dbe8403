//! One internal time type (Unix nanoseconds) and the conversions from and to protobuf times.
//!
//! Jaeger's Go client always sends every timestamp and duration: an unset Go `time.Time` arrives
//! as 0001-01-01T00:00:00Z (seconds -62135596800) and an unset duration as zero. Both mean
//! "unset" here, as does an absent field.

use std::fmt;

use prost_types::{Duration as ProtoDuration, Timestamp};

use crate::error::StoreError;

/// Seconds of 0001-01-01T00:00:00Z, Go's zero `time.Time`.
pub const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A point in time as nanoseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct UnixNanos(pub u64);

impl UnixNanos {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Reads an optional protobuf timestamp; absent and Go's zero time (or anything up to year 1)
    /// are `None`. Times before 1970 clamp to the epoch. A malformed `nanos` is refused.
    pub fn from_proto(
        timestamp: Option<&Timestamp>,
        field: &str,
    ) -> Result<Option<Self>, StoreError> {
        let Some(timestamp) = timestamp else {
            return Ok(None);
        };
        if timestamp.seconds <= GO_ZERO_TIME_SECONDS {
            return Ok(None);
        }
        let nanos = u64::try_from(timestamp.nanos)
            .ok()
            .filter(|nanos| *nanos < NANOS_PER_SECOND)
            .ok_or_else(|| {
                StoreError::invalid_argument(format!(
                    "{field}.nanos must be in 0..1e9, got {}",
                    timestamp.nanos
                ))
            })?;
        let Ok(seconds) = u64::try_from(timestamp.seconds) else {
            return Ok(Some(Self(0)));
        };
        Ok(Some(Self(
            seconds
                .saturating_mul(NANOS_PER_SECOND)
                .saturating_add(nanos),
        )))
    }

    /// The protobuf timestamp for this time.
    pub fn to_proto(self) -> Timestamp {
        let seconds = i64::try_from(self.0 / NANOS_PER_SECOND).unwrap_or(i64::MAX);
        let nanos = i32::try_from(self.0 % NANOS_PER_SECOND).unwrap_or(0);
        Timestamp { seconds, nanos }
    }

    /// This time moved forward, saturating.
    pub fn saturating_add(self, nanos: u64) -> Self {
        Self(self.0.saturating_add(nanos))
    }

    /// This time moved back, saturating at the epoch.
    pub fn saturating_sub(self, nanos: u64) -> Self {
        Self(self.0.saturating_sub(nanos))
    }
}

/// Numbers the writes of one process in the order they happen: the wall clock in
/// nanoseconds, or one more than the previous number when the clock has not moved on (or went
/// back). Stores that keep spans in write order across writes key them by it.
#[derive(Debug, Default)]
pub struct WriteClock {
    last: std::sync::atomic::AtomicU64,
}

impl WriteClock {
    /// A number above every earlier one of this clock.
    pub fn next(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = UnixNanos::now().0;
        let previous = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(previous + 1)
    }
}

impl fmt::Debug for UnixNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixNanos({})", self.0)
    }
}

/// Reads an optional protobuf duration as nanoseconds; absent and zero are `None`, a negative
/// duration or one whose `nanos` is out of range is refused.
pub fn duration_nanos_from_proto(
    duration: Option<&ProtoDuration>,
    field: &str,
) -> Result<Option<u64>, StoreError> {
    let Some(duration) = duration else {
        return Ok(None);
    };
    if duration.seconds == 0 && duration.nanos == 0 {
        return Ok(None);
    }
    let (Ok(seconds), Ok(nanos)) = (
        u64::try_from(duration.seconds),
        u64::try_from(duration.nanos),
    ) else {
        return Err(StoreError::invalid_argument(format!(
            "{field} must not be negative"
        )));
    };
    if nanos >= NANOS_PER_SECOND {
        return Err(StoreError::invalid_argument(format!(
            "{field}.nanos must be in 0..1e9, got {nanos}"
        )));
    }
    Ok(Some(
        seconds
            .saturating_mul(NANOS_PER_SECOND)
            .saturating_add(nanos),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_write_clock_only_moves_forward() {
        let clock = super::WriteClock::default();
        let mut previous = clock.next();
        for _ in 0..10_000 {
            let next = clock.next();
            assert!(next > previous);
            previous = next;
        }
    }

    use super::*;

    #[test]
    fn go_zero_time_and_absent_are_unset() {
        let go_zero = Timestamp {
            seconds: GO_ZERO_TIME_SECONDS,
            nanos: 0,
        };
        assert_eq!(UnixNanos::from_proto(Some(&go_zero), "t").unwrap(), None);
        assert_eq!(UnixNanos::from_proto(None, "t").unwrap(), None);
    }

    #[test]
    fn timestamps_round_trip() {
        let timestamp = Timestamp {
            seconds: 1_700_000_000,
            nanos: 123,
        };
        let nanos = UnixNanos::from_proto(Some(&timestamp), "t")
            .unwrap()
            .unwrap();
        assert_eq!(nanos, UnixNanos(1_700_000_000_000_000_123));
        assert_eq!(nanos.to_proto(), timestamp);
    }

    #[test]
    fn malformed_nanos_are_refused_with_the_field_name() {
        let bad = Timestamp {
            seconds: 5,
            nanos: -1,
        };
        let error = UnixNanos::from_proto(Some(&bad), "query.start_time_min").unwrap_err();
        assert!(error.to_string().contains("query.start_time_min.nanos"));
    }

    #[test]
    fn durations_zero_is_unset_and_negative_is_refused() {
        assert_eq!(duration_nanos_from_proto(None, "d").unwrap(), None);
        let zero = ProtoDuration {
            seconds: 0,
            nanos: 0,
        };
        assert_eq!(duration_nanos_from_proto(Some(&zero), "d").unwrap(), None);
        let two_micros = ProtoDuration {
            seconds: 0,
            nanos: 2000,
        };
        assert_eq!(
            duration_nanos_from_proto(Some(&two_micros), "d").unwrap(),
            Some(2000)
        );
        let negative = ProtoDuration {
            seconds: -1,
            nanos: 0,
        };
        assert!(duration_nanos_from_proto(Some(&negative), "d").is_err());
        let malformed = ProtoDuration {
            seconds: 1,
            nanos: 1_000_000_000,
        };
        let error = duration_nanos_from_proto(Some(&malformed), "d").unwrap_err();
        assert!(error.to_string().contains("d.nanos"), "{error}");
    }
}
