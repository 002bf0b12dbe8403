//! Settings the end-to-end tests share.

use std::time::{Duration, SystemTime};

use crate::queries::QueryConfig;
use crate::workload::WorkloadConfig;

/// `total` spans in Exports of `batch_size`, spread over the ten minutes before now.
pub(crate) fn recent_workload(seed: u64, batch_size: usize, total: u64) -> WorkloadConfig {
    WorkloadConfig {
        seed,
        batch_size,
        ring: 3,
        total_spans: Some(total),
        time_spread: Duration::from_secs(600),
        now_unix_nanos: crate::unix_nanos(SystemTime::now()),
    }
}

/// `reps` repetitions of every query over the last two hours, search depth 20, no time budget.
pub(crate) fn query_config(reps: u32, large_trace: Option<Vec<u8>>) -> QueryConfig {
    QueryConfig {
        reps,
        budget: None,
        search_depth: 20,
        lookback: Duration::from_secs(7200),
        large_trace,
        skip: Vec::new(),
    }
}
