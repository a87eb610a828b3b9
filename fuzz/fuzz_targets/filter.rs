//! The list filter parser and the small parsers beside it: `ListFilter::parse` on JSON from
//! the input, `Sort::parse`, `search_term` and `tag_key` on the input as text.
//!
//! Invariants: a parsed filter serialized (`to_json`, what a saved list stores) parses again
//! to the same filter — a stored filter that failed its own validation would break every list
//! of its organization; tags and terms stay within their limits and are stable (normalizing
//! them again changes nothing); a parsed sort prints as text that parses to itself.
#![no_main]

use kith_core::filter::{search_term, tag_key, ListFilter, Sort};
use kith_core::limits::{FIELD_MAX_CHARS, TAG_MAX_CHARS};
use libfuzzer_sys::fuzz_target;

fn check_tag(t: &str) {
    assert!(!t.is_empty() && t.chars().count() <= TAG_MAX_CHARS, "{t:?}");
    assert_eq!(tag_key("tag", t).as_deref(), Ok(t), "tag_key is stable");
}

fn check_term(t: &str) {
    assert!(
        !t.is_empty() && t.chars().count() <= FIELD_MAX_CHARS,
        "{t:?}"
    );
    assert!(!t.contains('\n'));
    assert_eq!(
        search_term("q", t).ok().flatten().as_deref(),
        Some(t),
        "search_term is stable"
    );
}

fn check_filter(f: &ListFilter) {
    f.tags_all
        .iter()
        .chain(f.tags_none.iter())
        .chain(f.tags_any.iter().flatten())
        .for_each(|t| check_tag(t));
    f.q.iter().for_each(|t| check_term(t));
    let stored = f.to_json();
    let again = ListFilter::parse(&stored)
        .unwrap_or_else(|e| panic!("the stored form {stored} does not parse: {e}"));
    // Metadata conditions are ANDed: their order carries no meaning, their set does.
    assert_eq!(by_key(again), by_key(f.clone()), "stored form {stored}");
}

fn by_key(mut f: ListFilter) -> ListFilter {
    f.metadata.sort_by_cached_key(|c| format!("{c:?}"));
    f
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(f) = ListFilter::parse(&v) {
            check_filter(&f);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = Sort::parse(text) {
        assert_eq!(Sort::parse(&s.as_str()), Ok(s));
    }
    if let Ok(Some(t)) = search_term("q", text) {
        check_term(&t);
    }
    if let Ok(t) = tag_key("tag", text) {
        check_tag(&t);
    }
});
