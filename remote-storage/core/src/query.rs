//! Query types, built once from the protobuf requests and validated, so that backends only
//! ever see well-formed values.

use std::num::NonZeroUsize;

use jaeger_remote_proto::otlp::trace::span::SpanKind;
use jaeger_remote_proto::storage::v2 as proto;
use prost_types::{Duration as ProtoDuration, Timestamp};

use crate::attribute::query_value_text;
use crate::error::StoreError;
use crate::filter::Filter;
use crate::ids::TraceId;
use crate::model::span_kind_from_name;
use crate::time::{UnixNanos, duration_nanos_from_proto};

/// Search-depth rules applied when a query is built.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Used when a request's `search_depth` is zero or negative (api_v3's default is 100).
    pub default_search_depth: NonZeroUsize,
    /// Larger `search_depth` values are refused with `INVALID_ARGUMENT`.
    pub max_search_depth: NonZeroUsize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            default_search_depth: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            max_search_depth: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// One `key = value` condition of a trace search; the value is in canonical text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeFilter {
    /// Attribute key as sent (special keys such as `error` or `resource.x` included).
    pub key: String,
    /// Canonical text of the query value (see [`crate::attribute::any_value_text`]).
    pub value: String,
}

/// A validated FindTraces / FindTraceIDs / FindTraceSummaries query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    /// Resource `service.name` to match; `None` means any service.
    pub service_name: Option<String>,
    /// Span name to match; `None` means any.
    pub operation_name: Option<String>,
    /// Conditions that must all hold on one span.
    pub attributes: Vec<AttributeFilter>,
    /// Inclusive lower bound on span start.
    pub start_time_min: Option<UnixNanos>,
    /// Inclusive upper bound on span start.
    pub start_time_max: Option<UnixNanos>,
    /// Inclusive lower bound on span duration, in nanoseconds.
    pub duration_min: Option<u64>,
    /// Inclusive upper bound on span duration, in nanoseconds.
    pub duration_max: Option<u64>,
    /// Maximum number of traces to return.
    pub search_depth: NonZeroUsize,
    /// A structured filter, resolved; it replaces service, operation, attributes and duration
    /// bounds (a query never has both), and is ANDed with the time window per span.
    pub filter: Option<Filter>,
}

impl TraceQuery {
    /// A query that matches every trace, up to `search_depth` of them.
    pub fn all(search_depth: NonZeroUsize) -> Self {
        Self {
            service_name: None,
            operation_name: None,
            attributes: Vec::new(),
            start_time_min: None,
            start_time_max: None,
            duration_min: None,
            duration_max: None,
            search_depth,
            filter: None,
        }
    }

    /// Validates a request's query parameters. A structured `filter` (field 9) is decoded,
    /// validated and resolved ([`Filter::from_proto`], errors naming `query.filter…`); it may
    /// not come with a service, operation, attributes or duration bound (the window and
    /// `search_depth` apply to it as to legacy queries). Whether the backend serves filters is
    /// decided by admission ([`crate::Capabilities::admit_trace_query`]), not here.
    pub fn from_proto(
        parameters: Option<proto::TraceQueryParameters>,
        limits: QueryLimits,
    ) -> Result<Self, StoreError> {
        let Some(parameters) = parameters else {
            return Err(StoreError::invalid_argument("query is required"));
        };
        let mut attributes = Vec::with_capacity(parameters.attributes.len());
        for (index, pair) in parameters.attributes.iter().enumerate() {
            if pair.key.is_empty() {
                return Err(StoreError::invalid_argument(format!(
                    "query.attributes[{index}].key must not be empty"
                )));
            }
            attributes.push(AttributeFilter {
                key: pair.key.clone(),
                value: query_value_text(pair.value.as_ref()),
            });
        }
        let mut query = Self::validated(
            QueryFields {
                service_name: parameters.service_name,
                operation_name: parameters.operation_name,
                attributes,
                start_time_min: parameters.start_time_min.as_ref(),
                start_time_max: parameters.start_time_max.as_ref(),
                duration_min: parameters.duration_min.as_ref(),
                duration_max: parameters.duration_max.as_ref(),
                search_depth: parameters.search_depth,
                search_depth_field: "query.search_depth",
            },
            limits,
        )?;
        if let Some(call) = &parameters.filter {
            query.refuse_legacy_fields_beside_filter()?;
            query.filter = Some(Filter::from_proto(call, "query.filter")?);
        }
        Ok(query)
    }

    /// A filter carries the whole span predicate: legacy conditions beside it are refused
    /// rather than ANDed, as Jaeger's handler does, so no client relies on a mix.
    fn refuse_legacy_fields_beside_filter(&self) -> Result<(), StoreError> {
        let mixed = [
            ("query.service_name", self.service_name.is_some()),
            ("query.operation_name", self.operation_name.is_some()),
            ("query.attributes", !self.attributes.is_empty()),
            ("query.duration_min", self.duration_min.is_some()),
            ("query.duration_max", self.duration_max.is_some()),
        ];
        for (field, present) in mixed {
            if present {
                return Err(StoreError::invalid_argument(format!(
                    "query.filter cannot be combined with {field}: express it inside the filter \
                     (the time window and search_depth may accompany a filter)"
                )));
            }
        }
        Ok(())
    }

    /// Validates the fields every query API shares (times, durations, depth).
    pub(crate) fn validated(
        fields: QueryFields<'_>,
        limits: QueryLimits,
    ) -> Result<Self, StoreError> {
        let start_time_min = UnixNanos::from_proto(fields.start_time_min, "query.start_time_min")?;
        let start_time_max = UnixNanos::from_proto(fields.start_time_max, "query.start_time_max")?;
        if let (Some(min), Some(max)) = (start_time_min, start_time_max)
            && max < min
        {
            return Err(StoreError::invalid_argument(
                "query.start_time_max is before query.start_time_min",
            ));
        }
        let duration_min = duration_nanos_from_proto(fields.duration_min, "query.duration_min")?;
        let duration_max = duration_nanos_from_proto(fields.duration_max, "query.duration_max")?;
        if let (Some(min), Some(max)) = (duration_min, duration_max)
            && max < min
        {
            return Err(StoreError::invalid_argument(
                "query.duration_max is less than query.duration_min",
            ));
        }
        let search_depth =
            search_depth_from_proto(fields.search_depth, fields.search_depth_field, limits)?;
        Ok(Self {
            service_name: non_empty(fields.service_name),
            operation_name: non_empty(fields.operation_name),
            attributes: fields.attributes,
            start_time_min,
            start_time_max,
            duration_min,
            duration_max,
            search_depth,
            filter: None,
        })
    }
}

/// The fields of a search request, before validation, whichever API it came from.
pub(crate) struct QueryFields<'a> {
    pub(crate) service_name: String,
    pub(crate) operation_name: String,
    pub(crate) attributes: Vec<AttributeFilter>,
    pub(crate) start_time_min: Option<&'a Timestamp>,
    pub(crate) start_time_max: Option<&'a Timestamp>,
    pub(crate) duration_min: Option<&'a ProtoDuration>,
    pub(crate) duration_max: Option<&'a ProtoDuration>,
    pub(crate) search_depth: i32,
    /// How the request names its depth field (`query.search_depth`, `query.num_traces`).
    pub(crate) search_depth_field: &'static str,
}

fn search_depth_from_proto(
    search_depth: i32,
    field: &str,
    limits: QueryLimits,
) -> Result<NonZeroUsize, StoreError> {
    let Some(requested) = usize::try_from(search_depth)
        .ok()
        .and_then(NonZeroUsize::new)
    else {
        return Ok(limits.default_search_depth);
    };
    if requested > limits.max_search_depth {
        return Err(StoreError::invalid_argument(format!(
            "{field} {requested} is above the maximum of {}",
            limits.max_search_depth
        )));
    }
    Ok(requested)
}

fn non_empty(text: String) -> Option<String> {
    if text.is_empty() { None } else { Some(text) }
}

/// One trace to fetch, with optional time hints a backend may use to narrow its lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLookup {
    /// The trace to fetch.
    pub trace_id: TraceId,
    /// Hint: no span starts before this.
    pub start: Option<UnixNanos>,
    /// Hint: no span ends after this.
    pub end: Option<UnixNanos>,
}

impl TraceLookup {
    /// All of a trace: no time hints.
    pub fn whole(trace_id: TraceId) -> Self {
        Self {
            trace_id,
            start: None,
            end: None,
        }
    }

    /// Validates a GetTraces request; duplicate IDs are fetched once.
    pub fn from_proto(request: proto::GetTracesRequest) -> Result<Vec<Self>, StoreError> {
        let mut lookups: Vec<Self> = Vec::with_capacity(request.query.len());
        for (index, parameters) in request.query.iter().enumerate() {
            let trace_id =
                TraceId::from_bytes(&parameters.trace_id, &format!("query[{index}].trace_id"))?;
            let start = UnixNanos::from_proto(
                parameters.start_time.as_ref(),
                &format!("query[{index}].start_time"),
            )?;
            let end = UnixNanos::from_proto(
                parameters.end_time.as_ref(),
                &format!("query[{index}].end_time"),
            )?;
            if lookups.iter().any(|lookup| lookup.trace_id == trace_id) {
                continue;
            }
            lookups.push(Self {
                trace_id,
                start,
                end,
            });
        }
        Ok(lookups)
    }
}

/// A validated GetOperations request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationQuery {
    /// The service whose operations to list.
    pub service: String,
    /// Only operations of this kind; `None` means every kind.
    pub span_kind: Option<SpanKind>,
}

impl OperationQuery {
    /// Validates a GetOperations request: a service is required and a kind, when given, must be
    /// one of `server`, `client`, `producer`, `consumer`, `internal` (any case).
    pub fn from_proto(request: proto::GetOperationsRequest) -> Result<Self, StoreError> {
        if request.service.is_empty() {
            return Err(StoreError::invalid_argument("service is required"));
        }
        let span_kind = if request.span_kind.is_empty() {
            None
        } else {
            Some(span_kind_from_name(&request.span_kind).ok_or_else(|| {
                StoreError::invalid_argument(format!(
                    "span_kind {:?} is not one of server, client, producer, consumer, internal",
                    request.span_kind
                ))
            })?)
        };
        Ok(Self {
            service: request.service,
            span_kind,
        })
    }
}

/// A validated GetDependencies request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyQuery {
    /// Start of the window (inclusive).
    pub start: UnixNanos,
    /// End of the window (inclusive).
    pub end: UnixNanos,
}

impl DependencyQuery {
    /// Validates a GetDependencies request: `start_time` is required, `end_time` defaults to
    /// now and must not be before the start.
    pub fn from_proto(request: proto::GetDependenciesRequest) -> Result<Self, StoreError> {
        let start = UnixNanos::from_proto(request.start_time.as_ref(), "start_time")?
            .ok_or_else(|| StoreError::invalid_argument("start_time is required"))?;
        let end = UnixNanos::from_proto(request.end_time.as_ref(), "end_time")?
            .unwrap_or_else(UnixNanos::now);
        if end < start {
            return Err(StoreError::invalid_argument(
                "end_time is before start_time",
            ));
        }
        Ok(Self { start, end })
    }

    /// Whether a span starting at `time` falls inside the window.
    pub fn contains(&self, time: UnixNanos) -> bool {
        self.start <= time && time <= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::expression::v1::expression::Term;
    use jaeger_remote_proto::expression::v1::{Call, Expression, FieldReference, Scalar};
    use prost_types::{Duration, Timestamp};

    fn parameters() -> proto::TraceQueryParameters {
        proto::TraceQueryParameters {
            service_name: "svc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn go_zero_values_mean_unset_and_depth_defaults() {
        let mut query = parameters();
        query.start_time_min = Some(Timestamp {
            seconds: crate::time::GO_ZERO_TIME_SECONDS,
            nanos: 0,
        });
        query.duration_min = Some(Duration::default());
        let built = TraceQuery::from_proto(Some(query), QueryLimits::default()).unwrap();
        assert_eq!(built.start_time_min, None);
        assert_eq!(built.duration_min, None);
        assert_eq!(built.search_depth.get(), 100);
        assert_eq!(built.service_name.as_deref(), Some("svc"));
        assert_eq!(built.operation_name, None);
    }

    #[test]
    fn search_depth_above_maximum_is_refused() {
        let mut query = parameters();
        query.search_depth = 10_001;
        let error = TraceQuery::from_proto(Some(query), QueryLimits::default()).unwrap_err();
        assert!(error.to_string().contains("query.search_depth"));
        let mut negative = parameters();
        negative.search_depth = -4;
        let built = TraceQuery::from_proto(Some(negative), QueryLimits::default()).unwrap();
        assert_eq!(built.search_depth.get(), 100);
    }

    #[test]
    fn inverted_windows_are_refused_with_field_names() {
        let mut query = parameters();
        query.start_time_min = Some(Timestamp {
            seconds: 20,
            nanos: 0,
        });
        query.start_time_max = Some(Timestamp {
            seconds: 10,
            nanos: 0,
        });
        let error = TraceQuery::from_proto(Some(query), QueryLimits::default()).unwrap_err();
        assert!(error.to_string().contains("query.start_time_max"));

        let mut durations = parameters();
        durations.duration_min = Some(Duration {
            seconds: 2,
            nanos: 0,
        });
        durations.duration_max = Some(Duration {
            seconds: 1,
            nanos: 0,
        });
        assert!(TraceQuery::from_proto(Some(durations), QueryLimits::default()).is_err());
    }

    fn name_is(name: &str) -> Call {
        Call {
            op: "eq".into(),
            args: vec![
                Expression {
                    term: Some(Term::Field(FieldReference {
                        name: "name".into(),
                        level: "span".into(),
                    })),
                },
                Expression {
                    term: Some(Term::Scalar(Scalar {
                        value: name.into(),
                        r#type: String::new(),
                    })),
                },
            ],
        }
    }

    fn filter_query() -> proto::TraceQueryParameters {
        proto::TraceQueryParameters {
            filter: Some(name_is("GET /cart")),
            ..Default::default()
        }
    }

    #[test]
    fn a_filter_is_resolved_with_the_window_and_depth() {
        let mut query = filter_query();
        query.start_time_min = Some(Timestamp {
            seconds: 10,
            nanos: 0,
        });
        query.search_depth = 7;
        let built = TraceQuery::from_proto(Some(query), QueryLimits::default()).unwrap();
        let filter = built.filter.expect("the filter is kept");
        assert_eq!(filter.to_proto(), name_is("GET /cart"));
        assert_eq!(built.start_time_min, Some(UnixNanos(10_000_000_000)));
        assert_eq!(built.search_depth.get(), 7);
        assert_eq!(built.service_name, None);
    }

    #[test]
    fn a_filter_beside_legacy_conditions_is_refused() {
        type Mix = fn(&mut proto::TraceQueryParameters);
        let mixes: [(&str, Mix); 5] = [
            ("query.service_name", |query| {
                query.service_name = "svc".into()
            }),
            ("query.operation_name", |query| {
                query.operation_name = "op".into();
            }),
            ("query.attributes", |query| {
                query.attributes.push(proto::KeyValue {
                    key: "k".into(),
                    value: None,
                });
            }),
            ("query.duration_min", |query| {
                query.duration_min = Some(Duration {
                    seconds: 1,
                    nanos: 0,
                });
            }),
            ("query.duration_max", |query| {
                query.duration_max = Some(Duration {
                    seconds: 1,
                    nanos: 0,
                });
            }),
        ];
        for (field, mix) in mixes {
            let mut query = filter_query();
            mix(&mut query);
            let error = TraceQuery::from_proto(Some(query), QueryLimits::default()).unwrap_err();
            assert_eq!(error.kind(), crate::error::ErrorKind::InvalidArgument);
            assert!(
                error
                    .to_string()
                    .starts_with("query.filter cannot be combined with")
                    && error.to_string().contains(field),
                "{field}: {error}"
            );
        }
        // Go's zero duration means unset, so it is no duration bound.
        let mut zero = filter_query();
        zero.duration_min = Some(Duration::default());
        assert!(TraceQuery::from_proto(Some(zero), QueryLimits::default()).is_ok());
    }

    #[test]
    fn an_invalid_filter_is_refused_with_its_path() {
        let mut query = filter_query();
        query.filter = Some(Call {
            op: "and".into(),
            args: Vec::new(),
        });
        let error = TraceQuery::from_proto(Some(query), QueryLimits::default()).unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::InvalidArgument);
        assert!(
            error
                .to_string()
                .starts_with("query.filter: and takes at least 2 arguments"),
            "{error}"
        );
    }

    #[test]
    fn missing_query_and_empty_attribute_keys_are_refused() {
        assert!(TraceQuery::from_proto(None, QueryLimits::default()).is_err());
        let mut query = parameters();
        query.attributes.push(proto::KeyValue {
            key: String::new(),
            value: None,
        });
        let error = TraceQuery::from_proto(Some(query), QueryLimits::default()).unwrap_err();
        assert!(error.to_string().contains("query.attributes[0].key"));
    }

    #[test]
    fn trace_lookups_validate_ids_and_skip_duplicates() {
        let request = proto::GetTracesRequest {
            query: vec![
                proto::GetTraceParams {
                    trace_id: vec![1; 16],
                    ..Default::default()
                },
                proto::GetTraceParams {
                    trace_id: vec![1; 16],
                    ..Default::default()
                },
            ],
        };
        assert_eq!(TraceLookup::from_proto(request).unwrap().len(), 1);
        let bad = proto::GetTracesRequest {
            query: vec![proto::GetTraceParams {
                trace_id: vec![1; 8],
                ..Default::default()
            }],
        };
        let error = TraceLookup::from_proto(bad).unwrap_err();
        assert!(error.to_string().contains("query[0].trace_id"));
    }

    #[test]
    fn operation_queries_need_a_service_and_a_known_kind() {
        let missing = proto::GetOperationsRequest::default();
        assert!(OperationQuery::from_proto(missing).is_err());
        let bad_kind = proto::GetOperationsRequest {
            service: "svc".into(),
            span_kind: "sideways".into(),
        };
        assert!(OperationQuery::from_proto(bad_kind).is_err());
        let server = proto::GetOperationsRequest {
            service: "svc".into(),
            span_kind: "server".into(),
        };
        assert_eq!(
            OperationQuery::from_proto(server).unwrap().span_kind,
            Some(SpanKind::Server)
        );
    }

    #[test]
    fn dependency_queries_need_a_start() {
        assert!(DependencyQuery::from_proto(proto::GetDependenciesRequest::default()).is_err());
        let inverted = proto::GetDependenciesRequest {
            start_time: Some(Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            end_time: Some(Timestamp {
                seconds: 5,
                nanos: 0,
            }),
        };
        assert!(DependencyQuery::from_proto(inverted).is_err());
    }
}
