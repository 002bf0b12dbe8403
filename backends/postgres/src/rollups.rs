//! Call rollups, the pure part: which calls a trace's spans make, keyed as `call_rollups` rows,
//! and which minutes of a window the rollups can answer.
//!
//! A call is [`DependencyCounter`]'s: a span whose parent ID names a span of the same trace,
//! the parent being the first stored span with that ID, counted in the minute of the child's
//! start. A write adds to the rollups what it changes in this count (see
//! `crate::dependencies`), so the rollups always hold the count over the stored spans.
//!
//! [`DependencyCounter`]: remote_storage_core::dependencies::DependencyCounter

use hashbrown::{HashMap, HashSet};
use std::ops::Range;

use remote_storage_core::{DependencyQuery, Span, StoreResult, TraceId};

use crate::rows::{Batch, TraceRows, decode_trace};
use crate::schema::{MAX_START_NS, bucket_of};
use crate::summaries::{SpanFacts, TraceSummary};

/// Width of a rollup row's time: one minute. A window's partial minutes at either edge are
/// counted from the spans, so answers are exact at any window.
pub(crate) const MINUTE_NS: i64 = 60_000_000_000;

/// One `call_rollups` key: calls from `parent` to `child` whose callee starts in `minute`, the
/// parent span lying in partition bucket `parent_bucket`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallKey {
    pub(crate) minute: i64,
    pub(crate) parent: Vec<u8>,
    pub(crate) child: Vec<u8>,
    pub(crate) parent_bucket: i64,
}

/// Signed changes to the rollups, by key.
#[derive(Debug, Default)]
pub(crate) struct CallDeltas {
    deltas: HashMap<CallKey, i64>,
}

impl CallDeltas {
    /// Adds `sign` for every call among `spans`, the stored spans of one trace in storage
    /// order (first span per ID is the parent, as `DependencyCounter` decides): the reference
    /// the incremental count of `crate::summaries` is tested against.
    #[cfg(test)]
    pub(crate) fn add_trace<'a>(
        &mut self,
        spans: impl Iterator<Item = &'a Span> + Clone,
        width: i64,
        sign: i64,
    ) {
        use crate::schema::to_db_nanos;
        let mut first: HashMap<remote_storage_core::SpanId, (&str, i64)> =
            HashMap::with_capacity(spans.size_hint().0);
        for span in spans.clone() {
            first
                .entry(span.span_id())
                .or_insert((span.service_name(), to_db_nanos(span.start().0)));
        }
        // Summed under borrowed names first: a trace's calls repeat a few keys.
        let mut calls: HashMap<(i64, &str, &str, i64), i64> = HashMap::new();
        for span in spans {
            let Some(&(parent, parent_start)) =
                span.parent_span_id().and_then(|parent| first.get(&parent))
            else {
                continue;
            };
            let minute = bucket_of(to_db_nanos(span.start().0), MINUTE_NS);
            let parent_bucket = bucket_of(parent_start, width);
            *calls
                .entry((minute, parent, span.service_name(), parent_bucket))
                .or_default() += sign;
        }
        for ((minute, parent, child, parent_bucket), delta) in calls {
            let key = CallKey {
                minute,
                parent: parent.as_bytes().to_vec(),
                child: child.as_bytes().to_vec(),
                parent_bucket,
            };
            *self.deltas.entry(key).or_default() += delta;
        }
    }

    /// Adds `delta` calls under `key`.
    pub(crate) fn add(&mut self, key: CallKey, delta: i64) {
        *self.deltas.entry(key).or_default() += delta;
    }

    /// Adds another set of changes.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (key, delta) in &other.deltas {
            match self.deltas.get_mut(key) {
                Some(sum) => *sum += delta,
                None => {
                    self.deltas.insert(key.clone(), *delta);
                }
            }
        }
    }

    /// The non-zero changes, sorted by key (concurrent writes then lock rows in one order).
    pub(crate) fn into_sorted(self) -> Vec<(CallKey, i64)> {
        let mut rows: Vec<(CallKey, i64)> = self
            .deltas
            .into_iter()
            .filter(|(_, delta)| *delta != 0)
            .collect();
        rows.sort_unstable();
        rows
    }
}

/// The traces of one write, sorted by ID: each with its latest chunk start (for
/// `trace_heads`), its chunk keys, its spans' facts in storage order, and the calls its spans
/// make among themselves with the summary they leave, which is what the write adds when it
/// starts the trace (nothing stored before).
#[derive(Debug, Default)]
pub(crate) struct WriteTraces {
    pub(crate) traces: Vec<WriteTrace>,
}

/// One trace of a write.
#[derive(Debug)]
pub(crate) struct WriteTrace {
    pub(crate) id: [u8; 16],
    pub(crate) last_start: i64,
    /// `(chunk_hash, min_start)` of the write's chunks of this trace.
    pub(crate) chunks: Vec<ChunkKey>,
    pub(crate) facts: Vec<SpanFacts>,
    /// Calls among the write's own spans.
    pub(crate) calls: CallDeltas,
    /// The trace's summary when the write starts it; taken by the cache after the commit.
    pub(crate) summary: Option<TraceSummary>,
}

impl WriteTraces {
    /// Groups the write's spans by trace, in write order (the order they are stored in).
    pub(crate) fn build(spans: &[Span], batch: &Batch, width: i64) -> Self {
        let mut by_trace: HashMap<[u8; 16], Vec<&Span>> = HashMap::new();
        for span in spans {
            by_trace
                .entry(*span.trace_id().as_bytes())
                .or_default()
                .push(span);
        }
        let mut chunks_of: HashMap<&[u8], (i64, Vec<ChunkKey>)> =
            HashMap::with_capacity(by_trace.len());
        let chunks = &batch.chunks;
        for ((trace_id, chunk_hash), min_start) in chunks
            .trace_id
            .iter()
            .zip(&chunks.chunk_hash)
            .zip(&chunks.min_start)
        {
            let (latest, keys) = chunks_of
                .entry(trace_id.as_slice())
                .or_insert((*min_start, Vec::new()));
            *latest = (*latest).max(*min_start);
            keys.push((*chunk_hash, *min_start));
        }
        let mut traces: Vec<WriteTrace> = by_trace
            .into_iter()
            .map(|(id, spans)| {
                let (last_start, chunks) = chunks_of.remove(id.as_slice()).unwrap_or_default();
                let facts = SpanFacts::of(spans);
                let mut calls = CallDeltas::default();
                let mut summary = TraceSummary::default();
                summary.add_spans(&facts, width, &mut calls);
                summary.add_chunks(chunks.iter().copied());
                WriteTrace {
                    id,
                    last_start,
                    chunks,
                    facts,
                    calls,
                    summary: Some(summary),
                }
            })
            .collect();
        traces.sort_unstable_by_key(|trace| trace.id);
        Self { traces }
    }
}

/// A chunk's key within its trace: `(chunk_hash, min_start)`.
pub(crate) type ChunkKey = (i64, i64);

/// One stored chunk row of a continuing trace: `(trace_id, chunk_hash, min_start, batch_seq,
/// payload)`.
pub(crate) type StoredChunk = (Vec<u8>, i64, i64, i64, Vec<u8>);

/// One of the write's own rows: `(trace_id, chunk_hash, min_start, payload)`.
pub(crate) type NewChunk = (Vec<u8>, i64, i64, Vec<u8>);

/// The write's rows of the given traces (copied: the rare continuing path decodes them on a
/// blocking thread).
pub(crate) fn rows_of(batch: &Batch, traces: &[Vec<u8>]) -> Vec<NewChunk> {
    let wanted: HashSet<&[u8]> = traces.iter().map(Vec::as_slice).collect();
    let chunks = &batch.chunks;
    chunks
        .trace_id
        .iter()
        .zip(&chunks.chunk_hash)
        .zip(&chunks.min_start)
        .zip(&chunks.payload)
        .filter(|(((trace_id, _), _), _)| wanted.contains(trace_id.as_slice()))
        .map(|(((trace_id, chunk_hash), min_start), payload)| {
            (trace_id.clone(), *chunk_hash, *min_start, payload.clone())
        })
        .collect()
}

/// The summaries of continuing traces without a usable cached one, rebuilt from their stored
/// rows (read while the write holds the traces' locks, so the write's `batch_seq`, taken
/// later under the same locks, follows all of theirs), and what the write's rows (`mine`)
/// add to them. One of the write's rows whose key is already stored is a re-sent row, which
/// the insert skips.
pub(crate) fn summaries_from_rows(
    stored: Vec<StoredChunk>,
    mine: Vec<NewChunk>,
    width: i64,
    deltas: &mut CallDeltas,
) -> StoreResult<HashMap<Vec<u8>, TraceSummary>> {
    let mut stored_rows: HashMap<Vec<u8>, Vec<KeyedRow>> = HashMap::new();
    for (trace_id, chunk_hash, min_start, seq, payload) in stored {
        let row = ((chunk_hash, min_start), seq, payload);
        stored_rows.entry(trace_id).or_default().push(row);
    }
    let mut my_rows: HashMap<Vec<u8>, Vec<KeyedRow>> = HashMap::new();
    for (trace_id, chunk_hash, min_start, payload) in mine {
        // `i64::MAX` stands for the write's `batch_seq`: after every stored one.
        let row = ((chunk_hash, min_start), i64::MAX, payload);
        my_rows.entry(trace_id).or_default().push(row);
    }
    // A continuing trace may have nothing stored left (its rows expired, its lock not yet).
    let mut summaries = HashMap::with_capacity(my_rows.len());
    for (trace_id, mine) in my_rows {
        let id = TraceId::from_bytes(&trace_id, "trace_id")?;
        let mut summary = TraceSummary::default();
        let stored = stored_rows.remove(&trace_id).unwrap_or_default();
        // The stored calls are already counted.
        add_rows(&mut summary, id, stored, width, &mut CallDeltas::default())?;
        let new = mine
            .into_iter()
            .filter(|(key, ..)| !summary.holds_any_chunk(std::iter::once(*key)))
            .collect();
        add_rows(&mut summary, id, new, width, deltas)?;
        summaries.insert(trace_id, summary);
    }
    Ok(summaries)
}

/// A chunk row with its key: `(key, batch_seq, payload)`.
type KeyedRow = (ChunkKey, i64, Vec<u8>);

/// Adds rows stored after every row already in `summary`, and the calls their spans add.
fn add_rows(
    summary: &mut TraceSummary,
    id: TraceId,
    rows: Vec<KeyedRow>,
    width: i64,
    deltas: &mut CallDeltas,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (keys, rows): (Vec<ChunkKey>, TraceRows) = rows
        .into_iter()
        .map(|(key, seq, payload)| (key, (seq, payload)))
        .unzip();
    summary.add_spans(&SpanFacts::of(&decode_trace(id, rows)?), width, deltas);
    summary.add_chunks(keys);
    Ok(())
}

/// A window split into what the rollups answer and what is counted from the spans.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WindowPlan {
    /// Whole minutes, as `[first minute start, end)` in stored nanoseconds.
    pub(crate) rollup_minutes: Option<Range<i64>>,
    /// Sub-windows counted from the spans (the edges; everything without rollup minutes).
    pub(crate) from_spans: Vec<DependencyQuery>,
}

/// Splits `window` (inclusive bounds): the minutes lying wholly inside it, at or after
/// `rollups_from` and before the far-future clamp, come from the rollups; the rest from spans.
pub(crate) fn plan_window(window: &DependencyQuery, rollups_from: i64) -> WindowPlan {
    let minute = MINUTE_NS.unsigned_abs();
    let floor_from = u64::try_from(rollups_from.max(0)).unwrap_or(0);
    // Stored starts at or beyond the clamp all share its minute: never answered by rollups.
    let clamp_minute = bucket_of(MAX_START_NS, MINUTE_NS).unsigned_abs() / minute;
    let first = window
        .start
        .0
        .div_ceil(minute)
        .max(floor_from.div_ceil(minute));
    // The minute holding `end` is whole only when `end` is its last nanosecond.
    let end = window.end.0;
    let after_last = (end / minute + u64::from(end % minute == minute - 1)).min(clamp_minute);
    if first >= after_last || window.start > window.end {
        return WindowPlan {
            rollup_minutes: None,
            from_spans: vec![*window],
        };
    }
    let whole_start = first * minute;
    let whole_end = after_last * minute;
    let mut from_spans = Vec::new();
    if window.start.0 < whole_start {
        from_spans.push(DependencyQuery {
            start: window.start,
            end: remote_storage_core::UnixNanos(whole_start - 1),
        });
    }
    if whole_end <= window.end.0 {
        from_spans.push(DependencyQuery {
            start: remote_storage_core::UnixNanos(whole_end),
            end: window.end,
        });
    }
    let to_db = |nanos: u64| i64::try_from(nanos).unwrap_or(i64::MAX);
    WindowPlan {
        rollup_minutes: Some(to_db(whole_start)..to_db(whole_end)),
        from_spans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remote_storage_core::UnixNanos;
    use remote_storage_core::testing::span;

    const M: u64 = 60_000_000_000;

    fn window(start: u64, end: u64) -> DependencyQuery {
        DependencyQuery {
            start: UnixNanos(start),
            end: UnixNanos(end),
        }
    }

    #[test]
    fn only_whole_minutes_after_rollups_from_come_from_rollups() {
        let plan = plan_window(&window(0, M - 1), i64::MIN);
        assert_eq!(plan.rollup_minutes, Some(0..60_000_000_000));
        assert!(plan.from_spans.is_empty());
        let plan = plan_window(&window(0, M - 2), i64::MIN);
        assert_eq!(plan.rollup_minutes, None);
        assert_eq!(plan.from_spans, [window(0, M - 2)]);
        let plan = plan_window(&window(5, 3 * M + 7), i64::MIN);
        assert_eq!(plan.rollup_minutes, Some(60_000_000_000..180_000_000_000));
        assert_eq!(
            plan.from_spans,
            [window(5, M - 1), window(3 * M, 3 * M + 7)]
        );
        // Rollups complete from 90 s on: the second minute onwards.
        let plan = plan_window(&window(0, 4 * M - 1), 90_000_000_000);
        assert_eq!(plan.rollup_minutes, Some(120_000_000_000..240_000_000_000));
        assert_eq!(plan.from_spans, [window(0, 2 * M - 1)]);
        let plan = plan_window(&window(0, u64::MAX), i64::MIN);
        assert!(
            plan.rollup_minutes
                .is_some_and(|minutes| minutes.start == 0)
        );
        assert_eq!(plan.from_spans.len(), 1);
    }

    #[test]
    fn calls_follow_the_first_span_of_each_id() {
        let spans = [
            span(1, 1, None, "a", "root", 10, 20, false),
            span(1, 2, Some(1), "b", "child", M + 11, M + 12, false),
            // Same ID as the root, stored later: not a parent.
            span(1, 1, None, "c", "copy", 10, 20, false),
            span(1, 3, Some(9), "b", "orphan", 11, 12, false),
            span(1, 4, Some(1), "a", "self", 12, 13, false),
        ];
        let mut deltas = CallDeltas::default();
        deltas.add_trace(spans.iter(), 86_400_000_000_000, 1);
        let rows = deltas.into_sorted();
        let key = |minute: u64, child: &str| CallKey {
            minute: i64::try_from(minute).unwrap(),
            parent: b"a".to_vec(),
            child: child.as_bytes().to_vec(),
            parent_bucket: 0,
        };
        assert_eq!(rows, [(key(0, "a"), 1), (key(M, "b"), 1)]);
    }
}
