//! Connection set-up, embedded migrations, time partitions and retention.
//!
//! Every table is range-partitioned on Unix nanoseconds (`chunks` on `min_start`, the others on
//! `bucket`, the start of the span's partition). All tables share one set of buckets, recorded in
//! the `partitions` table, so one bucket's chunks, services and operations are
//! created and dropped together. Partitions are created ahead of time by the maintenance task and
//! on demand when a write carries spans for a bucket that does not exist yet (late or future
//! data); retention drops whole expired buckets with `DROP TABLE`, never a `DELETE` scan.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

use parking_lot::Mutex;
use remote_storage_core::{StoreError, StoreResult, UnixNanos};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, SqlSafeStr as _};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::config::{PartitionSpan, PostgresConfig};
use crate::error::store_error;

/// One embedded migration: its file name (without `.sql`) and its SQL.
macro_rules! migration {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../migrations/", $name, ".sql")),
        )
    };
}

/// The migrations of `backends/postgres/migrations/`, embedded.
///
/// Listed by hand rather than with `sqlx::migrate!`: that macro needs sqlx's proc-macro crate,
/// which builds a second copy of sqlx, tokio and rustls for the compiler, minutes of every
/// clean build on two cores. Version and description are read from the file name as sqlx reads
/// them ([`version_and_description`]) and the checksum is sqlx's own over the same bytes, so a
/// schema migrated by an earlier build sees the same migrations. A test checks that this list
/// and the directory agree.
const MIGRATIONS: [(&str, &str); 4] = [
    migration!("0001_initial_schema"),
    migration!("0002_trace_chunks"),
    migration!("0003_call_rollups"),
    migration!("0004_trace_head_versions"),
];

/// sqlx's reading of a migration file name `<version>_<description>`: underscores in the
/// description read as spaces.
fn version_and_description(name: &str) -> Option<(i64, String)> {
    let (version, description) = name.split_once('_')?;
    Some((version.parse().ok()?, description.replace('_', " ")))
}

fn migrator() -> StoreResult<Migrator> {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(name, sql)| {
            let (version, description) = version_and_description(name).ok_or_else(|| {
                StoreError::internal("postgres: an embedded migration's name", name.to_owned())
            })?;
            Ok(Migration::new(
                version,
                Cow::Owned(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Migrator::with_migrations(migrations))
}

/// Storage settings of each `chunks` partition. Searches walk the time indexes with
/// index-only scans, which read the heap for every entry on a page that VACUUM has not yet
/// marked all-visible (measured after a bulk load: ~4 ms per 1,000 rows). By default
/// autovacuum visits an insert-only table after inserts of 20 % of its rows, so a day
/// partition would carry hours of unmarked rows; here it is every 20,000 rows (~200,000
/// spans), whatever the size.
const CHUNKS_PARTITION_SETTINGS: &str = "WITH (autovacuum_vacuum_insert_threshold = 20000, \
     autovacuum_vacuum_insert_scale_factor = 0)";

/// Tables partitioned by bucket, in the order their partitions are created.
const PARTITIONED_TABLES: [&str; 4] = ["chunks", "services", "operations", "call_rollups"];

/// Latest span start stored as-is; later starts are clamped (year 2262), so bucket bounds never
/// overflow `bigint`.
pub(crate) const MAX_START_NS: i64 = i64::MAX - 4 * 86_400 * 1_000_000_000;

/// Converts Unix nanoseconds to the `bigint` stored, clamping far-future times.
pub(crate) fn to_db_nanos(nanos: u64) -> i64 {
    i64::try_from(nanos)
        .unwrap_or(MAX_START_NS)
        .min(MAX_START_NS)
}

/// Converts a stored `bigint` back to Unix nanoseconds.
pub(crate) fn from_db_nanos(nanos: i64) -> UnixNanos {
    UnixNanos(u64::try_from(nanos).unwrap_or(0))
}

/// Builds the pool. Connections use `search_path = <schema>`, so every statement (and the
/// migrations) resolve unqualified names in the configured schema.
pub(crate) fn pool(config: &PostgresConfig) -> StoreResult<PgPool> {
    let options: PgConnectOptions = config.url.parse().map_err(|error: sqlx::Error| {
        StoreError::invalid_argument(format!(
            "postgres.url is not a valid PostgreSQL URL: {error}"
        ))
    })?;
    let options = options
        .options([("search_path", config.schema.as_str())])
        .application_name("jaeger-remote-storage");
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections.get())
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_before_acquire(true)
        .connect_lazy_with(options))
}

/// Creates the schema and applies the embedded migrations (idempotent; concurrent starts are
/// serialised by sqlx's advisory lock).
pub(crate) async fn migrate(pool: &PgPool, schema: &str) -> StoreResult<()> {
    let mut connection = pool
        .acquire()
        .await
        .map_err(|error| store_error("connecting for migrations", error))?;
    let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    if let Err(error) = connection.execute(AssertSqlSafe(create)).await {
        // Two stores creating the same schema at once: the loser sees a duplicate.
        let duplicate = crate::error::sql_state(&error)
            .is_some_and(|state| state == "23505" || state == "42P06");
        if !duplicate {
            return Err(store_error("creating the schema", error));
        }
    }
    migrator()?
        .run(&mut *connection)
        .await
        .map_err(|error| match error {
            sqlx::migrate::MigrateError::Execute(inner) => store_error("running migrations", inner),
            other => StoreError::internal("postgres: running migrations", other),
        })?;
    connection
        .ping()
        .await
        .map_err(|error| store_error("after migrations", error))
}

/// The partition span recorded in the schema, recording `configured` for a new schema.
pub(crate) async fn stored_partition_span(
    pool: &PgPool,
    configured: PartitionSpan,
) -> StoreResult<PartitionSpan> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ('partition_span', $1) ON CONFLICT DO NOTHING",
    )
    .bind(configured.as_str())
    .execute(pool)
    .await
    .map_err(|error| store_error("recording the partition span", error))?;
    let stored: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'partition_span'")
            .fetch_one(pool)
            .await
            .map_err(|error| store_error("reading the partition span", error))?;
    let span = PartitionSpan::parse(&stored).ok_or_else(|| {
        StoreError::internal(
            "postgres: settings.partition_span holds an unknown value",
            stored.clone(),
        )
    })?;
    if span != configured {
        warn!(
            stored = span.as_str(),
            configured = configured.as_str(),
            "the schema was created with another partition span; keeping the stored one"
        );
    }
    Ok(span)
}

/// The stored nanoseconds from which the call rollups are complete (set by the migration that
/// created them: `i64::MIN` for a schema created empty).
pub(crate) async fn rollups_from(pool: &PgPool) -> StoreResult<i64> {
    let stored: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'rollups_from'")
            .fetch_one(pool)
            .await
            .map_err(|error| store_error("reading rollups_from", error))?;
    stored.parse().map_err(|error| {
        StoreError::internal("postgres: settings.rollups_from is not a number", error)
    })
}

/// Start of the bucket holding `nanos`.
pub(crate) fn bucket_of(nanos: i64, width: i64) -> i64 {
    nanos - nanos.rem_euclid(width)
}

/// The partitions of one schema: which buckets exist, creating and dropping them.
#[derive(Debug)]
pub(crate) struct Partitions {
    schema: String,
    width: i64,
    /// Buckets known to exist. May be stale when another process dropped some; a write that
    /// then finds no partition reloads it and retries.
    known: Mutex<BTreeSet<i64>>,
}

impl Partitions {
    pub(crate) fn new(schema: &str, span: PartitionSpan) -> Self {
        Self {
            schema: schema.to_owned(),
            width: span.nanos(),
            known: Mutex::new(BTreeSet::new()),
        }
    }

    pub(crate) fn width(&self) -> i64 {
        self.width
    }

    /// Forgets the cached bucket list (reloaded on the next write).
    pub(crate) fn forget(&self) {
        self.known.lock().clear();
    }

    /// Makes sure a partition exists for each bucket.
    pub(crate) async fn ensure(&self, pool: &PgPool, buckets: &BTreeSet<i64>) -> StoreResult<()> {
        if self.known.lock().is_empty() {
            self.reload(pool).await?;
        }
        let missing: Vec<i64> = {
            let known = self.known.lock();
            buckets
                .iter()
                .filter(|bucket| !known.contains(bucket))
                .copied()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut transaction = pool
            .begin()
            .await
            .map_err(|error| store_error("creating partitions", error))?;
        // One creator at a time per schema, so IF NOT EXISTS never races.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("{}.partitions", self.schema))
            .execute(&mut *transaction)
            .await
            .map_err(|error| store_error("locking partitions", error))?;
        for &bucket in &missing {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT bucket FROM partitions WHERE bucket = $1")
                    .bind(bucket)
                    .fetch_optional(&mut *transaction)
                    .await
                    .map_err(|error| store_error("reading partitions", error))?;
            if exists.is_some() {
                continue;
            }
            let suffix = partition_suffix(bucket, self.width);
            let upper = bucket.saturating_add(self.width);
            for table in PARTITIONED_TABLES {
                let settings = if table == "chunks" {
                    CHUNKS_PARTITION_SETTINGS
                } else {
                    ""
                };
                let ddl = format!(
                    "CREATE TABLE IF NOT EXISTS \"{schema}\".\"{table}_{suffix}\" \
                     PARTITION OF \"{schema}\".\"{table}\" FOR VALUES FROM ({bucket}) TO ({upper}) \
                     {settings}",
                    schema = self.schema,
                );
                transaction
                    .execute(AssertSqlSafe(ddl))
                    .await
                    .map_err(|error| store_error("creating a partition", error))?;
            }
            sqlx::query("INSERT INTO partitions (bucket, width_ns) VALUES ($1, $2)")
                .bind(bucket)
                .bind(self.width)
                .execute(&mut *transaction)
                .await
                .map_err(|error| store_error("recording a partition", error))?;
            info!(schema = %self.schema, partition = %suffix, "created partition");
        }
        transaction
            .commit()
            .await
            .map_err(|error| store_error("creating partitions", error))?;
        self.known.lock().extend(missing);
        Ok(())
    }

    async fn reload(&self, pool: &PgPool) -> StoreResult<()> {
        let buckets: Vec<i64> = sqlx::query_scalar("SELECT bucket FROM partitions")
            .fetch_all(pool)
            .await
            .map_err(|error| store_error("reading partitions", error))?;
        let mut known = self.known.lock();
        known.clear();
        known.extend(buckets);
        Ok(())
    }

    /// Creates the partitions of the current and the next two buckets, and drops every bucket
    /// whose whole range is older than `now - retention`. Returns the dropped buckets.
    pub(crate) async fn maintain(
        &self,
        pool: &PgPool,
        now: UnixNanos,
        retention: Duration,
    ) -> StoreResult<Vec<i64>> {
        let now_ns = to_db_nanos(now.0);
        let current = bucket_of(now_ns, self.width);
        let upcoming: BTreeSet<i64> = (0..3)
            .map(|ahead| current.saturating_add(ahead * self.width))
            .collect();
        self.ensure(pool, &upcoming).await?;

        let retention_ns = i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX);
        let cutoff = now_ns.saturating_sub(retention_ns);
        let expired: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT bucket, width_ns FROM partitions WHERE bucket + width_ns <= $1 ORDER BY bucket",
        )
        .bind(cutoff)
        .fetch_all(pool)
        .await
        .map_err(|error| store_error("listing expired partitions", error))?;
        let mut dropped = Vec::with_capacity(expired.len());
        let mut dropped_until = i64::MIN;
        for (bucket, width) in expired {
            self.drop_bucket(pool, bucket, width).await?;
            dropped.push(bucket);
            dropped_until = dropped_until.max(bucket.saturating_add(width));
        }
        if !dropped.is_empty() {
            forget_dropped(pool, &dropped, dropped_until).await?;
        }
        Ok(dropped)
    }

    async fn drop_bucket(&self, pool: &PgPool, bucket: i64, width: i64) -> StoreResult<()> {
        let suffix = partition_suffix(bucket, width);
        let mut transaction = pool
            .begin()
            .await
            .map_err(|error| store_error("dropping a partition", error))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("{}.partitions", self.schema))
            .execute(&mut *transaction)
            .await
            .map_err(|error| store_error("locking partitions", error))?;
        // DROP needs an exclusive lock on the parent; do not queue every reader behind a long
        // query for long: give up and retry at the next run instead.
        transaction
            .execute("SET LOCAL lock_timeout = '10s'")
            .await
            .map_err(|error| store_error("dropping a partition", error))?;
        for table in PARTITIONED_TABLES {
            let ddl = format!(
                "DROP TABLE IF EXISTS \"{schema}\".\"{table}_{suffix}\"",
                schema = self.schema
            );
            transaction
                .execute(AssertSqlSafe(ddl))
                .await
                .map_err(|error| store_error("dropping a partition", error))?;
        }
        sqlx::query("DELETE FROM partitions WHERE bucket = $1")
            .bind(bucket)
            .execute(&mut *transaction)
            .await
            .map_err(|error| store_error("dropping a partition", error))?;
        transaction
            .commit()
            .await
            .map_err(|error| store_error("dropping a partition", error))?;
        self.known.lock().remove(&bucket);
        info!(schema = %self.schema, partition = %suffix, "dropped expired partition");
        Ok(())
    }
}

/// After buckets were dropped: the calls whose parent span they held (the child's minute is in
/// a kept bucket), and the trace locks of traces with nothing left (every chunk started before
/// `dropped_until`, as every bucket before it has expired).
async fn forget_dropped(pool: &PgPool, dropped: &[i64], dropped_until: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM call_rollups WHERE parent_bucket = ANY($1)")
        .bind(dropped)
        .execute(pool)
        .await
        .map_err(|error| store_error("deleting expired calls", error))?;
    sqlx::query("DELETE FROM trace_heads WHERE last_start < $1")
        .bind(dropped_until)
        .execute(pool)
        .await
        .map_err(|error| store_error("deleting expired trace locks", error))?;
    Ok(())
}

/// `d20260521` for a day bucket, `h2026052113` for an hour bucket (UTC), `b<nanos>` otherwise.
pub(crate) fn partition_suffix(bucket: i64, width: i64) -> String {
    let seconds = bucket.div_euclid(1_000_000_000);
    let Ok(start) = OffsetDateTime::from_unix_timestamp(seconds) else {
        return format!("b{bucket}");
    };
    let date = format!(
        "{:04}{:02}{:02}",
        start.year(),
        u8::from(start.month()),
        start.day()
    );
    if width == PartitionSpan::Day.nanos() {
        format!("d{date}")
    } else if width == PartitionSpan::Hour.nanos() {
        format!("h{date}{:02}", start.hour())
    } else {
        format!("b{bucket}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded list is the directory, and every name reads as sqlx reads it.
    #[test]
    fn embedded_migrations_are_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("the migrations directory")
            .map(|entry| {
                let path = entry.expect("a directory entry").path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let stem = name
                    .strip_suffix(".sql")
                    .expect("only .sql files")
                    .to_owned();
                let sql = std::fs::read_to_string(&path).expect("a readable migration");
                assert!(
                    !sql.starts_with("-- no-transaction"),
                    "{name}: the embedded list runs every migration in a transaction"
                );
                (stem, sql)
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<(String, String)> = MIGRATIONS
            .iter()
            .map(|&(name, sql)| (name.to_owned(), sql.to_owned()))
            .collect();
        assert_eq!(embedded, on_disk);
        let read: Vec<(i64, String)> = migrator()
            .expect("every name reads")
            .iter()
            .map(|migration| (migration.version, migration.description.to_string()))
            .collect();
        assert_eq!(read[0], (1, "initial schema".to_owned()));
        let versions: Vec<i64> = read.iter().map(|(version, _)| *version).collect();
        assert_eq!(versions, [1, 2, 3, 4]);
    }

    #[test]
    fn buckets_and_names() {
        let hour = PartitionSpan::Hour.nanos();
        let day = PartitionSpan::Day.nanos();
        // 2026-05-21T13:45:00Z
        let nanos = 1_779_371_100 * 1_000_000_000;
        assert_eq!(bucket_of(nanos, hour) % hour, 0);
        assert!(bucket_of(nanos, hour) <= nanos && nanos < bucket_of(nanos, hour) + hour);
        assert_eq!(partition_suffix(bucket_of(nanos, day), day), "d20260521");
        assert_eq!(
            partition_suffix(bucket_of(nanos, hour), hour),
            "h2026052113"
        );
        assert_eq!(partition_suffix(0, day), "d19700101");
    }

    #[test]
    fn far_future_times_are_clamped() {
        assert_eq!(to_db_nanos(u64::MAX), MAX_START_NS);
        assert_eq!(to_db_nanos(5), 5);
        assert_eq!(from_db_nanos(-1), UnixNanos(0));
    }
}
