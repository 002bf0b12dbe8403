//! The tracegen-like workload, generated deterministically from a seed and pre-encoded.
//!
//! Every trace is one `SERVER` root span plus nine `CLIENT` children of that root, all from one
//! of [`SERVICES`] services. Every span carries [`ATTRS_PER_SPAN`] string attributes whose keys
//! come from [`ATTR_KEYS`] names and whose values come from [`ATTR_VALUES`] values. A batch of
//! spans is grouped into one `ResourceSpans` per service and encoded once into a [`Template`].
//! In the timed loop a template is copied and its trace IDs are overwritten in place
//! ([`Template::render`]), so nothing is re-encoded and every sent trace has its own ID.
//!
//! [`Workload`] is generic over what a request is pre-encoded as ([`RequestTemplate`]): an OTLP
//! Export request by default, or another encoding of the same generated request built with
//! [`Workload::build_with`] and [`Template::new`] (loadgen's v1 mode encodes one `WriteSpan`
//! message per span).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use bytes::{Bytes, BytesMut};
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use prost::Message as _;

/// Spans in one trace: one root and its children.
pub const SPANS_PER_TRACE: usize = 10;
/// Distinct services (each with its own resource).
pub const SERVICES: usize = 10;
/// Distinct attribute keys.
pub const ATTR_KEYS: usize = 97;
/// Distinct attribute values.
pub const ATTR_VALUES: usize = 1000;
/// String attributes on every span.
pub const ATTRS_PER_SPAN: usize = 11;
/// Distinct root operation names per service.
const ROOT_OPERATIONS: usize = 5;

/// The name of service `i`.
pub fn service_name(i: usize) -> String {
    format!("loadgen-svc-{i}")
}

fn root_operation(i: usize) -> String {
    format!("GET /api/v1/op-{i}")
}

fn child_operation(i: usize) -> String {
    format!("client-call-{i}")
}

fn attr_key(i: usize) -> String {
    format!("attr.key.{i:02}")
}

fn attr_value(i: usize) -> String {
    format!("value-{i:03}")
}

/// SplitMix64: tiny, fast and stable across versions, so a seed always means the same workload.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`); the modulo bias is negligible for the small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index in `0..n` (`n > 0`).
    #[allow(clippy::cast_possible_truncation)] // the result is < n, which is a usize
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Seed of the content (services, names, attributes, times).
    pub seed: u64,
    /// Spans per Export request (a multiple of [`SPANS_PER_TRACE`]).
    pub batch_size: usize,
    /// Distinct full-size requests to pre-encode.
    pub ring: usize,
    /// Total spans to send; `None` = unbounded (duration mode).
    pub total_spans: Option<u64>,
    /// Start times are spread over `[now - time_spread, now]`.
    pub time_spread: Duration,
    /// "Now" in Unix nanoseconds (passed in so tests are deterministic).
    pub now_unix_nanos: u64,
}

/// Pre-encoded request bytes (an `ExportTraceServiceRequest` unless built with
/// [`Template::new`]) with the positions of their trace IDs.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Bytes,
    /// (byte offset of a 16-byte trace ID, index of its trace within the request).
    id_offsets: Vec<(usize, u32)>,
    spans: u64,
}

/// What a [`Workload`] holds per request: one pre-encoded form of a generated request.
pub trait RequestTemplate {
    /// Spans in this request.
    fn spans(&self) -> u64;
    /// Encoded size in bytes.
    fn encoded_len(&self) -> usize;
}

impl RequestTemplate for Template {
    fn spans(&self) -> u64 {
        self.spans
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }
}

impl Template {
    /// Wraps encoded bytes holding `spans` spans whose trace IDs are the generated `ids` (as
    /// [`build_request`] returns them: trace `t` of the request has `ids[t]`). Each ID must be
    /// encoded as a protobuf field 1 of 16 bytes (`0x0A 0x10` then the ID: a span's or a
    /// reference's `trace_id` in OTLP and in Jaeger's model), and exactly `id_positions` such
    /// fields must be found.
    pub fn new(bytes: Vec<u8>, ids: &[Vec<u8>], spans: u64, id_positions: usize) -> Result<Self> {
        let lookup: HashMap<[u8; 16], u32> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Ok((id.as_slice().try_into()?, u32::try_from(i)?)))
            .collect::<Result<_>>()
            .context("template trace IDs")?;
        if lookup.len() != ids.len() {
            bail!("template trace IDs collided");
        }
        // A random 16-byte ID that also matches the tag pattern elsewhere is astronomically
        // unlikely, and the count check below catches it anyway.
        let mut id_offsets = Vec::with_capacity(id_positions);
        let mut i = 0;
        while i + 18 <= bytes.len() {
            if bytes[i] == 0x0A
                && bytes[i + 1] == 0x10
                && let Some(&t) = bytes[i + 2..i + 18]
                    .try_into()
                    .ok()
                    .and_then(|k: [u8; 16]| lookup.get(&k))
            {
                id_offsets.push((i + 2, t));
                i += 18;
                continue;
            }
            i += 1;
        }
        ensure!(
            id_offsets.len() == id_positions,
            "found {} trace-ID positions, expected {id_positions}",
            id_offsets.len()
        );
        Ok(Self {
            bytes: Bytes::from(bytes),
            id_offsets,
            spans,
        })
    }

    /// Traces in this request.
    #[cfg(test)]
    pub fn traces(&self) -> u64 {
        self.spans / SPANS_PER_TRACE as u64
    }

    /// The request bytes with the trace IDs of request number `seq` patched in: trace `t`
    /// gets [`trace_id`]`(prefix, seq * traces_per_request + t)`.
    pub fn render(&self, prefix: [u8; 8], seq: u64, traces_per_request: u64) -> Bytes {
        let mut buf = BytesMut::from(&self.bytes[..]);
        let base = seq * traces_per_request;
        for &(off, t) in &self.id_offsets {
            let id = trace_id(prefix, base + u64::from(t));
            buf[off..off + 16].copy_from_slice(&id);
        }
        buf.freeze()
    }
}

/// The trace ID of trace number `trace_seq` of a run: `prefix` then the big-endian sequence.
pub fn trace_id(prefix: [u8; 8], trace_seq: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&prefix);
    id[8..].copy_from_slice(&trace_seq.to_be_bytes());
    id
}

/// A run's trace-ID prefix, derived from a run id; never all zeros.
pub fn run_prefix(run_id: u64) -> [u8; 8] {
    let mut p = SplitMix64::new(run_id).next_u64().to_be_bytes();
    p[0] |= 0x80;
    p
}

/// The pre-encoded ring plus the optional smaller last request of a `--spans` run.
#[derive(Debug)]
pub struct Workload<T = Template> {
    ring: Vec<T>,
    tail: Option<T>,
    /// Requests in the run (`None` = unbounded).
    max_requests: Option<u64>,
    traces_per_request: u64,
}

impl Workload {
    /// Generates the whole workload and encodes it as OTLP Export requests.
    pub fn build(cfg: &WorkloadConfig) -> Result<Self> {
        Self::build_with(cfg, encode_export)
    }
}

impl<T: RequestTemplate> Workload<T> {
    /// Generates the whole workload and pre-encodes each request with `encode`, which gets the
    /// generated request and its trace IDs (see [`build_request`]).
    pub fn build_with(
        cfg: &WorkloadConfig,
        mut encode: impl FnMut(ExportTraceServiceRequest, Vec<Vec<u8>>) -> Result<T>,
    ) -> Result<Self> {
        ensure!(
            cfg.batch_size >= SPANS_PER_TRACE && cfg.batch_size.is_multiple_of(SPANS_PER_TRACE),
            "--batch-size must be a positive multiple of {SPANS_PER_TRACE} (spans per trace)"
        );
        let batch = cfg.batch_size as u64;
        let (full, tail_spans) = match cfg.total_spans {
            Some(n) => {
                ensure!(n > 0, "--spans must be positive");
                ensure!(
                    n.is_multiple_of(SPANS_PER_TRACE as u64),
                    "--spans must be a multiple of {SPANS_PER_TRACE} (spans per trace)"
                );
                (Some(n / batch), n % batch)
            }
            None => (None, 0),
        };
        let ring_len = match full {
            Some(f) => u64::try_from(cfg.ring.max(1))?.min(f),
            None => u64::try_from(cfg.ring.max(1))?,
        };
        let mut build = |index: u64, spans: usize| {
            let (request, ids) = build_request(cfg, index, spans);
            encode(request, ids)
                .with_context(|| format!("encoding request {index} (seed {})", cfg.seed))
        };
        let ring = (0..ring_len)
            .map(|i| build(i, cfg.batch_size))
            .collect::<Result<Vec<_>>>()?;
        let tail = if tail_spans > 0 {
            Some(build(u64::MAX, usize::try_from(tail_spans)?)?)
        } else {
            None
        };
        let max_requests = full.map(|f| f + u64::from(tail.is_some()));
        Ok(Self {
            ring,
            tail,
            max_requests,
            traces_per_request: batch / SPANS_PER_TRACE as u64,
        })
    }

    /// The template of request number `seq`, or `None` past the end of a `--spans` run.
    pub fn template(&self, seq: u64) -> Option<&T> {
        if let Some(max) = self.max_requests {
            if seq >= max {
                return None;
            }
            if seq == max - 1
                && let Some(tail) = &self.tail
            {
                return Some(tail);
            }
        }
        if self.ring.is_empty() {
            return self.tail.as_ref();
        }
        let idx = usize::try_from(seq % self.ring.len() as u64).ok()?;
        self.ring.get(idx)
    }

    /// Trace-ID stride between consecutive requests.
    pub fn traces_per_request(&self) -> u64 {
        self.traces_per_request
    }

    /// Number of distinct pre-encoded requests.
    pub fn distinct_requests(&self) -> usize {
        self.ring.len() + usize::from(self.tail.is_some())
    }

    /// Total encoded bytes held in memory.
    pub fn encoded_bytes(&self) -> usize {
        self.ring.iter().chain(&self.tail).map(T::encoded_len).sum()
    }

    /// Average encoded bytes per span over all templates.
    #[allow(clippy::cast_precision_loss)]
    pub fn bytes_per_span(&self) -> f64 {
        let spans: u64 = self.ring.iter().chain(&self.tail).map(T::spans).sum();
        self.encoded_bytes() as f64 / spans.max(1) as f64
    }
}

/// One generated trace: its service index and its spans (root first).
#[derive(Debug, Clone)]
pub struct GeneratedTrace {
    pub service: usize,
    pub spans: Vec<Span>,
}

fn mix(seed: u64, stream: u64) -> u64 {
    SplitMix64::new(seed ^ stream.wrapping_mul(0xD134_2543_DE82_EF95)).next_u64()
}

fn attributes(rng: &mut SplitMix64) -> Vec<KeyValue> {
    let mut keys: Vec<usize> = Vec::with_capacity(ATTRS_PER_SPAN);
    while keys.len() < ATTRS_PER_SPAN {
        let k = rng.index(ATTR_KEYS);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| string_kv(attr_key(k), attr_value(rng.index(ATTR_VALUES))))
        .collect()
}

fn string_kv(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn status(rng: &mut SplitMix64) -> Option<Status> {
    // About 2 % of spans are errors; the others carry no status at all.
    (rng.below(50) == 0).then(|| Status {
        code: status::StatusCode::Error as i32,
        message: String::new(),
    })
}

/// Generates one trace with a random template trace ID.
pub fn generate_trace(rng: &mut SplitMix64, now_ns: u64, spread_ns: u64) -> GeneratedTrace {
    let service = rng.index(SERVICES);
    let trace_id = rng.bytes::<16>().to_vec();
    // Root durations from 1 ms to about 1 s, roughly log-uniform.
    let scale = 1_000_000u64 << rng.below(10);
    let root_dur = scale + rng.below(scale);
    let root_end = now_ns.saturating_sub(rng.below(spread_ns.max(1)));
    let root_start = root_end.saturating_sub(root_dur);
    let root_id = rng.bytes::<8>().to_vec();
    let mut spans = Vec::with_capacity(SPANS_PER_TRACE);
    spans.push(Span {
        trace_id: trace_id.clone(),
        span_id: root_id.clone(),
        name: root_operation(rng.index(ROOT_OPERATIONS)),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: root_start,
        end_time_unix_nano: root_end,
        attributes: attributes(rng),
        status: status(rng),
        ..Default::default()
    });
    for child in 0..SPANS_PER_TRACE - 1 {
        let offset = rng.below(root_dur / 2 + 1);
        let dur = 1 + rng.below(root_dur / 2);
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: rng.bytes::<8>().to_vec(),
            parent_span_id: root_id.clone(),
            name: child_operation(child),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: root_start + offset,
            end_time_unix_nano: root_start + offset + dur,
            attributes: attributes(rng),
            status: status(rng),
            ..Default::default()
        });
    }
    GeneratedTrace { service, spans }
}

fn resource(service: usize) -> Resource {
    Resource {
        attributes: vec![
            string_kv("service.name", service_name(service)),
            string_kv("host.name", format!("loadgen-host-{service}")),
            string_kv("service.version", format!("1.{service}.0")),
            string_kv("deployment.environment", "bench"),
        ],
        ..Default::default()
    }
}

/// Builds the unencoded request number `index` (`u64::MAX` for the tail).
pub fn build_request(
    cfg: &WorkloadConfig,
    index: u64,
    spans: usize,
) -> (ExportTraceServiceRequest, Vec<Vec<u8>>) {
    let mut rng = SplitMix64::new(mix(cfg.seed, index));
    let spread_ns = u64::try_from(cfg.time_spread.as_nanos()).unwrap_or(u64::MAX);
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES];
    let mut ids = Vec::with_capacity(spans / SPANS_PER_TRACE);
    for _ in 0..spans / SPANS_PER_TRACE {
        let t = generate_trace(&mut rng, cfg.now_unix_nanos, spread_ns);
        ids.push(t.spans[0].trace_id.clone());
        by_service[t.service].extend(t.spans);
    }
    let resource_spans = by_service
        .into_iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(svc, spans)| ResourceSpans {
            resource: Some(resource(svc)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "loadgen".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    (ExportTraceServiceRequest { resource_spans }, ids)
}

/// The default encoding: the request as one OTLP `ExportTraceServiceRequest`, where each span
/// holds its trace ID once.
fn encode_export(request: ExportTraceServiceRequest, ids: Vec<Vec<u8>>) -> Result<Template> {
    let spans = ids.len() * SPANS_PER_TRACE;
    Template::new(request.encode_to_vec(), &ids, spans as u64, spans)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn cfg(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            batch_size: 1000,
            ring: 4,
            total_spans: None,
            time_spread: Duration::from_secs(3600),
            now_unix_nanos: 1_800_000_000_000_000_000,
        }
    }

    fn decode(b: &Bytes) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(b.clone()).unwrap()
    }

    fn all_spans(req: &ExportTraceServiceRequest) -> Vec<&Span> {
        req.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect()
    }

    #[test]
    fn span_size_is_tracegen_like() {
        let w = Workload::build(&cfg(7)).unwrap();
        let bps = w.bytes_per_span();
        assert!((300.0..=400.0).contains(&bps), "bytes/span {bps}");
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = Workload::build(&cfg(1)).unwrap();
        let b = Workload::build(&cfg(1)).unwrap();
        let c = Workload::build(&cfg(2)).unwrap();
        let prefix = run_prefix(9);
        let ra = a.template(3).unwrap().render(prefix, 3, 100);
        let rb = b.template(3).unwrap().render(prefix, 3, 100);
        let rc = c.template(3).unwrap().render(prefix, 3, 100);
        assert_eq!(ra, rb);
        assert_ne!(ra, rc);
    }

    #[test]
    fn traces_have_one_server_root_and_nine_client_children() {
        let w = Workload::build(&cfg(3)).unwrap();
        let req = decode(&w.template(0).unwrap().render(run_prefix(1), 0, 100));
        let mut by_trace: HashMap<Vec<u8>, Vec<&Span>> = HashMap::new();
        for s in all_spans(&req) {
            by_trace.entry(s.trace_id.clone()).or_default().push(s);
        }
        assert_eq!(by_trace.len(), 100);
        for spans in by_trace.values() {
            assert_eq!(spans.len(), SPANS_PER_TRACE);
            let roots: Vec<_> = spans
                .iter()
                .filter(|s| s.parent_span_id.is_empty())
                .collect();
            assert_eq!(roots.len(), 1);
            let root = roots[0];
            assert_eq!(root.kind, span::SpanKind::Server as i32);
            for child in spans.iter().filter(|s| !s.parent_span_id.is_empty()) {
                assert_eq!(child.parent_span_id, root.span_id);
                assert_eq!(child.kind, span::SpanKind::Client as i32);
                assert!(child.start_time_unix_nano >= root.start_time_unix_nano);
            }
            for s in spans {
                assert_eq!(s.attributes.len(), ATTRS_PER_SPAN);
                assert!(s.end_time_unix_nano > s.start_time_unix_nano);
                assert!(s.end_time_unix_nano <= 1_800_000_000_000_000_000 + 1_000_000_000);
            }
        }
        // A trace never spans two resources, and each resource has service.name + 3 attributes.
        for rs in &req.resource_spans {
            let attrs = &rs.resource.as_ref().unwrap().attributes;
            assert_eq!(attrs.len(), 4);
            assert_eq!(attrs[0].key, "service.name");
        }
    }

    #[test]
    fn trace_ids_are_unique_across_requests_of_a_run() {
        let mut c = cfg(5);
        c.ring = 2;
        let w = Workload::build(&c).unwrap();
        let prefix = run_prefix(42);
        let mut seen = HashSet::new();
        for seq in 0..6u64 {
            let req = decode(
                &w.template(seq)
                    .unwrap()
                    .render(prefix, seq, w.traces_per_request()),
            );
            let ids: HashSet<_> = all_spans(&req).iter().map(|s| s.trace_id.clone()).collect();
            assert_eq!(ids.len(), 100);
            for id in ids {
                let seqno = u64::from_be_bytes(id[8..].try_into().unwrap());
                assert_eq!(seqno / 100, seq);
                assert_eq!(&id[..8], &prefix);
                assert!(seen.insert(id));
            }
        }
        assert_eq!(seen.len(), 600);
        assert_ne!(run_prefix(1), run_prefix(2));
    }

    #[test]
    fn spans_mode_ends_with_a_smaller_tail_request() {
        let mut c = cfg(1);
        c.total_spans = Some(2550);
        let w = Workload::build(&c).unwrap();
        let sizes: Vec<u64> = (0..4)
            .map_while(|s| w.template(s))
            .map(Template::spans)
            .collect();
        assert_eq!(sizes, vec![1000, 1000, 550]);
        assert_eq!(w.template(2).unwrap().traces(), 55);
        c.total_spans = Some(2555);
        assert!(Workload::build(&c).is_err());
        c.total_spans = Some(10);
        c.batch_size = 15;
        assert!(Workload::build(&c).is_err());
    }
}
