//! One organization's contacts in memory: bitmaps for every set a filter names (status, tag,
//! website, metadata key, search gram), columns for ranges and sorts. A filter becomes a few
//! bitmap operations whose cardinality is the exact count; a page is the best `limit` slots of
//! that set in the requested order, found in one pass with a bounded heap.

use super::arena::Arena;
use super::grams::Grams;
use super::slots::{IdKey, SlotIds};
use kith_core::filter::{metadata_eq_key, ListFilter, MetaCond, Range, Sort, SortField};
use kith_core::Status;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::cmp::Ordering;

/// `last_seen_at` of a contact never seen.
const NEVER: i64 = i64::MIN;

/// What the index keeps of one contact, as read from its row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexedContact {
    pub id: String,
    pub customer: bool,
    pub name_lower: Option<String>,
    pub search_text: String,
    /// Lower-cased, as tag filters compare them.
    pub tags: Vec<String>,
    /// Key and `metadata_eq_key` of the value: what an `eq` filter compares.
    pub metadata: Vec<(String, String)>,
    pub last_seen_at: Option<i64>,
    pub created_at: i64,
    pub message_count: i64,
    pub conversation_count: i64,
}

/// Names (tags, websites, metadata keys) interned to small numbers, each with its bitmap.
#[derive(Default)]
struct Postings {
    numbers: FxHashMap<Box<str>, u32>,
    lists: Vec<RoaringBitmap>,
}

impl Postings {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(n) = self.numbers.get(name) {
            return *n;
        }
        let n = self.lists.len() as u32;
        self.numbers.insert(name.into(), n);
        self.lists.push(RoaringBitmap::new());
        n
    }

    fn get(&self, name: &str) -> Option<&RoaringBitmap> {
        self.numbers.get(name).map(|n| &self.lists[*n as usize])
    }

    fn add(&mut self, n: u32, slot: u32) {
        self.lists[n as usize].insert(slot);
    }

    fn remove(&mut self, n: u32, slot: u32) {
        self.lists[n as usize].remove(slot);
    }
}

/// A position in a sorted listing: the sort value (`None` = the contact has none) and the id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Position {
    pub value: Option<SortValue>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortValue {
    Int(i64),
    Text(String),
}

/// A sort value as compared: integers directly, names by an 8-byte prefix first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key<'a> {
    Int(i64),
    Text(u64, &'a [u8]),
}

impl Ord for Key<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            (Key::Text(pa, a), Key::Text(pb, b)) => pa.cmp(pb).then_with(|| a.cmp(b)),
            // One listing never mixes the two.
            (Key::Int(_), Key::Text(..)) => Ordering::Less,
            (Key::Text(..), Key::Int(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Key<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The first eight bytes of a name, big-endian: ordering by it agrees with ordering the names.
fn prefix(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// Listing order: contacts with a value first, by value then id; those without after them,
/// by id; descending reverses both orders but keeps missing values last.
fn listing_order(descending: bool, a: (Option<Key>, IdKey), b: (Option<Key>, IdKey)) -> Ordering {
    let o = match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.1.cmp(&b.1)),
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        (None, None) => a.1.cmp(&b.1),
    };
    if descending {
        o.reverse()
    } else {
        o
    }
}

#[derive(Default)]
pub(crate) struct OrgIndex {
    ids: SlotIds,
    alive: RoaringBitmap,
    customers: RoaringBitmap,
    tags: Postings,
    websites: Postings,
    meta_keys: Postings,
    grams: Grams,
    // Per slot. A removed contact's slot is never in `alive` and is not reused.
    last_seen: Vec<i64>,
    created: Vec<i64>,
    messages: Vec<i64>,
    conversations: Vec<i64>,
    name_prefix: Vec<u64>,
    /// The search text, lower-cased, one field a line.
    texts: Arena<u8>,
    /// The lower-cased name is the search text's first line (`search_text` puts it there),
    /// so it is kept as that line's length; `NO_NAME`, or `NAME_ELSEWHERE` for a name that
    /// is not (a row written outside Kith), kept in `names_elsewhere`.
    name_len: Vec<u32>,
    names_elsewhere: FxHashMap<u32, Box<str>>,
    tags_of: Arena<u32>,
    sites_of: Arena<u32>,
    /// Each metadata key (interned) and its value's `metadata_eq_key`: see `encode_meta`.
    meta_of: Arena<u8>,
    /// New slots whose text awaits `add_batch` (the initial build only).
    deferred_grams: Option<Vec<u32>>,
}

const NO_NAME: u32 = u32::MAX;
const NAME_ELSEWHERE: u32 = u32::MAX - 1;

/// Metadata of one contact as bytes: per entry its key's number and its value's length (both
/// little-endian `u32`), then the value.
fn encode_meta(entries: &[(u32, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in entries {
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn meta_entries(mut bytes: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        let (head, rest) = bytes.split_first_chunk::<8>()?;
        let key = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let (value, rest) = rest.split_at_checked(len)?;
        bytes = rest;
        Some((key, value))
    })
}

/// Where the index's bytes go, for logs and `kith bench lists`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct IndexMemory {
    /// Ids and the map from id to slot.
    pub ids: u64,
    /// Sort and range columns (times, counters, name prefixes).
    pub columns: u64,
    /// Search texts (with the names in them).
    pub texts: u64,
    /// Per-contact tag, website and metadata lists.
    pub contact_sets: u64,
    /// Status, tag, website and metadata-key bitmaps.
    pub bitmaps: u64,
    /// Search grams: a bitmap per 1-, 2- and 3-byte sequence.
    pub grams: u64,
}

impl IndexMemory {
    pub fn total(&self) -> u64 {
        self.ids + self.columns + self.texts + self.contact_sets + self.bitmaps + self.grams
    }

    pub fn add(&mut self, o: &IndexMemory) {
        self.ids += o.ids;
        self.columns += o.columns;
        self.texts += o.texts;
        self.contact_sets += o.contact_sets;
        self.bitmaps += o.bitmaps;
        self.grams += o.grams;
    }
}

impl OrgIndex {
    pub fn len(&self) -> u64 {
        self.alive.len()
    }

    pub fn id(&self, slot: u32) -> String {
        self.ids.id(slot)
    }

    fn name(&self, slot: u32) -> Option<&[u8]> {
        match self.name_len[slot as usize] {
            NO_NAME => None,
            NAME_ELSEWHERE => self.names_elsewhere.get(&slot).map(|n| n.as_bytes()),
            len => Some(&self.texts.get(slot)[..len as usize]),
        }
    }

    fn new_slot(&mut self, id: &str) -> u32 {
        let slot = self.ids.push(id);
        self.last_seen.push(NEVER);
        self.created.push(0);
        self.messages.push(0);
        self.conversations.push(0);
        self.name_prefix.push(0);
        self.name_len.push(NO_NAME);
        self.texts.push_empty();
        self.tags_of.push_empty();
        self.sites_of.push_empty();
        self.meta_of.push_empty();
        slot
    }

    /// Adds a contact or replaces what the index holds for it.
    pub fn upsert(&mut self, c: IndexedContact) {
        let slot = match self.ids.get(&c.id) {
            Some(s) => s,
            None => self.new_slot(&c.id),
        };
        let s = slot as usize;
        self.alive.insert(slot);
        if c.customer {
            self.customers.insert(slot);
        } else {
            self.customers.remove(slot);
        }

        for n in self.tags_of.get(slot) {
            self.tags.remove(*n, slot);
        }
        let mut tags: Vec<u32> = c.tags.iter().map(|t| self.tags.intern(t)).collect();
        tags.sort_unstable();
        tags.dedup();
        for n in &tags {
            self.tags.add(*n, slot);
        }
        self.tags_of.set(slot, &tags);

        for (k, _) in meta_entries(self.meta_of.get(slot)) {
            self.meta_keys.remove(k, slot);
        }
        let meta: Vec<(u32, &str)> = c
            .metadata
            .iter()
            .map(|(k, v)| (self.meta_keys.intern(k), v.as_str()))
            .collect();
        for (k, _) in &meta {
            self.meta_keys.add(*k, slot);
        }
        self.meta_of.set(slot, &encode_meta(&meta));

        let text = c.search_text.as_bytes();
        if self.texts.get(slot) != text {
            let was_empty = self.texts.get(slot).is_empty();
            match &mut self.deferred_grams {
                Some(deferred) if was_empty => deferred.push(slot),
                _ => {
                    self.grams.remove(slot, self.texts.get(slot));
                    self.grams.add(slot, text);
                }
            }
            self.texts.set(slot, text);
        }
        self.names_elsewhere.remove(&slot);
        self.name_len[s] = match c.name_lower.as_deref() {
            None => NO_NAME,
            Some(name)
                if text.starts_with(name.as_bytes())
                    && matches!(text.get(name.len()), None | Some(b'\n'))
                    && (name.len() as u32) < NAME_ELSEWHERE =>
            {
                name.len() as u32
            }
            Some(name) => {
                self.names_elsewhere.insert(slot, name.into());
                NAME_ELSEWHERE
            }
        };
        self.name_prefix[s] = c.name_lower.as_deref().map(prefix).unwrap_or(0);
        self.last_seen[s] = c.last_seen_at.unwrap_or(NEVER);
        self.created[s] = c.created_at;
        self.messages[s] = c.message_count;
        self.conversations[s] = c.conversation_count;
    }

    /// Adds a batch of contacts (the initial build): like `upsert` each, with the search grams
    /// of new contacts added in one sorted run per gram.
    pub fn upsert_batch(&mut self, contacts: Vec<IndexedContact>) {
        self.deferred_grams = Some(Vec::new());
        for c in contacts {
            self.upsert(c);
        }
        let deferred = self.deferred_grams.take().unwrap_or_default();
        let texts = &self.texts;
        self.grams
            .add_batch(deferred.iter().map(|s| (*s, texts.get(*s))));
    }

    /// Gives back what growing by doubling reserved, after the initial build.
    pub fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        for column in [
            &mut self.last_seen,
            &mut self.created,
            &mut self.messages,
            &mut self.conversations,
        ] {
            column.shrink_to_fit();
        }
        self.name_prefix.shrink_to_fit();
        self.name_len.shrink_to_fit();
        self.texts.shrink_to_fit();
        self.tags_of.shrink_to_fit();
        self.sites_of.shrink_to_fit();
        self.meta_of.shrink_to_fit();
        self.grams.shrink_to_fit();
    }

    /// Replaces the websites a contact has conversations on.
    pub fn set_websites(&mut self, id: &str, websites: &[String]) {
        let Some(slot) = self.ids.get(id) else {
            return;
        };
        for n in self.sites_of.get(slot) {
            self.websites.remove(*n, slot);
        }
        let mut sites: Vec<u32> = websites.iter().map(|w| self.websites.intern(w)).collect();
        sites.sort_unstable();
        sites.dedup();
        for n in &sites {
            self.websites.add(*n, slot);
        }
        self.sites_of.set(slot, &sites);
    }

    /// Adds one website to a contact's (the initial build, conversation by conversation).
    pub fn add_website(&mut self, id: &str, website: &str) {
        let Some(slot) = self.ids.get(id) else {
            return;
        };
        let n = self.websites.intern(website);
        if !self.sites_of.get(slot).contains(&n) {
            let mut sites = self.sites_of.get(slot).to_vec();
            sites.push(n);
            self.sites_of.set(slot, &sites);
            self.websites.add(n, slot);
        }
    }

    /// Forgets a contact (deleted, e.g. absorbed by a merge).
    pub fn remove(&mut self, id: &str) {
        let Some(slot) = self.ids.remove(id) else {
            return;
        };
        self.alive.remove(slot);
        self.customers.remove(slot);
        for n in self.tags_of.get(slot) {
            self.tags.remove(*n, slot);
        }
        for n in self.sites_of.get(slot) {
            self.websites.remove(*n, slot);
        }
        for (k, _) in meta_entries(self.meta_of.get(slot)) {
            self.meta_keys.remove(k, slot);
        }
        self.grams.remove(slot, self.texts.get(slot));
        self.tags_of.set(slot, &[]);
        self.sites_of.set(slot, &[]);
        self.meta_of.set(slot, &[]);
        self.texts.set(slot, &[]);
        self.name_len[slot as usize] = NO_NAME;
        self.names_elsewhere.remove(&slot);
    }

    /// The contacts matching `f`.
    pub fn matching(&self, f: &ListFilter) -> RoaringBitmap {
        let mut set = self.alive.clone();
        for s in &f.status {
            match s {
                Status::Customer => set &= &self.customers,
                Status::Lead => set -= &self.customers,
            }
        }
        for tag in &f.tags_all {
            match self.tags.get(tag) {
                Some(list) => set &= list,
                None => return RoaringBitmap::new(),
            }
        }
        for group in &f.tags_any {
            let mut any = RoaringBitmap::new();
            for tag in group {
                if let Some(list) = self.tags.get(tag) {
                    any |= list;
                }
            }
            set &= any;
        }
        for tag in &f.tags_none {
            if let Some(list) = self.tags.get(tag) {
                set -= list;
            }
        }
        for w in &f.website_ids {
            match self.websites.get(w) {
                Some(list) => set &= list,
                None => return RoaringBitmap::new(),
            }
        }
        for cond in &f.metadata {
            match cond {
                MetaCond::Exists(key, present) => match (self.meta_keys.get(key), present) {
                    (Some(list), true) => set &= list,
                    (Some(list), false) => set -= list,
                    (None, true) => return RoaringBitmap::new(),
                    (None, false) => {}
                },
                MetaCond::Eq(key, _) => match self.meta_keys.get(key) {
                    Some(list) => set &= list,
                    None => return RoaringBitmap::new(),
                },
            }
        }
        for term in &f.q {
            if set.is_empty() {
                break;
            }
            set = self.grams.search(term, &set, |s| self.texts.get(s));
        }
        let per_slot = !f.last_seen_at.is_open()
            || !f.created_at.is_open()
            || !f.message_count.is_open()
            || !f.conversation_count.is_open()
            || f.metadata.iter().any(|m| matches!(m, MetaCond::Eq(..)));
        if per_slot && !set.is_empty() {
            let wanted: Vec<(u32, String)> = f
                .metadata
                .iter()
                .filter_map(|m| match m {
                    MetaCond::Eq(k, v) => Some((
                        self.meta_keys.numbers[k.as_str()],
                        metadata_eq_key(v).unwrap_or_default(),
                    )),
                    MetaCond::Exists(..) => None,
                })
                .collect();
            set = RoaringBitmap::from_sorted_iter(set.iter().filter(|s| {
                let i = *s as usize;
                let seen = self.last_seen[i];
                in_range(&f.created_at, self.created[i])
                    && in_range(&f.message_count, self.messages[i])
                    && in_range(&f.conversation_count, self.conversations[i])
                    && (f.last_seen_at.is_open()
                        || (seen != NEVER && in_range(&f.last_seen_at, seen)))
                    && wanted.iter().all(|(k, v)| {
                        meta_entries(self.meta_of.get(*s))
                            .any(|(key, value)| key == *k && value == v.as_bytes())
                    })
            }))
            .expect("a bitmap iterates in order");
        }
        set
    }

    fn key(&self, field: SortField, slot: u32) -> Option<Key<'_>> {
        let s = slot as usize;
        match field {
            SortField::LastSeenAt => {
                (self.last_seen[s] != NEVER).then(|| Key::Int(self.last_seen[s]))
            }
            SortField::CreatedAt => Some(Key::Int(self.created[s])),
            SortField::Name => self.name(slot).map(|n| Key::Text(self.name_prefix[s], n)),
        }
    }

    /// An integer that orders slots as `listing_order` does, up to ties.
    #[inline]
    fn rank(&self, field: SortField, descending: bool, slot: u32) -> u64 {
        let s = slot as usize;
        let value = match field {
            SortField::LastSeenAt => {
                let v = self.last_seen[s];
                (v != NEVER).then_some(ordered(v))
            }
            SortField::CreatedAt => Some(ordered(self.created[s])),
            SortField::Name => (self.name_len[s] != NO_NAME).then_some(self.name_prefix[s]),
        };
        directed(value, descending)
    }

    /// The sort value of `slot`, for the cursor after it.
    pub fn position(&self, field: SortField, slot: u32) -> Position {
        Position {
            value: self.key(field, slot).map(|k| match k {
                Key::Int(v) => SortValue::Int(v),
                Key::Text(_, n) => SortValue::Text(String::from_utf8_lossy(n).into_owned()),
            }),
            id: self.id(slot).to_string(),
        }
    }

    /// Up to `take` slots of `set` in `sort` order, strictly after `after`.
    pub fn page(
        &self,
        set: &RoaringBitmap,
        sort: &Sort,
        after: Option<&Position>,
        take: usize,
    ) -> Vec<u32> {
        if take == 0 {
            return Vec::new();
        }
        let field = sort.field;
        let desc = sort.descending;
        let after_key = after.map(|p| {
            let key = p.value.as_ref().map(|v| match v {
                SortValue::Int(i) => Key::Int(*i),
                SortValue::Text(t) => Key::Text(prefix(t), t.as_bytes()),
            });
            (key, IdKey::of(&p.id))
        });
        let order = |a: u32, b: u32| {
            listing_order(
                desc,
                (self.key(field, a), self.ids.key(a)),
                (self.key(field, b), self.ids.key(b)),
            )
        };
        // Most slots are decided by one integer comparison of their rank; only equal ranks
        // (same name prefix, same time, no value) need the full order.
        let after_rank = after_key.map(|(key, _)| rank_of(key, desc));
        let mut worst = u64::MAX;
        // A max-heap of the best `take` so far: its root is the worst of them.
        let mut heap: Vec<u32> = Vec::with_capacity(take);
        for slot in set.iter() {
            let r = self.rank(field, desc, slot);
            if let (Some(ar), Some(a)) = (after_rank, after_key) {
                if r < ar
                    || (r == ar
                        && listing_order(desc, (self.key(field, slot), self.ids.key(slot)), a)
                            != Ordering::Greater)
                {
                    continue;
                }
            }
            if heap.len() < take {
                heap.push(slot);
                sift_up(&mut heap, &order);
                if heap.len() == take {
                    worst = self.rank(field, desc, heap[0]);
                }
            } else if r <= worst && order(slot, heap[0]) == Ordering::Less {
                heap[0] = slot;
                sift_down(&mut heap, &order);
                worst = self.rank(field, desc, heap[0]);
            }
        }
        heap.sort_unstable_by(|a, b| order(*a, *b));
        heap
    }

    /// Bytes the organization's index holds, by part (capacities, not lengths; bitmaps by
    /// their serialized size, which is within a few percent of what they hold).
    pub fn memory(&self) -> IndexMemory {
        let bitmap = |b: &RoaringBitmap| b.serialized_size() as u64;
        let postings = |p: &Postings| -> u64 {
            p.lists.iter().map(bitmap).sum::<u64>()
                + p.numbers
                    .keys()
                    .map(|k| k.len() as u64 + 16 + 4)
                    .sum::<u64>()
        };
        IndexMemory {
            ids: self.ids.heap_bytes(),
            columns: (self.last_seen.capacity()
                + self.created.capacity()
                + self.messages.capacity()
                + self.conversations.capacity()
                + self.name_prefix.capacity()) as u64
                * 8
                + self.name_len.capacity() as u64 * 4
                + self
                    .names_elsewhere
                    .values()
                    .map(|n| n.len() as u64 + 32)
                    .sum::<u64>(),
            texts: self.texts.heap_bytes(),
            contact_sets: self.tags_of.heap_bytes()
                + self.sites_of.heap_bytes()
                + self.meta_of.heap_bytes(),
            bitmaps: bitmap(&self.alive)
                + bitmap(&self.customers)
                + postings(&self.tags)
                + postings(&self.websites)
                + postings(&self.meta_keys),
            grams: self.grams.approx_bytes(),
        }
    }
}

/// An `i64` mapped to a `u64` of the same order.
fn ordered(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// A rank: reversed when descending; no value ranks last either way.
fn directed(value: Option<u64>, descending: bool) -> u64 {
    match value {
        None => u64::MAX,
        Some(v) => (if descending { !v } else { v }).min(u64::MAX - 1),
    }
}

fn rank_of(key: Option<Key>, descending: bool) -> u64 {
    directed(
        key.map(|k| match k {
            Key::Int(v) => ordered(v),
            Key::Text(p, _) => p,
        }),
        descending,
    )
}

fn in_range(r: &Range, v: i64) -> bool {
    r.min.is_none_or(|m| v >= m) && r.max.is_none_or(|m| v <= m)
}

fn sift_up(heap: &mut [u32], order: &impl Fn(u32, u32) -> Ordering) {
    let mut i = heap.len() - 1;
    while i > 0 {
        let parent = (i - 1) / 2;
        if order(heap[i], heap[parent]) == Ordering::Greater {
            heap.swap(i, parent);
            i = parent;
        } else {
            break;
        }
    }
}

fn sift_down(heap: &mut [u32], order: &impl Fn(u32, u32) -> Ordering) {
    let mut i = 0;
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut largest = i;
        if l < heap.len() && order(heap[l], heap[largest]) == Ordering::Greater {
            largest = l;
        }
        if r < heap.len() && order(heap[r], heap[largest]) == Ordering::Greater {
            largest = r;
        }
        if largest == i {
            break;
        }
        heap.swap(i, largest);
        i = largest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_core::filter::Sort;
    use serde_json::json;

    fn contact(id: &str, name: Option<&str>, seen: Option<i64>, tags: &[&str]) -> IndexedContact {
        IndexedContact {
            id: id.into(),
            customer: false,
            name_lower: name.map(str::to_lowercase),
            search_text: name.unwrap_or("").to_lowercase(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            metadata: vec![],
            last_seen_at: seen,
            created_at: 0,
            message_count: 0,
            conversation_count: 0,
        }
    }

    fn ids(ix: &OrgIndex, slots: &[u32]) -> Vec<String> {
        slots.iter().map(|s| ix.id(*s).to_string()).collect()
    }

    #[test]
    fn pages_follow_the_order_with_missing_values_last_both_ways() {
        let mut ix = OrgIndex::default();
        ix.upsert(contact("a", Some("Zed"), Some(10), &[]));
        ix.upsert(contact("b", None, None, &[]));
        ix.upsert(contact("c", Some("amy"), Some(30), &[]));
        ix.upsert(contact("d", Some("Bob"), Some(10), &[]));
        ix.upsert(contact("e", None, None, &[]));
        let all = ix.matching(&ListFilter::default());
        let sort = |s: &str| Sort::parse(s).unwrap();
        let page = |s: &str| ids(&ix, &ix.page(&all, &sort(s), None, 10));
        assert_eq!(page("last_seen_at"), ["a", "d", "c", "b", "e"]);
        assert_eq!(page("-last_seen_at"), ["c", "d", "a", "e", "b"]);
        assert_eq!(page("name"), ["c", "d", "a", "b", "e"]);
        assert_eq!(page("-name"), ["a", "d", "c", "e", "b"]);

        // Walking with positions gives the same order, one at a time.
        for s in ["last_seen_at", "-last_seen_at", "name", "-name"] {
            let mut walked = Vec::new();
            let mut after: Option<Position> = None;
            loop {
                let p = ix.page(&all, &sort(s), after.as_ref(), 1);
                let Some(slot) = p.first() else { break };
                walked.push(ix.id(*slot).to_string());
                after = Some(ix.position(sort(s).field, *slot));
            }
            assert_eq!(walked, page(s), "walking {s}");
        }
    }

    #[test]
    fn updates_and_removals_leave_no_trace_in_the_sets() {
        let mut ix = OrgIndex::default();
        ix.upsert(contact("a", Some("Ann"), Some(1), &["vip", "beta"]));
        ix.upsert(contact("b", Some("Bea"), Some(2), &["vip"]));
        let vip = ListFilter::parse(&json!({"tags": {"all": ["vip"]}})).unwrap();
        assert_eq!(ix.matching(&vip).len(), 2);
        let mut a = contact("a", Some("Annette"), Some(3), &["beta"]);
        a.customer = true;
        ix.upsert(a);
        assert_eq!(ix.matching(&vip).len(), 1);
        let customers = ListFilter::parse(&json!({"status": "customer"})).unwrap();
        assert_eq!(
            ids(&ix, &ix.matching(&customers).iter().collect::<Vec<_>>()),
            ["a"]
        );
        let q = ListFilter::parse(&json!({"q": "nette"})).unwrap();
        assert_eq!(ix.matching(&q).len(), 1);
        ix.remove("a");
        assert_eq!(ix.matching(&q).len(), 0);
        assert_eq!(ix.matching(&customers).len(), 0);
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn names_and_metadata_read_back_from_their_packed_form() {
        let mut ix = OrgIndex::default();
        let mut a = contact("01m8pxj3xg8pjdq13fp25rbx7a", Some("Zed"), None, &[]);
        let key = |v: serde_json::Value| metadata_eq_key(&v).unwrap();
        a.metadata = vec![
            ("plan".into(), key(json!("pro"))),
            ("seats".into(), key(json!(5))),
        ];
        ix.upsert(a.clone());
        // A name that is not the search text's first line (a row written outside Kith).
        let mut b = contact("01m8pxj3xg8pjdq13fp25rbx7b", Some("amy"), None, &[]);
        b.search_text = "usr_1\namy".into();
        b.metadata = vec![("plan".into(), key(json!("free")))];
        ix.upsert(b);
        ix.upsert(contact(
            "01m8pxj3xg8pjdq13fp25rbx7c",
            Some("Bob"),
            None,
            &[],
        ));
        let all = ix.matching(&ListFilter::default());
        let by_name = ids(&ix, &ix.page(&all, &Sort::parse("name").unwrap(), None, 10));
        assert_eq!(by_name[0], "01m8pxj3xg8pjdq13fp25rbx7b");
        assert_eq!(by_name[2], "01m8pxj3xg8pjdq13fp25rbx7a");
        let eq = |ix: &OrgIndex, v: serde_json::Value| {
            let f = ListFilter::parse(&json!({"metadata": {"plan": {"eq": v}}})).unwrap();
            ids(ix, &ix.matching(&f).iter().collect::<Vec<_>>())
        };
        assert_eq!(eq(&ix, json!("pro")), ["01m8pxj3xg8pjdq13fp25rbx7a"]);
        assert_eq!(eq(&ix, json!("free")), ["01m8pxj3xg8pjdq13fp25rbx7b"]);

        // A longer value and a new name, then none: each read back as written.
        a.metadata = vec![("plan".into(), key(json!("enterprise")))];
        a.name_lower = Some("zedekiah".into());
        a.search_text = "zedekiah\nacme".into();
        ix.upsert(a.clone());
        assert_eq!(eq(&ix, json!("pro")), Vec::<String>::new());
        assert_eq!(eq(&ix, json!("enterprise")), ["01m8pxj3xg8pjdq13fp25rbx7a"]);
        let slot = ix.ids.get(&a.id).unwrap();
        assert_eq!(
            ix.position(SortField::Name, slot).value,
            Some(SortValue::Text("zedekiah".into()))
        );
        a.name_lower = None;
        a.search_text = "acme".into();
        ix.upsert(a.clone());
        assert_eq!(ix.position(SortField::Name, slot).value, None);
        let q = ListFilter::parse(&json!({"q": "zed"})).unwrap();
        assert_eq!(ix.matching(&q).len(), 0);
    }
}
