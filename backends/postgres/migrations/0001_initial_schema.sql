-- Initial schema of the PostgreSQL trace store. Names are unqualified on purpose: the store
-- runs migrations with `search_path` set to its configured schema, so this file works for any
-- schema name. Every table is range-partitioned on a nanosecond time column; partitions are
-- created by the store (ahead of time and on demand) and retention drops whole partitions.

-- Schema-wide settings, e.g. the partition span chosen when the schema was created.
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- One row per partition bucket: [bucket, bucket + width_ns) in Unix nanoseconds, shared by
-- every partitioned table below.
CREATE TABLE partitions (
    bucket     bigint PRIMARY KEY,
    width_ns   bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per stored span.
--   payload:       the prost-encoded OTLP Span, exactly as received (lossless).
--   content_hash:  xxh3-128 of resource hash, scope hash and payload; with occurrence (the
--                  index among identical spans of one batch) it makes re-sent batches
--                  idempotent while spans that merely share a span ID are all kept.
--   terms:         search terms `<key length>:<key>=<value text>` of the span's, its events'
--                  and its links' attributes (resource and scope terms live in their tables).
--   batch_seq, batch_ord: storage order (write call, position in the call).
CREATE TABLE spans (
    tenant         text     NOT NULL,
    start_ns       bigint   NOT NULL,
    trace_id       bytea    NOT NULL,
    span_id        bigint   NOT NULL,
    content_hash   bytea    NOT NULL,
    occurrence     integer  NOT NULL,
    parent_span_id bigint,
    end_ns         bigint   NOT NULL,
    service        text     NOT NULL,
    operation      text     NOT NULL,
    kind           smallint NOT NULL,
    status         smallint NOT NULL,
    resource_hash  bytea    NOT NULL,
    scope_hash     bytea    NOT NULL,
    batch_seq      bigint   NOT NULL,
    batch_ord      integer  NOT NULL,
    terms          text[]   NOT NULL,
    payload        bytea    NOT NULL,
    PRIMARY KEY (tenant, trace_id, span_id, content_hash, occurrence, start_ns)
) PARTITION BY RANGE (start_ns);

-- Searches by service, newest first.
CREATE INDEX spans_service_start ON spans (tenant, service, start_ns DESC, trace_id DESC);
-- Searches by service and operation, newest first: an operation holds a small share of a
-- service's spans, so filtering the service index row by row reads most of it.
CREATE INDEX spans_service_operation_start ON spans (tenant, service, operation, start_ns DESC, trace_id DESC);
-- Searches without a service, newest first, and dependency windows.
CREATE INDEX spans_start ON spans (tenant, start_ns DESC, trace_id DESC);
-- Attribute searches.
-- fastupdate off: with the default pending list, the insert that overflows it merges the whole
-- list synchronously, stalling that Export for tens of seconds under load (measured: 21-25 s).
CREATE INDEX spans_terms ON spans USING gin (terms) WITH (fastupdate = off);

CREATE SEQUENCE batch_seq;

-- Resources, deduplicated by content hash within each partition bucket.
CREATE TABLE resources (
    tenant     text   NOT NULL,
    bucket     bigint NOT NULL,
    hash       bytea  NOT NULL,
    service    text   NOT NULL,
    schema_url text   NOT NULL,
    terms      text[] NOT NULL,
    payload    bytea  NOT NULL,
    PRIMARY KEY (tenant, hash, bucket)
) PARTITION BY RANGE (bucket);
CREATE INDEX resources_terms ON resources USING gin (terms) WITH (fastupdate = off);

-- Instrumentation scopes, deduplicated by content hash within each partition bucket.
CREATE TABLE scopes (
    tenant     text   NOT NULL,
    bucket     bigint NOT NULL,
    hash       bytea  NOT NULL,
    name       text   NOT NULL,
    version    text   NOT NULL,
    schema_url text   NOT NULL,
    terms      text[] NOT NULL,
    payload    bytea  NOT NULL,
    PRIMARY KEY (tenant, hash, bucket)
) PARTITION BY RANGE (bucket);
CREATE INDEX scopes_terms ON scopes USING gin (terms) WITH (fastupdate = off);
CREATE INDEX scopes_name ON scopes (tenant, name, version);

-- Services and operations seen per bucket, so GetServices/GetOperations answer from small
-- tables and forget names whose spans have expired.
CREATE TABLE services (
    tenant text   NOT NULL,
    bucket bigint NOT NULL,
    name   text   NOT NULL,
    PRIMARY KEY (tenant, name, bucket)
) PARTITION BY RANGE (bucket);

CREATE TABLE operations (
    tenant  text   NOT NULL,
    bucket  bigint NOT NULL,
    service text   NOT NULL,
    name    text   NOT NULL,
    kind    text   NOT NULL,
    PRIMARY KEY (tenant, service, name, kind, bucket)
) PARTITION BY RANGE (bucket);
