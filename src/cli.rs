//! The command line: parses the arguments and runs the server, one
//! statement, or an import. It lives in the library so that the binary
//! (`main.rs`: the allocator and a call of [`run`]) compiles nothing of
//! its own: a binary that drives the library's async code instantiates
//! much of it again (87 s of a clean release build, by `--timings`).
//!
//! * `sluice [serve] [--root DIR] [--conf FILE]`: the pgwire and HTTP servers.
//! * `sluice sql "STATEMENT" [--root DIR]`: one statement, in-process.
//! * `sluice import FILE --table T [...]`: the COPY importer, in-process,
//!   with a progress bar.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::engine::{Engine, Output, Session};
use crate::servers::Servers;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "SQL-first time-series engine with a parallel CSV importer"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Data root (tables under db/, COPY files under import/).
    #[arg(long, global = true, default_value = "./data")]
    root: PathBuf,
    /// Configuration file (default: <root>/conf/server.conf when present).
    #[arg(long, global = true)]
    conf: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the pgwire and HTTP servers (the default).
    Serve,
    /// Run one SQL statement against the data root and print the result.
    Sql {
        /// The statement text.
        statement: String,
    },
    /// Import a CSV file with the COPY pipeline, in-process.
    Import(Box<ImportArgs>),
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The CSV file.
    file: PathBuf,
    /// Target table (created when missing).
    #[arg(long)]
    table: String,
    /// Designated timestamp column.
    #[arg(long)]
    timestamp: Option<String>,
    /// Timestamp pattern, e.g. yyyy-MM-ddTHH:mm:ss.SSSUUUZ.
    #[arg(long)]
    format: Option<String>,
    /// NONE, HOUR, DAY, WEEK, MONTH or YEAR.
    #[arg(long)]
    partition_by: Option<String>,
    /// Field delimiter (one to four ASCII characters; detected when not
    /// given).
    #[arg(long)]
    delimiter: Option<String>,
    /// Quote character (one ASCII character; detected when not given).
    #[arg(long)]
    quote: Option<String>,
    /// Escape character inside quotes (default: the quote, doubled).
    #[arg(long)]
    escape: Option<String>,
    /// Lines before the header to skip (a preamble is detected when not
    /// given).
    #[arg(long)]
    skip: Option<usize>,
    /// The header's line count (the first line names the columns).
    #[arg(long)]
    header_lines: Option<usize>,
    /// The file's encoding: utf-8, latin-1, windows-1252, utf-16,
    /// utf-16le or utf-16be (UTF-8 unless a byte-order mark or the bytes
    /// say otherwise).
    #[arg(long)]
    encoding: Option<String>,
    /// The first line is a header.
    #[arg(long, conflicts_with = "no_header")]
    header: bool,
    /// The first line is data.
    #[arg(long)]
    no_header: bool,
    /// skip_row, skip_column or abort.
    #[arg(long, default_value = "skip_row")]
    on_error: String,
    /// Read and check the whole file, write nothing, print what the
    /// import would do (COPY's DRY RUN).
    #[arg(long)]
    dry_run: bool,
}

/// The stack of each server thread (see `run`).
const THREAD_STACK: usize = 64 << 20;

/// Runs the command the arguments name; the process's exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // The format is the configuration's; a configuration that does not
    // load is reported by the command itself, in text.
    let json = Config::load(&cli.root, cli.conf.as_deref()).is_ok_and(|c| c.log_json);
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    if json {
        logs.json().flatten_event(true).init();
    } else {
        logs.init();
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Planning recurses once per level of an expression, and parts of
        // that recursion have no stack guard: the parser bounds the depth
        // (`sql::parser::depth`) and this leaves room for it (stacks are
        // reserved, not used, until a deep statement touches them).
        .thread_stack_size(THREAD_STACK)
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            // On a worker thread, not this one: the command plans SQL too.
            let command = rt.spawn(async move {
                match cli.command.unwrap_or(Command::Serve) {
                    Command::Serve => serve(&cli.root, cli.conf.as_deref()).await,
                    Command::Sql { statement } => {
                        sql(&cli.root, cli.conf.as_deref(), &statement).await
                    }
                    Command::Import(args) => import(&cli.root, cli.conf.as_deref(), *args).await,
                }
            });
            rt.block_on(command)
                .unwrap_or_else(|e| Err(format!("the command stopped: {e}")))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Takes the root's lock file: one process owns a data root at a time.
fn lock_root(root: &Path) -> Result<File, String> {
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create root {}: {e}", root.display()))?;
    let path = root.join(".lock");
    let file = File::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.try_lock().map_err(|_| {
        format!(
            "data root {} is in use by another sluice process (lock file {})",
            root.display(),
            path.display()
        )
    })?;
    Ok(file)
}

fn open(root: &Path, conf: Option<&Path>) -> Result<(File, std::sync::Arc<Engine>), String> {
    let lock = lock_root(root)?;
    let root = root.canonicalize().map_err(|e| e.to_string())?;
    let config = Config::load(&root, conf).map_err(|e| e.to_string())?;
    let engine = Engine::open(config).map_err(|e| e.to_string())?;
    Ok((lock, engine))
}

async fn serve(root: &Path, conf: Option<&Path>) -> Result<(), String> {
    use crate::servers::min::{Health, MinServer};
    let _lock = lock_root(root)?;
    let root = &root.canonicalize().map_err(|e| e.to_string())?;
    let config = Config::load(root, conf).map_err(|e| e.to_string())?;
    // The health check answers (503, starting) while the catalog loads.
    let health = Health::new(config.root.clone());
    let min = match config.http_min_enabled {
        true => Some(
            MinServer::start(config.http_min_bind, std::sync::Arc::clone(&health))
                .await
                .map_err(|e| e.to_string())?,
        ),
        false => None,
    };
    if let Some(m) = &min {
        println!("http min listening on {}", m.addr);
    }
    let engine = tokio::task::spawn_blocking(move || Engine::open(config))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    health.serving(std::sync::Arc::clone(&engine));
    let servers = Servers::start(std::sync::Arc::clone(&engine))
        .await
        .map_err(|e| e.to_string())?;
    // Plain lines on stdout so scripts and tests can find the ports.
    if let Some(a) = servers.pg_addr {
        println!("pgwire listening on {a}");
    }
    if let Some(a) = servers.http_addr {
        println!("http listening on {a}");
    }
    tracing::info!(root = %root.display(), "sluice started");
    shutdown_signal().await;
    tracing::info!("shutting down");
    health.shutting_down();
    servers.stop().await;
    // A running import is cancelled and leaves its table as it was.
    let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
    if let Some(m) = min {
        m.stop().await;
    }
    Ok(())
}

async fn import(root: &Path, conf: Option<&Path>, a: ImportArgs) -> Result<(), String> {
    use crate::import::Progress;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let req = import_request(a)?;
    let (_lock, engine) = open(root, conf)?;
    let (shown_file, shown_table) = (req.file_name.clone(), req.table_display());
    let progress = Arc::new(Progress::default());
    let cancel = Arc::new(AtomicBool::new(false));
    let job = {
        let (engine, progress, cancel) = (
            Arc::clone(&engine),
            Arc::clone(&progress),
            Arc::clone(&cancel),
        );
        tokio::task::spawn_blocking(move || engine.importer().run_now(&req, &progress, cancel))
    };
    let result = watch_import(job, &progress, &cancel).await?;
    let summary = result
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    print_import_summary(&summary, &shown_file, &shown_table);
    Ok(())
}

/// The import request `sluice import`'s arguments describe.
fn import_request(a: ImportArgs) -> Result<crate::import::ImportRequest, String> {
    use crate::import::{ImportRequest, OnError};

    let partition_by = match &a.partition_by {
        Some(p) => Some(crate::time::PartitionBy::parse(p).ok_or_else(|| {
            format!("--partition-by: 'NONE', 'HOUR', 'DAY', 'WEEK', 'MONTH' or 'YEAR' expected, got '{p}'")
        })?),
        None => None,
    };
    let one_byte = |name: &str, v: &str| match v.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!("--{name}: one ASCII character expected")),
    };
    let one = |name: &str, v: &Option<String>| v.as_deref().map(|v| one_byte(name, v)).transpose();
    let (delimiter, tail) = match &a.delimiter {
        Some(d) => {
            let (first, tail) = crate::import::csv::Tail::split(d.as_bytes())
                .filter(|_| d.is_ascii())
                .ok_or("--delimiter: one to four ASCII characters expected")?;
            (Some(first), tail)
        }
        None => (None, crate::import::csv::Tail::NONE),
    };
    let dialect = crate::import::analyze::Given {
        delimiter,
        tail,
        quote: one("quote", &a.quote)?,
        escape: one("escape", &a.escape)?,
        skip: a.skip.is_some(),
    };
    let encoding = match &a.encoding {
        Some(e) => Some(
            crate::import::encoding::TextEncoding::parse(e)
                .ok_or_else(|| format!("--encoding: unknown encoding '{e}'"))?,
        ),
        None => None,
    };
    let on_error = match a.on_error.to_ascii_lowercase().as_str() {
        "skip_row" => OnError::SkipRow,
        "skip_column" => OnError::SkipColumn,
        "abort" => OnError::Abort,
        other => {
            return Err(format!(
                "--on-error: skip_row, skip_column or abort expected, got '{other}'"
            ));
        }
    };
    let path = a
        .file
        .canonicalize()
        .map_err(|e| format!("{}: {e}", a.file.display()))?;
    let (schema, table) = match a.table.split_once('.') {
        Some((s, t)) => (s.to_string(), t.to_string()),
        None => (crate::catalog::DEFAULT_SCHEMA.to_string(), a.table.clone()),
    };
    Ok(ImportRequest {
        schema,
        table,
        file_name: a.file.display().to_string(),
        path,
        header: if a.header || a.header_lines.is_some_and(|n| n > 0) {
            Some(true)
        } else if a.no_header {
            Some(false)
        } else {
            None
        },
        timestamp: a.timestamp,
        format: a.format,
        dialect,
        partition_by,
        on_error,
        options: crate::import::ImportOptions {
            dry_run: a.dry_run,
            skip_lines: a.skip.unwrap_or(0),
            header_lines: a.header_lines.unwrap_or(1),
            encoding,
            ..Default::default()
        },
    })
}

/// Draws the import's progress on stderr until it ends (a bar on a
/// terminal, a line per phase and every 5 s otherwise); Ctrl-C cancels it.
async fn watch_import<T>(
    job: tokio::task::JoinHandle<T>,
    progress: &crate::import::Progress,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<T, String> {
    use std::io::IsTerminal;
    use std::sync::atomic::Ordering;

    tokio::pin!(job);
    let tty = std::io::stderr().is_terminal();
    let mut last_phase = None;
    let started = std::time::Instant::now();
    let mut last_line = started;
    let result = loop {
        tokio::select! {
            r = &mut job => break r.map_err(|e| e.to_string())?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("cancelling…");
                cancel.store(true, Ordering::Relaxed);
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                let phase = *progress.phase.lock().expect("progress");
                // The serial importer has no phases: it is one import.
                let shown = phase.map_or("import", |p| p.as_str());
                // One fraction for the whole import (phases weighted by
                // their share of the time), rows per second and an ETA.
                let fraction = progress.fraction();
                let rows = progress.rows_handled.load(Ordering::Relaxed);
                let elapsed = started.elapsed().as_secs_f64();
                let eta = progress
                    .eta()
                    .map_or_else(|| "--".to_string(), |s| format!("{s:.0}s"));
                if tty {
                    let width = 30usize;
                    let filled = ((fraction * width as f64) as usize).min(width);
                    eprint!(
                        "\r{:<18} [{}{}] {:>3}% {:>9.0} rows/s  ETA {:>5} {:>6.1}s",
                        shown,
                        "#".repeat(filled),
                        " ".repeat(width - filled),
                        (fraction * 100.0) as u32,
                        rows as f64 / elapsed.max(0.001),
                        eta,
                        elapsed
                    );
                } else if phase != last_phase || last_line.elapsed().as_secs() >= 5 {
                    // Not a terminal: a line per phase and every 5 s.
                    eprintln!("{shown} {:.0}% ETA {eta}", fraction * 100.0);
                    last_line = std::time::Instant::now();
                }
                last_phase = phase;
            }
        }
    };
    if tty {
        eprintln!();
    }
    Ok(result)
}

/// The summary `sluice import` prints: a dry run's report, or the counts,
/// speed and phase times of the import.
fn print_import_summary(summary: &crate::import::Summary, shown_file: &str, shown_table: &str) {
    if summary.dry_run.is_some() {
        let rows = crate::engine::dry_run::rows(shown_file, shown_table, summary);
        // Aligned, except that a long value (a rejection's reason) does
        // not push every other row's detail off the screen.
        let width = |i: usize| {
            let w = rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
            w.min(24)
        };
        let (w0, w1, w2) = (width(0), width(1), width(2));
        println!("dry run {}: nothing was written", summary.id);
        for [section, name, value, detail] in &rows {
            println!("{section:<w0$}  {name:<w1$}  {value:<w2$}  {detail}");
        }
        return;
    }
    let mb = summary.bytes as f64 / 1_048_576.0;
    println!("import {} finished", summary.id);
    println!("rows handled:  {}", summary.rows_handled);
    println!("rows imported: {}", summary.rows_imported);
    println!("rows rejected: {}", summary.errors);
    println!("partitions:    {}", summary.partitions);
    println!(
        "time:          {:.2} s ({:.1} MB/s, {:.0} rows/s)",
        summary.seconds,
        mb / summary.seconds.max(1e-9),
        summary.rows_handled as f64 / summary.seconds.max(1e-9)
    );
    for (phase, secs) in &summary.phases {
        println!("  {phase:<24} {secs:.3} s");
    }
    if summary.errors > 0 {
        println!(
            "rejected rows are listed in sys.text_import_errors where id = '{}'",
            summary.id
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

async fn sql(root: &Path, conf: Option<&Path>, statement: &str) -> Result<(), String> {
    let (_lock, engine) = open(root, conf)?;
    let outputs = engine
        .execute(
            statement,
            &Session {
                sql: Some(statement.into()),
                ..Session::admin()
            },
        )
        .await
        .map_err(|e| {
            let e = crate::error::locate_error(statement, e);
            match e.position() {
                Some(p) => format!("{} [position={p}]", e.message()),
                None => e.message(),
            }
        })?;
    // A COPY runs in the background; this process must not end under it.
    let waiter = std::sync::Arc::clone(&engine);
    let _ = tokio::task::spawn_blocking(move || waiter.importer().wait()).await;
    for output in outputs {
        match output {
            Output::Rows(rows) => {
                // (The CLI prints one table, so it reads the whole result.)
                let presented = crate::engine::present::present_schema(&rows.schema);
                let batches = rows.collect().await.map_err(|e| e.message())?;
                let n: usize = batches.iter().map(|b| b.num_rows()).sum();
                let batches = batches
                    .iter()
                    .map(|b| crate::engine::present::present_batch(b, &presented))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .map_err(|e| e.to_string())?;
                println!("{table}");
                println!("({n} rows)");
            }
            Output::Command(c) => match c.rows {
                Some(n) => println!("{} {n}", c.tag),
                None => println!("{}", c.tag),
            },
            Output::CopyOut(mut out) => {
                use futures::StreamExt;
                use std::io::Write;
                while let Some(line) = out.messages.next().await {
                    let line = line.map_err(|e| e.message())?;
                    std::io::stdout()
                        .write_all(&line)
                        .map_err(|e| e.to_string())?;
                }
                let mut stdout = std::io::stdout().lock();
                let trailer = crate::engine::copy_out::CopyEncoder::trailer(out.binary);
                stdout.write_all(trailer).map_err(|e| e.to_string())?;
            }
            Output::CopyIn(_) => {
                return Err("COPY FROM STDIN needs a PostgreSQL client (psql \\copy); use `sluice import` for files".into());
            }
        }
    }
    Ok(())
}
