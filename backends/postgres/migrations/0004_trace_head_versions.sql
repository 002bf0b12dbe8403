-- Counts the writes of each trace (issue 16): a server keeps a summary of each trace it wrote
-- (src/summaries.rs) tagged with this version, and uses it for the trace's next write only
-- when the version shows that no other process wrote the trace in between. Without it every
-- write continuing a trace read and decoded all of the trace's stored rows.
--   version: a new row starts at a random value; every write of the trace adds one.
ALTER TABLE trace_heads ADD COLUMN version bigint NOT NULL DEFAULT 0;
