//! Opening a SQLite store configures the process's SQLite before it initializes
//! (`lite::configure_process`): memory statistics off, so SQLite's allocations take no global
//! mutex. A file of its own, so this process touches SQLite first through `Store::open`.

use kith_store::Store;
use kith_testkit::{Backend, TestDb};

#[tokio::test]
async fn a_sqlite_store_turns_sqlite_memory_statistics_off() {
    let db = TestDb::new(Backend::Sqlite).await;
    // Opening migrates the new file and keeps pooled connections open.
    let store = Store::open(&db.url).await.expect("open");
    // SQLite counts the memory it holds only while the statistics are on; with connections
    // open, the count is far from zero then.
    // SAFETY: reads one counter.
    let counted = unsafe { rusqlite::ffi::sqlite3_memory_used() };
    assert_eq!(counted, 0, "SQLite's memory statistics are on");
    store.close().await;
}
