//! `jaeger-remote-storage`: parse the CLI, start logging, run until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use remote_storage::config_file::Loaded;

/// mimalloc instead of glibc malloc: the Export path allocates a String per attribute key and
/// value, and decoding is allocation-bound (see bench/PROFILES.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long blocking tasks still running after the server stopped may take to finish. Normally
/// there are none; one stuck in a failed storage engine is left behind, so it cannot keep the
/// process alive (a `#[tokio::main]` runtime waits for them forever).
const BLOCKING_TASKS_GRACE: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(runtime_error) => {
            eprintln!("jaeger-remote-storage: starting the async runtime: {runtime_error}");
            return ExitCode::FAILURE;
        }
    };
    let exit_code = runtime.block_on(serve());
    runtime.shutdown_timeout(BLOCKING_TASKS_GRACE);
    exit_code
}

async fn serve() -> ExitCode {
    let cli = match remote_storage::config_file::load(std::env::args_os()) {
        Ok(Loaded::Run(cli)) => *cli,
        Ok(Loaded::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(config_error) => {
            eprintln!("jaeger-remote-storage: {config_error:#}");
            return ExitCode::FAILURE;
        }
    };
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
