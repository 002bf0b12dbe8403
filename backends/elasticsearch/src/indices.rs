//! Index names: `<prefix>-span-YYYY-MM-DD[-HH]` and `<prefix>-service-YYYY-MM-DD[-HH]`, one per
//! rotation period of span start time (UTC), and which of them a time window or a retention
//! cut-off concerns.

use remote_storage_core::UnixNanos;
use time::OffsetDateTime;

use crate::config::IndexRotation;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Past this many indices a window is searched through the wildcard pattern instead of a list.
const MAX_LISTED_INDICES: u64 = 48;

/// The two kinds of index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// One document per span.
    Span,
    /// One document per (tenant, service, operation, kind) and period.
    Service,
}

impl IndexKind {
    fn word(self) -> &'static str {
        match self {
            Self::Span => "span",
            Self::Service => "service",
        }
    }
}

/// Names the indices of one prefix and rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexNames {
    prefix: String,
    rotation: IndexRotation,
}

impl IndexNames {
    pub(crate) fn new(prefix: &str, rotation: IndexRotation) -> Self {
        Self {
            prefix: prefix.to_owned(),
            rotation,
        }
    }

    /// The template name of a kind, e.g. `jaeger-rs-span`.
    pub(crate) fn template(&self, kind: IndexKind) -> String {
        format!("{}-{}", self.prefix, kind.word())
    }

    /// Every index of a kind: `jaeger-rs-span-*`.
    pub(crate) fn pattern(&self, kind: IndexKind) -> String {
        format!("{}-{}-*", self.prefix, kind.word())
    }

    /// The index holding a span that starts at `start`.
    pub(crate) fn index_for(&self, kind: IndexKind, start: UnixNanos) -> String {
        let period = self.period_of(start.0 / NANOS_PER_SECOND);
        self.name(kind, period)
    }

    /// A number that is the same for two start times exactly when they share an index.
    pub(crate) fn period_key(&self, start: UnixNanos) -> u64 {
        self.period_of(start.0 / NANOS_PER_SECOND)
    }

    /// The indices of a kind that can hold spans starting in `min ..= max` (either open), as a
    /// comma-separated list, or the wildcard pattern when the window is open or long.
    pub(crate) fn covering(
        &self,
        kind: IndexKind,
        min: Option<UnixNanos>,
        max: Option<UnixNanos>,
    ) -> String {
        let (Some(min), Some(max)) = (min, max) else {
            return self.pattern(kind);
        };
        let width = self.rotation.seconds();
        let first = self.period_of(min.0 / NANOS_PER_SECOND);
        let last = self.period_of(max.0 / NANOS_PER_SECOND);
        if last < first || (last - first) / width >= MAX_LISTED_INDICES {
            return self.pattern(kind);
        }
        (0..=(last - first) / width)
            .map(|step| self.name(kind, first + step * width))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether `index` is one of this prefix's indices of `kind`.
    pub(crate) fn is_kind(&self, index: &str, kind: IndexKind) -> bool {
        index
            .strip_prefix(&format!("{}-{}-", self.prefix, kind.word()))
            .is_some_and(|suffix| self.period_start(suffix).is_some())
    }

    /// Whether `index` (a name of this prefix) holds only spans that started before
    /// `cutoff_seconds` (Unix time), so retention may delete it. Names of other prefixes or
    /// shapes are never expired.
    pub(crate) fn expired(&self, index: &str, cutoff_seconds: u64) -> bool {
        [IndexKind::Span, IndexKind::Service]
            .into_iter()
            .find_map(|kind| index.strip_prefix(&format!("{}-{}-", self.prefix, kind.word())))
            .and_then(|suffix| self.period_start(suffix))
            .is_some_and(|start| start + self.rotation.seconds() <= cutoff_seconds)
    }

    fn period_of(&self, seconds: u64) -> u64 {
        seconds - seconds % self.rotation.seconds()
    }

    fn name(&self, kind: IndexKind, period_start: u64) -> String {
        let at = i64::try_from(period_start)
            .ok()
            .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (year, month, day) = (at.year(), u8::from(at.month()), at.day());
        match self.rotation {
            IndexRotation::Day => {
                format!(
                    "{}-{}-{year:04}-{month:02}-{day:02}",
                    self.prefix,
                    kind.word()
                )
            }
            IndexRotation::Hour => format!(
                "{}-{}-{year:04}-{month:02}-{day:02}-{:02}",
                self.prefix,
                kind.word(),
                at.hour()
            ),
        }
    }

    /// The start (Unix seconds) of the period an index suffix names.
    fn period_start(&self, suffix: &str) -> Option<u64> {
        let mut parts = suffix.split('-').map(str::parse::<u32>);
        let year = i32::try_from(parts.next()?.ok()?).ok()?;
        let month = time::Month::try_from(u8::try_from(parts.next()?.ok()?).ok()?).ok()?;
        let day = u8::try_from(parts.next()?.ok()?).ok()?;
        let hour = match (self.rotation, parts.next()) {
            (IndexRotation::Day, None) => 0,
            (IndexRotation::Hour, Some(Ok(hour))) => u8::try_from(hour).ok()?,
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        let date = time::Date::from_calendar_date(year, month, day).ok()?;
        let at = date.with_hms(hour, 0, 0).ok()?.assume_utc();
        u64::try_from(at.unix_timestamp()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    /// 2026-12-07T13:45:00Z.
    const T: u64 = 1_796_651_100;

    fn at(seconds: u64) -> UnixNanos {
        UnixNanos(seconds * NANOS_PER_SECOND)
    }

    #[test]
    fn names_follow_the_rotation() {
        let daily = IndexNames::new("jr", IndexRotation::Day);
        assert_eq!(
            daily.index_for(IndexKind::Span, at(T)),
            "jr-span-2026-12-07"
        );
        assert_eq!(
            daily.index_for(IndexKind::Service, at(T)),
            "jr-service-2026-12-07"
        );
        let hourly = IndexNames::new("jr", IndexRotation::Hour);
        assert_eq!(
            hourly.index_for(IndexKind::Span, at(T)),
            "jr-span-2026-12-07-13"
        );
        assert_eq!(daily.pattern(IndexKind::Span), "jr-span-*");
    }

    #[test]
    fn windows_list_the_indices_they_touch() {
        let daily = IndexNames::new("jr", IndexRotation::Day);
        assert_eq!(
            daily.covering(IndexKind::Span, Some(at(T - DAY)), Some(at(T))),
            "jr-span-2026-12-06,jr-span-2026-12-07"
        );
        assert_eq!(
            daily.covering(IndexKind::Span, None, Some(at(T))),
            "jr-span-*"
        );
        assert_eq!(
            daily.covering(IndexKind::Span, Some(at(T - 100 * DAY)), Some(at(T))),
            "jr-span-*"
        );
    }

    #[test]
    fn expiry_reads_the_period_from_the_name() {
        let daily = IndexNames::new("jr", IndexRotation::Day);
        let index = daily.index_for(IndexKind::Span, at(T));
        let day_end = T - T % DAY + DAY;
        assert!(!daily.expired(&index, day_end - 1));
        assert!(daily.expired(&index, day_end));
        assert!(daily.expired("jr-service-2026-12-06", T));
        assert!(!daily.expired("other-span-2020-01-01", T));
        assert!(
            !daily.expired("jr-span-2020-01-01-05", T),
            "an hourly name under daily rotation"
        );
        assert!(!daily.expired("jr-span-garbage", T));
        let hourly = IndexNames::new("jr", IndexRotation::Hour);
        assert!(hourly.expired("jr-span-2026-12-07-12", T));
        assert!(!hourly.expired("jr-span-2026-12-07-13", T));
    }
}
