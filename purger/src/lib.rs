//! HTTP purge endpoint (work in progress).
