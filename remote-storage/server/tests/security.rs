//! TLS, mutual TLS, certificate rotation and bearer-token authentication, against the real
//! server in-process on the memory backend (issue 14, items 1 and 2).

mod security {
    pub(crate) mod auth;
    pub(crate) mod support;
    pub(crate) mod tls;
}
