//! The remote-storage framework: span model, OTLP conversion, query semantics and the traits
//! every backend implements.
//!
//! # Layout
//! - [`ids`], [`time`]: validated IDs and the one internal time type.
//! - [`model`]: [`model::Span`] (the OTLP span kept whole, with shared resource and scope),
//!   [`model::Trace`], operations and dependency links.
//! - [`attribute`]: canonical text of attribute values, so typed and string queries match alike.
//! - [`convert`]: OTLP `ResourceSpans` ⇄ spans, at the edges only.
//! - [`query`]: request types built once from the protobuf and validated.
//! - [`matcher`]: the shared span matcher with Jaeger's reference semantics.
//! - [`filter`]: structured filters (`jaeger.expression.v1`): decoding, validation, resolution
//!   and evaluation on the span model.
//! - [`capabilities`]: what a backend declares, once; [`admission`] refuses what it does not.
//! - [`units`]: durations and byte sizes as operators write them, for backends' flags.
//! - [`encoded`]: traces whose spans are already OTLP bytes, for reads that only send them on.
//! - [`summary`], [`dependencies`]: shared computations so every backend gets them right.
//! - [`store`]: [`store::TraceStore`], [`store::DependencyStore`], [`store::Purger`],
//!   [`store::StoreLifecycle`] and the [`store::Backend`] bundle.
//! - [`v1`]: Jaeger's v1 span model as a view of the stored OTLP spans, and v1 requests as
//!   queries, for the v1 remote-storage API.
//! - [`error`]: [`error::StoreError`], the one error type.

pub mod admission;
pub mod attribute;
pub mod capabilities;
pub mod convert;
pub mod dependencies;
pub mod encoded;
pub mod error;
pub mod filter;
pub mod ids;
pub mod index_term;
pub mod matcher;
pub mod model;
#[cfg(test)]
mod properties;
pub mod query;
pub mod secret_file;
pub mod store;
pub mod summary;
pub mod testing;
pub mod time;
pub mod units;
pub mod v1;

pub use capabilities::{Capabilities, Rewrites, SpanOrder, Visibility};
pub use encoded::{EncodedTrace, EncodedTraceStream};
pub use error::{ErrorKind, StoreError, StoreResult};
pub use filter::Filter;
pub use ids::{SpanId, TraceId};
pub use model::{DependencyLink, Operation, Resource, Scope, Span, Trace};
pub use query::{DependencyQuery, OperationQuery, QueryLimits, TraceLookup, TraceQuery};
pub use store::{
    Backend, DependencyStore, FoundTraceId, Purger, StoreLifecycle, StoreStats, SummaryStream,
    Tenant, TraceStore, TraceStream,
};
pub use summary::TraceSummary;
pub use time::{UnixNanos, WriteClock};

/// Re-export of the protobuf crate, so backends and the server use the same types.
pub use jaeger_remote_proto as proto;
