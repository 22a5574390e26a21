//! Starts the daemon on a temporary socket (and optionally loopback TCP) in a background
//! runtime; stops it when dropped. Waits poll with a deadline; nothing sleeps blindly.

#![allow(dead_code)]

use prae::daemon::{self, Config, Connector, Daemon};
use prae::hypervisor::{Hypervisor, Libvirt};
use prae::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Running {
    pub socket: PathBuf,
    pub tcp: Option<SocketAddr>,
    pub daemon: Arc<Daemon>,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<prae::Result<()>>>,
}

impl Running {
    /// Stops the daemon and returns how `run` ended.
    pub fn stop(mut self) -> prae::Result<()> {
        self.stop_inner()
    }
    fn stop_inner(&mut self) -> prae::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().expect("daemon thread"),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// A connector to libvirt's in-process test driver.
pub fn test_driver() -> Connector {
    Box::new(|| Libvirt::open(Some("test:///default")).map(|l| Arc::new(l) as Arc<dyn Hypervisor>))
}

/// Starts a daemon with `config` (its db is a file in a temporary directory).
pub fn start(mut config: Config, connector: Connector, token: Option<&str>, tcp: bool) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("run/prae.sock");
    let db = dir.path().join("prae.db");
    config.db = Some(db.clone());
    let store = Store::open(&db).expect("store");
    let d = Daemon::new(config, connector, store, token.map(str::to_string)).expect("daemon");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (d2, sock2) = (d.clone(), socket.clone());
    let group = d.config().socket_group.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let unix = daemon::bind_unix(&sock2, group.as_deref())?;
            let tcp = if tcp {
                Some(
                    tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("tcp"),
                )
            } else {
                None
            };
            let _ = ready_tx.send(tcp.as_ref().map(|t| t.local_addr().expect("addr")));
            daemon::run(d2, unix, tcp, async {
                let _ = stop_rx.await;
            })
            .await
        })
    });
    let tcp = ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("daemon started");
    Running {
        socket,
        tcp,
        daemon: d,
        dir,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// Polls `f` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
