//! A TCP proxy a test owns, in front of a backend's service: "stopping the service" closes the
//! proxy (live connections are cut, new ones refused) without disturbing other tests that
//! share the service, and restarting it on the same address brings the service back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A cuttable TCP proxy to one upstream address.
#[derive(Debug)]
pub struct CuttableProxy {
    address: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl CuttableProxy {
    /// Listens on `address` (port 0 picks one) and forwards every connection to `upstream`.
    pub async fn start(address: SocketAddr, upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let connections = Arc::clone(&tasks);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(connection);
            }
        });
        tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(acceptor);
        Ok(Self {
            address,
            upstream,
            tasks,
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Refuses new connections and cuts the live ones.
    pub fn stop(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }

    /// A new proxy on the same address to the same upstream (after [`CuttableProxy::stop`];
    /// retried briefly while the old listener is still being dropped).
    pub async fn restart(&self) -> std::io::Result<Self> {
        let mut attempts = 0;
        loop {
            match Self::start(self.address, self.upstream).await {
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                outcome => return outcome,
            }
        }
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
