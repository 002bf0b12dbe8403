//! `jaeger-remote-storage`: parse the CLI, start logging, run until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use clap::Parser as _;
use remote_storage::cli::Cli;

/// mimalloc instead of glibc malloc: the Export path allocates a String per attribute key and
/// value, and decoding is allocation-bound (see bench/PROFILES.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(logging_error) = remote_storage::init_logging(cli.log_format, &cli.log_level) {
        eprintln!("jaeger-remote-storage: {logging_error:#}");
        return ExitCode::FAILURE;
    }
    match remote_storage::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(run_error) => {
            tracing::error!(
                error = format!("{run_error:#}"),
                "jaeger-remote-storage failed"
            );
            ExitCode::FAILURE
        }
    }
}
