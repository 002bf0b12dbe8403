//! What a backend can answer and how its writes behave, declared once per backend (its
//! `CAPABILITIES` constant). Everything else derives from that one declaration:
//!
//! | Field | Gates |
//! |---|---|
//! | [`Capabilities::without_service_name`] | `Capabilities.search.without_service_name` on the wire; when `false`, Find* without a service are refused with `INVALID_ARGUMENT` ([`crate::admission`]); the suite's `FindTracesWithoutServiceName` expects results or that refusal |
//! | [`Capabilities::structured_filters`] | `Capabilities.search.filter` on the wire (every level and operator when `true`, absent when `false`); when `false`, a query with a filter is refused with `INVALID_ARGUMENT` ([`crate::admission`]); the suite's `FindTracesWithFilter` cases expect answers or that refusal |
//! | [`Capabilities::same_span_conjunction`] | `Capabilities.search.same_span_conjunction` on the wire; the suite's `Backend/Conditions_on_one_span` and `Backend/Typed_values_within_one_span` run only when `true` |
//! | [`Capabilities::operation_span_kinds`] | when `false`, GetOperations with a span kind is refused with `INVALID_ARGUMENT`; the suite compares operation names only and its `GetOperations/Span_kind_filter` expects the refusal |
//! | [`Capabilities::dependency_source`] | the `source` of every dependency link on the wire (v2 and v1); what the suite's `GetDependencies` expects |
//! | [`Capabilities::rewrites`] | the suite's `Backend/Idempotent_rewrite` or `Backend/Rewrite_keeps_copies`, and what the other checks expect after a re-sent batch |
//! | [`Capabilities::visibility`] | how long the suite waits before a written span must be readable (not at all for [`Visibility::OnReturn`]) |
//! | [`Capabilities::span_order`] | whether the suite compares the spans of a trace in order or as a multiset |

use std::time::Duration;

use jaeger_remote_proto::storage::v2 as proto;

/// The levels a backend declaring [`Capabilities::structured_filters`] evaluates.
pub const FILTER_LEVELS: [&str; 5] = ["span", "resource", "scope", "event", "link"];

/// The operators a backend declaring [`Capabilities::structured_filters`] evaluates.
pub const FILTER_OPERATORS: [&str; 14] = [
    "and", "or", "not", "eq", "ne", "gt", "lt", "gte", "lte", "regex", "exists", "in", "not_in",
    "some",
];

/// A backend's declaration. There is no default: a backend states every field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Find* accept an empty service name as "any service". When `false` such a query is
    /// refused with `INVALID_ARGUMENT`, never answered empty or partially.
    pub without_service_name: bool,
    /// Every conjunction of conditions is evaluated within one span (when `false`, conditions
    /// may be met by different spans of a trace).
    pub same_span_conjunction: bool,
    /// Structured filters (`TraceQueryParameters.filter`) are evaluated exactly: every level
    /// and every operator of `jaeger.expression.v1`, each candidate span decided by the shared
    /// evaluator ([`crate::filter::Filter::matches`]). Declared on the wire as all
    /// [`FILTER_LEVELS`] and [`FILTER_OPERATORS`]; when `false` no filter support is declared
    /// and a filter is refused with `INVALID_ARGUMENT`. There is no partial declaration: a
    /// backend either runs the shared evaluator on every candidate or declares nothing.
    pub structured_filters: bool,
    /// Operations carry their span kind and GetOperations can filter by kind. When `false`,
    /// a kind filter is refused with `INVALID_ARGUMENT` and operations may come back without
    /// a kind.
    pub operation_span_kinds: bool,
    /// The `source` of the backend's dependency links: `""` for links derived from stored spans.
    pub dependency_source: &'static str,
    /// What a re-sent identical batch (an Export retry) does.
    pub rewrites: Rewrites,
    /// When a write that returned `Ok` becomes readable.
    pub visibility: Visibility,
    /// In which order the spans of a trace come back.
    pub span_order: SpanOrder,
}

/// What a re-sent identical batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrites {
    /// A batch written again adds no spans (identical copies inside one batch are all kept).
    Idempotent,
    /// A batch written again is stored again, as Jaeger's reference store does.
    KeepCopies,
}

/// When a write that returned `Ok` becomes readable by every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// As soon as the write returns (before the Export is answered).
    OnReturn,
    /// At most this long after the write returns (a search index refreshed in the
    /// background). Reads of a trace by ID are subject to the same bound.
    WithinRefresh(Duration),
}

impl Visibility {
    /// The longest a reader may have to wait after a write returned.
    pub fn delay(self) -> Duration {
        match self {
            Self::OnReturn => Duration::ZERO,
            Self::WithinRefresh(bound) => bound,
        }
    }
}

/// In which order the spans of a trace come back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpanOrder {
    /// In the order they were written.
    #[default]
    AsWritten,
    /// In an order of the backend's own (e.g. key order). The contract allows it.
    Any,
}

impl Capabilities {
    /// Every query shape served, links derived from spans, re-sent batches idempotent, writes
    /// readable on return, spans in write order: a base to change single fields of.
    pub const FULL: Self = Self {
        without_service_name: true,
        same_span_conjunction: true,
        structured_filters: true,
        operation_span_kinds: true,
        dependency_source: "",
        rewrites: Rewrites::Idempotent,
        visibility: Visibility::OnReturn,
        span_order: SpanOrder::AsWritten,
    };

    /// The wire form. Structured filter support is declared in full (all five levels, all
    /// fourteen operators) or not at all (`filter` absent).
    pub fn to_proto(self) -> proto::GetCapabilitiesResponse {
        proto::GetCapabilitiesResponse {
            search: Some(proto::SearchCapabilities {
                without_service_name: self.without_service_name,
                same_span_conjunction: self.same_span_conjunction,
                filter: self.structured_filters.then(|| proto::FilterCapabilities {
                    levels: FILTER_LEVELS
                        .iter()
                        .map(|&level| level.to_owned())
                        .collect(),
                    operators: FILTER_OPERATORS
                        .iter()
                        .map(|&operator| operator.to_owned())
                        .collect(),
                }),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_answer_reports_the_declared_search_shape() {
        let declared = Capabilities {
            without_service_name: false,
            structured_filters: false,
            ..Capabilities::FULL
        };
        let search = declared.to_proto().search.unwrap();
        assert!(!search.without_service_name);
        assert!(search.same_span_conjunction);
        assert!(search.filter.is_none());
    }

    #[test]
    fn filter_support_is_declared_with_every_level_and_operator() {
        let filter = Capabilities::FULL
            .to_proto()
            .search
            .unwrap()
            .filter
            .unwrap();
        assert_eq!(filter.levels, FILTER_LEVELS);
        assert_eq!(filter.operators.len(), 14);
        // The same closed vocabularies the filter engine accepts.
        for level in &filter.levels {
            assert!(crate::filter::Level::from_name(level).is_some(), "{level}");
        }
        for operator in &filter.operators {
            let call = jaeger_remote_proto::expression::v1::Call {
                op: operator.clone(),
                args: Vec::new(),
            };
            let error = crate::filter::Filter::from_proto(&call, "f").unwrap_err();
            assert!(!error.to_string().contains("unknown operator"), "{error}");
        }
        let unknown = jaeger_remote_proto::expression::v1::Call {
            op: "every".into(),
            args: Vec::new(),
        };
        let error = crate::filter::Filter::from_proto(&unknown, "f").unwrap_err();
        assert!(error.to_string().contains("unknown operator"), "{error}");
    }

    #[test]
    fn visibility_states_its_delay() {
        assert_eq!(Visibility::OnReturn.delay(), Duration::ZERO);
        let refresh = Visibility::WithinRefresh(Duration::from_secs(1));
        assert_eq!(refresh.delay(), Duration::from_secs(1));
    }
}
