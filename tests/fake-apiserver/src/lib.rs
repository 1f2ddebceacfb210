//! An in-memory Kubernetes API server for tests (see README.md beside this crate).
//!
//! ```no_run
//! use fake_apiserver::FakeApiServer;
//!
//! let server = FakeApiServer::start();
//! server.seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n").unwrap();
//! // Point kubectl or kube-rs at it:
//! let kubeconfig = server.kubeconfig_path();
//! let context = server.context();
//! # let _ = (kubeconfig, context);
//! ```

mod cluster;
mod discovery;
mod faults;
mod generate;
mod http;
mod patch;
mod protobuf;
mod resources;
mod selectors;
mod state;

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub use cluster::{Change, Cluster, Error, FaultId, RecordedRequest, parse_documents};
pub use faults::{Fault, FaultAction};
pub use generate::{GenerateSpec, Generated};
pub use state::EventType;

use cluster::Config;
use state::State;

/// The default `/version` gitVersion: what an EKS 1.29 cluster reports.
pub const DEFAULT_SERVER_VERSION: &str = "v1.29.6-eks-db838b0";
/// The user name written into kubeconfigs and used in 403 messages.
pub const DEFAULT_USER: &str = "meshup-test";
/// The context (and cluster) name written into kubeconfigs.
pub const CONTEXT_NAME: &str = "fake-apiserver";

/// Options for starting a server.
#[derive(Debug, Clone)]
pub struct Builder {
    listen: SocketAddr,
    server_version: String,
    auto_rollout: Option<Duration>,
    default_namespaces: bool,
    event_history: usize,
    user: String,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            server_version: DEFAULT_SERVER_VERSION.into(),
            auto_rollout: None,
            default_namespaces: true,
            event_history: 10_000,
            user: DEFAULT_USER.into(),
        }
    }
}

impl Builder {
    /// Address to listen on; default `127.0.0.1:0` (a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// `gitVersion` reported by `/version`.
    pub fn server_version(mut self, v: impl Into<String>) -> Self {
        self.server_version = v.into();
        self
    }

    /// Complete workload rollouts 50 ms after each spec change made through the API.
    pub fn auto_rollout(self, on: bool) -> Self {
        self.auto_rollout_after(if on {
            Some(Duration::from_millis(50))
        } else {
            None
        })
    }

    /// Complete workload rollouts this long after each spec change made through the API.
    pub fn auto_rollout_after(mut self, delay: Option<Duration>) -> Self {
        self.auto_rollout = delay;
        self
    }

    /// Create `default`, `kube-system`, `kube-public` and `kube-node-lease` at start (default true).
    pub fn default_namespaces(mut self, on: bool) -> Self {
        self.default_namespaces = on;
        self
    }

    /// How many watch events to keep for resuming watches (default 10,000). Older resourceVersions
    /// answer 410 Expired.
    pub fn event_history(mut self, n: usize) -> Self {
        self.event_history = n.max(1);
        self
    }

    /// User name for the kubeconfig and 403 messages (default `meshup-test`).
    pub fn user(mut self, name: impl Into<String>) -> Self {
        self.user = name.into();
        self
    }

    /// Bind, start serving on a thread of its own, and write a kubeconfig. Panics if it cannot
    /// bind or write (this is a test helper); see [`Builder::try_start`].
    pub fn start(self) -> FakeApiServer {
        self.try_start().expect("start fake-apiserver")
    }

    pub fn try_start(self) -> std::io::Result<FakeApiServer> {
        let listener = std::net::TcpListener::bind(self.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let cluster = Cluster::new(
            State::new(self.event_history),
            Config {
                server_version: self.server_version.clone(),
                auto_rollout: self.auto_rollout.is_some(),
                auto_rollout_delay: self.auto_rollout.unwrap_or(Duration::from_millis(50)),
                user: self.user.clone(),
            },
        );
        if self.default_namespaces {
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                cluster
                    .seed(serde_json::json!({
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                        "spec": {"finalizers": ["kubernetes"]},
                        "status": {"phase": "Active"}
                    }))
                    .expect("seed namespace");
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("fake-apiserver-")
            .tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&addr, &self.user))?;

        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let c = cluster.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-apiserver-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let _ = c.shared.runtime.set(rt.handle().clone());
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    accept_loop(listener, c, shutdown_rx).await;
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("server thread died"))??;
        Ok(FakeApiServer {
            cluster,
            addr,
            shutdown: shutdown_tx,
            thread: Some(thread),
            kubeconfig,
            _dir: dir,
        })
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    cluster: Cluster,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let _ = stream.set_nodelay(true);
                let c = cluster.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| http::handle(c.clone(), req));
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn kubeconfig_yaml(addr: &SocketAddr, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT_NAME}
  cluster:
    server: http://{addr}
users:
- name: {user}
  user:
    token: fake-token-{user}
contexts:
- name: {CONTEXT_NAME}
  context:
    cluster: {CONTEXT_NAME}
    user: {user}
    namespace: default
current-context: {CONTEXT_NAME}
preferences: {{}}
"
    )
}

/// A running fake API server. Dereferences to [`Cluster`] for seeding, inspection, faults,
/// RBAC denials and controller play. Stops (and removes its kubeconfig) when dropped.
pub struct FakeApiServer {
    cluster: Cluster,
    addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeApiServer {
    /// Start with default options on `127.0.0.1:0`. Works from sync and async tests alike: the
    /// server runs its own runtime on its own thread.
    pub fn start() -> FakeApiServer {
        Builder::default().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig file for this server (cluster, user with a bearer token, context with
    /// namespace `default`, current-context set), written at start.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The context name in [`FakeApiServer::kubeconfig_path`].
    pub fn context(&self) -> &'static str {
        CONTEXT_NAME
    }

    /// Write the kubeconfig to another file too.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, kubeconfig_yaml(&self.addr, &self.cluster.user()))
    }

    /// The kubeconfig text.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.addr, &self.cluster.user())
    }

    /// A cloneable handle on the state (the same one `Deref` gives).
    pub fn cluster(&self) -> Cluster {
        self.cluster.clone()
    }
}

impl Deref for FakeApiServer {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
