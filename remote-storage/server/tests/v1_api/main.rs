//! End-to-end tests of Jaeger's v1 remote-storage API (`jaeger.storage.v1`, what Jaeger v1
//! components use with `SPAN_STORAGE_TYPE=grpc`): the real server in-process on the memory
//! backend, driven through tonic clients on `127.0.0.1:0` listeners, as `server.rs` does for v2.
//!
//! The translation rules themselves are unit- and property-tested in `remote_storage_core::v1`;
//! these tests check what only the running server can show: routing, streaming, chunking,
//! status codes and messages, tenancy, limits, metrics, health, and that data written through
//! one API reads back through the other. Expected wire behaviour: `shared/spec/protocol-v1.md`.
//!
//! One module per area; the shared clients and builders are in `harness`.

mod harness;

mod across_apis;
mod limits;
mod observability;
mod plugin;
mod reads;
mod tenancy;
mod writes;
