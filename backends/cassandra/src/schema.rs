//! The schema: versioned, idempotent DDL applied at start-up (or printed for operators who
//! apply DDL themselves). Every statement is `CREATE … IF NOT EXISTS`, so applying a version
//! twice is harmless; the applied version is recorded in `schema_version`, and a store finding
//! a newer version than it knows refuses to start.
//!
//! Retention is by TTL only (every insert carries `USING TTL`): nothing is ever deleted, so no
//! tombstones. Tables compact by time window (TWCS) with windows sized to the retention, so
//! whole expired SSTables are dropped, and `gc_grace_seconds` is short because there are no
//! deletes to propagate.
//!
//! Partition keys (the tenant is in every one):
//!
//! | table | partition key | rows per partition |
//! |---|---|---|
//! | `spans` | tenant, trace ID | the trace's spans |
//! | `resources` | tenant, resource ID | one |
//! | `span_index` | tenant, bucket, shard | ≤ rate × bucket / shards |
//! | `service_index` | tenant, service, bucket, shard | ≤ that service's rate × bucket / shards |
//! | `tag_index` | tenant, term, bucket, shard | ≤ that term's rate × bucket / shards |
//! | `active_buckets` | tenant | the buckets holding spans, with their last write: retention ÷ bucket |
//! | `dependency_rollups` | tenant, bucket | one: the bucket's links, once settled |
//! | `services` | tenant | the services |
//! | `operations` | tenant, service | the service's operations × kinds |

use std::time::Duration;

/// Every table of the schema.
pub const TABLES: &[&str] = &[
    "schema_version",
    "spans",
    "resources",
    "span_index",
    "service_index",
    "tag_index",
    "active_buckets",
    "dependency_rollups",
    "services",
    "operations",
];

/// The schema version this binary writes and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// `gc_grace_seconds` of every table: there are no deletes, so no tombstones to wait for.
const GC_GRACE_SECONDS: u32 = 3 * 3_600;

/// Compaction windows per retention period.
const WINDOWS_PER_RETENTION: u64 = 30;

/// One schema version: the statements that bring the previous version to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The version reached.
    pub version: i32,
    /// CQL statements, in order.
    pub statements: Vec<String>,
}

/// The keyspace statement (with the replication of a keyspace created here).
pub fn create_keyspace(keyspace: &str, replication: &str) -> String {
    format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}")
}

/// The table options: TWCS with windows of about a thirtieth of the retention (whole hours,
/// at least one), and the short grace period.
fn table_options(retention: Duration) -> String {
    let hours = retention.as_secs().div_ceil(3_600);
    let window = hours.div_ceil(WINDOWS_PER_RETENTION).max(1);
    format!(
        "compaction = {{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': \
         'HOURS', 'compaction_window_size': {window}}} AND gc_grace_seconds = {GC_GRACE_SECONDS}"
    )
}

/// Every migration, oldest first, for `keyspace` and `retention` (which sizes the compaction
/// windows of tables created now; existing tables keep theirs).
pub fn migrations(keyspace: &str, retention: Duration) -> Vec<Migration> {
    let options = table_options(retention);
    let ks = keyspace;
    vec![Migration {
        version: 1,
        statements: vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.schema_version (component text, version int, \
                 applied_at timestamp, PRIMARY KEY ((component)))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.spans (tenant text, trace_id blob, \
                 document_id blob, write_batch bigint, write_position int, start_ns bigint, end_ns bigint, \
                 resource_id blob, scope blob, span blob, PRIMARY KEY ((tenant, trace_id), document_id)) WITH \
                 {options}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.resources (tenant text, resource_id blob, \
                 resource blob, PRIMARY KEY ((tenant, resource_id))) WITH {options}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.span_index (tenant text, bucket bigint, \
                 shard smallint, start_ns bigint, document_id blob, trace_id blob, service text, \
                 operation text, kind tinyint, status tinyint, duration_ns bigint, PRIMARY KEY \
                 ((tenant, bucket, shard), start_ns, document_id)) WITH CLUSTERING ORDER BY \
                 (start_ns DESC, document_id ASC) AND {options}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.service_index (tenant text, service text, \
                 bucket bigint, shard smallint, start_ns bigint, document_id blob, trace_id blob, \
                 operation text, kind tinyint, status tinyint, duration_ns bigint, PRIMARY KEY \
                 ((tenant, service, bucket, shard), start_ns, document_id)) WITH CLUSTERING ORDER \
                 BY (start_ns DESC, document_id ASC) AND {options}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.tag_index (tenant text, term text, \
                 bucket bigint, shard smallint, start_ns bigint, document_id blob, trace_id blob, \
                 service text, operation text, kind tinyint, status tinyint, duration_ns bigint, \
                 PRIMARY KEY ((tenant, term, bucket, shard), start_ns, document_id)) WITH \
                 CLUSTERING ORDER BY (start_ns DESC, document_id ASC) AND {options}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.active_buckets (tenant text, bucket bigint, \
                 last_write bigint, PRIMARY KEY ((tenant), bucket)) WITH CLUSTERING ORDER BY (bucket DESC) AND \
                 gc_grace_seconds = {GC_GRACE_SECONDS}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.dependency_rollups (tenant text, bucket bigint, \
                 computed_at bigint, links blob, PRIMARY KEY ((tenant, bucket))) WITH {options}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.services (tenant text, service text, PRIMARY \
                 KEY ((tenant), service)) WITH gc_grace_seconds = {GC_GRACE_SECONDS}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.operations (tenant text, service text, kind \
                 text, operation text, PRIMARY KEY ((tenant, service), kind, operation)) WITH \
                 gc_grace_seconds = {GC_GRACE_SECONDS}"
            ),
        ],
    }]
}

/// What a stored schema version means for this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionCheck {
    /// Apply these migrations (none when up to date).
    Apply(Vec<Migration>),
    /// The stored schema is newer than this binary knows: refuse to start.
    TooNew {
        /// The stored version.
        stored: i32,
    },
}

/// Decides what to do with a keyspace whose stored schema version is `stored` (`None`: no
/// schema yet).
pub fn check_version(stored: Option<i32>, keyspace: &str, retention: Duration) -> VersionCheck {
    let stored = stored.unwrap_or(0);
    if stored > SCHEMA_VERSION {
        return VersionCheck::TooNew { stored };
    }
    VersionCheck::Apply(
        migrations(keyspace, retention)
            .into_iter()
            .filter(|migration| migration.version > stored)
            .collect(),
    )
}

/// The message a store refuses a too-new schema with.
pub fn too_new_message(keyspace: &str, stored: i32) -> String {
    format!(
        "keyspace {keyspace} holds schema version {stored}, newer than the {SCHEMA_VERSION} this \
         binary knows: upgrade jaeger-remote-storage (or point it at another keyspace)"
    )
}

/// Every statement of the schema, for `--cassandra.print-schema` and operators applying DDL
/// themselves: the keyspace, then each migration's statements.
pub fn full_script(keyspace: &str, replication: &str, retention: Duration) -> String {
    let mut script = format!("{};\n", create_keyspace(keyspace, replication));
    for migration in migrations(keyspace, retention) {
        script.push_str(&format!("-- schema version {}\n", migration.version));
        for statement in migration.statements {
            script.push_str(&statement);
            script.push_str(";\n");
        }
        script.push_str(&format!(
            "INSERT INTO {keyspace}.schema_version (component, version, applied_at) VALUES \
             ('spans', {}, toTimestamp(now()));\n",
            migration.version
        ));
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: Duration = Duration::from_secs(7 * 86_400);

    #[test]
    fn every_statement_is_idempotent_and_every_table_compacts_by_time_window() {
        for migration in migrations("ks", WEEK) {
            for statement in &migration.statements {
                assert!(
                    statement.starts_with("CREATE TABLE IF NOT EXISTS ks."),
                    "{statement}"
                );
                assert!(statement.contains("tenant text") || statement.contains("schema_version"));
            }
        }
        let options = table_options(WEEK);
        assert!(options.contains("'compaction_window_size': 6"), "{options}");
        assert!(table_options(Duration::from_secs(3_600)).contains("'compaction_window_size': 1"));
    }

    #[test]
    fn versions_decide_what_is_applied_and_a_newer_schema_is_refused() {
        match check_version(None, "ks", WEEK) {
            VersionCheck::Apply(migrations) => assert_eq!(migrations.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_version(Some(SCHEMA_VERSION), "ks", WEEK),
            VersionCheck::Apply(Vec::new())
        );
        assert_eq!(
            check_version(Some(SCHEMA_VERSION + 1), "ks", WEEK),
            VersionCheck::TooNew {
                stored: SCHEMA_VERSION + 1
            }
        );
        assert!(too_new_message("ks", 9).contains("version 9"));
    }

    #[test]
    fn the_printed_script_holds_every_statement_and_records_the_version() {
        let script = full_script(
            "ks",
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
            WEEK,
        );
        assert!(script.starts_with("CREATE KEYSPACE IF NOT EXISTS ks WITH replication"));
        for migration in migrations("ks", WEEK) {
            for statement in migration.statements {
                assert!(script.contains(&statement));
            }
        }
        assert!(script.contains("INSERT INTO ks.schema_version"));
    }
}
