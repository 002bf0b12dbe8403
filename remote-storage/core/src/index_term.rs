//! Attribute index terms, the one text every indexing backend stores for an attribute so that
//! a query condition finds it by equality: `<key length>:<key>=<canonical value text>`. The
//! value text is the matcher's ([`crate::attribute::any_value_text`]), so `500` and `"500"`
//! are one term; the key length makes the term unambiguous whatever characters keys and
//! values hold (`a=b`,`c` and `a`,`b=c` differ). A term longer than
//! [`MAX_INDEX_TERM_BYTES`] is `<key length>:<key>#<hash of the value>` instead: such a term
//! narrows a search, and the matcher decides on the stored span.

use xxhash_rust::xxh3::xxh3_128;

/// Longest term stored whole; longer values are indexed by hash.
pub const MAX_INDEX_TERM_BYTES: usize = 256;

/// The index term of one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTerm {
    /// The term's text.
    pub text: String,
    /// Whether the value is hashed (the term alone does not decide a match).
    pub hashed: bool,
}

/// The index term of attribute `key` with canonical value text `value`.
pub fn index_term(key: &str, value: &str) -> IndexTerm {
    let text = format!("{}:{key}={value}", key.len());
    if text.len() <= MAX_INDEX_TERM_BYTES {
        return IndexTerm {
            text,
            hashed: false,
        };
    }
    IndexTerm {
        text: format!("{}:{key}#{}", key.len(), value_hash(value)),
        hashed: true,
    }
}

/// The hash a long value is indexed by: 32 lowercase hex digits of its 128-bit xxh3.
pub fn value_hash(value: &str) -> String {
    format!("{:032x}", xxh3_128(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_hashed_and_keys_cannot_collide() {
        let short = index_term("http.status_code", "500");
        assert_eq!(short.text, "16:http.status_code=500");
        assert!(!short.hashed);
        let long = index_term("sql", &"x".repeat(1_000));
        assert!(long.hashed);
        assert_eq!(
            long.text,
            format!("3:sql#{}", value_hash(&"x".repeat(1_000)))
        );
        assert_ne!(index_term("a=b", "c").text, index_term("a", "b=c").text);
        let edge = "v".repeat(MAX_INDEX_TERM_BYTES - "1:k=".len());
        assert!(!index_term("k", &edge).hashed);
        assert!(index_term("k", &format!("{edge}v")).hashed);
    }
}
