//! Dependency links per bucket, computed once a bucket has settled and kept in
//! `dependency_rollups`, so GetDependencies over settled buckets reads one row per bucket
//! instead of every trace of the window.
//!
//! A bucket is settled [`SETTLE`] after its end. Its stored links are used while they were
//! computed after the bucket's last write (`active_buckets.last_write`); a later write to the
//! bucket makes the next call compute them again. Buckets cut by the query window, and recent
//! buckets, are always computed from their traces. What the stored links can miss: a parent
//! span written more than [`SETTLE`] after its child's bucket ended (into an earlier bucket),
//! and a write in flight while the links are computed; both are counted again only after the
//! next write to the bucket. The writers' clocks are compared with the reader's: keep them in
//! sync (NTP).

use std::time::Duration;

use remote_storage_core::{DependencyLink, StoreError, StoreResult};

/// How long after a bucket's end its links may be stored.
pub const SETTLE: Duration = Duration::from_secs(600);

/// The links as stored: for each, the parent's and the child's length-prefixed UTF-8 and the
/// call count, little-endian.
pub fn encode(links: &[DependencyLink]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for link in links {
        for name in [&link.parent, &link.child] {
            bytes.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_le_bytes());
            bytes.extend_from_slice(name.as_bytes());
        }
        bytes.extend_from_slice(&link.call_count.to_le_bytes());
    }
    bytes
}

/// The links of [`encode`].
pub fn decode(bytes: &[u8]) -> StoreResult<Vec<DependencyLink>> {
    let mut reader = Reader(bytes);
    let mut links = Vec::new();
    while !reader.0.is_empty() {
        let parent = reader.name()?;
        let child = reader.name()?;
        let call_count = u64::from_le_bytes(reader.array()?);
        links.push(DependencyLink {
            parent,
            child,
            call_count,
        });
    }
    Ok(links)
}

/// Reads encoded links front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> StoreResult<&'a [u8]> {
        if self.0.len() < count {
            return Err(corrupt());
        }
        let (head, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> StoreResult<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| corrupt())
    }

    fn name(&mut self) -> StoreResult<String> {
        let length = u32::from_le_bytes(self.array()?);
        let bytes = self.take(usize::try_from(length).map_err(|_| corrupt())?)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt())
    }
}

fn corrupt() -> StoreError {
    StoreError::internal("stored data is corrupt", "dependency rollup")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_truncated_bytes_are_corrupt() {
        let links = vec![
            DependencyLink {
                parent: "frontend".into(),
                child: "cart".into(),
                call_count: 3,
            },
            DependencyLink {
                parent: "".into(),
                child: "ünïcode".into(),
                call_count: u64::MAX,
            },
        ];
        let bytes = encode(&links);
        assert_eq!(decode(&bytes).unwrap(), links);
        assert_eq!(decode(&[]).unwrap(), Vec::new());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&bytes[..6]).is_err());
    }
}
