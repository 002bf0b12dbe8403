//! Property tests of the on-disk encodings: every key and value written decodes back to what
//! was written, key order is the order searches rely on, and no byte string read back from
//! disk (a corrupted or foreign record) makes a decoder panic or allocate without bound.

use proptest::collection::vec;
use proptest::prelude::*;
use remote_storage_core::Tenant;

use crate::keys::{
    Posting, Term, decode_postings, encode_postings, posting_batch, posting_key, put_bytes,
    put_compact, put_len, tag, take_bytes, take_varint,
};
use crate::records::{
    FragmentEntry, SpanGroup, SpanGroupBuilder, decode_fragment, decode_resource, decode_scope,
    encode_fragment,
};

fn posting(has_term: bool, has_duration: bool) -> impl Strategy<Value = Posting> {
    (any::<u64>(), any::<u32>(), any::<u16>(), any::<u64>()).prop_map(
        move |(start, ordinal, term, duration)| Posting {
            // Starts are delta-encoded after sorting; any u64 must survive.
            start,
            ordinal,
            term: if has_term { term } else { 0 },
            duration: if has_duration { duration } else { 0 },
        },
    )
}

fn fragment_entry() -> impl Strategy<Value = FragmentEntry> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 8]>(),
        // An all-zero parent is how "no parent" is written (OTLP has no zero span ID).
        proptest::option::of(any::<[u8; 8]>().prop_filter("non-zero", |id| *id != [0; 8])),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        "[a-z]{0,3}",
        proptest::option::of(".{0,20}"),
    )
        .prop_map(
            |(disc, span_id, parent, start, end, error, service, root_name)| FragmentEntry {
                disc,
                span_id,
                parent,
                start,
                end,
                error,
                service,
                root_name,
            },
        )
}

proptest! {
    #[test]
    fn integers_and_byte_strings_read_back_as_written(
        values in vec(any::<u64>(), 0..20),
        strings in vec(vec(any::<u8>(), 0..300), 0..10),
    ) {
        let mut out = Vec::new();
        for value in &values {
            put_len(&mut out, usize::try_from(*value).unwrap_or(usize::MAX));
        }
        for string in &strings {
            put_bytes(&mut out, string);
        }
        let mut input = out.as_slice();
        for value in &values {
            let expected = u64::try_from(usize::try_from(*value).unwrap_or(usize::MAX)).unwrap_or(u64::MAX);
            prop_assert_eq!(take_varint(&mut input), Some(expected));
        }
        for string in &strings {
            prop_assert_eq!(take_bytes(&mut input), Some(string.as_slice()));
        }
        prop_assert!(input.is_empty());
    }

    #[test]
    fn postings_read_back_sorted_for_every_tag(
        (tag, mut written) in prop_oneof![
            vec(posting(true, false), 0..50).prop_map(|postings| (tag::ATTRIBUTE, postings)),
            vec(posting(true, true), 0..50).prop_map(|postings| (tag::SERVICE, postings)),
            vec(posting(false, true), 0..50).prop_map(|postings| (tag::GLOBAL, postings)),
        ],
    ) {
        let encoded = encode_postings(tag, &mut written);
        let mut read = Vec::new();
        prop_assert_eq!(decode_postings(tag, &encoded, |posting| read.push(posting)), Some(()));
        written.sort_unstable();
        prop_assert_eq!(read, written);
    }

    #[test]
    fn posting_keys_sort_by_bucket_then_batch_and_give_their_batch_back(
        hash in any::<u64>(),
        first in any::<(u32, u64)>(),
        second in any::<(u32, u64)>(),
    ) {
        let term = Term { tag: tag::GLOBAL, hash };
        let key_first = posting_key(term, first.0, first.1);
        let key_second = posting_key(term, second.0, second.1);
        prop_assert_eq!(key_first.cmp(&key_second), first.cmp(&second));
        prop_assert_eq!(posting_batch(&key_first), Some(first.1));
    }

    #[test]
    fn compact_texts_are_prefix_free(
        first in vec(any::<u8>(), 0..400),
        second in vec(any::<u8>(), 0..400),
    ) {
        // Keys concatenate compact texts: one must never be a prefix of another, or
        // ("a", "bc") and ("ab", "c") could share a key.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        put_compact(&mut a, &first);
        put_compact(&mut b, &second);
        if first == second {
            prop_assert_eq!(a, b);
        } else {
            prop_assert!(!a.starts_with(&b) && !b.starts_with(&a));
        }
    }

    #[test]
    fn fragments_read_back_as_written(entries in vec(fragment_entry(), 0..20)) {
        let decoded = decode_fragment(&encode_fragment(&entries)).expect("decodes");
        prop_assert_eq!(decoded, entries);
    }

    #[test]
    fn span_groups_read_back_in_write_order(
        spans in vec((0..3usize, 0..3usize, vec(any::<u8>(), 0..200)), 0..30),
    ) {
        let ids = [[1u8; 16], [2; 16], [3; 16]];
        let mut builder = SpanGroupBuilder::default();
        for (resource, scope, span) in &spans {
            builder.add(&ids[*resource], &ids[*scope], span);
        }
        let group = SpanGroup::decode(&builder.encode()).expect("decodes");
        let read = group.spans().expect("spans");
        prop_assert_eq!(read.len(), spans.len());
        for (read, (resource, scope, span)) in read.iter().zip(&spans) {
            prop_assert_eq!(read.resource, ids[*resource]);
            prop_assert_eq!(read.scope, ids[*scope]);
            prop_assert_eq!(read.span, span.as_slice());
        }
        // Equal spans of one group get distinct discriminators (each occurrence is kept).
        let mut discs: Vec<_> = read.iter().map(|span| span.disc).collect();
        discs.sort_unstable();
        discs.dedup();
        prop_assert_eq!(discs.len(), spans.len());
    }

    #[test]
    fn no_stored_bytes_make_a_decoder_panic(
        bytes in vec(any::<u8>(), 0..600),
        tag_index in 0..3usize,
    ) {
        let tag = [tag::ATTRIBUTE, tag::SERVICE, tag::GLOBAL][tag_index];
        let _ = decode_postings(tag, &bytes, |_| {});
        let _ = decode_fragment(&bytes);
        let _ = decode_resource(&bytes);
        let _ = decode_scope(&bytes);
        if let Ok(group) = SpanGroup::decode(&bytes) {
            let _ = group.spans();
        }
        let mut input = bytes.as_slice();
        while take_bytes(&mut input).is_some() {}
        let _ = posting_batch(&bytes);
    }
}

#[test]
fn a_group_claiming_a_huge_size_is_refused_before_decompressing() {
    // format ‖ declared uncompressed size (LE u32, 4 GiB - 1) ‖ a few bytes: lz4 cannot expand
    // 8 bytes that far, so the record is corrupt, and is refused without reserving the space.
    let mut value = vec![2u8];
    value.extend_from_slice(&u32::MAX.to_le_bytes());
    value.extend_from_slice(&[0; 8]);
    let error = SpanGroup::decode(&value)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("claims 4294967295 bytes"), "{error}");
}

#[test]
fn tenants_of_any_text_give_distinct_posting_terms() {
    let terms: Vec<_> = ["", "a", "a\u{0}"]
        .iter()
        .map(|tenant| crate::keys::global_term(&Tenant::new(tenant)))
        .collect();
    assert_ne!(terms[0], terms[1]);
    assert_ne!(terms[1], terms[2]);
}
