//! Contact ids and the slots they have in an organization's index.
//!
//! Every id Kith makes is a lower-case ULID: 26 characters that are exactly 128 bits. Kept as
//! text, an id cost two boxed strings (the slot's and the map key's, 26 bytes rounded up by
//! the allocator plus 16 of pointer and length each) and a 24-byte map bucket; kept as a
//! `u128` it is 16 bytes, and the map from id to slot holds only the slot (4 bytes a bucket),
//! hashing and comparing through the slot's id. Lower-case ULIDs order as their numbers do, so
//! ties in a listing are broken by comparing numbers. An id that is not a canonical lower-case
//! ULID (none Kith makes; rows written by hand could hold one) is kept as text beside.

use hashbrown::HashTable;
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::hash::{BuildHasher, Hash, Hasher};

const ULID_LEN: usize = 26;

/// The number of `id` when it is a canonical lower-case ULID.
pub(crate) fn parse_ulid(id: &str) -> Option<u128> {
    if id.len() != ULID_LEN {
        return None;
    }
    let n = u128::from(ulid::Ulid::from_string(id).ok()?);
    // Crockford's decoding also takes upper case and i, l, o: only the canonical spelling
    // may stand for the number, or two ids would share a slot.
    (encode(n) == id.as_bytes()).then_some(n)
}

fn encode(n: u128) -> [u8; ULID_LEN] {
    let mut buf = [0u8; ULID_LEN];
    ulid::Ulid(n).array_to_str(&mut buf);
    buf.make_ascii_lowercase();
    buf
}

/// An id as compared: its number when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKey<'a> {
    Ulid(u128),
    Text(&'a str),
}

impl IdKey<'_> {
    pub fn of(id: &str) -> IdKey<'_> {
        match parse_ulid(id) {
            Some(n) => IdKey::Ulid(n),
            None => IdKey::Text(id),
        }
    }
}

impl Ord for IdKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (IdKey::Ulid(a), IdKey::Ulid(b)) => a.cmp(b),
            (IdKey::Text(a), IdKey::Text(b)) => a.cmp(b),
            (IdKey::Ulid(a), IdKey::Text(b)) => encode(*a).as_slice().cmp(b.as_bytes()),
            (IdKey::Text(a), IdKey::Ulid(b)) => a.as_bytes().cmp(encode(*b).as_slice()),
        }
    }
}

impl PartialOrd for IdKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
pub(crate) struct SlotIds {
    /// Per slot; 0 for a slot whose id is in `other`.
    ulids: Vec<u128>,
    other: FxHashMap<u32, Box<str>>,
    /// The slots of the contacts held, found by their id.
    table: HashTable<u32>,
}

/// The id of `slot` as compared and hashed. Free of `SlotIds` so the table can be changed
/// while the ids are read.
fn slot_key<'a>(ulids: &[u128], other: &'a FxHashMap<u32, Box<str>>, slot: u32) -> IdKey<'a> {
    if !other.is_empty() {
        if let Some(t) = other.get(&slot) {
            return IdKey::Text(t);
        }
    }
    IdKey::Ulid(ulids[slot as usize])
}

fn hash(key: IdKey) -> u64 {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    match key {
        IdKey::Ulid(n) => n.hash(&mut h),
        IdKey::Text(t) => t.hash(&mut h),
    }
    h.finish()
}

impl SlotIds {
    pub fn key(&self, slot: u32) -> IdKey<'_> {
        slot_key(&self.ulids, &self.other, slot)
    }

    /// The id of `slot`, as text.
    pub fn id(&self, slot: u32) -> String {
        match self.key(slot) {
            IdKey::Ulid(n) => String::from_utf8_lossy(&encode(n)).into_owned(),
            IdKey::Text(t) => t.to_string(),
        }
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        let key = IdKey::of(id);
        self.table.find(hash(key), |s| self.key(*s) == key).copied()
    }

    /// Gives `id` (not held) the next slot.
    pub fn push(&mut self, id: &str) -> u32 {
        let slot = self.ulids.len() as u32;
        let key = IdKey::of(id);
        match key {
            IdKey::Ulid(n) => self.ulids.push(n),
            IdKey::Text(t) => {
                self.ulids.push(0);
                self.other.insert(slot, t.into());
            }
        }
        let (ulids, other) = (&self.ulids, &self.other);
        self.table
            .insert_unique(hash(key), slot, |s| hash(slot_key(ulids, other, *s)));
        slot
    }

    /// Forgets `id`; its slot is not reused. Answers the slot it had.
    pub fn remove(&mut self, id: &str) -> Option<u32> {
        let key = IdKey::of(id);
        let (ulids, other) = (&self.ulids, &self.other);
        let entry = self
            .table
            .find_entry(hash(key), |s| slot_key(ulids, other, *s) == key);
        let (slot, _) = entry.ok()?.remove();
        self.other.remove(&slot);
        Some(slot)
    }

    pub fn shrink_to_fit(&mut self) {
        self.ulids.shrink_to_fit();
        let (ulids, other) = (&self.ulids, &self.other);
        self.table
            .shrink_to_fit(|s| hash(slot_key(ulids, other, *s)));
    }

    /// Bytes held (the table's buckets and control bytes, the numbers, the odd ids).
    pub fn heap_bytes(&self) -> u64 {
        let table = self.table.capacity() * (4 + 1);
        let other: usize = self.other.values().map(|t| t.len() + 16 + 8 + 16).sum();
        (table + self.ulids.capacity() * 16 + other) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_lower_case_ulids_are_packed() {
        let id = crate::ids::new_id();
        assert_eq!(
            parse_ulid(&id).map(|n| String::from_utf8_lossy(&encode(n)).into_owned()),
            Some(id.clone())
        );
        assert_eq!(parse_ulid(&id.to_uppercase()), None);
        // Crockford reads i, l and o as 1, 1 and 0: not the same id.
        assert_eq!(parse_ulid(&format!("{}i", &id[..25])), None);
        assert_eq!(
            parse_ulid("8zzzzzzzzzzzzzzzzzzzzzzzzz"),
            None,
            "over 128 bits"
        );
        assert_eq!(parse_ulid("c1"), None);
    }

    #[test]
    fn ids_of_any_shape_keep_their_slots_and_order() {
        let mut ids = SlotIds::default();
        let made: Vec<String> = (0..3000).map(|_| crate::ids::new_id()).collect();
        let odd = [
            "c1",
            "00000000000000000000000000X",
            "zzz",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ];
        for id in made.iter().map(String::as_str).chain(odd) {
            let slot = ids.push(id);
            assert_eq!(ids.get(id), Some(slot));
            assert_eq!(ids.id(slot), id);
        }
        assert_eq!(ids.get(&crate::ids::new_id()), None);
        assert_eq!(ids.remove("c1"), Some(3000));
        assert_eq!(ids.get("c1"), None);
        assert_eq!(ids.get("zzz"), Some(3002));
        assert_eq!(ids.remove(&made[7]), Some(7));
        assert_eq!(ids.get(&made[7]), None);
        assert_eq!(ids.get(&made[8]), Some(8));
        ids.shrink_to_fit();
        assert_eq!(ids.get(&made[2999]), Some(2999));

        // Keys order exactly as the ids' text does, packed or not.
        let mut all: Vec<&str> = made.iter().map(String::as_str).collect();
        all.extend(odd);
        for pair in all.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert_eq!(IdKey::of(a).cmp(&IdKey::of(b)), a.cmp(b), "{a} vs {b}");
        }
    }
}
