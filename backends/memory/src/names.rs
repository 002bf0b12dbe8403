//! A tenant's services and operations, numbered, counted by the traces holding them, and
//! released when the last such trace is evicted.

use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap};
use jaeger_remote_proto::otlp::trace::span::SpanKind;
use remote_storage_core::Operation;
use remote_storage_core::model::span_kind_name;

use crate::records::SpanKey;

/// Puts `entry` in a released slot, or a new one, and returns the slot's number.
fn allocate<T>(entries: &mut Vec<Option<T>>, free: &mut Vec<u32>, entry: T) -> u32 {
    if let Some(id) = free.pop()
        && let Some(slot) = entries.get_mut(id as usize)
    {
        *slot = Some(entry);
        return id;
    }
    entries.push(Some(entry));
    u32::try_from(entries.len() - 1).unwrap_or(u32::MAX)
}

/// A service with its time index of spans.
#[derive(Debug)]
pub(crate) struct ServiceEntry {
    pub(crate) name: Arc<str>,
    /// Stored traces holding a span of this service.
    traces: usize,
    /// The service's spans by start time.
    pub(crate) spans: BTreeSet<SpanKey>,
}

/// Numbered services; numbers of released services are reused.
#[derive(Debug, Default)]
pub(crate) struct Services {
    ids: HashMap<Arc<str>, u32>,
    entries: Vec<Option<ServiceEntry>>,
    free: Vec<u32>,
}

impl Services {
    pub(crate) fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The number of `name`, adding the service if new (with no traces yet).
    pub(crate) fn id_or_insert(&mut self, name: &str) -> u32 {
        if let Some(id) = self.id(name) {
            return id;
        }
        let name: Arc<str> = Arc::from(name);
        let entry = ServiceEntry {
            name: Arc::clone(&name),
            traces: 0,
            spans: BTreeSet::new(),
        };
        let id = allocate(&mut self.entries, &mut self.free, entry);
        self.ids.insert(name, id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> Option<&ServiceEntry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut ServiceEntry> {
        self.entries.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// The time indexes of the live services: every stored span is in exactly one.
    pub(crate) fn indexes(&self) -> impl Iterator<Item = &BTreeSet<SpanKey>> {
        self.entries.iter().flatten().map(|entry| &entry.spans)
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        self.get(id).map_or("", |entry| &entry.name)
    }

    /// One more trace holds the service.
    pub(crate) fn hold(&mut self, id: u32) {
        if let Some(entry) = self.get_mut(id) {
            entry.traces += 1;
        }
    }

    /// One trace fewer holds the service; the last one removes it.
    pub(crate) fn release(&mut self, id: u32) {
        let Some(entry) = self.get_mut(id) else {
            return;
        };
        entry.traces = entry.traces.saturating_sub(1);
        if entry.traces > 0 {
            return;
        }
        if let Some(entry) = self.entries.get_mut(id as usize).and_then(Option::take) {
            self.ids.remove(&entry.name);
            self.free.push(id);
        }
    }

    /// Names of the services, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.ids.keys().map(|name| name.to_string()).collect();
        names.sort_unstable();
        names
    }
}

/// An operation: a span name and raw OTLP kind within one service.
#[derive(Debug)]
pub(crate) struct OperationEntry {
    pub(crate) service: u32,
    pub(crate) name: Box<str>,
    pub(crate) kind: i32,
    traces: usize,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OperationKey {
    service: u32,
    name: Box<str>,
    kind: i32,
}

/// Borrowed form of [`OperationKey`]; hashes the same (field by field, `&str` as `str`).
#[derive(Hash)]
struct OperationRef<'a> {
    service: u32,
    name: &'a str,
    kind: i32,
}

impl Equivalent<OperationKey> for OperationRef<'_> {
    fn equivalent(&self, key: &OperationKey) -> bool {
        self.service == key.service && self.kind == key.kind && *self.name == *key.name
    }
}

/// Numbered operations; numbers of released operations are reused.
#[derive(Debug, Default)]
pub(crate) struct Operations {
    ids: HashMap<OperationKey, u32>,
    entries: Vec<Option<OperationEntry>>,
    free: Vec<u32>,
}

impl Operations {
    /// The number of the operation, adding it if new (with no traces yet).
    pub(crate) fn id_or_insert(&mut self, service: u32, name: &str, kind: i32) -> u32 {
        let lookup = OperationRef {
            service,
            name,
            kind,
        };
        if let Some(&id) = self.ids.get(&lookup) {
            return id;
        }
        let entry = OperationEntry {
            service,
            name: Box::from(name),
            kind,
            traces: 0,
        };
        let id = allocate(&mut self.entries, &mut self.free, entry);
        self.ids.insert(
            OperationKey {
                service,
                name: Box::from(name),
                kind,
            },
            id,
        );
        id
    }

    pub(crate) fn get(&self, id: u32) -> Option<&OperationEntry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    pub(crate) fn hold(&mut self, id: u32) {
        if let Some(entry) = self.entries.get_mut(id as usize).and_then(Option::as_mut) {
            entry.traces += 1;
        }
    }

    pub(crate) fn release(&mut self, id: u32) {
        let Some(entry) = self.entries.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        entry.traces = entry.traces.saturating_sub(1);
        if entry.traces > 0 {
            return;
        }
        if let Some(entry) = self.entries.get_mut(id as usize).and_then(Option::take) {
            self.ids.remove(&OperationRef {
                service: entry.service,
                name: &entry.name,
                kind: entry.kind,
            });
            self.free.push(id);
        }
    }

    /// A service's operations, optionally of one kind (Jaeger's lower-case kind word), sorted
    /// and without repeats (unknown raw kinds all read as unspecified).
    pub(crate) fn of_service(&self, service: u32, span_kind: Option<&str>) -> Vec<Operation> {
        let mut found: Vec<Operation> = self
            .entries
            .iter()
            .flatten()
            .filter(|entry| entry.service == service)
            .map(|entry| Operation {
                name: entry.name.to_string(),
                span_kind: span_kind_name(
                    SpanKind::try_from(entry.kind).unwrap_or(SpanKind::Unspecified),
                )
                .to_owned(),
            })
            .filter(|operation| span_kind.is_none_or(|kind| operation.span_kind == kind))
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_services_and_operations_disappear_and_numbers_are_reused() {
        let mut services = Services::default();
        let a = services.id_or_insert("a");
        services.hold(a);
        services.hold(a);
        let b = services.id_or_insert("b");
        services.hold(b);
        assert_eq!(services.names(), vec!["a", "b"]);
        services.release(a);
        assert_eq!(services.id("a"), Some(a));
        services.release(a);
        assert_eq!(services.id("a"), None);
        assert_eq!(services.names(), vec!["b"]);
        assert_eq!(services.id_or_insert("c"), a);

        let mut operations = Operations::default();
        let get = operations.id_or_insert(b, "GET", SpanKind::Server as i32);
        operations.hold(get);
        let odd = operations.id_or_insert(b, "GET", 42);
        operations.hold(odd);
        assert_eq!(operations.id_or_insert(b, "GET", 42), odd);
        let listed = operations.of_service(b, None);
        assert_eq!(listed.len(), 2);
        assert_eq!(operations.of_service(b, Some("server")).len(), 1);
        operations.release(odd);
        assert_eq!(operations.of_service(b, Some("")), Vec::new());
        assert_eq!(operations.get(get).map(|entry| &*entry.name), Some("GET"));
    }
}
