//! TLS, mutual TLS and certificate rotation, against the real server in-process on the memory
//! backend (issue 14, item 1).

mod security {
    pub(crate) mod support;
    pub(crate) mod tls;
}
