//! Which storage failures end the store's life, and what an operator is told about them.
//!
//! fjall poisons its database when a journal write or fsync fails, and when a background flush
//! or compaction worker fails (a full disk, most often). A poisoned database refuses every
//! write until it is opened again, and a wait for a flush never returns, so these failures are
//! fatal here too: [`crate::health`] latches the first one and every later call answers
//! UNAVAILABLE with the same message. A disk-full is therefore not retryable in place either:
//! freeing space does not un-poison fjall, only a restart does.
//!
//! Only a shortage the operating system recovers from on its own (file descriptors, memory, an
//! interrupted or timed-out call) is transient, and only as long as fjall did not poison itself
//! over it: such a call answers UNAVAILABLE without latching.

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::error::LsmError;

/// Free bytes below which a file system counts as full when a failure's own cause is unknown.
pub(crate) const FULL_BELOW_BYTES: u64 = 1 << 20;

/// A failure after which the store refuses every call until the server restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The file system holding the data directory is full (or the quota is used up).
    DiskFull,
    /// The data directory was deleted, or replaced by another one, while the server ran.
    DirectoryGone,
    /// Any other I/O error on the data directory.
    Io(String),
    /// fjall poisoned itself without the store seeing the cause: a background flush or
    /// compaction failed. fjall logs the cause.
    EngineStopped {
        /// Free space on the data directory's file system, when it could be read.
        free_bytes: Option<u64>,
    },
    /// Closing did not finish in time; the engine is assumed stuck.
    CloseTimedOut(Duration),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DiskFull => f.write_str("no space left on device"),
            Self::DirectoryGone => f.write_str("the data directory was deleted or replaced"),
            Self::Io(error) => write!(f, "i/o error: {error}"),
            Self::EngineStopped { .. } => {
                f.write_str("the storage engine stopped after a failed background flush")
            }
            Self::CloseTimedOut(limit) => write!(f, "closing took longer than {limit:?}"),
        }
    }
}

impl Fault {
    /// What clients and the log are told: the cause, the directory, and what to do.
    pub(crate) fn message(&self, dir: &Path) -> String {
        let dir = dir.display();
        match self {
            Self::DiskFull => format!(
                "lsm store failed: data directory {dir} is full (no space left on device); \
                 reads and writes are refused until the server restarts: free or add disk \
                 space, then restart it (acknowledged spans are on disk)"
            ),
            Self::DirectoryGone => format!(
                "lsm store failed: data directory {dir} was deleted or replaced while the \
                 server was running; reads and writes are refused: restore the directory or \
                 point lsm.data-dir at another one, then restart the server"
            ),
            Self::Io(error) => format!(
                "lsm store failed: i/o error in data directory {dir} ({error}); reads and \
                 writes are refused until the server restarts: check the disk, then restart it"
            ),
            Self::EngineStopped { free_bytes } => {
                let free = free_bytes.map_or_else(String::new, |bytes| {
                    format!(", {} MiB free on its file system", bytes >> 20)
                });
                format!(
                    "lsm store failed: the storage engine stopped after a failed background \
                     flush in data directory {dir}{free} (the log names the cause); reads and \
                     writes are refused until the server restarts: check free space and the \
                     disk, then restart it"
                )
            }
            Self::CloseTimedOut(limit) => format!(
                "lsm store in data directory {dir} did not close within {limit:?}; its journal \
                 is replayed at the next start"
            ),
        }
    }
}

/// What a failed engine call means for the store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The store must stop serving (refined by [`crate::health`] before latching).
    Fatal(Fault),
    /// A shortage the system recovers from: UNAVAILABLE for this call only.
    Transient(String),
    /// Not a storage fault (corrupt data, a bad request): the usual mapping applies.
    Other,
}

/// Sorts an engine error into fatal, transient or neither.
pub(crate) fn classify(error: &LsmError) -> Verdict {
    match error {
        LsmError::Fault(fault) => Verdict::Fatal(fault.clone()),
        LsmError::Fjall(fjall::Error::Poisoned) => {
            Verdict::Fatal(Fault::EngineStopped { free_bytes: None })
        }
        other => io_cause(other).map_or(Verdict::Other, classify_io),
    }
}

/// The first `std::io::Error` in an error's source chain, the error itself included.
fn io_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            return Some(io_error);
        }
        current = error.source();
    }
    None
}

fn classify_io(error: &io::Error) -> Verdict {
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Verdict::Fatal(Fault::DiskFull)
        }
        io::ErrorKind::OutOfMemory
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::TimedOut => Verdict::Transient(error.to_string()),
        _ if is_out_of_descriptors(error) => Verdict::Transient(error.to_string()),
        _ => Verdict::Fatal(Fault::Io(error.to_string())),
    }
}

/// EMFILE or ENFILE: too many open files, for the process or the whole system.
fn is_out_of_descriptors(error: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(error),
        Some(Errno::MFILE | Errno::NFILE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(errno: rustix::io::Errno) -> LsmError {
        LsmError::Fjall(fjall::Error::Io(io::Error::from_raw_os_error(
            errno.raw_os_error(),
        )))
    }

    #[test]
    fn a_full_disk_is_fatal_wherever_fjall_reports_it() {
        use rustix::io::Errno;
        assert_eq!(
            classify(&os_error(Errno::NOSPC)),
            Verdict::Fatal(Fault::DiskFull)
        );
        assert_eq!(
            classify(&os_error(Errno::DQUOT)),
            Verdict::Fatal(Fault::DiskFull)
        );
        let nested = LsmError::Fjall(fjall::Error::Storage(lsm_tree_io(Errno::NOSPC)));
        assert_eq!(classify(&nested), Verdict::Fatal(Fault::DiskFull));
    }

    fn lsm_tree_io(errno: rustix::io::Errno) -> fjall::LsmError {
        fjall::LsmError::Io(io::Error::from_raw_os_error(errno.raw_os_error()))
    }

    #[test]
    fn poisoning_and_other_io_errors_are_fatal() {
        use rustix::io::Errno;
        assert_eq!(
            classify(&LsmError::Fjall(fjall::Error::Poisoned)),
            Verdict::Fatal(Fault::EngineStopped { free_bytes: None })
        );
        assert!(matches!(
            classify(&os_error(Errno::IO)),
            Verdict::Fatal(Fault::Io(_))
        ));
        assert!(matches!(
            classify(&os_error(Errno::NOENT)),
            Verdict::Fatal(Fault::Io(_))
        ));
    }

    #[test]
    fn shortages_the_system_recovers_from_are_transient() {
        use rustix::io::Errno;
        for errno in [Errno::MFILE, Errno::NFILE, Errno::NOMEM, Errno::INTR] {
            assert!(
                matches!(classify(&os_error(errno)), Verdict::Transient(_)),
                "{errno:?}"
            );
        }
    }

    #[test]
    fn data_errors_are_not_storage_faults() {
        assert_eq!(classify(&LsmError::corrupt("bad record")), Verdict::Other);
        assert_eq!(
            classify(&LsmError::Fjall(fjall::Error::Locked)),
            Verdict::Other
        );
    }

    #[test]
    fn messages_name_the_cause_the_directory_and_the_remedy() {
        let dir = Path::new("/var/lib/traces");
        let full = Fault::DiskFull.message(dir);
        assert!(full.contains("/var/lib/traces"), "{full}");
        assert!(full.contains("no space left"), "{full}");
        assert!(full.contains("restart"), "{full}");
        let gone = Fault::DirectoryGone.message(dir);
        assert!(
            gone.contains("deleted") && gone.contains("/var/lib/traces"),
            "{gone}"
        );
        let stopped = Fault::EngineStopped {
            free_bytes: Some(3 << 20),
        }
        .message(dir);
        assert!(stopped.contains("3 MiB free"), "{stopped}");
    }
}
