-- One row per trace chunk instead of one per span (issue 6: ingest CPU and bytes per span were
-- dominated by per-span index entries). A chunk holds the spans of one trace and one service
-- that one write carried within one minute, with their resources and scopes, as one compressed
-- payload; searches prefilter rows on the columns below and confirm matches by decoding.
--
-- Pre-release: rows of the per-span schema are not migrated. This migration drops the old
-- tables (with all their partitions) and the partition list, so the store starts empty.

DROP TABLE IF EXISTS spans, resources, scopes, services, operations CASCADE;
DELETE FROM partitions;

-- One row per chunk.
--   chunk_hash:   xxh3 of the spans' content hashes and occurrences; a re-sent write maps
--                 onto the stored rows (ON CONFLICT DO NOTHING).
--   min_start:    partition key; max_start - min_start < 1 minute (rows are cut per minute).
--   bloom:        Bloom filter (3 probes, ~8 bits per key, power-of-two size) over 64-bit
--                 hashes of every attribute `key=value` (span, event, link, scope, resource),
--                 resource attribute, scope name/version, operation, kind and status of the
--                 spans: searches test it with get_bit while walking a time index. No GIN: with
--                 ~11 distinct attribute terms per span, GIN maintenance was most of the
--                 ingest CPU and a third of the bytes, whatever the rows' grouping.
--   batch_seq:    write order; the payload holds each span's position in its write.
--   payload:      zstd-compressed spans, resources and scopes (see src/rows.rs).
CREATE TABLE chunks (
    tenant       text COLLATE "C" NOT NULL,
    trace_id     bytea    NOT NULL,
    chunk_hash   bigint   NOT NULL,
    min_start    bigint   NOT NULL,
    max_start    bigint   NOT NULL,
    max_end      bigint   NOT NULL,
    min_duration bigint   NOT NULL,
    max_duration bigint   NOT NULL,
    service      text COLLATE "C" NOT NULL,
    batch_seq    bigint   NOT NULL,
    span_count   integer  NOT NULL,
    bloom        bytea    NOT NULL,
    payload      bytea    NOT NULL,
    PRIMARY KEY (tenant, trace_id, chunk_hash, min_start)
) PARTITION BY RANGE (min_start);
-- Already compressed: never try pglz on it (rows stay inline up to ~2 kB; larger ones, e.g.
-- 1,000-span chunks, are moved to TOAST as they are).
ALTER TABLE chunks ALTER COLUMN payload SET STORAGE EXTERNAL;

-- Searches by service, and without one (and dependency windows), newest first. The entries
-- carry every column a search tests, so the walk is an index-only scan that reads the heap
-- only for the payloads of candidates. (Ties on max_start are rare: the trace ID and chunk
-- hash that break them are sorted, not indexed.)
CREATE INDEX chunks_service_start ON chunks (tenant, service, max_start DESC)
    INCLUDE (min_start, trace_id, chunk_hash, min_duration, max_duration, bloom);
CREATE INDEX chunks_start ON chunks (tenant, max_start DESC)
    INCLUDE (min_start, trace_id, chunk_hash, min_duration, max_duration, bloom);

-- Services and operations seen per bucket, so GetServices/GetOperations answer from small
-- tables and forget names whose spans have expired.
CREATE TABLE services (
    tenant text COLLATE "C" NOT NULL,
    bucket bigint NOT NULL,
    name   text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, name, bucket)
) PARTITION BY RANGE (bucket);

CREATE TABLE operations (
    tenant  text COLLATE "C" NOT NULL,
    bucket  bigint NOT NULL,
    service text COLLATE "C" NOT NULL,
    name    text COLLATE "C" NOT NULL,
    kind    text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, service, name, kind, bucket)
) PARTITION BY RANGE (bucket);
