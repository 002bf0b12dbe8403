//! The suite over Jaeger's v1 remote-storage API (`jaeger.storage.v1`), for servers that serve
//! Jaeger v1 components (`SPAN_STORAGE_TYPE=grpc`).
//!
//! - [`V1GrpcTarget`]: the suite over gRPC, shaped as Jaeger v1's storage client calls it.
//! - [`V1InProcessTarget`]: the same through the v1 model against a backend in-process.
//! - [`trace_through_v1`] / [`forced_losses`]: a fixture as a v1 client can expect it back,
//!   and the searches the v1 model cannot serve (the only tests a v1 run skips).
//! - [`wire`]: v1 searches and the splitting of streamed spans into traces.

mod fixtures;
mod in_process;
mod target;
pub mod wire;

pub use fixtures::{ForcedLoss, forced_losses, trace_through_v1};
pub use in_process::V1InProcessTarget;
pub use target::{V1GrpcTarget, V1Writer};
