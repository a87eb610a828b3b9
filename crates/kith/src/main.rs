//! `kith`: the command line. `serve` runs the server; `org create` provisions an
//! organization. Every command takes `--db` and applies pending migrations first.

mod backup;
mod bench;
mod bench_ingest;
mod bench_panel;
mod csv_cmd;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kith_core::{OrgId, WebsiteId};
use kith_server::state::AppState;
use kith_server::webhooks::WebhookConfig;
use kith_server::{realtime::Bus, Config, Limits};
use kith_store::{Access, NewOrg, Store, DEFAULT_DATABASE_URL, DEFAULT_POOL_SIZE};
use std::net::IpAddr;
use std::time::Duration;

// Many small allocations freed on other threads (requests, JSON, the write path): see the
// workspace Cargo.toml and docs/benchmarks.md ("Ingest").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kith",
    version,
    about = "Kith: self-hosted live chat whose heart is a contacts CRM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArg {
    /// Database URL: sqlite://relative.db, sqlite:///abs/path.db or postgres://user@host/db.
    #[arg(long = "db", env = "KITH_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Manage websites.
    Website {
        #[command(subcommand)]
        command: WebsiteCommand,
    },
    /// Add synthetic contacts, conversations and messages to an organization.
    Seed {
        /// How many contacts to add.
        #[arg(long)]
        contacts: u64,
        /// The organization (see `kith org create`).
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: DbArg,
        /// Random seed: the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write a consistent copy of the database while it is served (SQLite; PostgreSQL: pg_dump).
    Backup {
        #[command(flatten)]
        db: DbArg,
        /// The new file to write (must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Import contacts from a CSV file (see docs/import-export.md).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Export contacts as CSV (the columns import reads back).
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Create or update contacts from a CSV file: matched by user_id, then email; rejected rows
    /// go, with the reason, to the errors file.
    Contacts {
        /// The CSV file (UTF-8, a header row first).
        file: std::path::PathBuf,
        /// The organization to import into.
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: DbArg,
        /// Where rejected rows go (default: FILE.errors.csv beside the file).
        #[arg(long)]
        errors: Option<std::path::PathBuf>,
        /// Skip the rows before this line of the file (to resume a stopped import).
        #[arg(long, default_value_t = 0)]
        start_line: u64,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Write the contacts of a list and/or filter as CSV.
    Contacts {
        /// The organization.
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: DbArg,
        /// A list id: all, leads, customers or a custom list's id.
        #[arg(long)]
        list: Option<String>,
        /// lead or customer.
        #[arg(long)]
        status: Option<String>,
        /// Contacts with this tag (may repeat: all of them).
        #[arg(long)]
        tag: Vec<String>,
        /// A case-insensitive substring of name, email, phone, company, user_id or metadata.
        #[arg(long)]
        q: Option<String>,
        /// last_seen_at, created_at or name; a leading - for descending (default -last_seen_at).
        #[arg(long)]
        sort: Option<String>,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Import a generated CSV of `--rows` contacts into a fresh SQLite database; prints rows/s.
    Import {
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },

    /// Time a fixed mix of list queries (page + exact count) against a seeded organization.
    Lists {
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: DbArg,
        /// Timed runs per query shape.
        #[arg(long, default_value_t = 100)]
        iterations: usize,
        /// Ask through HTTP, as the panel does (`GET /api/v1/contacts` of a server on
        /// 127.0.0.1 in this process), instead of calling the store.
        #[arg(long)]
        http: bool,
        /// With --http: this many clients ask at once, each `--iterations` times per shape
        /// (several people in the panel); percentiles are over all their requests.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },

    /// Time what a contact's page reads (the profile, the first timeline page, the first page
    /// of conversations) for contacts sampled at random from a seeded organization.
    Contact {
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: DbArg,
        /// Contacts sampled; each is read once per call timed.
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },

    /// Visitor traffic over HTTP against `kith serve` processes started for the run, on a
    /// seeded organization: messages/s, latency, errors, peak RSS, the /healthz rate beside
    /// it, and a check that the stored data equals what was acknowledged.
    Ingest {
        #[command(flatten)]
        db: DbArg,
        /// The seeded organization (`kith org create`, then `kith seed`).
        #[arg(long)]
        org: String,
        /// Concurrent clients (each sends its next request when the last one answered).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds of the mix.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Returning visitors created before the mix.
        #[arg(long, default_value_t = 2000)]
        warmup: usize,
        /// Seconds of /healthz under the same generator.
        #[arg(long, default_value_t = 5.0)]
        healthz_seconds: f64,
        /// `kith serve` processes (PostgreSQL only; requests alternate between them).
        #[arg(long, default_value_t = 1)]
        servers: usize,
        /// Database connections per server.
        #[arg(long, default_value_t = DEFAULT_POOL_SIZE)]
        db_connections: u32,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },

    /// Measure the admin panel in headless Chromium (through chromedriver): navigation to
    /// the contacts page until interactive, search keystroke until the rows show, and the
    /// page's transferred bytes, against an in-process server over a seeded organization.
    Panel {
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: DbArg,
        /// Timed navigations.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Rounds of the typed search terms (each key typed and erased is one sample).
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// The chromedriver executable.
        #[arg(long, default_value = "chromedriver")]
        chromedriver: String,
        /// The Chromium executable (default: /usr/bin/chromium when present).
        #[arg(long)]
        chromium: Option<String>,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArg,
    /// Address to listen on.
    #[arg(long, env = "KITH_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Largest request body in bytes (0: no limit).
    #[arg(long, env = "KITH_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// New visitor sessions per client IP per minute (0: no limit).
    #[arg(long, env = "KITH_RATE_SESSIONS_PER_IP", default_value_t = 600)]
    rate_sessions_per_ip: u32,
    /// Widget calls per visitor per second, bursts of three times that (0: no limit).
    #[arg(long, env = "KITH_RATE_VISITOR", default_value_t = 10)]
    rate_visitor: u32,
    /// Admin API calls per token per second, bursts of three times that (0: no limit).
    #[arg(long, env = "KITH_RATE_ADMIN", default_value_t = 100)]
    rate_admin: u32,
    /// Failed authentications (bad API token, unknown website key, forged visitor token) per
    /// client IP per second, bursts of three times that; past it the IP gets 429 (0: no limit).
    #[arg(long, env = "KITH_RATE_FAILED_AUTH", default_value_t = 10)]
    rate_failed_auth: u32,
    /// Open widget event streams per visitor (0: no cap).
    #[arg(long, env = "KITH_MAX_STREAMS_PER_VISITOR", default_value_t = 3)]
    max_streams_per_visitor: u32,
    /// Open widget event streams per client IP (0: no cap).
    #[arg(long, env = "KITH_MAX_STREAMS_PER_IP", default_value_t = 20)]
    max_streams_per_ip: u32,
    /// Open admin event streams per API token (0: no cap).
    #[arg(long, env = "KITH_MAX_STREAMS_PER_TOKEN", default_value_t = 20)]
    max_streams_per_token: u32,
    /// Admin-panel sign-in attempts per client IP and email per minute (0: no limit).
    #[arg(long, env = "KITH_RATE_SIGNIN", default_value_t = 10)]
    rate_signin: u32,
    /// Comma-separated proxy addresses whose X-Forwarded-For is believed.
    #[arg(long, env = "KITH_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<IpAddr>,
    /// Turn off the demo page (/demo), which shows the widget of the first organization's
    /// first website and identifies `demo-…` test users.
    #[arg(long, env = "KITH_DISABLE_DEMO")]
    disable_demo: bool,
    /// Database connections in the pool.
    #[arg(long, env = "KITH_DB_CONNECTIONS", default_value_t = DEFAULT_POOL_SIZE)]
    db_connections: u32,
    /// Delay before a failed webhook delivery's first retry, in milliseconds; doubled per
    /// failure (with jitter) up to --webhook-retry-cap-ms.
    #[arg(long, env = "KITH_WEBHOOK_RETRY_BASE_MS", default_value_t = 10_000)]
    webhook_retry_base_ms: u64,
    /// Longest delay between two attempts of a webhook delivery, in milliseconds.
    #[arg(long, env = "KITH_WEBHOOK_RETRY_CAP_MS", default_value_t = 6 * 3600 * 1000)]
    webhook_retry_cap_ms: u64,
    /// Attempts before a webhook delivery is marked failed.
    #[arg(long, env = "KITH_WEBHOOK_MAX_ATTEMPTS", default_value_t = 12)]
    webhook_max_attempts: u32,
    /// Connect and total timeout of one webhook attempt, in milliseconds.
    #[arg(long, env = "KITH_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    webhook_timeout_ms: u64,
    /// Days delivered webhook deliveries stay in the delivery log (0: kept forever).
    #[arg(long, env = "KITH_WEBHOOK_KEEP_DAYS", default_value_t = 7)]
    webhook_keep_days: u64,
    /// How long a deliverer's claim on a webhook delivery lasts, in milliseconds (at least the
    /// timeout + 1 s): after a crash, the deliveries it was sending go out again once their
    /// claims expire.
    #[arg(long, env = "KITH_WEBHOOK_LEASE_MS", default_value_t = 60_000)]
    webhook_lease_ms: u64,
    /// How often the webhook outbox is polled for deliveries other processes enqueued, in
    /// milliseconds (this process's own wake the deliverer at once).
    #[arg(long, env = "KITH_WEBHOOK_POLL_MS", default_value_t = 1_000)]
    webhook_poll_ms: u64,
    /// Do not deliver webhooks from this process (others on the same database still do).
    #[arg(long, env = "KITH_WEBHOOK_NO_DELIVERY")]
    webhook_no_delivery: bool,
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization with one website, one admin and one API token.
    Create {
        /// The organization's name.
        name: String,
        #[command(flatten)]
        db: DbArg,
        /// The first admin's email.
        #[arg(long, default_value = "admin@localhost")]
        admin_email: String,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WebsiteCommand {
    /// Make a new identity secret current and print it (once). The old secret keeps verifying
    /// user_hashes and identity tokens until it is retired (admin API:
    /// POST /api/v1/websites/{id}/retire-previous-secret). Written to the audit log.
    RotateSecret {
        /// The website's id (see GET /api/v1/websites).
        #[arg(long)]
        website: String,
        /// The organization the website belongs to.
        #[arg(long)]
        org: String,
        #[command(flatten)]
        db: DbArg,
        /// Print exactly one line: a JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KITH_LOG")
                .unwrap_or_else(|_| "info,sqlx=error,tower_http=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Seed {
            contacts,
            org,
            db,
            seed,
        } => {
            let store = open(&db.url, 4, Access::Bulk).await?;
            let started = std::time::Instant::now();
            let r = store
                .org(&OrgId::new(&org))
                .seed(contacts, seed)
                .await
                .with_context(|| format!("seeding organization {org}"))?;
            println!(
                "Added {} contacts, {} conversations, {} messages, {} timeline entries in {:.1} s.",
                r.contacts,
                r.conversations,
                r.messages,
                r.timeline_entries,
                started.elapsed().as_secs_f64()
            );
            store.close().await;
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Contacts {
                    file,
                    org,
                    db,
                    errors,
                    start_line,
                    json,
                },
        } => {
            // Bulk: on SQLite this process owns the database while it writes many contacts
            // (a running server's contact index would not see them; use the panel's upload).
            let store = open(&db.url, 4, Access::Bulk).await?;
            let errors = errors.unwrap_or_else(|| csv_cmd::default_errors_path(&file));
            let outcome =
                csv_cmd::import(&store, &OrgId::new(&org), &file, errors, start_line, true).await;
            store.close().await;
            csv_cmd::report(outcome, json)
        }
        Command::Export {
            command:
                ExportCommand::Contacts {
                    org,
                    db,
                    list,
                    status,
                    tag,
                    q,
                    sort,
                    out,
                },
        } => {
            // Shared: an export only reads, so it may run beside a server.
            let store = open(&db.url, 2, Access::Shared).await?;
            let to_file = out.is_some();
            let written = csv_cmd::export(
                &store,
                &OrgId::new(&org),
                csv_cmd::ExportArgs {
                    list,
                    status,
                    tags: tag,
                    q,
                    sort,
                    out,
                },
            )
            .await;
            store.close().await;
            let rows = written?;
            if to_file {
                eprintln!("Exported {rows} contacts.");
            }
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Import { rows, json },
        } => csv_cmd::bench_import(rows.max(1), json).await,
        Command::Bench {
            command:
                BenchCommand::Lists {
                    org,
                    db,
                    iterations,
                    http,
                    clients,
                    json,
                },
        } => {
            let started = std::time::Instant::now();
            let store = open(&db.url, 4, Access::Serve).await?;
            store.contact_index_ready().await?;
            let opened = started.elapsed();
            let via = if http {
                bench::Via::Http
            } else {
                bench::Via::Store
            };
            bench::lists(
                &store,
                &OrgId::new(&org),
                iterations.max(1),
                json,
                opened,
                via,
                clients.max(1),
            )
            .await?;
            store.close().await;
            Ok(())
        }
        Command::Bench {
            command:
                BenchCommand::Contact {
                    org,
                    db,
                    iterations,
                    json,
                },
        } => {
            // Reads by primary key and the per-contact indexes: no contact index needed.
            let store = open(&db.url, 4, Access::Shared).await?;
            bench::contact(&store, &OrgId::new(&org), iterations.max(1), json).await?;
            store.close().await;
            Ok(())
        }
        Command::Bench {
            command:
                BenchCommand::Ingest {
                    db,
                    org,
                    concurrency,
                    duration,
                    warmup,
                    healthz_seconds,
                    servers,
                    db_connections,
                    json,
                },
        } => {
            bench_ingest::run(bench_ingest::IngestArgs {
                db: db.url,
                org,
                concurrency: concurrency.max(1),
                duration: std::time::Duration::from_secs_f64(duration.max(0.1)),
                warmup: warmup.max(1),
                healthz: std::time::Duration::from_secs_f64(healthz_seconds.max(0.1)),
                servers,
                db_connections,
                json,
            })
            .await
        }
        Command::Bench {
            command:
                BenchCommand::Panel {
                    org,
                    db,
                    runs,
                    rounds,
                    chromedriver,
                    chromium,
                    json,
                },
        } => {
            let store = open(&db.url, DEFAULT_POOL_SIZE, Access::Serve).await?;
            store.contact_index_ready().await?;
            let opts = bench_panel::Options {
                runs: runs.max(1),
                rounds: rounds.max(1),
                chromedriver,
                chromium,
                json,
            };
            let done = bench_panel::panel(store.clone(), &OrgId::new(&org), &opts).await;
            store.close().await;
            done.map(|_| ())
        }
        Command::Backup { db, out, json } => {
            // Shared: a backup runs beside a serving process and writes nothing.
            let store = open(&db.url, 1, Access::Shared).await?;
            let done = backup::run(&store, &db.url, &out, json).await;
            store.close().await;
            done
        }
        Command::Website {
            command:
                WebsiteCommand::RotateSecret {
                    website,
                    org,
                    db,
                    json,
                },
        } => {
            // Shared: like `org create`, it writes no contacts and may run beside a server.
            let store = open(&db.url, 1, Access::Shared).await?;
            let rotated = store
                .org(&OrgId::new(&org))
                .rotate_identity_secret(&WebsiteId::new(&website), "cli")
                .await;
            store.close().await;
            let w = match rotated {
                Err(kith_store::StoreError::NotFound) => {
                    anyhow::bail!("no website {website} in organization {org}")
                }
                other => other.context("rotating the identity secret")?,
            };
            if json {
                let out = serde_json::json!({
                    "website_id": w.id.as_str(),
                    "identity_secret": w.identity_secret,
                    "previous_secret_active": w.previous_identity_secret.is_some(),
                });
                println!("{out}");
            } else {
                println!("Identity secret of website {} rotated.", w.id);
                println!("  New identity secret:  {}", w.identity_secret);
                println!(
                    "The previous secret keeps verifying until you retire it \
                     (POST /api/v1/websites/{}/retire-previous-secret).",
                    w.id
                );
            }
            Ok(())
        }
        Command::Org {
            command:
                OrgCommand::Create {
                    name,
                    db,
                    admin_email,
                    json,
                },
        } => {
            let store = open(&db.url, 4, Access::Shared).await?;
            let creds = store
                .create_org(&NewOrg {
                    name: name.clone(),
                    admin_email,
                    website_name: format!("{name} website"),
                })
                .await
                .context("creating the organization")?;
            if json {
                println!("{}", serde_json::to_string(&creds)?);
            } else {
                print_credentials(&name, &creds);
            }
            store.close().await;
            Ok(())
        }
    }
}

async fn open(url: &str, connections: u32, access: Access) -> anyhow::Result<Store> {
    Store::open_with(url, connections, access)
        .await
        .with_context(|| format!("opening the database {}", kith_store::redact_url(url)))
}

fn print_credentials(name: &str, c: &kith_store::Credentials) {
    println!("Organization {name:?} created ({}).", c.org_id);
    println!(
        "  Admin sign-in:    {} / {}",
        c.admin_email, c.admin_password
    );
    println!("  API token:        {}", c.api_token);
    println!("  Website key:      {}", c.website_key);
    println!("  Identity secret:  {}", c.identity_secret);
    println!("These secrets are shown once; the token and password are stored hashed.");
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before the store opens: it records transaction retries and the index build.
    kith_server::metrics::handle();
    let store = open(&args.db.url, args.db_connections, Access::Serve).await?;
    if store.count_orgs().await? == 0 {
        let creds = store
            .create_org(&NewOrg {
                name: "My organization".into(),
                admin_email: "admin@localhost".into(),
                website_name: "My website".into(),
            })
            .await
            .context("creating the first organization")?;
        println!("First start on an empty database: created an organization.");
        print_credentials("My organization", &creds);
        println!(
            "Call the admin API with: curl -H 'Authorization: Bearer {}' http://{}/api/v1/contacts",
            creds.api_token, args.listen
        );
        if !args.disable_demo {
            println!(
                "See the chat widget at http://{}/demo (install it with <script src=\"http://{}/widget.js\" data-website=\"{}\" async></script>)",
                args.listen, args.listen, creds.website_key
            );
        }
    }
    let config = Config {
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            sessions_per_ip_per_minute: args.rate_sessions_per_ip,
            visitor_per_second: args.rate_visitor,
            admin_per_second: args.rate_admin,
            failed_auth_per_ip_per_second: args.rate_failed_auth,
            streams_per_visitor: args.max_streams_per_visitor,
            streams_per_ip: args.max_streams_per_ip,
            streams_per_token: args.max_streams_per_token,
            signin_per_minute: args.rate_signin,
        },
        trusted_proxies: args.trusted_proxies.clone(),
        disable_demo: args.disable_demo,
        webhooks: WebhookConfig {
            deliver: !args.webhook_no_delivery,
            retry_base: Duration::from_millis(args.webhook_retry_base_ms.max(1)),
            retry_cap: Duration::from_millis(args.webhook_retry_cap_ms.max(1)),
            max_attempts: args.webhook_max_attempts.max(1),
            timeout: Duration::from_millis(args.webhook_timeout_ms.max(1)),
            keep_delivered: Duration::from_secs(args.webhook_keep_days * 86_400),
            lease: Duration::from_millis(args.webhook_lease_ms.max(1)),
            poll: Duration::from_millis(args.webhook_poll_ms.max(1)),
            ..WebhookConfig::default()
        },
    };
    tracing::info!(
        database = store.url_redacted(),
        listen = %args.listen,
        max_body_bytes = args.max_body_bytes,
        rate_sessions_per_ip = args.rate_sessions_per_ip,
        rate_visitor = args.rate_visitor,
        rate_admin = args.rate_admin,
        rate_signin = args.rate_signin,
        rate_failed_auth = args.rate_failed_auth,
        max_streams_per_visitor = args.max_streams_per_visitor,
        max_streams_per_ip = args.max_streams_per_ip,
        max_streams_per_token = args.max_streams_per_token,
        trusted_proxies = ?args.trusted_proxies,
        webhook_retry_base_ms = args.webhook_retry_base_ms,
        webhook_max_attempts = args.webhook_max_attempts,
        webhook_delivery = !args.webhook_no_delivery,
        "starting kith"
    );
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Admin panel: http://{addr}/ (sign in with an admin's email and password)");
    println!("Kith is listening on http://{addr} (API docs: http://{addr}/api/openapi.json)");
    let state = AppState::new(store.clone(), Bus::new(), config);
    kith_server::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
