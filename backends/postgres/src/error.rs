//! The one conversion from driver errors to [`StoreError`].

use remote_storage_core::StoreError;

/// Classifies a driver error: anything that says the server cannot be reached (network, TLS,
/// pool exhaustion, server shutting down or refusing connections) is `Unavailable`, so the gRPC
/// layer answers UNAVAILABLE and clients retry; everything else is `Internal`.
pub(crate) fn store_error(context: &str, error: sqlx::Error) -> StoreError {
    if is_unavailable(&error) {
        StoreError::unavailable(format!("postgres unavailable: {context}: {error}"), error)
    } else {
        StoreError::internal(format!("postgres: {context}: {error}"), error)
    }
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // 08: connection exception; 57P0x: admin/crash shutdown, cannot connect now;
            // 53300: too many connections; 57014: statement timeout / cancel.
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "57014"
        }),
        _ => false,
    }
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sql_state(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(database) => database.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// A call that did not finish within the configured query timeout.
pub(crate) fn timed_out(context: &str) -> StoreError {
    StoreError::Unavailable {
        message: format!("postgres unavailable: {context}: timed out"),
        source: None,
    }
}
