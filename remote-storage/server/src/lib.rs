//! Server library (work in progress).
