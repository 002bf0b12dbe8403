//! The filter queries of query mode against the real server (memory backend), in-process: timed
//! when the server declares filters, each answering what its legacy query answers.

use std::collections::HashMap;

use remote_storage::{BackendConfig, RunningServer, ServerConfig, open_backend};

use crate::cli::Api;
use crate::codec::RawClient;
use crate::conn::{self, Tenant};
use crate::queries;
use crate::run::{self, LoadConfig};
use crate::test_support::{query_config, recent_workload};
use crate::workload::{self, Workload};

#[tokio::test]
async fn filter_forms_are_timed_and_answer_as_their_legacy_queries() {
    let backend = open_backend(&BackendConfig::Memory(Default::default()))
        .await
        .unwrap();
    let server = RunningServer::start(ServerConfig::for_tests(), backend)
        .await
        .unwrap();
    let channel = conn::connect(&server.grpc_addr.to_string()).await.unwrap();
    let workload = Workload::build(&recent_workload(31, 200, 2_000)).unwrap();
    let loaded = run::run(
        workload,
        vec![RawClient::new(channel.clone(), false, Tenant::default())],
        LoadConfig {
            concurrency: 2,
            duration: None,
            rate: None,
            prefix: workload::run_prefix(9),
            progress: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(loaded.spans_accepted, 2_000, "{:?}", loaded.errors);
    let (_, results) = queries::run(channel, Tenant::default(), query_config(2, None), Api::V2)
        .await
        .unwrap();
    let by_name: HashMap<_, _> = results.iter().map(|r| (r.name.as_str(), r)).collect();
    for form in [
        "service",
        "service+operation",
        "service+tag",
        "service+duration",
        "tag (no service)",
    ] {
        let legacy = by_name[format!("FindTraces {form}").as_str()];
        let filter = by_name[format!("FindTraces filter {form}").as_str()];
        assert_eq!(filter.ok, 2, "{filter:?}");
        assert!(filter.traces >= 1, "{filter:?}");
        assert_eq!(
            (filter.traces, filter.spans),
            (legacy.traces, legacy.spans),
            "{form}"
        );
    }
    server.stop().await.unwrap();
}
