#![doc = include_str!("../README.md")]
//!
//! # Layout
//! - [`target`]: [`SuiteTarget`], what the suite runs against, and the OTLP-shaped answers.
//! - [`in_process`]: [`InProcessTarget`], mode 1 (a [`remote_storage_core::Backend`] called
//!   directly).
//! - [`grpc`]: [`GrpcTarget`], modes 2 (direct) and 3 (via Jaeger) over gRPC.
//! - [`fixtures`]: fixture sets in Jaeger's format, with Jaeger's date rewriting.
//! - [`compare`]: trace comparison with the semantics of Jaeger's `trace_compare.go`.
//! - [`options`]: opt-out capabilities, skip list and the waiting rule.
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
pub mod fixtures;
pub mod grpc;
pub mod in_process;
pub mod options;
pub mod runner;
pub mod suite;
pub mod target;

pub use fixtures::FixtureSet;
pub use grpc::{GrpcTarget, GrpcTargetConfig, TlsSettings, WireMode};
pub use in_process::InProcessTarget;
pub use options::{BackendChecks, Excused, ReferenceBackend, SpanOrder, SuiteOptions, WaitPolicy};
pub use runner::{
    CaseResult, Outcome, Progress, Report, SuiteRun, backend_trials, fixture_sets, libtest_trials,
    new_runtime, run_in_process, run_libtest, run_suite,
};
pub use target::{OtlpTrace, SuiteTarget, TraceSearch};
