//! The store's health latch: the first fatal storage fault ([`crate::fault`]) is remembered,
//! logged once, and from then on every call, readiness included, answers UNAVAILABLE with its
//! message. Calls already waiting on a stuck engine are released as soon as the fault is known
//! ([`StoreHealth::failed`]).
//!
//! The methods that touch the disk (`probe`, `ensure_directory`, `store_error`) block: call
//! them from `spawn_blocking` or the background thread only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjall::{Database, PersistMode};
use remote_storage_core::{StoreError, StoreResult};
use tokio::sync::watch;

use crate::error::LsmError;
use crate::fault::{FULL_BELOW_BYTES, Fault, Verdict, classify};

/// What identifies a directory: a directory deleted and created again under the same path is
/// another one, and fjall's open files still point into the deleted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirectoryIdentity {
    device: u64,
    inode: u64,
}

impl DirectoryIdentity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }
}

/// Whether the store still serves, and why not once it does not.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    dir: PathBuf,
    /// The directory as opened, held open so that its inode cannot be reused by a directory
    /// created under the same path later; `None` if it could not be opened (then only the
    /// path's presence is checked).
    opened: Option<std::fs::File>,
    /// The latched message; `None` while healthy.
    fault: watch::Sender<Option<Arc<str>>>,
}

impl StoreHealth {
    /// Remembers `dir` as opened now.
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            opened: std::fs::File::open(dir).ok(),
            fault: watch::Sender::new(None),
        }
    }

    /// Whether a fatal fault has been latched.
    pub(crate) fn is_failed(&self) -> bool {
        self.fault.borrow().is_some()
    }

    /// `Err` with the latched message once the store has failed.
    pub(crate) fn check(&self) -> StoreResult<()> {
        match self.fault.borrow().as_deref() {
            None => Ok(()),
            Some(message) => Err(unavailable(message)),
        }
    }

    /// Resolves once the store has failed.
    pub(crate) async fn failed(&self) {
        let mut receiver = self.fault.subscribe();
        // The sender lives in `self`, so this only ends once a fault is latched.
        let _ = receiver.wait_for(Option::is_some).await;
    }

    /// The error for a failed store (a generic one if nothing is latched, which callers rule
    /// out).
    pub(crate) fn failure(&self) -> StoreError {
        self.check()
            .err()
            .unwrap_or_else(|| unavailable("lsm store failed"))
    }

    /// Latches `fault` unless another one came first; returns the store's error either way.
    pub(crate) fn latch(&self, fault: &Fault) -> StoreError {
        let message = fault.message(&self.dir);
        let latched = self.fault.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(Arc::from(message.as_str()));
            true
        });
        if latched {
            tracing::error!(
                dir = %self.dir.display(),
                cause = %fault,
                "{message}"
            );
        }
        self.failure()
    }

    /// Turns an engine error into the store's error, latching it when it is fatal. Blocking:
    /// a fatal fault is refined by looking at the directory and its file system, and a
    /// transient one by asking fjall whether it poisoned itself meanwhile.
    pub(crate) fn store_error(&self, error: LsmError, db: &Database) -> StoreError {
        if self.is_failed() {
            return self.failure();
        }
        match classify(&error) {
            Verdict::Fatal(fault) => self.latch(&self.refine(fault)),
            Verdict::Transient(cause) => {
                if let Err(fjall::Error::Poisoned) = db.persist(PersistMode::Buffer) {
                    return self.latch(&self.refine(Fault::Io(cause)));
                }
                StoreError::unavailable(
                    format!("lsm store is short of a system resource ({cause}); retry later"),
                    error,
                )
            }
            Verdict::Other => StoreError::from(error),
        }
    }

    /// `Err` once the data directory is gone or replaced. Checked before every write: fjall
    /// keeps writing into its open (deleted) journal, which would acknowledge spans that no
    /// restart can read. An `fstat` of the held directory and a `stat` of its path, a few
    /// microseconds per write call (not per span).
    pub(crate) fn ensure_directory(&self) -> Result<(), LsmError> {
        if self.directory_present() {
            Ok(())
        } else {
            Err(LsmError::Fault(Fault::DirectoryGone))
        }
    }

    /// The readiness probe: the directory is still there and fjall has not poisoned itself
    /// (a crashed flush worker says so only here, or at the next write).
    pub(crate) fn probe(&self, db: &Database) -> StoreResult<()> {
        self.check()?;
        self.ensure_directory()
            // Flushes nothing to disk: fails only on a poisoned database or a journal buffer
            // that cannot be written out.
            .and_then(|()| Ok(db.persist(PersistMode::Buffer)?))
            .map_err(|error| self.store_error(error, db))
    }

    fn directory_present(&self) -> bool {
        let Some(opened) = &self.opened else {
            return self.dir.is_dir();
        };
        match (opened.metadata(), std::fs::metadata(&self.dir)) {
            (Ok(held), Ok(current)) => {
                DirectoryIdentity::of(&held) == DirectoryIdentity::of(&current)
            }
            _ => false,
        }
    }

    /// Names the cause more precisely when the directory or the disk tells it.
    fn refine(&self, fault: Fault) -> Fault {
        if !self.directory_present() {
            return Fault::DirectoryGone;
        }
        if !matches!(fault, Fault::Io(_) | Fault::EngineStopped { .. }) {
            return fault;
        }
        let free_bytes = self.free_bytes();
        if free_bytes.is_some_and(|free| free < FULL_BELOW_BYTES) {
            return Fault::DiskFull;
        }
        match fault {
            Fault::EngineStopped { .. } => Fault::EngineStopped { free_bytes },
            other => other,
        }
    }

    /// Space an unprivileged process can still use on the directory's file system.
    fn free_bytes(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

fn unavailable(message: &str) -> StoreError {
    StoreError::Unavailable {
        message: message.to_owned(),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use remote_storage_core::ErrorKind;

    use super::*;

    #[test]
    fn the_first_fault_wins_and_every_later_check_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let health = StoreHealth::new(dir.path());
        assert!(health.check().is_ok());
        let error = health.latch(&Fault::DiskFull);
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        health.latch(&Fault::Io("later".into()));
        let message = health.check().unwrap_err().to_string();
        assert!(message.contains("no space left"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn a_deleted_or_replaced_directory_is_noticed() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let health = StoreHealth::new(&dir);
        assert!(health.ensure_directory().is_ok());
        std::fs::remove_dir(&dir).unwrap();
        assert!(health.ensure_directory().is_err());
        // Created again under the same name: still not the directory fjall has open.
        std::fs::create_dir(&dir).unwrap();
        assert!(health.ensure_directory().is_err());
    }

    #[tokio::test]
    async fn waiters_are_released_when_the_store_fails() {
        let dir = tempfile::tempdir().unwrap();
        let health = Arc::new(StoreHealth::new(dir.path()));
        let waiter = tokio::spawn({
            let health = Arc::clone(&health);
            async move { health.failed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        health.latch(&Fault::DirectoryGone);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
