//! [`Tables`] over a cluster, with the scylla driver: every statement of `statements.rs`
//! prepared once at start-up with the configured consistency, request timeout and
//! idempotence (every statement is: rows are keyed by content, so the driver may retry it).
//!
//! A write sends its rows concurrently (no batches across partitions: those cost the
//! coordinator more than they save) and returns only when every row is acknowledged; any
//! failure fails the whole write, which is safe to repeat.

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use remote_storage_core::{StoreError, StoreResult};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::pager::{NextPageError, NextRowError};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{ExecutionError, PagerExecutionError, RequestAttemptError};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;

use crate::config::{CassandraConfig, Consistency};
use crate::rows::{Id, IndexEntry, IndexKey, Partition, SpanRow, WriteRows};
use crate::schema::{self, VersionCheck};
use crate::statements::{self, for_keyspace};
use crate::tables::{ActiveBucket, IndexPage, PageToken, Tables};

/// Rows of one write in flight at once.
const WRITE_CONCURRENCY: usize = 128;
/// Index rows per page of a search.
const INDEX_PAGE_ROWS: i32 = 1_000;
/// The component name under which `schema_version` records the version.
const SCHEMA_COMPONENT: &str = "spans";

/// Every prepared statement.
struct Prepared {
    insert_span: PreparedStatement,
    insert_resource: PreparedStatement,
    insert_span_index: PreparedStatement,
    insert_service_index: PreparedStatement,
    insert_tag_index: PreparedStatement,
    insert_bucket: PreparedStatement,
    insert_rollup: PreparedStatement,
    insert_service: PreparedStatement,
    insert_operation: PreparedStatement,
    select_trace: PreparedStatement,
    select_trace_extents: PreparedStatement,
    select_span: PreparedStatement,
    select_resource: PreparedStatement,
    select_span_index: PreparedStatement,
    select_service_index: PreparedStatement,
    select_tag_index: PreparedStatement,
    select_buckets: PreparedStatement,
    select_rollup: PreparedStatement,
    select_services: PreparedStatement,
    select_operations: PreparedStatement,
    select_operations_of_kind: PreparedStatement,
}

/// The tables of one keyspace on a cluster.
pub struct CqlTables {
    session: Session,
    keyspace: String,
    statements: Prepared,
    /// The readiness check, bounded like every request (the driver's default is 30 s, longer
    /// than any probe waits).
    ping: Statement,
}

/// A driver error as the store reports it: what the cluster cannot do now (unreachable,
/// overloaded, not enough replicas, timed out) is `UNAVAILABLE`, which clients retry;
/// anything else is `INTERNAL`, with the cause.
pub(crate) fn driver_error(what: &str, error: ExecutionError) -> StoreError {
    let retryable = match &error {
        ExecutionError::EmptyPlan
        | ExecutionError::ConnectionPoolError(_)
        | ExecutionError::RequestTimeout(_)
        | ExecutionError::SchemaAgreementError(_) => true,
        ExecutionError::LastAttemptError(attempt) => retryable_attempt(attempt),
        _ => false,
    };
    let message = format!("cassandra: {what}");
    if retryable {
        StoreError::unavailable(message, error)
    } else {
        StoreError::internal(message, error)
    }
}

fn retryable_attempt(attempt: &RequestAttemptError) -> bool {
    use scylla::errors::DbError;
    match attempt {
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::ReadFailure { .. }
                | DbError::WriteFailure { .. }
                | DbError::RateLimitReached { .. }
        ),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => true,
        _ => false,
    }
}

fn pager_error(what: &str, error: PagerExecutionError) -> StoreError {
    match error {
        PagerExecutionError::NextPageError(error) => page_error(what, error),
        PagerExecutionError::PrepareError(_) => {
            StoreError::unavailable(format!("cassandra: {what}"), error)
        }
        other => StoreError::internal(format!("cassandra: {what}"), other),
    }
}

/// A page that could not be fetched: the request failed (the cluster's trouble, retryable),
/// or its answer did not fit (ours).
fn page_error(what: &str, error: NextPageError) -> StoreError {
    match error {
        NextPageError::RequestFailure(_) => {
            StoreError::unavailable(format!("cassandra: {what}"), error)
        }
        other => StoreError::internal(format!("cassandra: {what}"), other),
    }
}

fn row_error(what: &str, error: NextRowError) -> StoreError {
    match error {
        NextRowError::NextPageError(error) => page_error(what, error),
        other => answer_error(what, other),
    }
}

fn answer_error(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::internal(format!("cassandra: {what}: unexpected answer"), error)
}

fn driver_consistency(consistency: Consistency) -> scylla::statement::Consistency {
    use scylla::statement::Consistency as Driver;
    match consistency {
        Consistency::One => Driver::One,
        Consistency::LocalOne => Driver::LocalOne,
        Consistency::LocalQuorum => Driver::LocalQuorum,
        Consistency::Quorum => Driver::Quorum,
        Consistency::EachQuorum => Driver::EachQuorum,
        Consistency::All => Driver::All,
    }
}

impl CqlTables {
    /// Connects (within the connect timeout, naming the servers when none answers), applies
    /// or checks the schema, and prepares every statement.
    pub async fn connect(config: &CassandraConfig) -> StoreResult<Self> {
        config.validate()?;
        let servers = config.servers.join(",");
        let mut builder = SessionBuilder::new()
            .known_nodes(&config.servers)
            .connection_timeout(config.connect_timeout);
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            builder = builder.user(username.clone(), password.0.clone());
        }
        if let Some(tls) = &config.tls {
            builder = builder.tls_context(Some(crate::tls::context(tls)?));
        }
        if let Some(dc) = &config.local_dc {
            // Requests go to the local data centre only, token-aware.
            let policy = DefaultPolicy::builder()
                .prefer_datacenter(dc.clone())
                .permit_dc_failover(false)
                .token_aware(true)
                .build();
            let profile = ExecutionProfile::builder()
                .load_balancing_policy(policy)
                .build();
            builder = builder.default_execution_profile_handle(profile.into_handle());
        }
        // The driver retries unreachable nodes on its own; bound the first connection so a
        // wrong address fails start-up in seconds instead of hanging.
        let session = tokio::time::timeout(config.connect_timeout * 2, builder.build())
            .await
            .map_err(|_| {
                StoreError::unavailable(
                    format!(
                        "cassandra: no answer from {servers} within {:?}",
                        config.connect_timeout * 2
                    ),
                    "connect timeout",
                )
            })?
            .map_err(|error| {
                StoreError::unavailable(format!("cassandra: cannot connect to {servers}"), error)
            })?;
        let tables = Self::prepare_all(session, config).await?;
        Ok(tables)
    }

    async fn prepare_all(session: Session, config: &CassandraConfig) -> StoreResult<Self> {
        let keyspace = config.keyspace.clone();
        apply_schema(&session, config).await?;
        let consistency = driver_consistency(config.consistency);
        let prepare = |template: &'static str| {
            let session = &session;
            let keyspace = &keyspace;
            async move {
                let mut statement = session
                    .prepare(for_keyspace(template, keyspace))
                    .await
                    .map_err(|error| {
                        StoreError::unavailable(
                            format!("cassandra: preparing {}", first_words(template)),
                            error,
                        )
                    })?;
                statement.set_consistency(consistency);
                statement.set_request_timeout(Some(config.request_timeout));
                statement.set_is_idempotent(true);
                Ok::<_, StoreError>(statement)
            }
        };
        let mut select_span_index = prepare(statements::SELECT_SPAN_INDEX).await?;
        let mut select_service_index = prepare(statements::SELECT_SERVICE_INDEX).await?;
        let mut select_tag_index = prepare(statements::SELECT_TAG_INDEX).await?;
        for statement in [
            &mut select_span_index,
            &mut select_service_index,
            &mut select_tag_index,
        ] {
            statement.set_page_size(INDEX_PAGE_ROWS);
        }
        let statements = Prepared {
            insert_span: prepare(statements::INSERT_SPAN).await?,
            insert_resource: prepare(statements::INSERT_RESOURCE).await?,
            insert_span_index: prepare(statements::INSERT_SPAN_INDEX).await?,
            insert_service_index: prepare(statements::INSERT_SERVICE_INDEX).await?,
            insert_tag_index: prepare(statements::INSERT_TAG_INDEX).await?,
            insert_bucket: prepare(statements::INSERT_BUCKET).await?,
            insert_rollup: prepare(statements::INSERT_ROLLUP).await?,
            insert_service: prepare(statements::INSERT_SERVICE).await?,
            insert_operation: prepare(statements::INSERT_OPERATION).await?,
            select_trace: prepare(statements::SELECT_TRACE).await?,
            select_trace_extents: prepare(statements::SELECT_TRACE_EXTENTS).await?,
            select_span: prepare(statements::SELECT_SPAN).await?,
            select_resource: prepare(statements::SELECT_RESOURCE).await?,
            select_span_index,
            select_service_index,
            select_tag_index,
            select_buckets: prepare(statements::SELECT_BUCKETS).await?,
            select_rollup: prepare(statements::SELECT_ROLLUP).await?,
            select_services: prepare(statements::SELECT_SERVICES).await?,
            select_operations: prepare(statements::SELECT_OPERATIONS).await?,
            select_operations_of_kind: prepare(statements::SELECT_OPERATIONS_OF_KIND).await?,
        };
        let mut ping = Statement::new("SELECT release_version FROM system.local");
        ping.set_request_timeout(Some(config.request_timeout));
        Ok(Self {
            session,
            keyspace,
            statements,
            ping,
        })
    }

    async fn execute(
        &self,
        what: &str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<()> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map(drop)
            .map_err(|error| driver_error(what, error))
    }

    /// Every row of a (possibly large) partition read, page by page.
    async fn rows<R>(
        &self,
        what: &str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> StoreResult<Vec<R>>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>
            + Send
            + 'static,
    {
        self.session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(|error| pager_error(what, error))?
            .rows_stream::<R>()
            .map_err(|error| answer_error(what, error))?
            .map_err(|error| row_error(what, error))
            .try_collect()
            .await
    }
}

/// The first words of a statement, to name it in errors.
fn first_words(statement: &str) -> String {
    statement
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates the keyspace and applies the missing schema versions (`--cassandra.create-schema`),
/// or checks that the schema is there and not newer than this binary.
async fn apply_schema(session: &Session, config: &CassandraConfig) -> StoreResult<()> {
    let keyspace = &config.keyspace;
    let run = |statement: String| async move {
        session
            .query_unpaged(statement.clone(), ())
            .await
            .map(drop)
            .map_err(|error| driver_error(&format!("applying {}", first_words(&statement)), error))
    };
    let migrations = schema::migrations(keyspace, config.retention);
    if config.create_schema {
        run(schema::create_keyspace(keyspace, &config.replication)).await?;
        // The version table is the first statement of the first version.
        if let Some(statement) = migrations.first().and_then(|m| m.statements.first()) {
            run(statement.clone()).await?;
        }
    }
    let stored = stored_version(session, keyspace).await?;
    match schema::check_version(stored, keyspace, config.retention) {
        VersionCheck::TooNew { stored } => Err(StoreError::invalid_argument(
            schema::too_new_message(keyspace, stored),
        )),
        VersionCheck::Apply(missing) if missing.is_empty() => Ok(()),
        VersionCheck::Apply(missing) if !config.create_schema => {
            Err(StoreError::invalid_argument(format!(
                "--cassandra.create-schema is off and keyspace {keyspace} lacks schema version \
                 {}: apply the statements `jaeger-remote-storage --backend cassandra --print-schema` prints",
                missing.last().map_or(0, |m| m.version)
            )))
        }
        VersionCheck::Apply(missing) => {
            for migration in missing {
                for statement in migration.statements {
                    run(statement).await?;
                }
                session
                    .query_unpaged(
                        for_keyspace(statements::INSERT_SCHEMA_VERSION, keyspace),
                        (SCHEMA_COMPONENT, migration.version),
                    )
                    .await
                    .map_err(|error| driver_error("recording the schema version", error))?;
            }
            session.await_schema_agreement().await.map_err(|error| {
                StoreError::unavailable("cassandra: waiting for schema agreement", error)
            })?;
            Ok(())
        }
    }
}

/// The schema version recorded in the keyspace, `None` when there is none (or no table).
async fn stored_version(session: &Session, keyspace: &str) -> StoreResult<Option<i32>> {
    let answer = session
        .query_unpaged(
            for_keyspace(statements::SELECT_SCHEMA_VERSION, keyspace),
            (SCHEMA_COMPONENT,),
        )
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        // No keyspace or no table yet: no schema.
        Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            scylla::errors::DbError::Invalid,
            _,
        ))) => return Ok(None),
        Err(error) => return Err(driver_error("reading the schema version", error)),
    };
    let rows = answer
        .into_rows_result()
        .map_err(|error| answer_error("reading the schema version", error))?;
    let mut versions = rows
        .rows::<(i32,)>()
        .map_err(|error| answer_error("reading the schema version", error))?;
    match versions.next() {
        Some(row) => Ok(Some(
            row.map_err(|error| answer_error("reading the schema version", error))?
                .0,
        )),
        None => Ok(None),
    }
}

fn to_id(bytes: &[u8], what: &str) -> StoreResult<Id> {
    bytes.try_into().map_err(|_| {
        StoreError::internal(
            format!("cassandra: stored {what} is not 16 bytes"),
            format!("{} bytes", bytes.len()),
        )
    })
}

type SpanColumns = (Vec<u8>, i64, i32, i64, i64, Vec<u8>, Vec<u8>, Vec<u8>);

fn span_row(trace_id: &Id, columns: SpanColumns) -> StoreResult<SpanRow> {
    let (document_id, batch, position, start, finish, resource_id, scope, span) = columns;
    Ok(SpanRow {
        trace_id: *trace_id,
        document_id: to_id(&document_id, "document ID")?,
        batch,
        position,
        start,
        finish,
        resource_id: to_id(&resource_id, "resource ID")?,
        scope,
        span,
    })
}

#[async_trait]
impl Tables for CqlTables {
    async fn write(&self, tenant: &str, rows: &WriteRows, ttl_seconds: i32) -> StoreResult<()> {
        let s = &self.statements;
        let mut writes: Vec<futures::future::BoxFuture<'_, StoreResult<()>>> = Vec::new();
        // Resources first, and spans before their index rows: a search that finds an index
        // row can read its span unless the write is still in flight.
        for (id, bytes) in &rows.resources {
            writes.push(Box::pin(self.execute(
                "writing a resource",
                &s.insert_resource,
                (tenant, &id[..], bytes.as_slice(), ttl_seconds),
            )));
        }
        for row in &rows.spans {
            writes.push(Box::pin(self.execute(
                "writing a span",
                &s.insert_span,
                (
                    tenant,
                    &row.trace_id[..],
                    &row.document_id[..],
                    row.batch,
                    row.position,
                    row.start,
                    row.finish,
                    &row.resource_id[..],
                    row.scope.as_slice(),
                    row.span.as_slice(),
                    ttl_seconds,
                ),
            )));
        }
        run_all(writes).await?;
        let mut writes: Vec<futures::future::BoxFuture<'_, StoreResult<()>>> = Vec::new();
        for (partition, entry) in rows.index_rows() {
            writes.push(Box::pin(self.write_index(
                tenant,
                partition,
                entry,
                ttl_seconds,
            )));
        }
        for bucket in &rows.buckets {
            writes.push(Box::pin(self.execute(
                "recording a bucket",
                &s.insert_bucket,
                (tenant, *bucket, rows.written_at, ttl_seconds),
            )));
        }
        for service in &rows.services {
            writes.push(Box::pin(self.execute(
                "recording a service",
                &s.insert_service,
                (tenant, service.as_str(), ttl_seconds),
            )));
        }
        for (service, kind, operation) in &rows.operations {
            writes.push(Box::pin(self.execute(
                "recording an operation",
                &s.insert_operation,
                (
                    tenant,
                    service.as_str(),
                    kind.as_str(),
                    operation.as_str(),
                    ttl_seconds,
                ),
            )));
        }
        run_all(writes).await
    }

    async fn trace(&self, tenant: &str, trace_id: &Id) -> StoreResult<Vec<SpanRow>> {
        let rows: Vec<SpanColumns> = self
            .rows(
                "reading a trace",
                &self.statements.select_trace,
                (tenant, &trace_id[..]),
            )
            .await?;
        rows.into_iter()
            .map(|columns| span_row(trace_id, columns))
            .collect()
    }

    async fn extents(&self, tenant: &str, trace_id: &Id) -> StoreResult<Option<(i64, i64)>> {
        let rows: Vec<(i64, i64)> = self
            .rows(
                "reading a trace's extents",
                &self.statements.select_trace_extents,
                (tenant, &trace_id[..]),
            )
            .await?;
        let start = rows.iter().map(|(start, _)| *start).min();
        let finish = rows.iter().map(|(_, finish)| *finish).max();
        Ok(start.zip(finish))
    }

    async fn span(
        &self,
        tenant: &str,
        trace_id: &Id,
        document_id: &Id,
    ) -> StoreResult<Option<SpanRow>> {
        let rows: Vec<SpanColumns> = self
            .rows(
                "reading a span",
                &self.statements.select_span,
                (tenant, &trace_id[..], &document_id[..]),
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|columns| span_row(trace_id, columns))
            .transpose()
    }

    async fn resource(&self, tenant: &str, resource_id: &Id) -> StoreResult<Option<Vec<u8>>> {
        let rows: Vec<(Vec<u8>,)> = self
            .rows(
                "reading a resource",
                &self.statements.select_resource,
                (tenant, &resource_id[..]),
            )
            .await?;
        Ok(rows.into_iter().next().map(|(bytes,)| bytes))
    }

    async fn index_page(
        &self,
        tenant: &str,
        partition: &Partition,
        window: (i64, i64),
        page: Option<PageToken>,
    ) -> StoreResult<IndexPage> {
        let s = &self.statements;
        let state = page.map_or_else(PagingState::start, |token| {
            PagingState::new_from_raw_bytes(token.0)
        });
        let (bucket, shard) = (partition.bucket, partition.shard);
        let what = "reading an index";
        let (statement, key) = match &partition.key {
            IndexKey::All => (&s.select_span_index, None),
            IndexKey::Service(service) => (&s.select_service_index, Some(service.as_str())),
            IndexKey::Tag(term) => (&s.select_tag_index, Some(term.as_str())),
        };
        let answer = match key {
            None => {
                self.session
                    .execute_single_page(
                        statement,
                        (tenant, bucket, shard, window.0, window.1),
                        state,
                    )
                    .await
            }
            Some(key) => {
                self.session
                    .execute_single_page(
                        statement,
                        (tenant, bucket, shard, key, window.0, window.1),
                        state,
                    )
                    .await
            }
        };
        let (result, paging) = answer.map_err(|error| driver_error(what, error))?;
        let rows = result
            .into_rows_result()
            .map_err(|error| answer_error(what, error))?;
        type Columns = (i64, Vec<u8>, Vec<u8>, String, String, i8, i8, i64);
        let mut entries = Vec::new();
        for row in rows
            .rows::<Columns>()
            .map_err(|error| answer_error(what, error))?
        {
            let (start, document_id, trace_id, service, operation, kind, status, duration) =
                row.map_err(|error| answer_error(what, error))?;
            entries.push(IndexEntry {
                start,
                document_id: to_id(&document_id, "document ID")?,
                trace_id: to_id(&trace_id, "trace ID")?,
                service,
                operation,
                kind,
                status,
                duration,
            });
        }
        let next = match paging {
            PagingStateResponse::HasMorePages { state } => state
                .as_bytes_slice()
                .map(|bytes| PageToken(bytes.to_vec())),
            PagingStateResponse::NoMorePages => None,
        };
        Ok(IndexPage {
            rows: entries,
            next,
        })
    }

    async fn buckets(&self, tenant: &str, min: i64, max: i64) -> StoreResult<Vec<ActiveBucket>> {
        if min > max {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, Option<i64>)> = self
            .rows(
                "reading the active buckets",
                &self.statements.select_buckets,
                (tenant, min, max),
            )
            .await?;
        // Clustering order is bucket descending: newest first already.
        Ok(rows
            .into_iter()
            .map(|(bucket, last_write)| ActiveBucket {
                bucket,
                last_write: last_write.unwrap_or(i64::MAX),
            })
            .collect())
    }

    async fn rollup(&self, tenant: &str, bucket: i64) -> StoreResult<Option<(i64, Vec<u8>)>> {
        let rows: Vec<(i64, Vec<u8>)> = self
            .rows(
                "reading a dependency rollup",
                &self.statements.select_rollup,
                (tenant, bucket),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn put_rollup(
        &self,
        tenant: &str,
        bucket: i64,
        computed_at: i64,
        links: &[u8],
        ttl_seconds: i32,
    ) -> StoreResult<()> {
        self.execute(
            "storing a dependency rollup",
            &self.statements.insert_rollup,
            (tenant, bucket, computed_at, links, ttl_seconds),
        )
        .await
    }

    async fn services(&self, tenant: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = self
            .rows(
                "listing services",
                &self.statements.select_services,
                (tenant,),
            )
            .await?;
        Ok(rows.into_iter().map(|(service,)| service).collect())
    }

    async fn operations(
        &self,
        tenant: &str,
        service: &str,
        kind: Option<&str>,
    ) -> StoreResult<Vec<(String, String)>> {
        let what = "listing operations";
        match kind {
            Some(kind) => {
                self.rows(
                    what,
                    &self.statements.select_operations_of_kind,
                    (tenant, service, kind),
                )
                .await
            }
            None => {
                self.rows(what, &self.statements.select_operations, (tenant, service))
                    .await
            }
        }
    }

    async fn truncate(&self) -> StoreResult<()> {
        for table in schema::TABLES {
            if *table == "schema_version" {
                continue;
            }
            let statement = format!("TRUNCATE {}.{table}", self.keyspace);
            self.session
                .query_unpaged(statement, ())
                .await
                .map_err(|error| driver_error("truncating", error))?;
        }
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.session
            .query_unpaged(self.ping.clone(), ())
            .await
            .map(drop)
            .map_err(|error| driver_error("checking the cluster", error))
    }
}

impl CqlTables {
    async fn write_index(
        &self,
        tenant: &str,
        partition: &Partition,
        entry: &IndexEntry,
        ttl_seconds: i32,
    ) -> StoreResult<()> {
        let s = &self.statements;
        let what = "writing an index row";
        let (bucket, shard) = (partition.bucket, partition.shard);
        let (document_id, trace_id) = (&entry.document_id[..], &entry.trace_id[..]);
        let (service, operation) = (entry.service.as_str(), entry.operation.as_str());
        let statement = match &partition.key {
            IndexKey::All => &s.insert_span_index,
            IndexKey::Service(_) => &s.insert_service_index,
            IndexKey::Tag(term) => {
                let values = (
                    tenant,
                    bucket,
                    shard,
                    entry.start,
                    document_id,
                    trace_id,
                    service,
                    operation,
                    entry.kind,
                    entry.status,
                    entry.duration,
                    term.as_str(),
                    ttl_seconds,
                );
                return self.execute(what, &s.insert_tag_index, values).await;
            }
        };
        // `service_index` takes the span's service as its partition key.
        let values = (
            tenant,
            bucket,
            shard,
            entry.start,
            document_id,
            trace_id,
            service,
            operation,
            entry.kind,
            entry.status,
            entry.duration,
            ttl_seconds,
        );
        self.execute(what, statement, values).await
    }
}

/// Runs writes with bounded concurrency; the first failure is the result (the others still
/// in flight are dropped: the write is reported failed and is safe to repeat).
async fn run_all(writes: Vec<futures::future::BoxFuture<'_, StoreResult<()>>>) -> StoreResult<()> {
    futures::stream::iter(writes)
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect::<()>()
        .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use remote_storage_core::ErrorKind;
    use scylla::errors::{DbError, WriteType};
    use scylla::statement::Consistency as Driver;

    use super::*;

    fn attempt(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "from node".into()))
    }

    #[test]
    fn what_the_cluster_cannot_do_now_is_retryable_and_the_rest_is_internal() {
        let unavailable = [
            ExecutionError::RequestTimeout(Duration::from_secs(10)),
            ExecutionError::EmptyPlan,
            attempt(DbError::Unavailable {
                consistency: Driver::LocalQuorum,
                required: 2,
                alive: 1,
            }),
            attempt(DbError::WriteTimeout {
                consistency: Driver::LocalQuorum,
                received: 1,
                required: 2,
                write_type: WriteType::Simple,
            }),
            attempt(DbError::Overloaded),
            attempt(DbError::IsBootstrapping),
        ];
        for error in unavailable {
            let shown = error.to_string();
            assert_eq!(
                driver_error("writing a span", error).kind(),
                ErrorKind::Unavailable,
                "{shown}"
            );
        }
        for error in [
            attempt(DbError::SyntaxError),
            attempt(DbError::Invalid),
            attempt(DbError::Unauthorized),
        ] {
            let shown = error.to_string();
            assert_eq!(
                driver_error("writing a span", error).kind(),
                ErrorKind::Internal,
                "{shown}"
            );
        }
    }

    #[tokio::test]
    async fn a_write_fails_when_any_row_fails_even_after_others_succeeded() {
        let mut writes: Vec<futures::future::BoxFuture<'_, StoreResult<()>>> = Vec::new();
        for row in 0..10 {
            writes.push(Box::pin(async move {
                if row == 7 {
                    Err(StoreError::unavailable(
                        "cassandra: writing a span",
                        "timeout",
                    ))
                } else {
                    Ok(())
                }
            }));
        }
        let result = run_all(writes).await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unavailable);
    }
}
