//! A tenant's attribute terms: each attribute key with the canonical text of its value gets a
//! dense number and a 64-bit hash.
//!
//! String attributes are stored as a term number instead of two strings (most attribute values
//! repeat, so a span shrinks to a few bytes per attribute); the hash feeds the span's
//! fingerprints and its block's Bloom filter (`blocks`), which answer attribute searches.
//!
//! Writing a span looks up every one of its attributes, so the table entry holds the start of
//! the term's text: one cache miss per attribute.
//!
//! Terms are never renumbered (until the tenant is purged), so a stored span never needs
//! rewriting. Growth is bounded by [`MAX_TERMS`] and [`MAX_TERM_BYTES`]; a term refused for
//! either reason is stored inline, and is still hashed, so searches find it all the same.

use std::hash::{BuildHasher, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};
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

/// Leading text bytes kept in the table entry, enough for most `key` + `value` pairs.
const INLINE_TEXT: usize = 24;

#[derive(Debug)]
struct Entry {
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
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct TermDictionary {
    table: HashTable<Entry>,
    /// Texts by term number, for reading spans back.
    texts: Vec<Text>,
    hasher: DefaultHashBuilder,
}

fn hash(hasher: &DefaultHashBuilder, key: &str, value: &str) -> u64 {
    let mut state = hasher.build_hasher();
    state.write_usize(key.len());
    state.write(key.as_bytes());
    state.write(value.as_bytes());
    state.finish()
}

fn entry_is(entry: &Entry, texts: &[Text], key: &str, value: &str) -> bool {
    if usize::from(entry.key_len) != key.len()
        || usize::from(entry.text_len) != key.len() + value.len()
    {
        return false;
    }
    let inline = &entry.inline[..usize::from(entry.text_len).min(INLINE_TEXT)];
    let (inline_key, inline_value) = inline.split_at(inline.len().min(key.len()));
    if !key.as_bytes().starts_with(inline_key) || !value.as_bytes().starts_with(inline_value) {
        return false;
    }
    usize::from(entry.text_len) <= INLINE_TEXT
        || texts.get(entry.id as usize).is_some_and(|text| {
            text.text.get(..text.key_len) == Some(key)
                && text.text.get(text.key_len..) == Some(value)
        })
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

    /// The number of `key`/`value` (whose [`TermDictionary::hash`] is `hash`), numbering it if
    /// new; `None` when the term is too long or the table is full.
    pub(crate) fn intern(&mut self, hash: u64, key: &str, value: &str) -> Option<TermId> {
        let Self {
            table,
            texts,
            hasher,
        } = self;
        let text_len = key.len() + value.len();
        if text_len > MAX_TERM_BYTES {
            return None;
        }
        if let Some(entry) = table.find(hash, |entry| entry_is(entry, texts, key, value)) {
            return Some(entry.id);
        }
        let id = TermId::try_from(texts.len())
            .ok()
            .filter(|_| texts.len() < MAX_TERMS)?;
        let mut text = String::with_capacity(text_len);
        text.push_str(key);
        text.push_str(value);
        let mut inline = [0; INLINE_TEXT];
        let prefix = text_len.min(INLINE_TEXT);
        inline[..prefix].copy_from_slice(&text.as_bytes()[..prefix]);
        texts.push(Text {
            text: text.into_boxed_str(),
            key_len: key.len(),
        });
        let entry = Entry {
            id,
            // Both fit: `text_len <= MAX_TERM_BYTES`.
            key_len: u16::try_from(key.len()).unwrap_or(u16::MAX),
            text_len: u16::try_from(text_len).unwrap_or(u16::MAX),
            inline,
        };
        table.insert_unique(hash, entry, |entry| {
            texts.get(entry.id as usize).map_or(0, |text| {
                let (key, value) = text.text.split_at(text.key_len);
                self::hash(hasher, key, value)
            })
        });
        Some(id)
    }

    /// The key and value text of a term.
    pub(crate) fn term(&self, id: TermId) -> Option<(&str, &str)> {
        self.texts.get(id as usize).and_then(|text| {
            Some((
                text.text.get(..text.key_len)?,
                text.text.get(text.key_len..)?,
            ))
        })
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
    fn long_terms_are_not_numbered() {
        let mut dictionary = TermDictionary::default();
        let long = "x".repeat(MAX_TERM_BYTES);
        assert_eq!(intern(&mut dictionary, "k", &long), None);
        assert_eq!(intern(&mut dictionary, "k", "short"), Some(0));
    }
}
