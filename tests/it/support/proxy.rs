//! A tiny round-robin TCP load balancer for tests with several collectors: each accepted connection
//! goes to the next backend in turn; a backend that refuses the connection (killed, restarting) is
//! skipped for the next one, as nginx's `proxy_next_upstream error` does. A client that opens one
//! connection per request is thereby balanced per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use tokio::net::{TcpListener, TcpStream};

/// The running balancer; stops when dropped.
pub struct RoundRobin {
    addr: SocketAddr,
    /// Connections each backend took.
    served: Arc<Vec<AtomicU64>>,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobin {
    /// Listens on a free port of 127.0.0.1 in front of `backends`.
    pub async fn start(backends: Vec<SocketAddr>) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served: Arc<Vec<AtomicU64>> = Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let counts = served.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let first = next.fetch_add(1, Relaxed);
                let (backends, counts) = (backends.clone(), counts.clone());
                tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let at = (first + i) % backends.len();
                        if let Ok(mut upstream) = TcpStream::connect(backends[at]).await {
                            counts[at].fetch_add(1, Relaxed);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                    // Every backend refused: the client's connection is closed unanswered.
                });
            }
        });
        RoundRobin { addr, served, task }
    }

    /// `http://` URL of the balancer.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections each backend took so far.
    pub fn served(&self) -> Vec<u64> {
        self.served.iter().map(|c| c.load(Relaxed)).collect()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
