//! v1 requests as the core's validated queries, so the v1 API searches, reads and counts
//! exactly as the v2 API does. Errors name the v1 field.

use jaeger_remote_proto::storage::v1 as proto;
use jaeger_remote_proto::storage::v2;

use super::to_otlp::trace_id_from_v1;
use crate::error::StoreError;
use crate::ids::TraceId;
use crate::query::{
    AttributeFilter, DependencyQuery, OperationQuery, QueryFields, QueryLimits, TraceLookup,
    TraceQuery,
};
use crate::time::UnixNanos;

/// A v1 search: `tags` are strings and match by canonical text, so `"123"`, `"72.5"` and
/// `"true"` find integer, double and boolean attributes; `error` and `span.kind` keep their
/// special meaning (status ERROR, span kind); `num_traces` is the search depth (0 or less: the
/// default).
pub fn trace_query(
    parameters: Option<proto::TraceQueryParameters>,
    limits: QueryLimits,
) -> Result<TraceQuery, StoreError> {
    let Some(parameters) = parameters else {
        return Err(StoreError::invalid_argument("query is required"));
    };
    let mut attributes = Vec::with_capacity(parameters.tags.len());
    for (key, value) in parameters.tags {
        if key.is_empty() {
            return Err(StoreError::invalid_argument(
                "query.tags: a tag key must not be empty",
            ));
        }
        attributes.push(AttributeFilter { key, value });
    }
    TraceQuery::validated(
        QueryFields {
            service_name: parameters.service_name,
            operation_name: parameters.operation_name,
            attributes,
            start_time_min: parameters.start_time_min.as_ref(),
            start_time_max: parameters.start_time_max.as_ref(),
            duration_min: parameters.duration_min.as_ref(),
            duration_max: parameters.duration_max.as_ref(),
            search_depth: parameters.num_traces,
            search_depth_field: "query.num_traces",
        },
        limits,
    )
}

/// A v1 GetTrace: one trace, by a 16-byte ID (or an 8-byte one, high bits zero), with optional
/// time hints.
pub fn trace_lookup(request: &proto::GetTraceRequest) -> Result<TraceLookup, StoreError> {
    let bytes = trace_id_from_v1(&request.trace_id, || "trace_id".to_owned())?;
    let trace_id = TraceId::from_bytes(&bytes, "trace_id")?;
    Ok(TraceLookup {
        trace_id,
        start: UnixNanos::from_proto(request.start_time.as_ref(), "start_time")?,
        end: UnixNanos::from_proto(request.end_time.as_ref(), "end_time")?,
    })
}

/// A v1 GetOperations: the same fields and rules as v2.
pub fn operation_query(request: proto::GetOperationsRequest) -> Result<OperationQuery, StoreError> {
    OperationQuery::from_proto(v2::GetOperationsRequest {
        service: request.service,
        span_kind: request.span_kind,
    })
}

/// A v1 GetDependencies: the same fields and rules as v2.
pub fn dependency_query(
    request: proto::GetDependenciesRequest,
) -> Result<DependencyQuery, StoreError> {
    DependencyQuery::from_proto(v2::GetDependenciesRequest {
        start_time: request.start_time,
        end_time: request.end_time,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost_types::{Duration, Timestamp};

    use super::*;
    use crate::time::GO_ZERO_TIME_SECONDS;

    fn go_zero() -> Option<Timestamp> {
        Some(Timestamp {
            seconds: GO_ZERO_TIME_SECONDS,
            nanos: 0,
        })
    }

    #[test]
    fn a_go_client_query_becomes_a_core_query() {
        let parameters = proto::TraceQueryParameters {
            service_name: "svc".into(),
            operation_name: String::new(),
            tags: BTreeMap::from([
                ("http.status_code".to_owned(), "200".to_owned()),
                ("error".to_owned(), "true".to_owned()),
            ]),
            start_time_min: go_zero(),
            start_time_max: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            duration_min: Some(Duration::default()),
            duration_max: Some(Duration {
                seconds: 1,
                nanos: 0,
            }),
            num_traces: 20,
        };
        let query = trace_query(Some(parameters), QueryLimits::default()).unwrap();
        assert_eq!(query.service_name.as_deref(), Some("svc"));
        assert_eq!(query.operation_name, None);
        assert_eq!(query.start_time_min, None);
        assert_eq!(
            query.start_time_max,
            Some(UnixNanos(1_700_000_000_000_000_005))
        );
        assert_eq!(query.duration_min, None);
        assert_eq!(query.duration_max, Some(1_000_000_000));
        assert_eq!(query.search_depth.get(), 20);
        let keys: Vec<(&str, &str)> = query
            .attributes
            .iter()
            .map(|filter| (filter.key.as_str(), filter.value.as_str()))
            .collect();
        assert_eq!(keys, [("error", "true"), ("http.status_code", "200")]);
    }

    #[test]
    fn bad_queries_name_the_v1_field() {
        let too_deep = proto::TraceQueryParameters {
            num_traces: 1_000_000,
            ..Default::default()
        };
        let error = trace_query(Some(too_deep), QueryLimits::default()).unwrap_err();
        assert!(error.to_string().contains("query.num_traces"), "{error}");
        let empty_key = proto::TraceQueryParameters {
            tags: BTreeMap::from([(String::new(), "x".to_owned())]),
            ..Default::default()
        };
        let error = trace_query(Some(empty_key), QueryLimits::default()).unwrap_err();
        assert!(error.to_string().contains("query.tags"), "{error}");
        assert!(trace_query(None, QueryLimits::default()).is_err());
        let default_depth = trace_query(
            Some(proto::TraceQueryParameters::default()),
            QueryLimits::default(),
        )
        .unwrap();
        assert_eq!(default_depth.search_depth.get(), 100);
    }

    #[test]
    fn trace_lookups_accept_16_and_8_byte_ids() {
        let full = trace_lookup(&proto::GetTraceRequest {
            trace_id: vec![7; 16],
            start_time: go_zero(),
            end_time: None,
        })
        .unwrap();
        assert_eq!(full.trace_id, TraceId([7; 16]));
        assert_eq!(full.start, None);
        let short = trace_lookup(&proto::GetTraceRequest {
            trace_id: vec![7; 8],
            ..Default::default()
        })
        .unwrap();
        let mut expected = [0; 16];
        expected[8..].copy_from_slice(&[7; 8]);
        assert_eq!(short.trace_id, TraceId(expected));
        let error = trace_lookup(&proto::GetTraceRequest {
            trace_id: vec![7; 5],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            error.to_string().contains("trace_id must be 16 bytes"),
            "{error}"
        );
        assert!(
            trace_lookup(&proto::GetTraceRequest {
                trace_id: vec![0; 16],
                ..Default::default()
            })
            .is_err()
        );
    }
}
