//! Re-reading certificate and token files while the server runs: each [`Reloadable`] is asked
//! to check its files every reload interval (a `stat` per file; work only when one changed)
//! and to reload unconditionally on SIGHUP, so rotating a certificate or a token needs no
//! restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::info;

/// Something loaded from files that can be replaced at run time. A failed reload keeps what
/// was loaded before and logs why.
pub(crate) trait Reloadable: Send + Sync + std::fmt::Debug {
    /// Reloads when the files changed since the last attempt, or always when `force`.
    fn reload(&self, force: bool);
}

/// What a cheap `stat` says about a file: enough to notice a rewrite or a replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    length: u64,
}

impl FileStamp {
    /// The file's stamp, or `None` when it cannot be read (a later reappearance is a change).
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: metadata.modified().ok(),
            length: metadata.len(),
        })
    }
}

/// Checks `items` every `interval` and on SIGHUP until `shutdown` turns true. Does nothing
/// when there is nothing to reload.
pub(crate) fn spawn_reloader(
    items: Vec<Arc<dyn Reloadable>>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut hangup = hangup_signal()?;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let force = tokio::select! {
                _ = ticks.tick() => false,
                () = hangup.recv() => {
                    info!("SIGHUP received: reloading certificates and tokens");
                    true
                }
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            };
            let items = items.clone();
            // The blocking thread logs to the same subscriber as this task.
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            // Reading files is blocking I/O: keep it off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for item in &items {
                        item.reload(force);
                    }
                });
            })
            .await;
        }
    });
    Ok(())
}

/// SIGHUP on Unix; elsewhere a signal that never arrives.
struct Hangup {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

fn hangup_signal() -> anyhow::Result<Hangup> {
    #[cfg(unix)]
    {
        use anyhow::Context as _;
        use tokio::signal::unix::{SignalKind, signal};
        let signal = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        Ok(Hangup { signal })
    }
    #[cfg(not(unix))]
    Ok(Hangup {})
}

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}
