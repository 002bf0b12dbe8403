//! What a v1 client does around the wire: searches as v1 query parameters (tag values as
//! strings, Go's zero values for unset times), and the spans of a stream split into traces the
//! way Jaeger's v1 client splits them, translated back to OTLP.

use std::collections::BTreeMap;

use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::storage::v1 as proto;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::v1::to_otlp::resource_spans_from_v1;

use crate::target::{OtlpTrace, TraceSearch, go_duration, go_timestamp};

/// The v1 query parameters Jaeger's v1 client sends for a search: tags as a string map (typed
/// values by their canonical text), every time and duration present, `num_traces` = depth.
pub fn v1_query(search: &TraceSearch) -> proto::TraceQueryParameters {
    let tags: BTreeMap<String, String> = search
        .attributes
        .iter()
        .map(|(key, value)| (key.clone(), any_value_text(Some(value)).into_owned()))
        .collect();
    proto::TraceQueryParameters {
        service_name: search.service_name.clone(),
        operation_name: search.operation_name.clone(),
        tags,
        start_time_min: Some(go_timestamp(search.start_time_min)),
        start_time_max: Some(go_timestamp(search.start_time_max)),
        duration_min: Some(go_duration(search.duration_min)),
        duration_max: Some(go_duration(search.duration_max)),
        num_traces: search.search_depth,
    }
}

/// Splits streamed chunks into traces as Jaeger's v1 client does (a new trace whenever the
/// trace ID changes), and translates each to OTLP.
///
/// Stricter than the client, as the server contract is: a chunk may not be empty or mix
/// traces, every span must carry its process, and a trace's spans must be contiguous.
pub fn traces_from_chunks(
    call: &str,
    chunks: Vec<Vec<v1::Span>>,
) -> anyhow::Result<Vec<OtlpTrace>> {
    let mut traces: Vec<(Vec<u8>, Vec<v1::Span>)> = Vec::new();
    for (index, chunk) in chunks.into_iter().enumerate() {
        let Some(first) = chunk.first() else {
            anyhow::bail!("{call}: stream chunk #{index} holds no span");
        };
        let trace_id = first.trace_id.clone();
        if let Some(other) = chunk.iter().find(|span| span.trace_id != trace_id) {
            anyhow::bail!(
                "{call}: stream chunk #{index} mixes traces {} and {}",
                hex::encode(&trace_id),
                hex::encode(&other.trace_id)
            );
        }
        if let Some(bare) = chunk.iter().find(|span| span.process.is_none()) {
            anyhow::bail!(
                "{call}: span {} of chunk #{index} has no process (every v1 span carries its \
                 own)",
                hex::encode(&bare.span_id)
            );
        }
        match traces.last_mut() {
            Some((last, spans)) if *last == trace_id => spans.extend(chunk),
            _ => {
                anyhow::ensure!(
                    traces.iter().all(|(seen, _)| *seen != trace_id),
                    "{call}: spans of trace {} are not contiguous (Jaeger's v1 client would \
                     split it into two traces)",
                    hex::encode(&trace_id)
                );
                traces.push((trace_id, chunk));
            }
        }
    }
    traces
        .into_iter()
        .map(|(trace_id, spans)| {
            let resource_spans = resource_spans_from_v1(spans).map_err(|error| {
                anyhow::anyhow!(
                    "{call}: trace {} does not translate back to OTLP: {error}",
                    hex::encode(&trace_id)
                )
            })?;
            Ok(OtlpTrace::new(resource_spans))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use jaeger_remote_proto::otlp::common::{AnyValue, any_value};
    use remote_storage_core::UnixNanos;
    use remote_storage_core::time::GO_ZERO_TIME_SECONDS;

    use super::*;

    fn span(trace: u8, id: u8) -> v1::Span {
        v1::Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            process: Some(v1::Process {
                service_name: "svc".into(),
                tags: Vec::new(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn searches_become_string_tags_and_go_zero_times() {
        let search = TraceSearch {
            service_name: "svc".into(),
            attributes: vec![(
                "n".into(),
                AnyValue {
                    value: Some(any_value::Value::IntValue(123)),
                },
            )],
            start_time_max: Some(UnixNanos(5_000_000_007)),
            search_depth: 1000,
            ..TraceSearch::default()
        };
        let query = v1_query(&search);
        assert_eq!(query.tags.get("n").map(String::as_str), Some("123"));
        assert_eq!(
            query.start_time_min.map(|time| time.seconds),
            Some(GO_ZERO_TIME_SECONDS)
        );
        assert_eq!(query.start_time_max.map(|time| time.nanos), Some(7));
        assert_eq!(query.num_traces, 1000);
    }

    #[test]
    fn chunks_split_into_contiguous_traces() {
        let traces = traces_from_chunks(
            "FindTraces",
            vec![
                vec![span(1, 1), span(1, 2)],
                vec![span(1, 3)],
                vec![span(2, 1)],
            ],
        )
        .unwrap();
        let shape: Vec<(String, usize)> = traces
            .iter()
            .map(|trace| (trace.trace_id_hex(), trace.span_count()))
            .collect();
        assert_eq!(shape, [("01".repeat(16), 3), ("02".repeat(16), 1)]);
    }

    #[test]
    fn protocol_violations_are_reported() {
        let cases = [
            (vec![vec![]], "holds no span"),
            (vec![vec![span(1, 1), span(2, 1)]], "mixes traces"),
            (
                vec![vec![span(1, 1)], vec![span(2, 1)], vec![span(1, 2)]],
                "not contiguous",
            ),
            (
                vec![vec![v1::Span {
                    process: None,
                    ..span(1, 1)
                }]],
                "has no process",
            ),
        ];
        for (chunks, expected) in cases {
            let error = traces_from_chunks("FindTraces", chunks)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
