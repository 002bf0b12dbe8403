//! The span document: the span stored whole (OTLP protobuf with its resource and scope, base64
//! in a `binary` field that is not indexed) plus the fields searches filter on, in a fixed set
//! whatever the data: no field per attribute key, no nested documents.
//!
//! Attribute conditions search one keyword array, `terms`, holding `<key length>:<key>=<value>`
//! for every attribute of the span, its events and links, its scope and its resource, with the
//! canonical value text the shared matcher compares (so `500` and `"500"` are one term). The
//! key length makes the term unambiguous whatever characters keys and values hold. A value too
//! long for a keyword is indexed as a hash of its text (`<len>:<key>#<hash>`): such conditions
//! narrow by the hash and are then decided by the matcher on the decoded span.
//!
//! Times are indexed twice: whole microseconds in `long` fields (`start`, `duration`) that
//! range filters narrow on, and exact nanoseconds as fixed-width text (`start_ns`,
//! `duration_ns`) that sorts exactly and that the bounds are checked against.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use prost::Message as _;
use remote_storage_core::proto::otlp::trace::ResourceSpans;
use remote_storage_core::{Resource, Scope, Span};

use crate::error::EsError;

/// Every attribute term of a span over every level the matcher searches, sorted and without
/// duplicates (what the `terms` array of its document holds, as a set).
#[cfg(test)]
pub(crate) fn span_terms(span: &Span) -> Vec<String> {
    use remote_storage_core::attribute::any_value_text;
    use remote_storage_core::index_term::index_term;
    use remote_storage_core::matcher::span_level_attributes;
    let levels = span_level_attributes(span.otlp())
        .chain(&span.scope().otlp().attributes)
        .chain(&span.resource().otlp().attributes);
    let mut terms: Vec<String> = levels
        .map(|attribute| index_term(&attribute.key, &any_value_text(attribute.value.as_ref())).text)
        .collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// Whole microseconds of a nanosecond time or duration, for the `long` range fields: below
/// 2^53, so engines (or test doubles) that compare numbers as doubles stay exact.
pub(crate) fn micros(nanos: u64) -> u64 {
    nanos / 1_000
}

/// Decodes stored spans, sharing one resource and one scope among the spans that were written
/// with equal ones, so a trace reads back grouped as it was written.
#[derive(Default)]
pub(crate) struct SpanDecoder {
    resources: HashMap<Vec<u8>, Arc<Resource>>,
    scopes: HashMap<(usize, Vec<u8>), Arc<Scope>>,
}

impl SpanDecoder {
    /// The span stored in a document's `blob`.
    pub(crate) fn decode(&mut self, blob: &str) -> Result<Span, EsError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|error| EsError::Corrupt(format!("blob is not base64: {error}")))?;
        let group = ResourceSpans::decode(bytes.as_slice())
            .map_err(|error| EsError::Corrupt(format!("blob is not ResourceSpans: {error}")))?;
        let otlp_resource = group.resource.unwrap_or_default();
        let mut resource_key = otlp_resource.encode_to_vec();
        resource_key.extend_from_slice(group.schema_url.as_bytes());
        let resource = Arc::clone(
            self.resources
                .entry(resource_key)
                .or_insert_with(|| Arc::new(Resource::new(otlp_resource, group.schema_url))),
        );
        let [scope_spans] = <[_; 1]>::try_from(group.scope_spans)
            .map_err(|_| EsError::Corrupt("blob does not hold exactly one scope".to_owned()))?;
        let otlp_scope = scope_spans.scope.unwrap_or_default();
        let mut scope_key = otlp_scope.encode_to_vec();
        scope_key.extend_from_slice(scope_spans.schema_url.as_bytes());
        let scope = Arc::clone(
            self.scopes
                .entry((Arc::as_ptr(&resource) as usize, scope_key))
                .or_insert_with(|| Arc::new(Scope::new(otlp_scope, scope_spans.schema_url))),
        );
        let [otlp] = <[_; 1]>::try_from(scope_spans.spans)
            .map_err(|_| EsError::Corrupt("blob does not hold exactly one span".to_owned()))?;
        Span::new(resource, scope, otlp).map_err(|error| EsError::Corrupt(error.to_string()))
    }
}

/// The span stored in one document's `blob`.
pub(crate) fn decode_blob(blob: &str) -> Result<Span, EsError> {
    SpanDecoder::default().decode(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_that_are_not_a_stored_span_are_corrupt() {
        assert!(decode_blob("not base64!").is_err());
        assert!(decode_blob("AAAA").is_err());
    }
}
