//! Trace and span identifiers, validated once at the edge.

use std::fmt;

use crate::error::StoreError;

/// A 16-byte OTLP trace ID. Never all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte OTLP span ID. Never all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// Parses the wire bytes of a trace ID; `field` names the request field in the error.
    pub fn from_bytes(bytes: &[u8], field: &str) -> Result<Self, StoreError> {
        let array: [u8; 16] = bytes.try_into().map_err(|_| {
            StoreError::invalid_argument(format!(
                "{field} must be 16 bytes, got {} bytes",
                bytes.len()
            ))
        })?;
        if array == [0; 16] {
            return Err(StoreError::invalid_argument(format!(
                "{field} must not be all zeros"
            )));
        }
        Ok(Self(array))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl SpanId {
    /// Parses the wire bytes of a span ID; `field` names the request field in the error.
    pub fn from_bytes(bytes: &[u8], field: &str) -> Result<Self, StoreError> {
        let array: [u8; 8] = bytes.try_into().map_err(|_| {
            StoreError::invalid_argument(format!(
                "{field} must be 8 bytes, got {} bytes",
                bytes.len()
            ))
        })?;
        if array == [0; 8] {
            return Err(StoreError::invalid_argument(format!(
                "{field} must not be all zeros"
            )));
        }
        Ok(Self(array))
    }

    /// Parses an optional parent span ID: empty or all-zero bytes mean "no parent" (as pdata
    /// reads them), 8 bytes a parent, anything else is refused.
    pub fn parent_from_bytes(bytes: &[u8], field: &str) -> Result<Option<Self>, StoreError> {
        if bytes.is_empty() || bytes.iter().all(|byte| *byte == 0) {
            return Ok(None);
        }
        Self::from_bytes(bytes, field).map(Some)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_requires_sixteen_nonzero_bytes() {
        assert!(TraceId::from_bytes(&[1; 16], "trace_id").is_ok());
        let short = TraceId::from_bytes(&[1; 15], "trace_id").unwrap_err();
        assert!(short.to_string().contains("trace_id must be 16 bytes"));
        assert!(TraceId::from_bytes(&[], "trace_id").is_err());
        assert!(TraceId::from_bytes(&[0; 16], "trace_id").is_err());
    }

    #[test]
    fn parent_span_id_treats_empty_and_zero_as_none() {
        assert_eq!(SpanId::parent_from_bytes(&[], "p").unwrap(), None);
        assert_eq!(SpanId::parent_from_bytes(&[0; 8], "p").unwrap(), None);
        assert_eq!(
            SpanId::parent_from_bytes(&[0, 0, 0, 0, 0, 0, 0, 7], "p").unwrap(),
            Some(SpanId([0, 0, 0, 0, 0, 0, 0, 7]))
        );
        assert!(SpanId::parent_from_bytes(&[1; 4], "p").is_err());
    }

    #[test]
    fn ids_display_as_lower_hex() {
        assert_eq!(TraceId([0xab; 16]).to_string(), "ab".repeat(16));
        assert_eq!(
            SpanId([1, 2, 3, 4, 5, 6, 7, 8]).to_string(),
            "0102030405060708"
        );
    }
}
