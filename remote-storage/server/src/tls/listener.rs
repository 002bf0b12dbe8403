//! Accepting TLS connections: TCP accepts in one task, each handshake in a task of its own
//! bounded by [`HANDSHAKE_TIMEOUT`], so a client that connects and stays silent delays nobody.
//! Finished connections come out of a [`TlsIncoming`], which tonic serves as an incoming
//! stream and axum as a [`axum::serve::Listener`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::{debug, warn};

use super::ReloadingTls;

/// Longest a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once per listener; beyond it, accepting waits (backpressure on a
/// flood of connections that never finish their handshake).
const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Finished connections waiting for the server to pick them up.
const READY_CONNECTIONS: usize = 64;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Starts accepting TLS connections on `listener`, with TCP keepalive probes every
/// `keepalive` when given; stops when the returned value is dropped.
pub(crate) fn accept_tls(
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Arc<ReloadingTls>,
    name: &'static str,
    keepalive: Option<Duration>,
) -> TlsIncoming {
    let (sender, receiver) = mpsc::channel(READY_CONNECTIONS);
    tokio::spawn(accept_loop(listener, tls, sender, name, keepalive));
    TlsIncoming {
        receiver,
        local_addr,
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    sender: mpsc::Sender<TlsConnection>,
    name: &'static str,
    keepalive: Option<Duration>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        // The server dropping its end closes the channel: stop, closing the socket.
        let permit = tokio::select! {
            permit = Arc::clone(&handshakes).acquire_owned() => permit,
            () = sender.closed() => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = sender.closed() => return,
        };
        let (tcp, remote_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(accept_error) => {
                warn!(listener = name, error = %accept_error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Small gRPC frames should not wait for Nagle; keepalive as on plaintext listeners.
        let _ = tcp.set_nodelay(true);
        if let Some(interval) = keepalive {
            let probes = socket2::TcpKeepalive::new().with_time(interval);
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&probes);
        }
        let acceptor = TlsAcceptor::from(tls.current());
        let sender = sender.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            match handshake {
                Ok(Ok(stream)) => {
                    let _ = sender
                        .send(TlsConnection {
                            stream,
                            remote_addr,
                        })
                        .await;
                }
                // Failed handshakes are the client's business (wrong CA, no client
                // certificate, plaintext, port scans): debug, not warn.
                Ok(Err(handshake_error)) => debug!(
                    listener = name,
                    %remote_addr,
                    error = %handshake_error,
                    "TLS handshake failed"
                ),
                Err(_) => debug!(listener = name, %remote_addr, "TLS handshake timed out"),
            }
        });
    }
}

/// Connections whose handshake is complete.
#[derive(Debug)]
pub(crate) struct TlsIncoming {
    receiver: mpsc::Receiver<TlsConnection>,
    local_addr: SocketAddr,
}

impl Stream for TlsIncoming {
    type Item = Result<TlsConnection, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver
            .poll_recv(context)
            .map(|connection| connection.map(Ok))
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.receiver.recv().await {
            Some(connection) => {
                let remote_addr = connection.remote_addr;
                (connection, remote_addr)
            }
            // The accept task only ends when this receiver is dropped, so this is not reached;
            // waiting forever leaves stopping to the graceful-shutdown signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// One server-side TLS connection.
#[derive(Debug)]
pub(crate) struct TlsConnection {
    stream: TlsStream<TcpStream>,
    remote_addr: SocketAddr,
}

/// The same connection info as plaintext connections, so `Request::remote_addr` works alike.
impl Connected for TlsConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo {
            local_addr: self.stream.get_ref().0.local_addr().ok(),
            remote_addr: Some(self.remote_addr),
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, buffer)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}
