//! The `promptlog` binary: parse the command line, load config, hand off to the library.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use promptlog::auth::{Scope, keys};
use promptlog::config::{Config, LogFormat};
use promptlog::storage::clickhouse::{Store, grants, schema};
use tokio_util::sync::CancellationToken;

/// mimalloc: allocation dominates the per-span work, and glibc's allocator was half of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "promptlog", version, about = "Log every LLM call your apps make, from OpenTelemetry to ClickHouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive OTLP and write to ClickHouse (applies migrations first).
    Serve(ConfigArg),
    /// Apply ClickHouse migrations and exit.
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
        /// Print every statement the migrations run on an empty database (single-server or, with
        /// `clickhouse.cluster`, cluster DDL) instead of running them; needs no ClickHouse.
        #[arg(long)]
        print: bool,
    },
    /// Create or update the ClickHouse roles and users (collector writer, Grafana reader,
    /// per-project readers with row policies) from the `access` config; needs an admin account.
    Grants {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the SQL (passwords hidden) instead of running it; needs no ClickHouse.
        #[arg(long)]
        print: bool,
        /// Print the same accounts as a users.xml snippet (for `users.d/`, passwords as SHA-256)
        /// instead, for servers whose accounts are managed in files.
        #[arg(long, conflicts_with = "print")]
        users_xml: bool,
        /// ClickHouse user allowed to manage access (CREATE USER/ROLE, GRANT … WITH GRANT OPTION).
        #[arg(long, env = "PROMPTLOG_CLICKHOUSE_ADMIN_USER", default_value = "default")]
        admin_user: String,
        /// Its password (prefer the environment variable: arguments are visible in `ps`).
        #[arg(long, env = "PROMPTLOG_CLICKHOUSE_ADMIN_PASSWORD", default_value = "", hide_env_values = true)]
        admin_password: String,
    },
    /// Validate the configuration (file + environment) and print it.
    CheckConfig(ConfigArg),
    /// Generate an API key and print it with its key-file entry (the file stores only the hash).
    Keygen {
        /// The project the key's rows belong to.
        #[arg(long)]
        project: String,
        /// Key id (shown in logs and metrics); default `<project>-<date>-<4 hex>`.
        #[arg(long)]
        id: Option<String>,
        /// Comma-separated scopes: ingest, feedback, read.
        #[arg(long, value_delimiter = ',', default_value = "ingest")]
        scopes: Vec<String>,
        /// When the key stops working: RFC 3339 (2027-06-30T00:00:00Z) or a date (midnight UTC).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Work with dead-letter files (batches ClickHouse refused for good).
    #[command(subcommand)]
    DeadLetter(DeadLetterCommand),
    /// Compute the cost of stored calls again (after the price data or `pricing.overrides` changed)
    /// and update the rows whose cost changes (a ClickHouse mutation per batch; see README "Cost").
    Reprice {
        #[command(flatten)]
        config: ConfigArg,
        /// First call start included: RFC 3339 (2026-11-30T00:00:00Z) or a duration ago (24h, 7d).
        #[arg(long)]
        since: String,
        /// First call start excluded, same forms; default now.
        #[arg(long)]
        until: Option<String>,
        /// Report what would change without updating anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// The read commands: `calls`, `show`, `session`, `tail`, `export` (see `promptlog::explore::cli`).
    #[command(flatten)]
    Explore(promptlog::explore::cli::Command),
    /// Send sample LLM calls, in every supported encoding, to a running collector.
    Demo {
        /// OTLP/gRPC endpoint of the collector.
        #[arg(long, default_value = "http://127.0.0.1:4317")]
        endpoint: String,
        /// Rounds of calls to send (each round sends one call per encoding).
        #[arg(long, default_value_t = 1)]
        rounds: u32,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// Print the JSON lines of sealed dead-letter files (`*.jsonl.sealed`, written while spool
    /// encryption is on), using the configured `spool.encryption_key_file`.
    Decrypt {
        #[command(flatten)]
        config: ConfigArg,
        /// Sealed dead-letter files, printed one after another.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ConfigArg {
    /// YAML config file (see collector-config/promptlog.yaml); environment overrides apply on top.
    #[arg(long, env = "PROMPTLOG_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(arg) => serve(&arg).await,
        Command::Migrate { config: arg, print } => {
            let config = load(&arg)?;
            if print {
                let ch = &config.clickhouse;
                let cluster = Some(ch.cluster.as_str()).filter(|c| !c.is_empty());
                let plan = schema::Plan::for_settings(&ch.database, ch.retention_days, &ch.storage_policy, cluster)?;
                for statement in plan.all_statements()? {
                    println!("{statement};\n");
                }
                return Ok(());
            }
            let applied = schema::migrate(&Store::try_new(&config.clickhouse)?).await?;
            println!("applied {} migration(s): {applied:?}", applied.len());
            Ok(())
        }
        Command::Grants { config, print, users_xml, admin_user, admin_password } => {
            grants(&load(&config)?, print, users_xml, admin_user, admin_password).await
        }
        Command::CheckConfig(arg) => check_config(&arg),
        Command::Keygen { project, id, scopes, expires } => keygen(&project, id.as_deref(), &scopes, expires),
        Command::DeadLetter(DeadLetterCommand::Decrypt { config, files }) => decrypt(&config, &files),
        Command::Reprice { config, since, until, dry_run } => reprice(&load(&config)?, &since, until, dry_run).await,
        Command::Explore(command) => {
            init_tracing("warn", LogFormat::Text);
            if let Err(e) = command.run().await {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code().into());
            }
            Ok(())
        }
        Command::Demo { endpoint, rounds } => {
            init_tracing("info", LogFormat::Text);
            let sent = promptlog::demo::send(&endpoint, rounds).await?;
            println!("sent {sent} demo LLM calls to {endpoint}");
            Ok(())
        }
    }
}

/// `promptlog serve`: binds the listeners, then serves until SIGINT or SIGTERM.
async fn serve(arg: &ConfigArg) -> anyhow::Result<()> {
    let config = load(arg)?;
    disable_huge_pages();
    let listeners = promptlog::Listeners::bind(&config).await.context("cannot bind the OTLP listeners")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    Ok(promptlog::serve(config, listeners, shutdown).await?)
}

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` asks for them.
///
/// mimalloc advises huge pages for its arenas and returns freed memory in smaller pieces, so on a
/// kernel with THP in `madvise` or `always` mode the collector's allocation churn made the kernel
/// zero fresh 2 MiB pages over and over: 17–35 % of the collector's CPU was `clear_page_erms` under
/// `do_huge_pmd_anonymous_page` (`perf record -g`, chat-span load). Without huge pages the same load
/// ran at 82 instead of 110 µs/span with 60 % more spans/s (see the README's Performance section).
fn disable_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none()
        && let Err(e) = rustix::thread::disable_transparent_huge_pages(true)
    {
        tracing::warn!("cannot turn transparent huge pages off: {e}");
    }
}

/// `promptlog reprice`: prices the calls in the range with the configured data and overrides.
async fn reprice(config: &Config, since: &str, until: Option<String>, dry_run: bool) -> anyhow::Result<()> {
    use promptlog::pricing::reprice::{RepriceRange, parse_time, reprice};
    let now = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos())?;
    let since_ns = parse_time(since, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let until_ns = match until {
        Some(until) => parse_time(&until, now).map_err(|e| anyhow::anyhow!("--until: {e}"))?,
        None => now,
    };
    anyhow::ensure!(since_ns < until_ns, "--since must be before --until");
    // The rollup buckets of the range are rebuilt; a call written into them meanwhile would count twice.
    const HOUR_NS: i64 = 3_600_000_000_000;
    if !dry_run && until_ns > now - HOUR_NS {
        eprintln!(
            "note: --until is within the last hour; if collectors are writing, calls they write while the rollup buckets are rebuilt may be counted twice in the dashboards (use --until 1h or earlier)"
        );
    }
    let pricer = config.pricing.pricer()?;
    let store = Store::try_new(&config.clickhouse)?;
    let r = reprice(&store, &pricer, RepriceRange { since_ns, until_ns }, dry_run).await?;
    let verb = if dry_run { "would change" } else { "changed" };
    println!(
        "scanned {} call(s), {verb} {} ({} unpriced); counted cost {:.6} -> {:.6} USD; {} mutation(s)",
        r.scanned, r.changed, r.unpriced, r.before_usd, r.after_usd, r.mutations
    );
    Ok(())
}

/// `promptlog grants`: prints the access SQL (or users.xml), or applies it as the admin.
async fn grants(
    config: &Config,
    print: bool,
    users_xml: bool,
    admin_user: String,
    admin_password: String,
) -> anyhow::Result<()> {
    if users_xml {
        print!("{}", grants::users_xml(config)?);
        return Ok(());
    }
    let statements = grants::statements(config)?;
    if print {
        for s in &statements {
            println!("{};", s.shown);
        }
        return Ok(());
    }
    anyhow::ensure!(
        admin_user != config.clickhouse.user,
        "--admin-user must differ from clickhouse.user (the collector's own, least-privileged user)"
    );
    let mut admin = config.clickhouse.clone();
    admin.user = admin_user;
    admin.password = admin_password.into();
    admin.database = "default".into();
    grants::apply(&Store::new(&admin), &statements).await?;
    println!("applied {} access statement(s) as {}", statements.len(), admin.user);
    Ok(())
}

/// `promptlog check-config`: loads everything `serve` would load at start-up, and prints it.
fn check_config(arg: &ConfigArg) -> anyhow::Result<()> {
    init_tracing("warn", LogFormat::Text);
    let config = Config::load(arg.config.as_deref())?;
    let keys = config.spool.encryption_keys()?;
    // The API key file too: `serve` refuses to start on a bad one.
    let auth = promptlog::auth::Auth::new(&config.auth, promptlog::telemetry::Stats::new())?;
    println!("configuration is valid:\n{config:#?}");
    if let Some(keys) = keys {
        println!("spool encryption: on, current key {}, key ids {:?}", keys.current(), keys.ids());
    }
    match auth.enabled() {
        true => println!("API keys required: {} key(s) loaded", auth.key_count()),
        false => println!("no API key configured: auth is off (every request is project \"default\")"),
    }
    Ok(())
}

/// `promptlog keygen`: a new key, shown once, and its key-file entry.
fn keygen(project: &str, id: Option<&str>, scopes: &[String], expires: Option<String>) -> anyhow::Result<()> {
    let scopes = scopes.iter().map(|s| Scope::parse(s)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    let (key, entry) = keys::new_key_entry(project, id, &scopes, expires.as_deref()).map_err(anyhow::Error::msg)?;
    println!("# API key for project {project} (shown only now; promptlog stores only its hash):");
    println!("#   {key}");
    println!("# Clients send it as OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20{key}");
    println!("# Add this entry under `keys:` in the key file (auth.keys_file):");
    print!("{entry}");
    Ok(())
}

/// `promptlog dead-letter decrypt`: prints sealed dead-letter files as JSON lines.
fn decrypt(config: &ConfigArg, files: &[PathBuf]) -> anyhow::Result<()> {
    init_tracing("warn", LogFormat::Text);
    let config = Config::load(config.config.as_deref())?;
    let keys = config.spool.encryption_keys()?.context(
        "no spool.encryption_key_file (env PROMPTLOG_SPOOL_ENCRYPTION_KEY_FILE) is configured to decrypt with",
    )?;
    let mut out = std::io::stdout().lock();
    for file in files {
        out.write_all(&promptlog::dead_letter::decrypt(&keys, file)?)?;
    }
    out.flush()?;
    Ok(())
}

fn load(arg: &ConfigArg) -> anyhow::Result<Config> {
    let config = Config::load(arg.config.as_deref())?;
    init_tracing(&config.log.level, config.log.format);
    Ok(config)
}

fn init_tracing(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::new(level);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("Shutdown signal received.");
    token.cancel();
}
