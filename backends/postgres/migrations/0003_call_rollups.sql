-- Dependency links kept as spans arrive (issue 16): GetDependencies reads per-minute call
-- counts instead of decoding every trace of its window. See src/rollups.rs and
-- src/dependencies.rs.

-- Calls per minute of the callee's start, per (parent service, child service) and partition
-- bucket of the parent span. Writes add signed deltas (`calls = calls + EXCLUDED.calls`), in
-- the transaction that stores the spans; a read sums the rows of its whole minutes.
--   minute:        start of the minute of the child span's start (partition key, so a
--                  minute's calls are dropped with its spans).
--   parent_bucket: partition bucket of the parent span: dropping that bucket deletes the calls
--                  whose parent it held (the child may be in a later, kept bucket).
--   parent, child: service names as bytes (lossless, NUL included).
CREATE TABLE call_rollups (
    tenant        text COLLATE "C" NOT NULL,
    minute        bigint NOT NULL,
    parent        bytea  NOT NULL,
    child         bytea  NOT NULL,
    parent_bucket bigint NOT NULL,
    calls         bigint NOT NULL,
    PRIMARY KEY (tenant, minute, parent, child, parent_bucket)
) PARTITION BY RANGE (minute);

-- Every partition bucket that exists gets its rollup partition now (later ones are created
-- with the other tables).
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT bucket, width_ns FROM partitions LOOP
        -- Named as src/schema.rs names partitions, so retention finds them.
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF call_rollups FOR VALUES FROM (%s) TO (%s)',
            'call_rollups_' || CASE p.width_ns
                WHEN 86400000000000 THEN 'd' || to_char(
                    to_timestamp(p.bucket / 1000000000) AT TIME ZONE 'UTC', 'YYYYMMDD')
                WHEN 3600000000000 THEN 'h' || to_char(
                    to_timestamp(p.bucket / 1000000000) AT TIME ZONE 'UTC', 'YYYYMMDDHH24')
                ELSE 'b' || p.bucket
            END,
            p.bucket, p.bucket + p.width_ns);
    END LOOP;
END
$$;

-- One row per stored trace: the per-trace lock of writes (a write upserts the rows of its
-- traces first, so two writes of one trace run one after the other) and how a write tells a
-- trace it starts from one that continues (inserted or already there).
--   last_start: latest chunk `min_start` of the trace; the row is deleted once every bucket up
--               to it has expired (a row left behind only costs a slower first write).
CREATE TABLE trace_heads (
    tenant     text COLLATE "C" NOT NULL,
    trace_id   bytea  NOT NULL,
    last_start bigint NOT NULL,
    PRIMARY KEY (tenant, trace_id)
);
INSERT INTO trace_heads (tenant, trace_id, last_start)
SELECT tenant, trace_id, max(min_start) FROM chunks GROUP BY tenant, trace_id;

-- Minutes from which the rollups are complete: none of the spans stored before this migration
-- are in them, so earlier minutes are counted from the spans. A new schema has no spans: the
-- rollups hold everything.
INSERT INTO settings (key, value)
SELECT 'rollups_from',
       CASE WHEN EXISTS (SELECT 1 FROM chunks)
            THEN greatest(
                     (SELECT max(max_start) FROM chunks) + 1,
                     (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint)::text
            ELSE '-9223372036854775808'
       END
ON CONFLICT (key) DO NOTHING;
