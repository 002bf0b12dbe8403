//! GetDependencies from the call rollups equals [`DependencyCounter`] over the stored spans
//! (read back with GetTraces), for random windows after every write: parents before and after
//! their children in other Exports, duplicated span IDs, re-sent Exports (whole and in part),
//! two store instances on one schema, two tenants, and one trace written by concurrent Exports.

mod common;

use common::TestStore;
use futures::StreamExt as _;
use remote_storage_core::dependencies::DependencyCounter;
use remote_storage_core::testing::span;
use remote_storage_core::{
    Backend, DependencyLink, DependencyQuery, Span, Tenant, TraceId, TraceLookup, UnixNanos,
};

const MINUTE: u64 = 60_000_000_000;
const HOUR: u64 = 60 * MINUTE;
const TRACES: u8 = 5;
const SERVICES: [&str; 3] = ["front", "back", "db"];

/// SplitMix64: a seeded, reproducible sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn index<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

/// Over [`DependencyCounter`] on every trace as GetTraces returns it (the stored spans, in
/// storage order).
async fn from_spans(
    backend: &Backend,
    tenant: &Tenant,
    window: DependencyQuery,
) -> Vec<DependencyLink> {
    let lookups = (1..=TRACES)
        .map(|trace| TraceLookup {
            trace_id: TraceId([trace; 16]),
            start: None,
            end: None,
        })
        .collect();
    let mut traces = backend.traces.get_traces(tenant, lookups).await.unwrap();
    let mut counter = DependencyCounter::default();
    while let Some(trace) = traces.next().await {
        counter.add_trace(&trace.unwrap(), &window);
    }
    counter.finish()
}

/// Windows over `[base, base + span)`: arbitrary bounds, whole minutes, one nanosecond, all.
fn windows(rng: &mut Rng, base: u64, span: u64) -> Vec<DependencyQuery> {
    let mut windows = Vec::new();
    for _ in 0..3 {
        let a = base + rng.below(span);
        let b = base + rng.below(span);
        windows.push(DependencyQuery {
            start: UnixNanos(a.min(b)),
            end: UnixNanos(a.max(b)),
        });
    }
    let first = base - base % MINUTE + MINUTE * (1 + rng.below(span / MINUTE));
    let minutes = 1 + rng.below(30);
    windows.push(DependencyQuery {
        start: UnixNanos(first),
        end: UnixNanos(first + minutes * MINUTE - 1),
    });
    let at = base + rng.below(span);
    windows.push(DependencyQuery {
        start: UnixNanos(at),
        end: UnixNanos(at),
    });
    windows.push(DependencyQuery {
        start: UnixNanos(0),
        end: UnixNanos(u64::MAX),
    });
    windows
}

/// One random span: a few IDs per trace (so IDs repeat), a random parent among them.
fn random_span(rng: &mut Rng, base: u64, spread: u64, sequence: usize) -> Span {
    let trace = 1 + u8::try_from(rng.below(u64::from(TRACES))).unwrap();
    let id = 1 + u8::try_from(rng.below(8)).unwrap();
    let parent = (rng.below(5) != 0).then(|| 1 + u8::try_from(rng.below(8)).unwrap());
    let start = base + rng.below(spread);
    span(
        trace,
        id,
        parent,
        rng.index(&SERVICES),
        &format!("op-{sequence}"),
        start,
        start + 1_000,
        false,
    )
}

async fn check(backend: &Backend, tenant: &Tenant, window: DependencyQuery, context: &str) {
    let expected = from_spans(backend, tenant, window).await;
    let actual = backend
        .dependencies
        .get_dependencies(tenant, window)
        .await
        .unwrap();
    assert_eq!(actual, expected, "{context}, window {window:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_the_count_from_spans_after_every_write() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::unique_schema("rollups");
    let mut config = common::test_config(&url, &schema);
    // Hour partitions: a trace's spans straddle partitions.
    config.partition_span = backend_postgres::PartitionSpan::Hour;
    let first = TestStore::open_with(config.clone()).await;
    let second = TestStore::open_with(config).await;
    let stores = [&first.backend, &second.backend];
    let tenants = [Tenant::default(), Tenant::new("other")];
    // Recent (opening runs retention) and across an hour boundary.
    let now = UnixNanos::now().0;
    let base = now - 3 * HOUR;
    let spread = 2 * HOUR;
    let seed = std::env::var("ROLLUP_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(16);
    let mut rng = Rng(seed);
    let mut sent: Vec<(usize, Vec<Span>)> = Vec::new();
    for step in 0..60 {
        let tenant = usize::try_from(rng.below(2)).unwrap();
        let spans: Vec<Span> = match rng.below(6) {
            // A whole Export re-sent, or part of one with new spans.
            0 if !sent.is_empty() => {
                let (_, old) = &sent[usize::try_from(rng.below(sent.len() as u64)).unwrap()];
                let mut spans: Vec<Span> =
                    old.iter().filter(|_| rng.below(3) != 0).cloned().collect();
                if rng.below(2) == 0 {
                    spans.push(random_span(&mut rng, base, spread, step));
                }
                spans
            }
            _ => (0..1 + rng.below(6))
                .map(|index| {
                    random_span(
                        &mut rng,
                        base,
                        spread,
                        step * 10 + usize::try_from(index).unwrap(),
                    )
                })
                .collect(),
        };
        if spans.is_empty() {
            continue;
        }
        let store = stores[usize::try_from(rng.below(2)).unwrap()];
        store
            .traces
            .write_spans(&tenants[tenant], spans.clone())
            .await
            .unwrap();
        sent.push((tenant, spans));
        for tenant in &tenants {
            for window in windows(&mut rng, base, spread) {
                // Either store answers for both.
                let reader = stores[usize::try_from(rng.below(2)).unwrap()];
                check(reader, tenant, window, &format!("seed {seed}, step {step}")).await;
            }
        }
    }
    second.backend.lifecycle.close().await.unwrap();
    first.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_split_over_concurrent_exports_counts_every_call_once() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::unique_schema("rollups_concurrent");
    let config = common::test_config(&url, &schema);
    let first = TestStore::open_with(config.clone()).await;
    let second = TestStore::open_with(config).await;
    let tenant = Tenant::default();
    let now = UnixNanos::now().0;
    let base = now - HOUR;
    let mut rng = Rng(7);
    for round in 0..4u8 {
        let trace = round + 1;
        // 60 spans: parents anywhere in the trace (so most calls cross Exports), a few IDs
        // repeated with other services.
        let spans: Vec<Span> = (0..60u8)
            .map(|index| {
                let id = if index % 13 == 12 {
                    index - 5
                } else {
                    index + 1
                };
                let parent = (index > 0).then(|| 1 + u8::try_from(rng.below(60)).unwrap());
                let start = base + rng.below(10 * MINUTE);
                span(
                    trace,
                    id,
                    parent,
                    rng.index(&SERVICES),
                    &format!("op-{index}"),
                    start,
                    start + 10,
                    false,
                )
            })
            .collect();
        let exports: Vec<Vec<Span>> = spans.chunks(5).map(<[Span]>::to_vec).collect();
        let writers: Vec<_> = exports
            .into_iter()
            .enumerate()
            .map(|(index, export)| {
                let backend = if index % 2 == 0 {
                    first.backend.clone()
                } else {
                    second.backend.clone()
                };
                let tenant = tenant.clone();
                tokio::spawn(async move { backend.traces.write_spans(&tenant, export).await })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let whole = DependencyQuery {
            start: UnixNanos(base - base % MINUTE),
            end: UnixNanos(base - base % MINUTE + 12 * MINUTE - 1),
        };
        let links = first
            .backend
            .dependencies
            .get_dependencies(&tenant, whole)
            .await
            .unwrap();
        let calls: u64 = links.iter().map(|link| link.call_count).sum();
        assert!(calls > 0, "round {round}: {links:?}");
        for window in windows(&mut rng, base, 10 * MINUTE)
            .into_iter()
            .chain([whole])
        {
            check(&first.backend, &tenant, window, &format!("round {round}")).await;
        }
    }
    second.backend.lifecycle.close().await.unwrap();
    first.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_migrated_with_spans_counts_them_from_spans_and_new_calls_from_rollups() {
    let Some(url) = common::database_url() else {
        return;
    };
    let schema = common::unique_schema("rollups_migrated");
    let config = common::test_config(&url, &schema);
    let tenant = Tenant::default();
    let now = UnixNanos::now().0;
    let base = now - 2 * HOUR;
    let before = TestStore::open_with(config.clone()).await;
    before
        .backend
        .traces
        .write_spans(
            &tenant,
            vec![
                span(1, 1, None, "front", "root", base, base + 10, false),
                span(
                    1,
                    2,
                    Some(1),
                    "back",
                    "call",
                    base + MINUTE,
                    base + MINUTE + 5,
                    false,
                ),
                // Waits for a parent that arrives after the migration.
                span(
                    2,
                    2,
                    Some(1),
                    "db",
                    "orphan",
                    base + 2 * MINUTE,
                    base + 2 * MINUTE + 5,
                    false,
                ),
            ],
        )
        .await
        .unwrap();
    // Back to the schema as the previous version left it: spans, no rollups.
    let pool = before.store.pool().clone();
    for statement in [
        "DROP TABLE call_rollups, trace_heads",
        "DELETE FROM settings WHERE key = 'rollups_from'",
        "DELETE FROM _sqlx_migrations WHERE version >= 3",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    before.backend.lifecycle.close().await.unwrap();

    let after = TestStore::open_with(config).await;
    let rollups_from: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'rollups_from'")
            .fetch_one(after.store.pool())
            .await
            .unwrap();
    let rollups_from: u64 = rollups_from.parse().unwrap();
    assert!(rollups_from >= now, "{rollups_from} < {now}");
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent \
         JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE p.relname = 'call_rollups' AND c.relname LIKE 'call\\_rollups\\_d%' \
           AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)",
    )
    .bind(&after.schema)
    .fetch_one(after.store.pool())
    .await
    .unwrap();
    assert!(
        partitions >= 1,
        "existing buckets get rollup partitions named as the others"
    );
    // After the migration: the old orphan's parent, a call to an old parent, and new traces.
    let late = rollups_from + 5 * MINUTE;
    after
        .backend
        .traces
        .write_spans(
            &tenant,
            vec![
                span(2, 1, None, "front", "root", late, late + 10, false),
                span(
                    1,
                    3,
                    Some(1),
                    "db",
                    "query",
                    late + MINUTE,
                    late + MINUTE + 5,
                    false,
                ),
                span(3, 1, None, "front", "root", late, late + 10, false),
                span(
                    3,
                    2,
                    Some(1),
                    "back",
                    "call",
                    late + 2 * MINUTE,
                    late + 2 * MINUTE + 1,
                    false,
                ),
            ],
        )
        .await
        .unwrap();
    let mut rng = Rng(3);
    let mut windows = windows(&mut rng, base, late + 10 * MINUTE - base);
    windows.push(DependencyQuery {
        start: UnixNanos(base - base % MINUTE),
        end: UnixNanos(late - late % MINUTE + 10 * MINUTE - 1),
    });
    for window in windows {
        check(&after.backend, &tenant, window, "after the migration").await;
    }
    let all = after
        .backend
        .dependencies
        .get_dependencies(
            &tenant,
            DependencyQuery {
                start: UnixNanos(0),
                end: UnixNanos(u64::MAX),
            },
        )
        .await
        .unwrap();
    let calls: u64 = all.iter().map(|link| link.call_count).sum();
    assert_eq!(calls, 4, "{all:?}");
    after.finish().await;
}
