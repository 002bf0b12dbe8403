//! Refusing the query shapes a backend does not declare, once for every backend: a
//! [`crate::Backend`] built with [`crate::Backend::from_store`] answers such a query with
//! `INVALID_ARGUMENT` (naming the request field) before the store sees it, so a backend never
//! answers what it cannot serve with an empty or partial result.

use std::sync::Arc;

use async_trait::async_trait;

use crate::capabilities::Capabilities;
use crate::encoded::EncodedTraceStream;
use crate::error::{StoreError, StoreResult};
use crate::model::Operation;
use crate::query::{OperationQuery, TraceLookup, TraceQuery};
use crate::store::{FoundTraceId, SummaryStream, Tenant, TraceStore, TraceStream};

impl Capabilities {
    /// `Ok` when the backend serves this search shape, else the `INVALID_ARGUMENT` a client
    /// gets.
    pub fn admit_trace_query(&self, query: &TraceQuery) -> StoreResult<()> {
        // Checked first: a filter query has no service name, and "service name required" would
        // hide the real reason.
        if query.filter.is_some() && !self.structured_filters {
            return Err(StoreError::invalid_argument(
                "query.filter: structured filters are not supported by this backend \
                 (Capabilities declares no filter support); use the legacy query fields",
            ));
        }
        if !self.without_service_name && query.service_name.is_none() {
            return Err(StoreError::invalid_argument(
                "query.service_name is required: this backend cannot search without a service \
                 name (Capabilities.search.without_service_name is false)",
            ));
        }
        Ok(())
    }

    /// `Ok` when the backend serves this GetOperations shape, else the `INVALID_ARGUMENT` a
    /// client gets.
    pub fn admit_operation_query(&self, query: &OperationQuery) -> StoreResult<()> {
        if !self.operation_span_kinds && query.span_kind.is_some() {
            return Err(StoreError::invalid_argument(
                "span_kind: this backend does not record the span kind of operations, so it \
                 cannot filter by it; ask without a span kind",
            ));
        }
        Ok(())
    }
}

/// A [`TraceStore`] that refuses the undeclared query shapes and passes everything else on.
pub(crate) struct AdmittedStore {
    pub(crate) capabilities: Capabilities,
    pub(crate) inner: Arc<dyn TraceStore>,
}

#[async_trait]
impl TraceStore for AdmittedStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<crate::Span>) -> StoreResult<()> {
        self.inner.write_spans(tenant, spans).await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        self.inner.get_traces(tenant, lookups).await
    }

    async fn get_encoded_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<EncodedTraceStream> {
        self.inner.get_encoded_traces(tenant, lookups).await
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        self.inner.get_services(tenant).await
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        self.capabilities.admit_operation_query(&query)?;
        self.inner.get_operations(tenant, query).await
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        self.capabilities.admit_trace_query(&query)?;
        self.inner.find_trace_ids(tenant, query).await
    }

    async fn find_traces(&self, tenant: &Tenant, query: TraceQuery) -> StoreResult<TraceStream> {
        self.capabilities.admit_trace_query(&query)?;
        self.inner.find_traces(tenant, query).await
    }

    async fn find_trace_summaries(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<SummaryStream> {
        self.capabilities.admit_trace_query(&query)?;
        self.inner.find_trace_summaries(tenant, query).await
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;
    use crate::ErrorKind;
    use crate::proto::otlp::trace::span::SpanKind;

    #[test]
    fn undeclared_shapes_are_refused_naming_the_field() {
        let narrow = Capabilities {
            without_service_name: false,
            operation_span_kinds: false,
            ..Capabilities::FULL
        };
        let anywhere = TraceQuery::all(NonZeroUsize::MIN);
        let error = narrow.admit_trace_query(&anywhere).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidArgument);
        assert!(error.to_string().contains("service_name"), "{error}");
        let in_service = TraceQuery {
            service_name: Some("checkout".into()),
            ..anywhere.clone()
        };
        assert!(narrow.admit_trace_query(&in_service).is_ok());
        assert!(Capabilities::FULL.admit_trace_query(&anywhere).is_ok());

        let by_kind = OperationQuery {
            service: "checkout".into(),
            span_kind: Some(SpanKind::Server),
        };
        let error = narrow.admit_operation_query(&by_kind).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidArgument);
        assert!(error.to_string().contains("span_kind"), "{error}");
        let any_kind = OperationQuery {
            span_kind: None,
            ..by_kind.clone()
        };
        assert!(narrow.admit_operation_query(&any_kind).is_ok());
        assert!(Capabilities::FULL.admit_operation_query(&by_kind).is_ok());
    }

    #[test]
    fn filters_are_admitted_only_where_declared() {
        let filter = crate::filter::Filter::from_proto(
            &crate::proto::expression::v1::Call {
                op: "exists".into(),
                args: vec![crate::proto::expression::v1::Expression {
                    term: Some(crate::proto::expression::v1::expression::Term::Field(
                        crate::proto::expression::v1::FieldReference {
                            name: "name".into(),
                            level: "span".into(),
                        },
                    )),
                }],
            },
            "query.filter",
        )
        .unwrap();
        let filtered = TraceQuery {
            filter: Some(filter),
            ..TraceQuery::all(NonZeroUsize::MIN)
        };
        assert!(Capabilities::FULL.admit_trace_query(&filtered).is_ok());
        // A backend without filter support that also needs a service name is told about the
        // filter, not the service.
        let without_filters = Capabilities {
            structured_filters: false,
            ..Capabilities::FULL
        };
        let narrow = Capabilities {
            without_service_name: false,
            ..without_filters
        };
        for capabilities in [without_filters, narrow] {
            let error = capabilities.admit_trace_query(&filtered).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidArgument);
            assert!(error.to_string().starts_with("query.filter: "), "{error}");
        }
        assert!(
            without_filters
                .admit_trace_query(&TraceQuery::all(NonZeroUsize::MIN))
                .is_ok()
        );
    }
}
