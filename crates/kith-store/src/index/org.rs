//! One organization's contacts in memory: bitmaps for every set a filter names (status, tag,
//! website, metadata key, search gram), columns for ranges and sorts. A filter becomes a few
//! bitmap operations whose cardinality is the exact count; a page is the best `limit` slots of
//! that set in the requested order, found in one pass with a bounded heap.

use super::grams::Grams;
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
    Text(u64, &'a str),
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
fn listing_order(descending: bool, a: (Option<Key>, &str), b: (Option<Key>, &str)) -> Ordering {
    let o = match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.1.cmp(b.1)),
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        (None, None) => a.1.cmp(b.1),
    };
    if descending {
        o.reverse()
    } else {
        o
    }
}

#[derive(Default)]
pub(crate) struct OrgIndex {
    slot_of: FxHashMap<Box<str>, u32>,
    alive: RoaringBitmap,
    customers: RoaringBitmap,
    tags: Postings,
    websites: Postings,
    meta_keys: Postings,
    grams: Grams,
    // Per slot. A removed contact's slot keeps an empty id and is never in `alive`.
    ids: Vec<Box<str>>,
    last_seen: Vec<i64>,
    created: Vec<i64>,
    messages: Vec<i64>,
    conversations: Vec<i64>,
    names: Vec<Option<Box<str>>>,
    name_prefix: Vec<u64>,
    texts: Vec<Box<str>>,
    tags_of: Vec<Box<[u32]>>,
    sites_of: Vec<Box<[u32]>>,
    meta_of: Vec<Box<[MetaValue]>>,
    /// New slots whose text awaits `add_batch` (the initial build only).
    deferred_grams: Option<Vec<u32>>,
}

/// A metadata key (interned) and its value as JSON text.
type MetaValue = (u32, Box<str>);

impl OrgIndex {
    pub fn len(&self) -> u64 {
        self.alive.len()
    }

    pub fn id(&self, slot: u32) -> &str {
        &self.ids[slot as usize]
    }

    fn new_slot(&mut self, id: &str) -> u32 {
        let slot = self.ids.len() as u32;
        self.slot_of.insert(id.into(), slot);
        self.ids.push(id.into());
        self.last_seen.push(NEVER);
        self.created.push(0);
        self.messages.push(0);
        self.conversations.push(0);
        self.names.push(None);
        self.name_prefix.push(0);
        self.texts.push("".into());
        self.tags_of.push(Box::default());
        self.sites_of.push(Box::default());
        self.meta_of.push(Box::default());
        slot
    }

    /// Adds a contact or replaces what the index holds for it.
    pub fn upsert(&mut self, c: IndexedContact) {
        let slot = match self.slot_of.get(c.id.as_str()) {
            Some(s) => *s,
            None => self.new_slot(&c.id),
        };
        let s = slot as usize;
        self.alive.insert(slot);
        if c.customer {
            self.customers.insert(slot);
        } else {
            self.customers.remove(slot);
        }

        for n in self.tags_of[s].iter() {
            self.tags.remove(*n, slot);
        }
        let mut tags: Vec<u32> = c.tags.iter().map(|t| self.tags.intern(t)).collect();
        tags.sort_unstable();
        tags.dedup();
        for n in &tags {
            self.tags.add(*n, slot);
        }
        self.tags_of[s] = tags.into();

        for (k, _) in self.meta_of[s].iter() {
            self.meta_keys.remove(*k, slot);
        }
        let meta: Vec<MetaValue> = c
            .metadata
            .iter()
            .map(|(k, v)| (self.meta_keys.intern(k), v.as_str().into()))
            .collect();
        for (k, _) in &meta {
            self.meta_keys.add(*k, slot);
        }
        self.meta_of[s] = meta.into();

        if *self.texts[s] != *c.search_text {
            let old = std::mem::take(&mut self.texts[s]);
            match &mut self.deferred_grams {
                Some(deferred) if old.is_empty() => deferred.push(slot),
                _ => {
                    self.grams.remove(slot, &old);
                    self.grams.add(slot, &c.search_text);
                }
            }
            self.texts[s] = c.search_text.into();
        }
        self.name_prefix[s] = c.name_lower.as_deref().map(prefix).unwrap_or(0);
        self.names[s] = c.name_lower.map(Into::into);
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
            .add_batch(deferred.iter().map(|s| (*s, &*texts[*s as usize])));
    }

    /// Replaces the websites a contact has conversations on.
    pub fn set_websites(&mut self, id: &str, websites: &[String]) {
        let Some(&slot) = self.slot_of.get(id) else {
            return;
        };
        let s = slot as usize;
        for n in self.sites_of[s].iter() {
            self.websites.remove(*n, slot);
        }
        let mut sites: Vec<u32> = websites.iter().map(|w| self.websites.intern(w)).collect();
        sites.sort_unstable();
        sites.dedup();
        for n in &sites {
            self.websites.add(*n, slot);
        }
        self.sites_of[s] = sites.into();
    }

    /// Adds one website to a contact's (the initial build, conversation by conversation).
    pub fn add_website(&mut self, id: &str, website: &str) {
        let Some(&slot) = self.slot_of.get(id) else {
            return;
        };
        let n = self.websites.intern(website);
        let s = slot as usize;
        if !self.sites_of[s].contains(&n) {
            let mut sites = self.sites_of[s].to_vec();
            sites.push(n);
            self.sites_of[s] = sites.into();
            self.websites.add(n, slot);
        }
    }

    /// Forgets a contact (deleted, e.g. absorbed by a merge).
    pub fn remove(&mut self, id: &str) {
        let Some(slot) = self.slot_of.remove(id) else {
            return;
        };
        let s = slot as usize;
        self.alive.remove(slot);
        self.customers.remove(slot);
        for n in std::mem::take(&mut self.tags_of[s]).iter() {
            self.tags.remove(*n, slot);
        }
        for n in std::mem::take(&mut self.sites_of[s]).iter() {
            self.websites.remove(*n, slot);
        }
        for (k, _) in std::mem::take(&mut self.meta_of[s]).iter() {
            self.meta_keys.remove(*k, slot);
        }
        let old = std::mem::take(&mut self.texts[s]);
        self.grams.remove(slot, &old);
        self.ids[s] = "".into();
        self.names[s] = None;
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
            set = self.grams.search(term, &set, |s| &self.texts[s as usize]);
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
                        self.meta_of[i]
                            .iter()
                            .any(|(key, value)| key == k && **value == **v)
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
            SortField::Name => self.names[s]
                .as_deref()
                .map(|n| Key::Text(self.name_prefix[s], n)),
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
            SortField::Name => self.names[s].is_some().then_some(self.name_prefix[s]),
        };
        directed(value, descending)
    }

    /// The sort value of `slot`, for the cursor after it.
    pub fn position(&self, field: SortField, slot: u32) -> Position {
        Position {
            value: self.key(field, slot).map(|k| match k {
                Key::Int(v) => SortValue::Int(v),
                Key::Text(_, n) => SortValue::Text(n.to_string()),
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
                SortValue::Text(t) => Key::Text(prefix(t), t.as_str()),
            });
            (key, p.id.as_str())
        });
        let order = |a: u32, b: u32| {
            listing_order(
                desc,
                (self.key(field, a), self.id(a)),
                (self.key(field, b), self.id(b)),
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
                        && listing_order(desc, (self.key(field, slot), self.id(slot)), a)
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

    /// Heap bytes the organization's index holds (approximate), for logs.
    pub fn approx_bytes(&self) -> u64 {
        let texts: u64 = self.texts.iter().map(|t| t.len() as u64 + 16).sum();
        let ids: u64 = self.ids.iter().map(|t| t.len() as u64 + 16).sum();
        let names: u64 = self
            .names
            .iter()
            .map(|n| n.as_ref().map_or(16, |n| n.len() as u64 + 16))
            .sum();
        let columns = self.ids.len() as u64 * (4 * 8 + 8 + 3 * 16);
        let bitmaps: u64 = [&self.tags, &self.websites, &self.meta_keys]
            .iter()
            .flat_map(|p| p.lists.iter())
            .chain([&self.alive, &self.customers])
            .map(|l| l.serialized_size() as u64)
            .sum();
        texts
            + ids
            + names
            + columns
            + bitmaps
            + self.grams.approx_bytes()
            + self.slot_of.len() as u64 * 48
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
}
