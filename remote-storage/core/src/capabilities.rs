//! What a backend can answer, reported through the Capabilities service.

use jaeger_remote_proto::storage::v2 as proto;

/// Search capabilities of a backend. `Default` is the least capable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Find* accept an empty service name as "any service".
    pub without_service_name: bool,
    /// Every conjunction of conditions is evaluated within one span.
    pub same_span_conjunction: bool,
}

impl Capabilities {
    /// The wire form. Structured filters are never declared (they are refused).
    pub fn to_proto(self) -> proto::GetCapabilitiesResponse {
        proto::GetCapabilitiesResponse {
            search: Some(proto::SearchCapabilities {
                without_service_name: self.without_service_name,
                same_span_conjunction: self.same_span_conjunction,
                filter: None,
            }),
        }
    }
}
