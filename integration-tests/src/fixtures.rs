//! Fixtures in Jaeger's directory format: `traces/<name>.json` (one trace each, OTLP/JSON) and
//! `queries.json` (query cases). Dates are rewritten at load time as Jaeger does, so every case
//! falls in a recent window:
//!
//! - in `queries.json` the text `2017-01-26` becomes yesterday's UTC date and `2017-01-25` the
//!   UTC date two days ago;
//! - in each trace every span start/end and event timestamp keeps its UTC time of day and
//!   nanoseconds but takes the date two days ago (original date 2017-01-25) or yesterday (any
//!   other date). Link and other times are untouched.
//!
//! Two sets exist: this crate's own fixtures (embedded in the binary) and any directory in the
//! same format, e.g. Jaeger's upstream fixtures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use jaeger_remote_proto::otlp::common::{AnyValue, any_value};
use jaeger_remote_proto::otlp::trace::TracesData;
use remote_storage_core::UnixNanos;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use crate::target::{OtlpTrace, TraceSearch};

/// The fixture every set must have: GetServices, GetOperations, GetTrace, GetLargeTrace,
/// GetTraceWithDuplicateSpans and FindTraceSummaries use it.
pub const EXAMPLE_TRACE: &str = "example_trace";

/// Environment variable naming a directory of upstream (Jaeger-format) fixtures.
pub const JAEGER_FIXTURES_ENV: &str = "JAEGER_FIXTURES_DIR";

const YESTERDAY_MARKER: &str = "2017-01-26";
const TWO_DAYS_AGO_MARKER: &str = "2017-01-25";

macro_rules! own_fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../fixtures/traces/", $name, ".json")))),*]
    };
}

/// This crate's own trace fixtures, embedded so the binary is self-contained.
const OWN_TRACES: &[(&str, &str)] = own_fixtures![
    "example_trace",
    "tags_on_span",
    "tags_on_event",
    "tags_on_resource",
    "tags_everywhere",
    "two_days",
    "operation_only",
    "operation_other",
    "operation_max_duration",
    "operation_max_duration_over",
    "operation_duration_range",
    "operation_duration_range_over",
    "operation_duration_range_other_operation",
    "duration_range_at_minimum",
    "duration_range_under",
    "max_duration_exact",
    "max_duration_over",
    "default_in_window",
    "default_out_of_window",
    "tags_operation_links",
    "tags_operation_other_operation",
    "tags_operation_max_duration",
    "tags_operation_max_duration_over",
    "tags_operation_duration_range",
    "tags_duration_range",
    "tags_max_duration",
    "mixed_operation",
    "mixed_operation_max_duration",
    "mixed_operation_duration_range",
    "mixed_duration_range",
    "mixed_max_duration",
    "many_first",
    "many_second",
    "many_third",
    "scope_name_version",
    "scope_attributes",
    "link_attributes",
    "one_span_conjunction",
    "split_conjunction",
    "typed_values",
    "window_at_minimum",
    "window_at_maximum",
    "window_before_minimum",
    "window_after_maximum",
];

const OWN_QUERIES: &str = include_str!("../fixtures/queries.json");

/// The dates fixtures are moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRewrite {
    /// Replaces `2017-01-26` in queries and every trace date except `2017-01-25`.
    pub yesterday: Date,
    /// Replaces `2017-01-25` everywhere.
    pub two_days_ago: Date,
}

impl DateRewrite {
    /// Relative to today's UTC date.
    pub fn now() -> Self {
        Self::relative_to(OffsetDateTime::now_utc().date())
    }

    /// Relative to a given "today".
    pub fn relative_to(today: Date) -> Self {
        Self {
            yesterday: today.previous_day().unwrap_or(today),
            two_days_ago: today
                .previous_day()
                .and_then(Date::previous_day)
                .unwrap_or(today),
        }
    }

    fn marker_two_days_ago() -> Date {
        Date::from_calendar_date(2017, Month::January, 25).unwrap_or(Date::MIN)
    }

    /// Jaeger's `correctTime`: textual replacement over the raw `queries.json`.
    pub fn rewrite_queries_text(&self, text: &str) -> String {
        text.replace(YESTERDAY_MARKER, &format_date(self.yesterday))
            .replace(TWO_DAYS_AGO_MARKER, &format_date(self.two_days_ago))
    }

    /// Jaeger's `dateOffsetNormalizer` for one timestamp.
    pub fn rewrite_timestamp(&self, unix_nanos: u64) -> u64 {
        let Ok(original) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nanos)) else {
            return unix_nanos;
        };
        let target = if original.date() == Self::marker_two_days_ago() {
            self.two_days_ago
        } else {
            self.yesterday
        };
        u64::try_from(original.replace_date(target).unix_timestamp_nanos()).unwrap_or(unix_nanos)
    }

    /// Rewrites every span start/end and event time of a trace.
    pub fn rewrite_trace(&self, trace: &mut OtlpTrace) {
        for group in &mut trace.resource_spans {
            for scope_group in &mut group.scope_spans {
                for span in &mut scope_group.spans {
                    span.start_time_unix_nano = self.rewrite_timestamp(span.start_time_unix_nano);
                    span.end_time_unix_nano = self.rewrite_timestamp(span.end_time_unix_nano);
                    for event in &mut span.events {
                        event.time_unix_nano = self.rewrite_timestamp(event.time_unix_nano);
                    }
                }
            }
        }
    }
}

fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses one OTLP/JSON trace fixture (no date rewriting).
pub fn parse_trace(json: &str) -> anyhow::Result<OtlpTrace> {
    let data: TracesData = serde_json::from_str(json).context("invalid OTLP/JSON")?;
    Ok(OtlpTrace::new(data.resource_spans))
}

/// One case of `queries.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryCase {
    /// Human caption; the sub-test name replaces spaces with `_`.
    pub caption: String,
    /// The search, dates already rewritten.
    pub search: TraceSearch,
    /// Fixtures the search must return exactly.
    pub expected_fixtures: Vec<String>,
    /// Fixtures written with the others that the search must NOT return (an extension of
    /// Jaeger's format, which Jaeger's loader ignores).
    pub decoy_fixtures: Vec<String>,
}

impl QueryCase {
    /// `FindTraces/<caption with _ for spaces>`.
    pub fn test_name(&self) -> String {
        format!("FindTraces/{}", self.caption.replace(' ', "_"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueryCaseJson {
    caption: String,
    query: QueryJson,
    #[serde(default)]
    expected_fixtures: Vec<String>,
    #[serde(default)]
    decoy_fixtures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueryJson {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    operation_name: String,
    #[serde(default)]
    tags: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    start_time_min: Option<String>,
    #[serde(default)]
    start_time_max: Option<String>,
    #[serde(default)]
    duration_min: i64,
    #[serde(default)]
    duration_max: i64,
    #[serde(default)]
    num_traces: i32,
}

fn parse_time(text: Option<&str>, field: &str) -> anyhow::Result<Option<UnixNanos>> {
    let Some(text) = text.filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .with_context(|| format!("{field}: {text:?} is not an RFC 3339 time"))?;
    if parsed.year() <= 1 {
        return Ok(None);
    }
    let nanos = u64::try_from(parsed.unix_timestamp_nanos())
        .with_context(|| format!("{field}: {text:?} is before 1970"))?;
    Ok(Some(UnixNanos(nanos)))
}

fn parse_duration(nanos: i64, field: &str) -> anyhow::Result<Option<u64>> {
    match nanos {
        0 => Ok(None),
        positive if positive > 0 => Ok(u64::try_from(positive).ok()),
        negative => anyhow::bail!("{field}: negative duration {negative}"),
    }
}

/// A tag value as Jaeger's `Query.ToTraceQueryParams` types it: string → string, integral
/// number → int, other number → double, bool → bool.
pub fn tag_value(key: &str, value: &serde_json::Value) -> anyhow::Result<AnyValue> {
    let converted = match value {
        serde_json::Value::String(text) => any_value::Value::StringValue(text.clone()),
        serde_json::Value::Bool(flag) => any_value::Value::BoolValue(*flag),
        serde_json::Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                any_value::Value::IntValue(integer)
            } else {
                let double = number
                    .as_f64()
                    .with_context(|| format!("tag {key}: number {number} is out of range"))?;
                if double.fract() == 0.0 && double.abs() < 9.0e15 {
                    // Integral in JSON terms, e.g. `3.0` or `1e3`.
                    any_value::Value::IntValue(format!("{double:.0}").parse()?)
                } else {
                    any_value::Value::DoubleValue(double)
                }
            }
        }
        other => anyhow::bail!("tag {key}: unsupported value {other}"),
    };
    Ok(AnyValue {
        value: Some(converted),
    })
}

/// Parses `queries.json` after date rewriting.
pub fn parse_queries(json: &str, dates: &DateRewrite) -> anyhow::Result<Vec<QueryCase>> {
    let rewritten = dates.rewrite_queries_text(json);
    let raw: Vec<QueryCaseJson> =
        serde_json::from_str(&rewritten).context("invalid queries.json")?;
    let mut cases = Vec::with_capacity(raw.len());
    for case in raw {
        let caption = case.caption;
        let query = case.query;
        let mut attributes = Vec::new();
        for (key, value) in query.tags.unwrap_or_default() {
            attributes.push((key.clone(), tag_value(&key, &value)?));
        }
        let search = TraceSearch {
            service_name: query.service_name,
            operation_name: query.operation_name,
            attributes,
            start_time_min: parse_time(query.start_time_min.as_deref(), "StartTimeMin")
                .with_context(|| format!("query {caption:?}"))?,
            start_time_max: parse_time(query.start_time_max.as_deref(), "StartTimeMax")
                .with_context(|| format!("query {caption:?}"))?,
            duration_min: parse_duration(query.duration_min, "DurationMin")
                .with_context(|| format!("query {caption:?}"))?,
            duration_max: parse_duration(query.duration_max, "DurationMax")
                .with_context(|| format!("query {caption:?}"))?,
            search_depth: query.num_traces,
            filter: None,
        };
        cases.push(QueryCase {
            caption,
            search,
            expected_fixtures: case.expected_fixtures,
            decoy_fixtures: case.decoy_fixtures,
        });
    }
    Ok(cases)
}

/// A loaded fixture set: the example trace, the query cases and every trace they reference,
/// with dates rewritten.
#[derive(Debug, Clone)]
pub struct FixtureSet {
    label: String,
    traces: BTreeMap<String, OtlpTrace>,
    queries: Vec<QueryCase>,
    dates: DateRewrite,
}

impl FixtureSet {
    /// This crate's own fixtures (embedded), dates relative to today.
    pub fn own() -> anyhow::Result<Self> {
        Self::own_with_dates(DateRewrite::now())
    }

    /// This crate's own fixtures with given dates.
    pub fn own_with_dates(dates: DateRewrite) -> anyhow::Result<Self> {
        let sources: BTreeMap<&str, &str> = OWN_TRACES.iter().copied().collect();
        Self::build("own fixtures", OWN_QUERIES, dates, |name| {
            sources
                .get(name)
                .map(|json| (*json).to_owned())
                .with_context(|| format!("no embedded fixture {name:?}"))
        })
    }

    /// A directory in Jaeger's format (`queries.json` + `traces/<name>.json`), dates relative
    /// to today.
    pub fn load_dir(dir: &Path) -> anyhow::Result<Self> {
        Self::load_dir_with_dates(dir, DateRewrite::now())
    }

    /// A directory in Jaeger's format with given dates.
    pub fn load_dir_with_dates(dir: &Path, dates: DateRewrite) -> anyhow::Result<Self> {
        let queries_path = dir.join("queries.json");
        let queries = std::fs::read_to_string(&queries_path)
            .with_context(|| format!("reading {}", queries_path.display()))?;
        Self::build(
            &format!("fixtures from {}", dir.display()),
            &queries,
            dates,
            |name| {
                let path = dir.join("traces").join(format!("{name}.json"));
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))
            },
        )
    }

    fn build(
        label: &str,
        queries_json: &str,
        dates: DateRewrite,
        read: impl Fn(&str) -> anyhow::Result<String>,
    ) -> anyhow::Result<Self> {
        let queries = parse_queries(queries_json, &dates)?;
        let mut names = vec![EXAMPLE_TRACE.to_owned()];
        for case in &queries {
            names.extend(case.expected_fixtures.iter().cloned());
            names.extend(case.decoy_fixtures.iter().cloned());
        }
        let mut traces = BTreeMap::new();
        for name in names {
            if traces.contains_key(&name) {
                continue;
            }
            let json = read(&name)?;
            let mut trace = parse_trace(&json).with_context(|| format!("fixture {name}"))?;
            if trace.span_count() == 0 {
                anyhow::bail!("fixture {name} has no span");
            }
            dates.rewrite_trace(&mut trace);
            traces.insert(name, trace);
        }
        Ok(Self {
            label: label.to_owned(),
            traces,
            queries,
            dates,
        })
    }

    /// The same set with every trace replaced by `map(trace)`; the query cases are unchanged.
    pub fn map_traces(
        &self,
        map: impl Fn(&OtlpTrace) -> anyhow::Result<OtlpTrace>,
    ) -> anyhow::Result<Self> {
        let mut traces = BTreeMap::new();
        for (name, trace) in &self.traces {
            let mapped = map(trace).with_context(|| format!("fixture {name}"))?;
            traces.insert(name.clone(), mapped);
        }
        Ok(Self {
            label: self.label.clone(),
            traces,
            queries: self.queries.clone(),
            dates: self.dates,
        })
    }

    /// Where the set comes from, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The dates used.
    pub fn dates(&self) -> DateRewrite {
        self.dates
    }

    /// A trace by fixture name.
    pub fn trace(&self, name: &str) -> anyhow::Result<&OtlpTrace> {
        self.traces
            .get(name)
            .with_context(|| format!("fixture {name:?} is not loaded"))
    }

    /// The example trace.
    pub fn example_trace(&self) -> anyhow::Result<&OtlpTrace> {
        self.trace(EXAMPLE_TRACE)
    }

    /// The query cases, in file order.
    pub fn queries(&self) -> &[QueryCase] {
        &self.queries
    }

    /// Every fixture the FindTraces test writes, in first-reference order (as Jaeger does).
    pub fn query_fixture_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for case in &self.queries {
            for name in case.expected_fixtures.iter().chain(&case.decoy_fixtures) {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// The upstream fixture directory: `$JAEGER_FIXTURES_DIR` when set, else
/// `<workspace>/../shared/jaeger-fixtures` when it exists.
pub fn upstream_fixtures_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(JAEGER_FIXTURES_ENV).filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/jaeger-fixtures");
    default.join("queries.json").is_file().then_some(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates() -> DateRewrite {
        DateRewrite::relative_to(
            Date::from_calendar_date(2026, Month::March, 1).expect("valid date"),
        )
    }

    #[test]
    fn dates_move_to_yesterday_or_two_days_ago_keeping_time_of_day() {
        let dates = dates();
        assert_eq!(format_date(dates.yesterday), "2026-02-28");
        assert_eq!(format_date(dates.two_days_ago), "2026-02-27");
        // 2017-01-26T16:46:31.639875Z
        let rewritten = dates.rewrite_timestamp(1_485_449_191_639_875_000);
        let moved = OffsetDateTime::from_unix_timestamp_nanos(i128::from(rewritten)).unwrap();
        assert_eq!(format_date(moved.date()), "2026-02-28");
        assert_eq!(
            (
                moved.hour(),
                moved.minute(),
                moved.second(),
                moved.nanosecond()
            ),
            (16, 46, 31, 639_875_000)
        );
        // 2017-01-25T23:56:31.639875Z goes two days back.
        let earlier = dates.rewrite_timestamp(1_485_388_591_639_875_000);
        let moved = OffsetDateTime::from_unix_timestamp_nanos(i128::from(earlier)).unwrap();
        assert_eq!(format_date(moved.date()), "2026-02-27");
        assert_eq!((moved.hour(), moved.minute()), (23, 56));
        // Any other date goes to yesterday.
        let other = dates.rewrite_timestamp(1_700_000_000_000_000_000);
        let moved = OffsetDateTime::from_unix_timestamp_nanos(i128::from(other)).unwrap();
        assert_eq!(format_date(moved.date()), "2026-02-28");
    }

    #[test]
    fn queries_are_rewritten_textually_and_typed() {
        let json = r#"[{
            "Caption": "Tags + max Duration",
            "Query": {
                "ServiceName": "svc", "OperationName": "",
                "Tags": {"s": "text", "i": 123, "d": 72.5, "b": true, "f": 3.0},
                "StartTimeMin": "2017-01-25T15:46:31.639875Z",
                "StartTimeMax": "2017-01-26T17:46:31.639875Z",
                "DurationMin": 0, "DurationMax": 2000, "NumTraces": 1000
            },
            "ExpectedFixtures": ["a"],
            "DecoyFixtures": ["b"]
        }]"#;
        let cases = parse_queries(json, &dates()).unwrap();
        let case = &cases[0];
        assert_eq!(case.test_name(), "FindTraces/Tags_+_max_Duration");
        assert_eq!(case.expected_fixtures, ["a"]);
        assert_eq!(case.decoy_fixtures, ["b"]);
        let search = &case.search;
        assert_eq!(search.search_depth, 1000);
        assert_eq!(search.duration_min, None);
        assert_eq!(search.duration_max, Some(2000));
        let min =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(search.start_time_min.unwrap().0))
                .unwrap();
        assert_eq!(format_date(min.date()), "2026-02-27");
        assert_eq!(min.nanosecond(), 639_875_000);
        let max =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(search.start_time_max.unwrap().0))
                .unwrap();
        assert_eq!(format_date(max.date()), "2026-02-28");
        let typed: BTreeMap<&str, &any_value::Value> = search
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.value.as_ref().unwrap()))
            .collect();
        assert_eq!(typed["s"], &any_value::Value::StringValue("text".into()));
        assert_eq!(typed["i"], &any_value::Value::IntValue(123));
        assert_eq!(typed["d"], &any_value::Value::DoubleValue(72.5));
        assert_eq!(typed["b"], &any_value::Value::BoolValue(true));
        assert_eq!(typed["f"], &any_value::Value::IntValue(3));
    }

    #[test]
    fn null_tags_and_missing_fixtures_fields_are_accepted() {
        let json = r#"[{"Caption": "default", "Query": {"ServiceName": "svc", "Tags": null,
            "StartTimeMin": "2017-01-26T00:00:00Z", "StartTimeMax": "2017-01-26T01:00:00Z",
            "DurationMin": 0, "DurationMax": 0, "NumTraces": 10}, "ExpectedFixtures": ["x"]}]"#;
        let cases = parse_queries(json, &dates()).unwrap();
        assert!(cases[0].search.attributes.is_empty());
        assert!(cases[0].decoy_fixtures.is_empty());
    }

    #[test]
    fn own_fixtures_load_and_cover_every_reference() {
        let set = FixtureSet::own_with_dates(dates()).unwrap();
        assert!(set.example_trace().unwrap().span_count() >= 5);
        assert!(set.queries().len() >= 25);
        let mut captions: Vec<&str> = set.queries().iter().map(|q| q.caption.as_str()).collect();
        let total = captions.len();
        captions.sort_unstable();
        captions.dedup();
        assert_eq!(captions.len(), total, "captions must be unique");
        for name in set.query_fixture_names() {
            set.trace(name).unwrap();
        }
        // Every embedded fixture is used.
        for (name, _) in OWN_TRACES {
            assert!(
                *name == EXAMPLE_TRACE || set.query_fixture_names().contains(name),
                "embedded fixture {name} is not referenced by queries.json"
            );
        }
    }

    #[test]
    fn upstream_fixtures_load_when_present() {
        let Some(dir) = upstream_fixtures_dir() else {
            eprintln!("upstream fixtures not found; skipping");
            return;
        };
        let set = FixtureSet::load_dir_with_dates(&dir, dates()).unwrap();
        assert_eq!(set.queries().len(), 25);
        assert_eq!(set.example_trace().unwrap().span_count(), 5);
        assert_eq!(set.query_fixture_names().len(), 27);
    }
}
