//! `kith backup --db URL --out FILE`: a consistent copy of the database while it is served.
//!
//! SQLite: `VACUUM INTO` through the store (see `Store::backup_sqlite` and the choice in
//! docs/architecture.md); the copy is a complete database file that `kith serve --db
//! sqlite:///path/to/copy.db` serves as it is. PostgreSQL: `pg_dump` is the right tool and is
//! not reimplemented; it is run when it is on the PATH, and otherwise the exact commands are
//! printed and the command fails.

use anyhow::{bail, Context};
use kith_store::Store;
use std::path::Path;
use std::process::Command;

pub async fn run(store: &Store, url: &str, out: &Path, json: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let bytes = match store.backend_name() {
        "sqlite" => store
            .backup_sqlite(out)
            .await
            .with_context(|| format!("backing up to {}", out.display()))?,
        _ => pg_dump(url, out)?,
    };
    let ms = started.elapsed().as_millis() as u64;
    if json {
        println!(
            "{}",
            serde_json::json!({"out": out.display().to_string(), "bytes": bytes, "ms": ms,
                                "backend": store.backend_name()})
        );
    } else {
        println!(
            "Backed up {} to {} ({bytes} bytes, {ms} ms).",
            store.url_redacted(),
            out.display()
        );
        if store.backend_name() == "postgres" {
            println!("Restore with:\n{}", restore_commands(url, out));
        } else {
            println!(
                "Restore: stop the server, copy the file to where --db points (or point --db at \
                 it: sqlite://{}), start it.",
                out.display()
            );
        }
    }
    Ok(())
}

/// Runs `pg_dump` in its custom format into a temporary name beside `out`, then moves it
/// there, so `out` is never a partial dump.
fn pg_dump(url: &str, out: &Path) -> anyhow::Result<u64> {
    if out.exists() {
        bail!("{} already exists; name a new file", out.display());
    }
    let guidance = || {
        format!(
            "Back up PostgreSQL with its own tool, then restore into a new database:\n  \
             pg_dump --format=custom --no-owner --file={} --dbname='{}'\n{}",
            out.display(),
            kith_store::redact_url(url),
            restore_commands(url, out)
        )
    };
    let partial = out.with_file_name(format!(
        ".{}.partial-{}",
        out.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    // The URL goes to pg_dump as its argument (libpq reads the same URL syntax); a password
    // in it is visible to local users in the process list meanwhile: prefer ~/.pgpass.
    let status = Command::new("pg_dump")
        .arg("--format=custom")
        .arg("--no-owner")
        .arg(format!("--file={}", partial.display()))
        .arg(format!("--dbname={url}"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            let _ = std::fs::remove_file(&partial);
            bail!("pg_dump failed ({s}).\n{}", guidance());
        }
        Err(e) => bail!("pg_dump could not be run ({e}).\n{}", guidance()),
    }
    std::fs::rename(&partial, out)
        .with_context(|| format!("moving the dump to {}", out.display()))?;
    Ok(std::fs::metadata(out)?.len())
}

/// The commands that restore a dump of `url` into a new database beside it.
fn restore_commands(url: &str, out: &Path) -> String {
    let redacted = kith_store::redact_url(url);
    let base = redacted
        .split('?')
        .next()
        .unwrap_or(&redacted)
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(redacted.clone());
    format!(
        "  psql --dbname='{base}/postgres' -c 'CREATE DATABASE kith_restored'\n  \
         pg_restore --no-owner --dbname='{base}/kith_restored' {}\n  \
         kith serve --db '{base}/kith_restored'",
        out.display()
    )
}
