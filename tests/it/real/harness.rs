//! The real control plane for the real-cluster tests: etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler (k8s.io/kubernetes v1.34.4) and kwok (KWOK v0.8.0, playing the kubelets), all built
//! from Go modules by `scripts/build-realcluster.sh`, started on free loopback ports with their own
//! certificates, and torn down when the [`RealCluster`] is dropped.
//!
//! Modelled on controller-runtime's envtest (pkg/internal/testing/controlplane) and on the flags
//! kwokctl gives each component (sigs.k8s.io/kwok pkg/kwokctl/components). What differs from a
//! production cluster, on purpose: one etcd without fsync, every component on 127.0.0.1, the
//! controllers and kwok using the admin identity, no kube-proxy, no DNS, no container runtime (kwok
//! makes scheduled pods Running and Ready from its Stages, `kwok-stages.yaml`).
//!
//! The directory of a cluster (certificates, kubeconfigs, etcd's data and every component's log) is
//! removed on drop, unless the test is failing: then its path is printed and it stays.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::{Value, json};

/// The context of the kubeconfigs the harness writes.
pub const CONTEXT: &str = "real";
/// What the built kube-apiserver reports at /version.
pub const KUBERNETES_VERSION: &str = "v1.34.4";
/// The annotation kwok is told to manage nodes by (as kwokctl does).
pub const KWOK_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

const STAGES: &str = include_str!("kwok-stages.yaml");

/// How long the control plane may take to come up (a 2-core machine shared with builds is slow).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Where `scripts/build-realcluster.sh` put the binaries and charts: `MESHUP_REALCLUSTER_DIR`, or
/// `target/realcluster` of this repository.
pub fn realcluster_dir() -> PathBuf {
    std::env::var_os("MESHUP_REALCLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/realcluster"))
}

/// A binary of the real tier (`kube-apiserver`, `etcd`, `kwok`, `helm`, `istioctl-1.30` …).
pub fn bin(name: &str) -> PathBuf {
    let path = realcluster_dir().join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the real-cluster tier first with `bash scripts/build-realcluster.sh` \
         (it writes target/realcluster; set MESHUP_REALCLUSTER_DIR to use another directory it built)",
        path.display()
    );
    path
}

/// A directory of packaged charts of the real tier (`istio-1.30.4` …).
pub fn charts(name: &str) -> PathBuf {
    let path = realcluster_dir().join("charts").join(name);
    assert!(
        path.is_dir(),
        "{} is missing: build the real-cluster tier first with `bash scripts/build-realcluster.sh`",
        path.display()
    );
    path
}

/// The built `kubectl-meshup`.
pub fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-meshup"))
}

/// One KWOK node: the platform facts `check` reads.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    pub name: &'static str,
    pub kernel: &'static str,
    pub os_image: &'static str,
    pub os: &'static str,
    pub arch: &'static str,
    pub runtime: &'static str,
}

/// The nodes every cluster gets: the kernels and images of EKS (Ubuntu), GKE-like Debian on both
/// architectures, RHEL 8, and one Windows node (tainted, as Windows pools usually are, so Linux pods
/// do not land there).
pub const NODES: [NodeSpec; 5] = [
    NodeSpec {
        name: "ip-10-0-1-17.ec2.internal",
        kernel: "5.15.0-1057-aws",
        os_image: "Ubuntu 22.04.4 LTS",
        os: "linux",
        arch: "amd64",
        runtime: "containerd://1.7.27",
    },
    NodeSpec {
        name: "debian-amd64-1",
        kernel: "6.1.0-18-cloud-amd64",
        os_image: "Debian GNU/Linux 12 (bookworm)",
        os: "linux",
        arch: "amd64",
        runtime: "containerd://1.7.27",
    },
    NodeSpec {
        name: "debian-arm64-1",
        kernel: "6.1.0-18-cloud-arm64",
        os_image: "Debian GNU/Linux 12 (bookworm)",
        os: "linux",
        arch: "arm64",
        runtime: "containerd://1.7.27",
    },
    NodeSpec {
        name: "rhel8-1",
        kernel: "4.18.0-513.el8.x86_64",
        os_image: "Red Hat Enterprise Linux 8.9 (Ootpa)",
        os: "linux",
        arch: "amd64",
        runtime: "cri-o://1.28.4",
    },
    NodeSpec {
        name: "akswin000000",
        kernel: "10.0.20348.2227",
        os_image: "Windows Server 2022 Datacenter",
        os: "windows",
        arch: "amd64",
        runtime: "containerd://1.7.20+azure",
    },
];

impl NodeSpec {
    fn manifest(&self) -> Value {
        let taints = if self.os == "windows" {
            json!([{"key": "os", "value": "windows", "effect": "NoSchedule"}])
        } else {
            json!([])
        };
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": self.name,
                "annotations": {
                    KWOK_ANNOTATION.0: KWOK_ANNOTATION.1,
                    "node.alpha.kubernetes.io/ttl": "0"
                },
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": self.os,
                    "kubernetes.io/arch": self.arch,
                    "beta.kubernetes.io/os": self.os,
                    "beta.kubernetes.io/arch": self.arch,
                    "type": "kwok"
                }
            },
            "spec": {"taints": taints},
            "status": {
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "nodeInfo": {
                    "architecture": self.arch,
                    "bootID": "",
                    "containerRuntimeVersion": self.runtime,
                    "kernelVersion": self.kernel,
                    "kubeProxyVersion": KUBERNETES_VERSION,
                    "kubeletVersion": KUBERNETES_VERSION,
                    "machineID": "",
                    "operatingSystem": self.os,
                    "osImage": self.os_image,
                    "systemUUID": ""
                }
            }
        })
    }
}

/// At most this many control planes at once (`MESHUP_REAL_CLUSTERS`, default 2): each is about 1 GiB
/// and a few hundred milliseconds of CPU a second while idle.
static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

fn max_clusters() -> usize {
    std::env::var("MESHUP_REAL_CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2)
}

struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= max_clusters() {
            used = SLOT_FREED.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(1);
        SLOT_FREED.notify_one();
    }
}

struct Component {
    name: &'static str,
    child: Child,
}

/// A running control plane. Drop stops it.
pub struct RealCluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    ca_pem: String,
    ca_path: PathBuf,
    components: Vec<Component>,
    startup: Duration,
    _slot: Slot,
}

/// A free TCP port on 127.0.0.1 (the listener is closed again; the component binds it soon after).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

struct Pki {
    ca_pem: String,
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "meshup-real-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Pki {
            ca_pem: cert.pem(),
            ca: Issuer::new(params, key),
        }
    }

    /// A certificate and key signed by the CA: (cert PEM, key PEM).
    fn leaf(
        &self,
        common_name: &str,
        organization: Option<&str>,
        sans: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        for san in sans {
            params.subject_alt_names.push(match san.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*san).try_into().expect("DNS name")),
            });
        }
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if let Some(o) = organization {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// A kubeconfig with one cluster, one user and the context [`CONTEXT`].
fn kubeconfig_yaml(server: &str, ca: &Path, user: &str, credentials: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n{credentials}contexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {user}\ncurrent-context: {CONTEXT}\n",
        ca = ca.display()
    )
}

impl RealCluster {
    /// Start a control plane with the [`NODES`] Ready, and wait until it serves.
    pub fn start() -> RealCluster {
        let slot = Slot::take();
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("meshup-real-")
            .tempdir()
            .expect("a directory for the control plane")
            .keep();
        for sub in ["pki", "logs", "etcd", "kubecache"] {
            fs::create_dir_all(dir.join(sub)).expect("create directory");
        }
        let pki = dir.join("pki");
        let ca = Pki::new();
        let ca_path = pki.join("ca.crt");
        write(&ca_path, &ca.ca_pem);
        let (serving_cert, serving_key) = ca.leaf(
            "kube-apiserver",
            None,
            &[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        write(&pki.join("apiserver.crt"), serving_cert);
        write(&pki.join("apiserver.key"), serving_key);
        let (admin_cert, admin_key) = ca.leaf(
            "kubernetes-admin",
            Some("system:masters"),
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        write(&pki.join("admin.crt"), admin_cert);
        write(&pki.join("admin.key"), admin_key);
        let sa_key = KeyPair::generate().expect("service-account signing key");
        write(&pki.join("sa.key"), sa_key.serialize_pem());
        write(&pki.join("sa.pub"), sa_key.public_key_pem());

        let api_port = free_port();
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = dir.join("kubeconfig");
        let admin_credentials = format!(
            "    client-certificate: {}\n    client-key: {}\n",
            pki.join("admin.crt").display(),
            pki.join("admin.key").display()
        );
        write(
            &kubeconfig,
            kubeconfig_yaml(&server, &ca_path, "admin", &admin_credentials),
        );

        let mut cluster = RealCluster {
            dir: dir.clone(),
            kubeconfig: kubeconfig.clone(),
            server: server.clone(),
            ca_pem: ca.ca_pem.clone(),
            ca_path: ca_path.clone(),
            components: Vec::new(),
            startup: Duration::ZERO,
            _slot: slot,
        };
        let p = |name: &str| pki.join(name).display().to_string();
        let kc = kubeconfig.display().to_string();

        // etcd (envtest's flags; --unsafe-no-fsync as envtest does, for speed on a shared disk).
        let etcd_client = free_port();
        let etcd_peer = free_port();
        let client_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        cluster.spawn(
            "etcd",
            &[
                "--name=node0".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=node0={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--auto-compaction-retention=1".into(),
                "--quota-backend-bytes=8589934592".into(),
            ],
        );
        cluster.wait_for_port("etcd", etcd_client);

        // kube-apiserver: admission plugins at their defaults, Node and RBAC authorization,
        // service-account tokens signed by our key (the TokenRequest API).
        cluster.spawn(
            "kube-apiserver",
            &[
                format!("--etcd-servers={client_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--tls-cert-file={}", p("apiserver.crt")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                format!("--client-ca-file={}", p("ca.crt")),
                "--authorization-mode=Node,RBAC".into(),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p("sa.pub")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                "--allow-privileged=true".into(),
                // The loopback address cannot be an Endpoints address of the `kubernetes` Service.
                "--endpoint-reconciler-type=none".into(),
                "--profiling=false".into(),
            ],
        );
        cluster.wait_ready();

        cluster.spawn(
            "kube-controller-manager",
            &[
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port()),
                "--leader-elect=false".into(),
                format!("--root-ca-file={}", p("ca.crt")),
                format!("--service-account-private-key-file={}", p("sa.key")),
                "--use-service-account-credentials=false".into(),
                "--profiling=false".into(),
            ],
        );
        cluster.spawn(
            "kube-scheduler",
            &[
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", free_port()),
                "--leader-elect=false".into(),
                "--profiling=false".into(),
            ],
        );
        let stages = dir.join("kwok-stages.yaml");
        write(&stages, STAGES);
        let kwok_port = free_port();
        cluster.spawn(
            "kwok",
            &[
                format!("--kubeconfig={kc}"),
                format!("--config={}", stages.display()),
                "--manage-all-nodes=false".into(),
                format!(
                    "--manage-nodes-with-annotation-selector={}={}",
                    KWOK_ANNOTATION.0, KWOK_ANNOTATION.1
                ),
                format!("--tls-cert-file={}", p("apiserver.crt")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                "--node-ip=10.0.0.2".into(),
                format!("--node-port={kwok_port}"),
                format!("--server-address=127.0.0.1:{kwok_port}"),
                "--node-lease-duration-seconds=0".into(),
            ],
        );

        let nodes: Vec<Value> = NODES.iter().map(NodeSpec::manifest).collect();
        cluster.create(&json!({"apiVersion": "v1", "kind": "List", "items": nodes}));
        cluster.wait_until("every node Ready", STARTUP_TIMEOUT, |c| {
            let nodes = c.get_json(&["nodes"]);
            let items = nodes["items"].as_array().cloned().unwrap_or_default();
            items.len() == NODES.len()
                && items.iter().all(|n| {
                    n["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        });
        // Pods need their namespace's `default` ServiceAccount (the ServiceAccount admission
        // plugin refuses them before the controller made it).
        cluster.wait_until("ServiceAccount default/default", STARTUP_TIMEOUT, |c| {
            c.kubectl(&["get", "serviceaccount", "default", "-n", "default"])
                .status
                .success()
        });
        cluster.startup = started.elapsed();
        eprintln!(
            "real cluster: control plane {} up in {:.1} s at {} (kubeconfig {})",
            KUBERNETES_VERSION,
            cluster.startup.as_secs_f64(),
            cluster.server,
            cluster.kubeconfig.display()
        );
        cluster
    }

    fn spawn(&mut self, name: &'static str, args: &[String]) {
        let program = bin(name);
        let log_path = self.dir.join("logs").join(format!("{name}.log"));
        let log = fs::File::create(&log_path).expect("log file");
        let err = log.try_clone().expect("log file");
        let mut command = Command::new(&program);
        // If the test process dies without dropping the cluster (killed by a timeout, SIGKILL), the
        // components die with it instead of holding ports and memory.
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        self.components.push(Component { name, child });
    }

    /// Panics (naming the component and the tail of its log) if a component exited.
    fn assert_running(&mut self) {
        for c in &mut self.components {
            if let Ok(Some(status)) = c.child.try_wait() {
                let log = fs::read_to_string(self.dir.join("logs").join(format!("{}.log", c.name)))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "{} exited with {status}; the last lines of its log:\n{}",
                    c.name,
                    tail.join("\n")
                );
            }
        }
    }

    fn wait_for_port(&mut self, what: &str, port: u16) {
        self.wait_until(
            &format!("{what} listening on {port}"),
            STARTUP_TIMEOUT,
            |_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
        );
    }

    fn wait_ready(&mut self) {
        self.wait_until("kube-apiserver /readyz", STARTUP_TIMEOUT, |c| {
            let out = c.kubectl(&["get", "--raw=/readyz"]);
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok"
        });
    }

    /// Poll `ready` every 250 ms until it holds; panics after `timeout` or when a component dies.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&mut Self) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            if ready(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; logs in {}",
                self.dir.join("logs").display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The admin kubeconfig (user in `system:masters`), context [`CONTEXT`].
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn context(&self) -> &str {
        CONTEXT
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The cluster's CA certificate (PEM), which signed the API server's serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The cluster's directory: pki/, logs/ (one log per component), etcd/, kubeconfigs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A `kubectl` command for `kubeconfig`, with this cluster's own KUBECACHEDIR.
    pub fn kubectl_command_for(&self, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kubecache"))
            .env_remove("KUBERNETES_SERVICE_HOST");
        cmd
    }

    /// The real kubectl as admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command_for(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl (is it on PATH?)")
    }

    /// kubectl as admin that must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ARGS -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).expect("kubectl -o json parses")
    }

    /// The object, or `None` when the server says NotFound.
    pub fn try_get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut args = vec!["get", resource, name, "-o", "json", "--ignore-not-found"];
        if let Some(ns) = namespace {
            args.extend_from_slice(&["-n", ns]);
        }
        let out = self.kubectl_ok(&args);
        (!out.trim().is_empty()).then(|| serde_json::from_str(&out).expect("object parses"))
    }

    fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .kubectl_command_for(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl (is it on PATH?)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to kubectl");
        child.wait_with_output().expect("kubectl finishes")
    }

    /// `kubectl apply --server-side -f -` of YAML or JSON (one or more documents), as admin; panics
    /// with kubectl's message when refused.
    pub fn apply_yaml(&self, yaml: &str) {
        let out = self.with_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager=meshup-test",
                "-f",
                "-",
            ],
            yaml,
        );
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            yaml
        );
    }

    /// `kubectl create -f -` of one object (JSON), as admin (status is kept where the API keeps it
    /// on create, as for nodes).
    pub fn create(&self, object: &Value) {
        let out = self.with_stdin(&["create", "-f", "-"], &object.to_string());
        assert!(
            out.status.success(),
            "kubectl create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A kubeconfig for ServiceAccount `namespace/name` (created when missing) with a token from
    /// the TokenRequest API (`kubectl create token`), valid for two hours.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        self.apply_yaml(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        ));
        let token = self.kubectl_ok(&["create", "token", name, "-n", namespace, "--duration=2h"]);
        let path = self.dir.join(format!("sa-{namespace}-{name}.kubeconfig"));
        write(
            &path,
            kubeconfig_yaml(
                &self.server,
                &self.ca_path,
                &format!("system:serviceaccount:{namespace}:{name}"),
                &format!("    token: {}\n", token.trim()),
            ),
        );
        path
    }

    /// `kubectl-meshup` (the binary cargo built for this test run) for `kubeconfig`, with its own
    /// KUBECACHEDIR and no colour. Add the command and its flags.
    pub fn meshup_command_for(&self, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new(plugin_binary());
        cmd.env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kubecache"))
            .env("NO_COLOR", "1")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null());
        cmd
    }

    /// `kubectl-meshup ARGS` as admin.
    pub fn meshup(&self, args: &[&str]) -> Output {
        self.meshup_as(&self.kubeconfig, args)
    }

    /// `kubectl-meshup ARGS` with another kubeconfig (e.g. a ServiceAccount's).
    pub fn meshup_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        self.meshup_command_for(kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl-meshup")
    }
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        // The reverse of the start order: kwok and the controllers first, etcd last.
        for c in self.components.iter_mut().rev() {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "real cluster: the test failed; its directory (kubeconfig, certificates, logs/ of every component) is kept: {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub use crate::support::text;
