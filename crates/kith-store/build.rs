// `sqlx::migrate!` reads the migration directories at compile time; without this, cargo does not
// rebuild the crate when a migration is added, and a binary silently lacks it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
