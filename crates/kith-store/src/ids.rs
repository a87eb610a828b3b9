//! Ids, secrets and the clock.

use rand::RngCore;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

static ULIDS: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A new opaque id: a lower-case ULID. Ids sort by creation time and are strictly increasing
/// within a process, so "newest first" and cursors can order by id.
pub fn new_id() -> String {
    let mut guard = ULIDS.lock().unwrap_or_else(|e| e.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    let id = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    id.to_string().to_lowercase()
}

/// `bytes` random bytes from the OS generator, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}
