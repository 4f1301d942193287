//! The `sluice` binary: a thin command line over the library.
//!
//! * `sluice [serve] [--root DIR] [--conf FILE]`: the pgwire and HTTP servers.
//! * `sluice sql "STATEMENT" [--root DIR]`: one statement, in-process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::config::Config;
use sluice::engine::{Engine, Output, Session};
use sluice::servers::Servers;

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
    /// Configuration file (default: conf/server.conf when present).
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                match cli.command.unwrap_or(Command::Serve) {
                    Command::Serve => serve(&cli.root, cli.conf.as_deref()).await,
                    Command::Sql { statement } => {
                        sql(&cli.root, cli.conf.as_deref(), &statement).await
                    }
                }
            })
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
    let (_lock, engine) = open(root, conf)?;
    let servers = Servers::start(engine).await.map_err(|e| e.to_string())?;
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
    servers.stop().await;
    Ok(())
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
        .execute(statement, &Session::admin())
        .await
        .map_err(|e| {
            let e = sluice::error::locate_error(statement, e);
            match e.position() {
                Some(p) => format!("{} [position={p}]", e.message()),
                None => e.message(),
            }
        })?;
    for output in outputs {
        match output {
            Output::Rows(rows) => {
                let presented = sluice::engine::present::present_schema(&rows.schema);
                let batches = rows
                    .batches
                    .iter()
                    .map(|b| sluice::engine::present::present_batch(b, &presented))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .map_err(|e| e.to_string())?;
                println!("{table}");
                println!("({} rows)", rows.num_rows());
            }
            Output::Command(c) => match c.rows {
                Some(n) => println!("{} {n}", c.tag),
                None => println!("{}", c.tag),
            },
        }
    }
    Ok(())
}
