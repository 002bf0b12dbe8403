//! A tenant's attribute terms: each attribute key with the canonical text of its value gets a
//! dense number and a 64-bit hash.
//!
//! String attributes are stored as a term number instead of two strings (most attribute values
//! repeat, so a span shrinks to a few bytes per attribute); the hash feeds the span's
//! fingerprints and its block's Bloom filter (`blocks`), which answer attribute searches.
//!
//! Writing a span looks up every one of its string attributes, and with many distinct terms
//! the table is larger than the CPU caches: each lookup is a miss to main memory. The table is
//! therefore an open-addressing array of 32-byte slots holding the hash's high bits and the
//! start of the term's text, so a lookup of a short term reads one slot (hashbrown reads a
//! control group and then the entry: two dependent misses), and [`TermDictionary::touch`]
//! lets the writer touch the slots of all of a span's attributes before looking any of them
//! up, so their misses overlap instead of following one another.
//!
//! Terms are never renumbered (until the tenant is purged), so a stored span never needs
//! rewriting. Growth is bounded by [`MAX_TERMS`] and [`MAX_TERM_BYTES`]; a term refused for
//! either reason is stored inline, and is still hashed, so searches find it all the same.

use std::hash::{BuildHasher, Hasher};

use hashbrown::DefaultHashBuilder;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::proto::otlp::common::KeyValue;

/// Number of a term within one tenant.
pub(crate) type TermId = u32;

/// Longest key plus value text given a term number. Longer texts (URLs with query strings,
/// SQL statements) rarely repeat, so numbering them would only grow the table.
pub(crate) const MAX_TERM_BYTES: usize = 256;

/// Most terms one tenant holds. High-cardinality attributes (request IDs) would otherwise grow
/// the table without bound.
pub(crate) const MAX_TERMS: usize = 4 << 20;

/// Leading text bytes kept in a slot: what is left of 32 bytes. A longer term is confirmed
/// against its full text (a second read).
const INLINE_TEXT: usize = 20;

/// Slots in a new table; it doubles before it is more than [`MAX_LOAD_PERCENT`] full, which
/// keeps linear probes short.
const FIRST_SLOTS: usize = 1024;
const MAX_LOAD_PERCENT: usize = 70;

/// One slot of the table. Two fit a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    /// The high half of the term's hash, never 0: 0 marks an empty slot.
    tag: u32,
    id: TermId,
    key_len: u16,
    text_len: u16,
    /// The first `min(text_len, INLINE_TEXT)` bytes of key followed by value.
    inline: [u8; INLINE_TEXT],
}

#[derive(Debug)]
struct Text {
    /// The key followed by the value text.
    text: Box<str>,
    key_len: usize,
    /// Kept so growing the table does not hash every term again.
    hash: u64,
}

impl Text {
    fn split(&self) -> Option<(&str, &str)> {
        Some((
            self.text.get(..self.key_len)?,
            self.text.get(self.key_len..)?,
        ))
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct TermDictionary {
    /// A power of two in length, or empty before the first term.
    slots: Vec<Slot>,
    /// Texts by term number, for reading spans back.
    texts: Vec<Text>,
    hasher: DefaultHashBuilder,
}

fn hash(hasher: &DefaultHashBuilder, key: &str, value: &str) -> u64 {
    /// Most terms fit: hashed as one write instead of three (this runs for every attribute
    /// of every span written).
    const INLINE: usize = 96;
    let mut state = hasher.build_hasher();
    let len = 8 + key.len() + value.len();
    if len <= INLINE {
        let mut buffer = [0u8; INLINE];
        buffer[..8].copy_from_slice(&(key.len() as u64).to_le_bytes());
        buffer[8..8 + key.len()].copy_from_slice(key.as_bytes());
        buffer[8 + key.len()..len].copy_from_slice(value.as_bytes());
        state.write(&buffer[..len]);
    } else {
        // The same bytes as the inline buffer, written in parts: either way the hash of a
        // term is a function of its key and value alone.
        let mut long = Vec::with_capacity(len);
        long.extend_from_slice(&(key.len() as u64).to_le_bytes());
        long.extend_from_slice(key.as_bytes());
        long.extend_from_slice(value.as_bytes());
        state.write(&long);
    }
    state.finish()
}

#[allow(clippy::cast_possible_truncation)] // The high half of the hash, by design.
fn tag(hash: u64) -> u32 {
    ((hash >> 32) as u32).max(1)
}

/// The slots a lookup of `hash` reads in a table of `len` slots (a power of two), in order:
/// linear probing from the slot the hash's low bits pick.
#[allow(clippy::cast_possible_truncation)] // Only the low bits pick the first slot.
fn probe_sequence(hash: u64, len: usize) -> impl Iterator<Item = usize> {
    let mask = len.wrapping_sub(1);
    let first = hash as usize & mask;
    (0..len).map(move |step| (first + step) & mask)
}

/// The first [`INLINE_TEXT`] bytes of key followed by value, zero-padded: what a slot holds.
fn inline_text(key: &str, value: &str) -> [u8; INLINE_TEXT] {
    let mut inline = [0; INLINE_TEXT];
    let (key_part, value_part) = inline.split_at_mut(key.len().min(INLINE_TEXT));
    key_part.copy_from_slice(&key.as_bytes()[..key_part.len()]);
    let value_len = value.len().min(value_part.len());
    value_part[..value_len].copy_from_slice(&value.as_bytes()[..value_len]);
    inline
}

/// Whether `slot` holds `key`/`value`, whose inline text is `inline`. Equal lengths and equal
/// zero-padded prefixes settle a short term; a longer one is confirmed against its text.
fn slot_is(
    slot: &Slot,
    texts: &[Text],
    key: &str,
    value: &str,
    inline: &[u8; INLINE_TEXT],
) -> bool {
    usize::from(slot.key_len) == key.len()
        && usize::from(slot.text_len) == key.len() + value.len()
        && slot.inline == *inline
        && (usize::from(slot.text_len) <= INLINE_TEXT
            || texts
                .get(slot.id as usize)
                .and_then(Text::split)
                .is_some_and(|text| text == (key, value)))
}

fn slot_for(id: TermId, text: &Text) -> Slot {
    let (key, value) = text.split().unwrap_or_default();
    let inline = inline_text(key, value);
    Slot {
        tag: tag(text.hash),
        id,
        // Both fit: a numbered text is at most `MAX_TERM_BYTES` long.
        key_len: u16::try_from(text.key_len).unwrap_or(u16::MAX),
        text_len: u16::try_from(text.text.len()).unwrap_or(u16::MAX),
        inline,
    }
}

/// Puts `slot` in the first empty slot of its probe sequence (the table is never full).
fn place(slots: &mut [Slot], hash: u64, slot: Slot) {
    let empty = probe_sequence(hash, slots.len())
        .find(|&index| slots.get(index).is_some_and(|target| target.tag == 0));
    if let Some(target) = empty.and_then(|index| slots.get_mut(index)) {
        *target = slot;
    }
}

impl TermDictionary {
    /// The hash of `key`/`value`, which Bloom filters and fingerprints are built from.
    pub(crate) fn hash(&self, key: &str, value: &str) -> u64 {
        hash(&self.hasher, key, value)
    }

    /// The hash of an attribute's key and canonical value text (what a search names).
    pub(crate) fn hash_attribute(&self, attribute: &KeyValue) -> u64 {
        self.hash(&attribute.key, &any_value_text(attribute.value.as_ref()))
    }

    /// Reads the first slot a lookup of `hash` reads, so a later [`TermDictionary::intern`]
    /// finds it in cache; a batch of these lets the CPU wait for all of their misses at
    /// once. Returns the tag read, for the caller to fold into `std::hint::black_box`.
    pub(crate) fn touch(&self, hash: u64) -> u32 {
        probe_sequence(hash, self.slots.len())
            .next()
            .and_then(|index| self.slots.get(index))
            .map_or(0, |slot| slot.tag)
    }

    /// The number of `key`/`value` (whose [`TermDictionary::hash`] is `hash`), numbering it if
    /// new; `None` when the term is too long or the table is full.
    pub(crate) fn intern(&mut self, hash: u64, key: &str, value: &str) -> Option<TermId> {
        let text_len = key.len() + value.len();
        if text_len > MAX_TERM_BYTES {
            return None;
        }
        let wanted = tag(hash);
        let inline = inline_text(key, value);
        let mut empty = None;
        for index in probe_sequence(hash, self.slots.len()) {
            let Some(slot) = self.slots.get(index) else {
                break;
            };
            if slot.tag == 0 {
                empty = Some(index);
                break;
            }
            if slot.tag == wanted && slot_is(slot, &self.texts, key, value, &inline) {
                return Some(slot.id);
            }
        }
        if self.texts.len() >= MAX_TERMS {
            return None;
        }
        let id = TermId::try_from(self.texts.len()).ok()?;
        let mut text = String::with_capacity(text_len);
        text.push_str(key);
        text.push_str(value);
        let text = Text {
            text: text.into_boxed_str(),
            key_len: key.len(),
            hash,
        };
        let slot = slot_for(id, &text);
        self.texts.push(text);
        match empty {
            Some(index) if self.texts.len() * 100 <= self.slots.len() * MAX_LOAD_PERCENT => {
                if let Some(target) = self.slots.get_mut(index) {
                    *target = slot;
                }
            }
            _ => self.grow(),
        }
        Some(id)
    }

    /// Doubles the table (or creates it) and places every term again, the newest included.
    fn grow(&mut self) {
        let mut size = self.slots.len().max(FIRST_SLOTS);
        while self.texts.len() * 100 > size * MAX_LOAD_PERCENT {
            size *= 2;
        }
        let mut slots = vec![Slot::default(); size];
        for (id, text) in (0..).zip(&self.texts) {
            place(&mut slots, text.hash, slot_for(id, text));
        }
        self.slots = slots;
    }

    /// The key and value text of a term.
    pub(crate) fn term(&self, id: TermId) -> Option<(&str, &str)> {
        self.texts.get(id as usize).and_then(Text::split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intern(dictionary: &mut TermDictionary, key: &str, value: &str) -> Option<TermId> {
        let hash = dictionary.hash(key, value);
        dictionary.intern(hash, key, value)
    }

    #[test]
    fn terms_are_numbered_once_and_read_back() {
        let mut dictionary = TermDictionary::default();
        assert_eq!(intern(&mut dictionary, "http.method", "GET"), Some(0));
        assert_eq!(intern(&mut dictionary, "http.method", "POST"), Some(1));
        assert_eq!(intern(&mut dictionary, "http.method", "GET"), Some(0));
        assert_eq!(dictionary.term(1), Some(("http.method", "POST")));
        assert_eq!(dictionary.term(2), None);
        let typed = KeyValue {
            key: "http.status_code".to_owned(),
            value: Some(remote_storage_core::proto::otlp::common::AnyValue {
                value: Some(
                    remote_storage_core::proto::otlp::common::any_value::Value::IntValue(200),
                ),
            }),
            key_strindex: 0,
        };
        assert_eq!(
            dictionary.hash_attribute(&typed),
            dictionary.hash("http.status_code", "200")
        );
    }

    #[test]
    fn the_split_between_key_and_value_and_long_tails_tell_terms_apart() {
        let mut dictionary = TermDictionary::default();
        let ab = intern(&mut dictionary, "ab", "c");
        let a = intern(&mut dictionary, "a", "bc");
        assert_ne!(ab, a);
        assert_eq!(dictionary.term(a.unwrap_or_default()), Some(("a", "bc")));
        // Same first INLINE_TEXT bytes, different tails.
        let long_a = format!("{}-a", "x".repeat(40));
        let long_b = format!("{}-b", "x".repeat(40));
        let first = intern(&mut dictionary, "k", &long_a);
        let second = intern(&mut dictionary, "k", &long_b);
        assert_ne!(first, second);
        assert_eq!(intern(&mut dictionary, "k", &long_b), second);
        assert_eq!(
            dictionary.term(second.unwrap_or_default()),
            Some(("k", long_b.as_str()))
        );
    }

    #[test]
    fn terms_keep_their_numbers_as_the_table_grows() {
        let mut dictionary = TermDictionary::default();
        let terms: Vec<(String, String)> = (0..5_000)
            .map(|i| (format!("key.{}", i % 37), format!("value-{i}")))
            .collect();
        let ids: Vec<Option<TermId>> = terms
            .iter()
            .map(|(key, value)| intern(&mut dictionary, key, value))
            .collect();
        assert!(dictionary.slots.len() * MAX_LOAD_PERCENT >= 5_000 * 100);
        for ((key, value), id) in terms.iter().zip(&ids) {
            assert_eq!(intern(&mut dictionary, key, value), *id);
            let id = id.unwrap_or(TermId::MAX);
            assert_eq!(dictionary.term(id), Some((key.as_str(), value.as_str())));
        }
        assert_eq!(dictionary.texts.len(), 5_000);
    }

    #[test]
    fn long_terms_are_not_numbered() {
        let mut dictionary = TermDictionary::default();
        let long = "x".repeat(MAX_TERM_BYTES);
        assert_eq!(intern(&mut dictionary, "k", &long), None);
        assert_eq!(intern(&mut dictionary, "k", "short"), Some(0));
    }
}
