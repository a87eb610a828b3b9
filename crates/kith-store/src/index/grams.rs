//! Free-text search in memory: for every 1-, 2- and 3-byte sequence of the contacts' searchable
//! text, the set of contacts containing it.
//!
//! A term of up to three bytes is answered by one posting list, exactly: the searchable text is
//! one field per line, grams never span a line break, and a term cannot contain one. Longer
//! terms intersect the lists of their trigrams (rarest first) and confirm the survivors with a
//! substring search in the stored text. Bytes, not characters: UTF-8 is self-synchronizing, so
//! a byte substring of lower-cased UTF-8 is a character substring, and 1- and 2-character
//! queries in any script are served.

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

/// A gram packed into a key: its length in the top byte, its bytes below.
fn key(gram: &[u8]) -> u32 {
    debug_assert!((1..=3).contains(&gram.len()));
    let mut k = (gram.len() as u32) << 24;
    for (i, b) in gram.iter().enumerate() {
        k |= (*b as u32) << (8 * (2 - i));
    }
    k
}

/// Every gram of `text`, once per occurrence; within lines only.
pub(crate) fn each_gram(text: &[u8], mut f: impl FnMut(u32)) {
    for line in text.split(|b| *b == b'\n') {
        for n in 1..=3usize {
            for g in line.windows(n) {
                f(key(g));
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Grams {
    lists: FxHashMap<u32, RoaringBitmap>,
}

impl Grams {
    /// Adds `slot` for every gram of `text`. (`insert`, not `push`: finding the maximum of a
    /// dense bitmap container scans it, which made building a million contacts ten times
    /// slower.)
    pub fn add(&mut self, slot: u32, text: &[u8]) {
        each_gram(text, |k| {
            self.lists.entry(k).or_default().insert(slot);
        });
    }

    /// Adds many contacts at once, each `(slot, text)` with slots increasing and above every
    /// slot already held (the initial build): the postings of the batch are gathered in plain
    /// vectors and appended to each bitmap in one sorted run.
    pub fn add_batch<'t>(&mut self, items: impl IntoIterator<Item = (u32, &'t [u8])>) {
        let mut runs: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (slot, text) in items {
            each_gram(text, |k| {
                let run = runs.entry(k).or_default();
                if run.last() != Some(&slot) {
                    run.push(slot);
                }
            });
        }
        for (k, run) in runs {
            let list = self.lists.entry(k).or_default();
            if list.append(run.iter().copied()).is_err() {
                // Not above what the list held: fall back to one insert each.
                list.extend(run);
            }
        }
    }

    pub fn remove(&mut self, slot: u32, text: &[u8]) {
        each_gram(text, |k| {
            if let Some(list) = self.lists.get_mut(&k) {
                list.remove(slot);
                if list.is_empty() {
                    self.lists.remove(&k);
                }
            }
        });
    }

    /// The slots among `within` whose text (looked up by `text_of`) contains `term`.
    pub fn search<'t>(
        &self,
        term: &str,
        within: &RoaringBitmap,
        text_of: impl Fn(u32) -> &'t [u8],
    ) -> RoaringBitmap {
        let bytes = term.as_bytes();
        if bytes.is_empty() {
            return within.clone();
        }
        if bytes.contains(&b'\n') {
            // No field contains a line break.
            return RoaringBitmap::new();
        }
        if bytes.len() <= 3 {
            return match self.lists.get(&key(bytes)) {
                Some(list) => list & within,
                None => RoaringBitmap::new(),
            };
        }
        let mut lists = Vec::with_capacity(bytes.len() - 2);
        for g in bytes.windows(3) {
            match self.lists.get(&key(g)) {
                Some(list) => lists.push(list),
                None => return RoaringBitmap::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let mut candidates = lists[0] & within;
        for list in &lists[1..] {
            if candidates.is_empty() {
                break;
            }
            candidates &= *list;
        }
        let finder = memchr::memmem::Finder::new(bytes);
        RoaringBitmap::from_sorted_iter(
            candidates
                .iter()
                .filter(|s| finder.find(text_of(*s)).is_some()),
        )
        .expect("a bitmap iterates in order")
    }

    /// Gives back the spare room of the lists, after the initial build: a list grown one
    /// slot at a time holds up to twice the memory its slots need (its arrays grow by
    /// doubling), and a serialized list reads back at exactly its size.
    pub fn shrink_to_fit(&mut self) {
        let mut buf = Vec::new();
        for list in self.lists.values_mut() {
            buf.clear();
            if list.serialize_into(&mut buf).is_ok() {
                if let Ok(exact) = RoaringBitmap::deserialize_unchecked_from(&buf[..]) {
                    *list = exact;
                }
            }
        }
        self.lists.shrink_to_fit();
    }

    /// Heap bytes held by the posting lists (approximate), for the startup log.
    pub fn approx_bytes(&self) -> u64 {
        self.lists
            .values()
            .map(|l| l.serialized_size() as u64 + 32)
            .sum()
    }
}

/// The index's search path on its own, for the fuzzer (`fuzz/`): `texts` indexed one by one
/// (or as one batch, as the initial build does), the texts at the `removed` positions taken
/// out again, then the slots whose text contains `term`, in order.
pub fn search_texts(texts: &[&str], removed: &[usize], batch: bool, term: &str) -> Vec<u32> {
    let mut g = Grams::default();
    if batch {
        g.add_batch(
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| (i as u32, t.as_bytes())),
        );
    } else {
        for (i, t) in texts.iter().enumerate() {
            g.add(i as u32, t.as_bytes());
        }
    }
    let mut within: RoaringBitmap = (0..texts.len() as u32).collect();
    for &i in removed {
        if let Some(t) = texts.get(i) {
            g.remove(i as u32, t.as_bytes());
            within.remove(i as u32);
        }
    }
    g.search(term, &within, |s| texts[s as usize].as_bytes())
        .iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(n: u32) -> RoaringBitmap {
        (0..n).collect()
    }

    #[test]
    fn keys_differ_by_length_and_bytes() {
        assert_ne!(key(b"a"), key(b"a\0"));
        assert_ne!(key(b"ab"), key(b"ba"));
        assert_ne!(key(b"abc"), key(b"abd"));
        assert_eq!(key(b"abc"), key(&b"xabc"[1..]));
    }

    #[test]
    fn finds_substrings_of_any_length_within_one_field() {
        let texts = [
            "ada lovelace\nada@example.com",
            "zoë ångström\n+14155550100",
            "grace hopper\nnavy",
        ];
        let mut g = Grams::default();
        for (i, t) in texts.iter().enumerate() {
            g.add(i as u32, t.as_bytes());
        }
        let within = all(3);
        let find = |q: &str| -> Vec<u32> {
            g.search(q, &within, |s| texts[s as usize].as_bytes())
                .iter()
                .collect()
        };
        assert_eq!(find("a"), vec![0, 2], "å is not a");
        assert_eq!(find("o"), vec![0, 1, 2]);
        assert_eq!(find("ë"), vec![1], "one non-ASCII character (two bytes)");
        assert_eq!(find("zo"), vec![1]);
        assert_eq!(find("ström"), vec![1]);
        assert_eq!(find("lovelace"), vec![0]);
        assert_eq!(find("555"), vec![1]);
        assert_eq!(find("e\na"), Vec::<u32>::new());
        // "ceada" spans the line break between name and email: not a match.
        assert_eq!(find("ceada"), Vec::<u32>::new());
        assert_eq!(find("ace"), vec![0, 2]);
        // Trigram candidates that do not hold the whole term are dropped.
        assert_eq!(find("acex"), Vec::<u32>::new());
    }

    #[test]
    fn removing_a_text_forgets_its_grams() {
        let mut g = Grams::default();
        g.add(0, b"anna");
        g.add(1, b"hanna");
        g.remove(0, b"anna");
        let texts = ["", "hanna"];
        let hits: Vec<u32> = g
            .search("ann", &all(2), |s| texts[s as usize].as_bytes())
            .iter()
            .collect();
        assert_eq!(hits, vec![1]);
        g.remove(1, b"hanna");
        assert!(g.lists.is_empty());
    }
}
