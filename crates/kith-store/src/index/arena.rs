//! A variable-length value per slot (a contact's search text, its tag numbers) kept in one
//! buffer instead of one heap allocation each.
//!
//! A million boxed values cost a pointer and a length (16 bytes) plus the allocator's header
//! and rounding (8–24 bytes) each, on top of the bytes themselves, and the allocations are
//! scattered. Here a slot costs 12 bytes (where its value starts, how long it is) and the
//! values lie end to end. A value that changes is written over the old one when it fits,
//! else appended; what it leaves behind is counted, and the buffer is rewritten without it
//! once it is more than half the buffer (amortised: each rewrite follows as many bytes of
//! changes as it copies).

/// Garbage below this many elements is never worth a rewrite.
const MIN_COMPACT: usize = 1 << 16;

pub(crate) struct Arena<T> {
    data: Vec<T>,
    start: Vec<u64>,
    len: Vec<u32>,
    /// Elements of `data` no slot points at any more.
    garbage: usize,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            data: Vec::new(),
            start: Vec::new(),
            len: Vec::new(),
            garbage: 0,
        }
    }
}

impl<T: Copy> Arena<T> {
    /// Adds a slot holding an empty value; slots are numbered in the order they are added.
    pub fn push_empty(&mut self) {
        self.start.push(0);
        self.len.push(0);
    }

    pub fn get(&self, slot: u32) -> &[T] {
        let s = slot as usize;
        let start = self.start[s] as usize;
        &self.data[start..start + self.len[s] as usize]
    }

    pub fn set(&mut self, slot: u32, value: &[T]) {
        let s = slot as usize;
        let old = self.len[s] as usize;
        // Values are bounded far below 4 GiB (a search text is at most a few hundred KB).
        let new = u32::try_from(value.len()).expect("an index value under 4 GiB");
        if value.len() <= old {
            let start = self.start[s] as usize;
            self.data[start..start + value.len()].copy_from_slice(value);
            self.garbage += old - value.len();
        } else {
            self.start[s] = self.data.len() as u64;
            self.data.extend_from_slice(value);
            self.garbage += old;
        }
        self.len[s] = new;
        if self.garbage > MIN_COMPACT && self.garbage > self.data.len() / 2 {
            self.compact();
        }
    }

    /// Rewrites the buffer with only the values slots point at, in slot order.
    fn compact(&mut self) {
        let mut data = Vec::with_capacity(self.data.len() - self.garbage);
        for s in 0..self.start.len() {
            let start = self.start[s] as usize;
            self.start[s] = data.len() as u64;
            data.extend_from_slice(&self.data[start..start + self.len[s] as usize]);
        }
        self.data = data;
        self.garbage = 0;
    }

    /// Gives back what growing by doubling reserved (after the initial build).
    pub fn shrink_to_fit(&mut self) {
        self.data.shrink_to_fit();
        self.start.shrink_to_fit();
        self.len.shrink_to_fit();
    }

    /// Bytes held: the values (with garbage and spare capacity) and the per-slot spans.
    pub fn heap_bytes(&self) -> u64 {
        (self.data.capacity() * std::mem::size_of::<T>()
            + self.start.capacity() * 8
            + self.len.capacity() * 4) as u64
    }

    /// Bytes of the values alone (what boxed values would hold without their overheads).
    #[cfg(test)]
    fn live(&self) -> usize {
        self.data.len() - self.garbage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_growing_shrinking_and_rewrites() {
        let mut a: Arena<u8> = Arena::default();
        let n = 1000u32;
        for _ in 0..n {
            a.push_empty();
        }
        let value = |s: u32, round: u32| -> Vec<u8> {
            let len = ((s * 7 + round * 13) % 200) as usize;
            (0..len).map(|i| (i as u32 + s + round) as u8).collect()
        };
        // Enough rounds of changes that the buffer is rewritten several times.
        for round in 0..400 {
            for s in (round % 3..n).step_by(3) {
                a.set(s, &value(s, round));
            }
        }
        let mut expected_live = 0;
        for s in 0..n {
            let last = (0..400).rev().find(|r| s >= r % 3 && (s - r % 3) % 3 == 0);
            let want = last.map(|r| value(s, r)).unwrap_or_default();
            assert_eq!(a.get(s), &want[..], "slot {s}");
            expected_live += want.len();
        }
        assert_eq!(a.live(), expected_live);
        assert!(
            a.data.len() <= 2 * expected_live + MIN_COMPACT,
            "garbage is bounded: {} held for {expected_live}",
            a.data.len()
        );
        a.set(5, &[]);
        assert_eq!(a.get(5), &[] as &[u8]);
    }
}
