//! `kith import contacts`, `kith export contacts` and `kith bench import`: the command-line
//! ends of the store's CSV import and export (kith-store `import.rs`, `export.rs`).

use anyhow::Context;
use futures::StreamExt;
use kith_core::filter::{search_term, tag_key, ListFilter, Sort};
use kith_core::timeline::Actor;
use kith_core::{ListId, OrgId, Status};
use kith_store::{ImportError, ImportOptions, ImportSummary, NewOrg, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `FILE.errors.csv` beside `FILE.csv`.
pub fn default_errors_path(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    file.with_file_name(format!("{stem}.errors.csv"))
}

/// Imports `file` with a progress bar on stderr; answers the summary or the error to print.
pub async fn import(
    store: &Store,
    org: &OrgId,
    file: &Path,
    errors: PathBuf,
    start_line: u64,
    show_progress: bool,
) -> Result<ImportSummary, ImportError> {
    let bar = if show_progress {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} importing [{bar:30}] {pos}/{len} rows ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // Ctrl-C stops after the current batch, which commits: the summary says where to resume.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let opts = ImportOptions {
        actor: Actor::System,
        errors_path: errors,
        start_line,
        stop: Some(&stop),
    };
    let done = store
        .org(org)
        .import_csv(file, &opts, &mut |p| {
            bar.set_length(p.rows_total);
            bar.set_position(p.rows_done);
        })
        .await;
    watcher.abort();
    bar.finish_and_clear();
    done
}

/// Prints the outcome as the SPEC asks: one JSON line with `--json`, words otherwise. Fails
/// (non-zero exit) when the file was refused or the import stopped.
pub fn report(outcome: Result<ImportSummary, ImportError>, json: bool) -> anyhow::Result<()> {
    match outcome {
        Ok(s) => {
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!(
                    "Imported {} rows: {} created, {} updated, {} unchanged, {} rejected.",
                    s.rows_read, s.created, s.updated, s.unchanged, s.rejected
                );
                if let Some(p) = &s.errors_file {
                    println!("Rejected rows, with the reason, are in {}", p.display());
                }
            }
            Ok(())
        }
        Err(e) => {
            if json {
                let mut out = serde_json::json!({ "error": e.to_string() });
                if let ImportError::Stopped {
                    summary,
                    resume_line,
                    ..
                } = &e
                {
                    out["summary"] = serde_json::to_value(summary)?;
                    out["resume_line"] = (*resume_line).into();
                }
                println!("{out}");
            }
            Err(anyhow::anyhow!(e))
        }
    }
}

/// What `kith export contacts` selects.
pub struct ExportArgs {
    pub list: Option<String>,
    pub status: Option<String>,
    pub tags: Vec<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
    pub out: Option<PathBuf>,
}

/// Writes the CSV of the selected contacts to `--out` (or stdout); answers the rows written.
pub async fn export(store: &Store, org: &OrgId, a: ExportArgs) -> anyhow::Result<u64> {
    let mut filter = ListFilter::default();
    if let Some(s) = &a.status {
        filter.status.push(
            Status::parse(s.trim()).ok_or_else(|| anyhow::anyhow!("--status: lead or customer"))?,
        );
    }
    for t in &a.tags {
        filter.tags_all.push(tag_key("tag", t)?);
    }
    if let Some(q) = &a.q {
        filter.q.extend(search_term("q", q)?);
    }
    if let Some(list) = &a.list {
        let saved = store
            .org(org)
            .list_filter(&ListId::new(list.trim()))
            .await
            .with_context(|| format!("no list {list} in organization {org}"))?;
        filter = saved.and(filter);
    }
    let sort = match &a.sort {
        Some(s) => Sort::parse(s)?,
        None => Sort::default(),
    };
    let mut out: Box<dyn Write + Send> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut lines = 0u64;
    let mut chunks = std::pin::pin!(store.export_csv(org.clone(), filter, sort));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.context("reading contacts")?;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        out.write_all(&chunk)?;
    }
    out.flush()?;
    // Newlines inside quoted cells would count too; the header is not a contact.
    Ok(lines.saturating_sub(1))
}

/// `kith bench import`: a generated file of `rows` contacts imported into a fresh SQLite
/// database; prints rows/s.
pub async fn bench_import(rows: u64, json: bool) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("kith-bench-import-{}", kith_store::new_id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("contacts.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file)?);
        writeln!(
            w,
            "user_id,email,first name,last name,phone,company,tags,plan,city"
        )?;
        for i in 0..rows {
            writeln!(
                w,
                "u{i},person{i}@example.com,First{i},Last{i},+1415555{:04},Company {},\"trial, t{}\",{},City {}",
                i % 10_000,
                i % 997,
                i % 50,
                ["free", "pro", "team"][(i % 3) as usize],
                i % 301
            )?;
        }
        w.flush()?;
    }
    let bytes = std::fs::metadata(&file)?.len();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let store = Store::open_with(&url, 4, kith_store::Access::Bulk).await?;
    let creds = store
        .create_org(&NewOrg {
            name: "Bench".into(),
            admin_email: "bench@localhost".into(),
            website_name: "Bench".into(),
        })
        .await?;
    let org = creds.org_id.clone();
    let started = std::time::Instant::now();
    let summary = import(&store, &org, &file, dir.join("errors.csv"), 0, !json).await;
    let secs = started.elapsed().as_secs_f64();
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let summary = summary?;
    anyhow::ensure!(
        summary.created == rows,
        "expected {rows} created, got {summary:?}"
    );
    let rate = rows as f64 / secs;
    if json {
        println!(
            "{}",
            serde_json::json!({"rows": rows, "bytes": bytes, "seconds": secs, "rows_per_second": rate})
        );
    } else {
        println!(
            "Imported {rows} rows ({:.1} MiB) into a fresh SQLite database in {secs:.2} s: {rate:.0} rows/s.",
            bytes as f64 / 1048576.0
        );
    }
    Ok(())
}
