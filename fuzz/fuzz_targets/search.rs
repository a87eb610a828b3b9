//! The contact index's free-text search: the term as `search_term` normalizes it, then the
//! 1/2/3-byte gram posting lists and the confirming substring test
//! (crates/kith-store/src/index/grams.rs).
//!
//! Input: the term, then the texts, separated by 0x1F bytes. Invariant: the index answers
//! exactly the texts a plain substring test finds — built one by one or as one batch, and
//! after some texts were removed again — for the raw term and for the normalized one.
#![no_main]

use kith_core::filter::search_term;
use kith_store::fuzzing::search_texts;
use libfuzzer_sys::fuzz_target;

fn reference(texts: &[&str], removed: &[usize], term: &str) -> Vec<u32> {
    (0..texts.len())
        .filter(|i| !removed.contains(i))
        .filter(|i| term.is_empty() || (!term.contains('\n') && texts[*i].contains(term)))
        .map(|i| i as u32)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\u{1f}');
    let raw = parts.next().unwrap_or("");
    let texts: Vec<&str> = parts.take(64).collect();
    // Every third text is removed again in the second round.
    let removed: Vec<usize> = (0..texts.len()).filter(|i| i % 3 == 1).collect();
    let mut terms = vec![raw.to_string()];
    if let Ok(Some(t)) = search_term("q", raw) {
        terms.push(t);
    }
    for term in &terms {
        let want = reference(&texts, &[], term);
        assert_eq!(
            search_texts(&texts, &[], false, term),
            want,
            "term {term:?}"
        );
        assert_eq!(
            search_texts(&texts, &[], true, term),
            want,
            "batch, term {term:?}"
        );
        let want = reference(&texts, &removed, term);
        assert_eq!(
            search_texts(&texts, &removed, false, term),
            want,
            "after removals, term {term:?}"
        );
    }
});
