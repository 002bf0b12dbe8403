#![doc = include_str!("../README.md")]
//!
//! # Layout
//! - [`target`]: [`SuiteTarget`], what the suite runs against, and the OTLP-shaped answers.
//! - [`in_process`]: [`InProcessTarget`], mode 1 (a [`remote_storage_core::Backend`] called
//!   directly).
//! - [`grpc`]: [`GrpcTarget`], modes 2 (direct) and 3 (via Jaeger) over gRPC.
//! - [`v1`]: the suite over Jaeger's v1 API ([`V1GrpcTarget`]) and through the v1 model
//!   in-process ([`V1InProcessTarget`]), with the fixtures as a v1 client expects them.
//! - [`cross_api`]: [`CrossApiTarget`], writes through one API and reads through another.
//! - [`environment`]: `CONFORMANCE_<NAME>_URL`, where a backend's tests find their service.
//! - [`proxy`]: a TCP proxy a fault test can cut, in front of a backend's service.
//! - [`fixtures`]: fixture sets in Jaeger's format, with Jaeger's date rewriting.
//! - [`compare`]: trace comparison with the semantics of Jaeger's `trace_compare.go`.
//! - [`options`]: what the storage declares ([`Capabilities`]), skip list, the waiting rule.
//! - [`suite`]: the tests.
//! - [`runner`]: `libtest-mimic` trials, direct runs, reports and JUnit.
//! - [`behaviour`]: in-process checks of a [`remote_storage_core::Backend`]'s trait contract
//!   (`<name>/Backend/<Check>` trials of [`run_in_process`]), and the equivalence harness that
//!   compares a backend with a reference backend on generated data.
//!
//! Errors are [`anyhow::Error`]: they end up as test-failure messages, where the context chain
//! (test, call, field) is what matters.

pub mod behaviour;
pub mod compare;
mod connection;
pub mod containers;
pub mod cross_api;
pub mod environment;
pub mod filter_edges;
pub mod fixtures;
pub mod grpc;
pub mod in_process;
pub mod options;
pub mod proxy;
pub mod runner;
pub mod suite;
pub mod target;
pub mod v1;

pub use cross_api::CrossApiTarget;
pub use fixtures::FixtureSet;
pub use grpc::{GrpcTarget, GrpcTargetConfig, TlsSettings, WireMode};
pub use in_process::InProcessTarget;
pub use options::{Excused, ReferenceBackend, SuiteOptions, WaitPolicy};
pub use remote_storage_core::{Capabilities, Rewrites, SpanOrder, Visibility};
pub use runner::{
    CaseResult, Outcome, Progress, Report, SuiteRun, V1Path, backend_trials, fixture_sets,
    libtest_trials, new_runtime, run_in_process, run_libtest, run_suite, v1_suite_run,
};
pub use target::{OtlpTrace, SuiteTarget, TraceSearch, is_invalid_argument};
pub use v1::{V1GrpcTarget, V1InProcessTarget, V1Writer};
