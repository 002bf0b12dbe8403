//! The library half of `loadgen`: the tracegen-like workload generator, shared by the
//! `loadgen` binary and the micro-benchmarks (`bench/micro`), so both measure the same data.
//! The binary's own modules live in `main.rs`; see `loadgen --help`.

pub mod workload;
