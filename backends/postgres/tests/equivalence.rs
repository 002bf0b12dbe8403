//! The PostgreSQL backend against the memory backend (the reference semantics) with search
//! pages of at most 3 rows, which forces every search through many keyset pages and the
//! finality bound between them. The same harness runs with the default pages as
//! `postgres/Backend/Equivalent_to_reference` in `tests/conformance.rs`; see
//! `storage_conformance::behaviour::equivalence`.

mod common;

use storage_conformance::SpanOrder;
use storage_conformance::behaviour::equivalence::compare_with_reference;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_the_memory_backend_with_tiny_pages() {
    let Some(url) = common::database_url() else {
        return;
    };
    let mut config = common::test_config(&url, &common::unique_schema("equivalence"));
    config.search_walk_rows = std::num::NonZeroU32::new(3).unwrap();
    let test = common::TestStore::open_with(config).await;
    let memory = backend_memory::open(backend_memory::MemoryConfig::default());
    let outcome = compare_with_reference(&test.backend, &memory, SpanOrder::AsWritten).await;
    test.finish().await;
    if let Err(error) = outcome {
        panic!("{error:#}");
    }
}
