//! Large synthetic clusters for the benchmark and scale tests: [`Cluster::generate`].
//!
//! What a generated cluster holds: the mesh of `generate/mesh.yaml` (two Istio revisions mid-canary
//! with revision tags, gateways, ztunnel, istio-cni, Kmesh, Gloo Mesh), nodes with a realistic mix of
//! kernels and OS images (a few Windows nodes), namespaces enrolled in the mesh in every way Istio
//! allows, Deployments with their ReplicaSets and pods (sidecars of several proxy versions, a few KB
//! each, status included), and one `kube-proxy` and one `ztunnel` pod per Linux node.
//!
//! Two problems are planted for checks to find (their names are in [`Generated`]): one node with an
//! old RHEL 8 kernel (4.18, below Kmesh's 5.10 minimum) and one Deployment deep in the pod list whose
//! proxies run Istio 1.20.8 under revision 1-22-8, two minors behind its control plane.
//!
//! Everything is derived from [`GenerateSpec::seed`]: the same spec gives the same cluster.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::cluster::{Cluster, Error};

/// The mesh objects every generated cluster carries.
const MESH_YAML: &str = include_str!("generate/mesh.yaml");

/// How big a cluster to generate. Parsed from `nodes=5000,pods=150000,namespaces=2000[,seed=N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateSpec {
    pub nodes: usize,
    /// Every pod in the cluster: system and mesh pods included.
    pub pods: usize,
    /// Application namespaces (the mesh's and the system namespaces come on top).
    pub namespaces: usize,
    pub seed: u64,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            nodes: 30,
            pods: 1_000,
            namespaces: 15,
            seed: 1,
        }
    }
}

impl GenerateSpec {
    /// A cluster of `pods` pods with nodes and namespaces scaled as in a typical fleet cluster:
    /// 30 pods per node (at most 5,000 nodes) and 75 pods per namespace.
    pub fn scaled(pods: usize) -> Self {
        GenerateSpec {
            nodes: (pods / 30).clamp(3, 5_000),
            pods,
            namespaces: (pods / 75).max(2),
            seed: 1,
        }
    }
}

impl FromStr for GenerateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = GenerateSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            let n: u64 = value
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{key}={value:?} is not a number"))?;
            let as_count = || usize::try_from(n).map_err(|_| format!("{key}={n} is too large"));
            match key {
                "nodes" => spec.nodes = as_count()?,
                "pods" => spec.pods = as_count()?,
                "namespaces" => spec.namespaces = as_count()?,
                "seed" => spec.seed = n,
                other => {
                    return Err(format!(
                        "unknown key {other:?} (expected nodes, pods, namespaces, seed)"
                    ));
                }
            }
        }
        if spec.nodes < 2 {
            return Err(
                "nodes must be at least 2 (one of them is the planted old-kernel node)".into(),
            );
        }
        if spec.namespaces < 1 {
            return Err("namespaces must be at least 1".into());
        }
        let floor = spec.system_pods() + spec.namespaces;
        if spec.pods < floor {
            return Err(format!(
                "pods={} is too few for {} nodes and {} namespaces: at least {floor} \
                 (a kube-proxy and a ztunnel pod per Linux node, the mesh's own pods, one pod per namespace)",
                spec.pods, spec.nodes, spec.namespaces
            ));
        }
        Ok(spec)
    }
}

impl fmt::Display for GenerateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodes={},pods={},namespaces={},seed={}",
            self.nodes, self.pods, self.namespaces, self.seed
        )
    }
}

/// What [`Cluster::generate`] stored, and where the planted problems are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub nodes: usize,
    pub pods: usize,
    pub namespaces: usize,
    pub deployments: usize,
    /// Pods carrying an `istio-proxy` sidecar (gateways included, ztunnel excluded).
    pub sidecar_pods: usize,
    /// The node whose kernel (4.18) is older than Kmesh's minimum.
    pub old_kernel_node: String,
    pub old_kernel: String,
    /// `namespace/name` of the Deployment whose proxies (1.20.8, revision 1-22-8) are out of skew.
    pub skewed_deployment: String,
    pub skewed_pods: usize,
    pub skewed_proxy_image: String,
}

/// A node pool: how the kubelet reports its platform.
struct Pool {
    weight: u32,
    prefix: &'static str,
    kernel: &'static str,
    os_image: &'static str,
    runtime: &'static str,
    kubelet: &'static str,
    arch: &'static str,
}

const POOLS: &[Pool] = &[
    Pool {
        weight: 40,
        prefix: "ip-10-0",
        kernel: "5.10.225-213.878.amzn2.x86_64",
        os_image: "Amazon Linux 2",
        runtime: "containerd://1.7.11",
        kubelet: "v1.29.6-eks-1552ad0",
        arch: "amd64",
    },
    Pool {
        weight: 20,
        prefix: "ip-10-1",
        kernel: "6.1.102-111.182.amzn2023.x86_64",
        os_image: "Amazon Linux 2023.5.20240819",
        runtime: "containerd://1.7.20",
        kubelet: "v1.29.6-eks-1552ad0",
        arch: "amd64",
    },
    Pool {
        weight: 8,
        prefix: "ip-10-2",
        kernel: "6.1.102-111.182.amzn2023.aarch64",
        os_image: "Amazon Linux 2023.5.20240819",
        runtime: "containerd://1.7.20",
        kubelet: "v1.29.6-eks-1552ad0",
        arch: "arm64",
    },
    Pool {
        weight: 12,
        prefix: "aks-nodepool1-31718369-vmss",
        kernel: "5.15.0-1064-azure",
        os_image: "Ubuntu 22.04.4 LTS",
        runtime: "containerd://1.7.15-1",
        kubelet: "v1.29.7",
        arch: "amd64",
    },
    Pool {
        weight: 10,
        prefix: "gke-prod-default-pool-9c1f2a7e",
        kernel: "6.1.100+",
        os_image: "Container-Optimized OS from Google",
        runtime: "containerd://1.7.22",
        kubelet: "v1.29.8-gke.1211000",
        arch: "amd64",
    },
    Pool {
        weight: 6,
        prefix: "ip-10-3",
        kernel: "6.1.102",
        os_image: "Bottlerocket OS 1.21.1 (aws-k8s-1.29)",
        runtime: "containerd://1.6.34+bottlerocket",
        kubelet: "v1.29.5-eks-1109419",
        arch: "amd64",
    },
    Pool {
        weight: 4,
        prefix: "rhel9-worker",
        kernel: "5.14.0-427.37.1.el9_4.x86_64",
        os_image: "Red Hat Enterprise Linux 9.4 (Plow)",
        runtime: "cri-o://1.29.6-3.rhaos4.16.git7f1b8f8.el9",
        kubelet: "v1.29.6+aa2b4ed",
        arch: "amd64",
    },
];

const WINDOWS: Pool = Pool {
    weight: 0,
    prefix: "akswin",
    kernel: "10.0.20348.2527",
    os_image: "Windows Server 2022 Datacenter",
    runtime: "containerd://1.7.20+azure",
    kubelet: "v1.29.7",
    arch: "amd64",
};

const OLD_KERNEL: Pool = Pool {
    weight: 0,
    prefix: "rhel8-worker",
    kernel: "4.18.0-513.24.1.el8_9.x86_64",
    os_image: "Red Hat Enterprise Linux 8.9 (Ootpa)",
    runtime: "cri-o://1.27.4",
    kubelet: "v1.29.6",
    arch: "amd64",
};

/// How a namespace is enrolled in the mesh.
#[derive(Clone, Copy, PartialEq)]
enum Enrolment {
    /// `istio.io/rev: <tag>` (tags `prod-stable` → 1-22-8, `prod-canary` → 1-24-6).
    Tag(&'static str),
    /// `istio-injection: enabled` (the `default` tag → 1-22-8).
    Injection,
    /// `istio.io/dataplane-mode: ambient`: no sidecars.
    Ambient,
    None,
}

impl Enrolment {
    /// The revision that injects this namespace's pods.
    fn revision(self) -> Option<&'static str> {
        match self {
            Enrolment::Tag("prod-canary") => Some("1-24-6"),
            Enrolment::Tag(_) | Enrolment::Injection => Some("1-22-8"),
            Enrolment::Ambient | Enrolment::None => None,
        }
    }
}

/// A small deterministic generator (splitmix64): no dependency, same cluster for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Lowercase letters and digits, as Kubernetes suffixes are.
    fn suffix(&mut self, len: usize) -> String {
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| ALPHA[self.below(ALPHA.len() as u64) as usize] as char)
            .collect()
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }

    fn uid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-8{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

const CREATED: &str = "2025-05-12T08:31:07Z";
const STARTED: &str = "2025-05-12T08:31:19Z";

const APPS: &[&str] = &[
    "api",
    "web",
    "worker",
    "checkout",
    "cart",
    "catalog",
    "search",
    "payments",
    "ledger",
    "auth",
    "profile",
    "notify",
    "inventory",
    "pricing",
    "reviews",
    "ratings",
    "shipping",
    "orders",
    "gateway",
    "recommend",
    "media",
    "billing",
    "reports",
    "session",
];
const TEAMS: &[&str] = &[
    "retail",
    "platform",
    "data",
    "identity",
    "growth",
    "risk",
    "logistics",
    "marketing",
];
const REGISTRIES: &[&str] = &[
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "europe-west1-docker.pkg.dev/acme-prod/apps",
    "acmeprod.azurecr.io",
];

impl Cluster {
    /// Store a synthetic cluster of the given size (see the module documentation for what it holds).
    /// Objects go in as seeded objects; the API serves them like any other, from their JSON serialized
    /// once here, so a 500-item page costs a copy of its bytes. Pods, Deployments and ReplicaSets are
    /// stored compact: field selectors on them see only metadata, `spec.nodeName` and `status.phase`.
    pub fn generate(&self, spec: &GenerateSpec) -> Result<Generated, Error> {
        GenerateSpec::from_str(&spec.to_string()).map_err(Error::Invalid)?;
        let mut rng = Rng(spec.seed ^ 0x6d65_7368_7570);
        self.seed_yaml(MESH_YAML)?;

        let nodes = self.generate_nodes(spec, &mut rng)?;
        let linux: Vec<&String> = nodes
            .iter()
            .filter(|n| !n.starts_with(WINDOWS.prefix))
            .collect();
        let old_kernel_node = nodes
            .iter()
            .find(|n| n.starts_with(OLD_KERNEL.prefix))
            .cloned()
            .unwrap_or_default();

        let mut pods = 0;
        let mut sidecar_pods = 0;
        let mut deployments = 0;

        // Per-node daemons: kube-proxy and ztunnel.
        for (i, node) in linux.iter().enumerate() {
            for (ns, app, image, proxy) in [
                (
                    "kube-system",
                    "kube-proxy",
                    "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/kube-proxy:v1.29.6-minimal-eksbuild.2",
                    None,
                ),
                (
                    "istio-system",
                    "ztunnel",
                    "docker.io/istio/ztunnel:1.22.8-distroless",
                    Some(()),
                ),
            ] {
                let name = format!("{app}-{}", rng.suffix(5));
                let owner = Owner {
                    kind: "DaemonSet",
                    name: app.to_string(),
                    uid: format!("00000000-0000-4000-8000-{:012x}", app.len()),
                };
                let mut labels = Map::new();
                labels.insert("k8s-app".into(), json!(app));
                labels.insert("app".into(), json!(app));
                labels.insert("controller-revision-hash".into(), json!("6d4b9c8f7"));
                let p = PodShape {
                    namespace: ns,
                    name: &name,
                    owner: &owner,
                    labels,
                    app_container: if proxy.is_some() { "istio-proxy" } else { app },
                    app_image: image,
                    sidecar: None,
                    node,
                    index: i,
                };
                self.seed_compact(pod(&p, &mut rng))?;
                pods += 1;
            }
        }

        // The mesh's own pods: istiods and gateways.
        // (namespace, Deployment, replicas, image, gateway's (revision, proxy image))
        type MeshWorkload = (
            &'static str,
            &'static str,
            usize,
            &'static str,
            Option<(&'static str, &'static str)>,
        );
        let mesh_workloads: [MeshWorkload; 4] = [
            (
                "istio-system",
                "istiod-1-22-8",
                3,
                "docker.io/istio/pilot:1.22.8",
                None,
            ),
            (
                "istio-system",
                "istiod-1-24-6",
                3,
                "docker.io/istio/pilot:1.24.6",
                None,
            ),
            (
                "istio-ingress",
                "istio-ingressgateway",
                3,
                "",
                Some(("1-24-6", "docker.io/istio/proxyv2:1.24.6")),
            ),
            (
                "istio-ingress",
                "istio-egressgateway",
                2,
                "",
                Some(("1-24-6", "docker.io/istio/proxyv2:1.24.6")),
            ),
        ];
        for (ns, deployment, replicas, image, gateway) in mesh_workloads {
            let hash = rng.suffix(10);
            let owner = Owner {
                kind: "ReplicaSet",
                name: format!("{deployment}-{hash}"),
                uid: rng.uid(),
            };
            for r in 0..replicas {
                let name = format!("{}-{}", owner.name, rng.suffix(5));
                let mut labels = Map::new();
                labels.insert("app".into(), json!(deployment));
                labels.insert("pod-template-hash".into(), json!(hash));
                let (container, image, sidecar) = match gateway {
                    Some((revision, proxy)) => (
                        "istio-proxy",
                        proxy,
                        Some(Sidecar {
                            revision,
                            image: proxy,
                            gateway: true,
                        }),
                    ),
                    None => ("discovery", image, None),
                };
                let p = PodShape {
                    namespace: ns,
                    name: &name,
                    owner: &owner,
                    labels,
                    app_container: container,
                    app_image: image,
                    sidecar,
                    node: linux[(r * 7 + deployment.len()) % linux.len()],
                    index: r,
                };
                self.seed_compact(pod(&p, &mut rng))?;
                pods += 1;
                sidecar_pods += usize::from(gateway.is_some());
            }
        }

        // Application namespaces, Deployments, ReplicaSets and pods.
        let budget = spec.pods.saturating_sub(pods);
        let teams: Vec<&str> = (0..spec.namespaces).map(|_| *rng.pick(TEAMS)).collect();
        let names: Vec<String> = teams
            .iter()
            .enumerate()
            .map(|(i, team)| format!("{team}-{i:04}"))
            .collect();
        // The planted Deployment goes into the namespace 90% down the (sorted) pod list.
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort();
        let deep = sorted[(spec.namespaces * 9 / 10).min(spec.namespaces - 1)];
        let skewed_ns_index = names.iter().position(|n| n == deep).unwrap_or(0);
        let mut skewed = (String::new(), 0);
        let skewed_image = "docker.io/istio/proxyv2:1.20.8";
        let mut placed = 0;
        for ns_index in 0..spec.namespaces {
            let team = teams[ns_index];
            let namespace = names[ns_index].clone();
            let enrolment = if ns_index == skewed_ns_index {
                Enrolment::Injection
            } else {
                match rng.below(100) {
                    0..40 => Enrolment::Tag("prod-stable"),
                    40..55 => Enrolment::Tag("prod-canary"),
                    55..70 => Enrolment::Injection,
                    70..80 => Enrolment::Ambient,
                    _ => Enrolment::None,
                }
            };
            self.seed_value(namespace_object(&namespace, team, enrolment))?;
            // This namespace's share of the pod budget.
            let share = budget * (ns_index + 1) / spec.namespaces - placed;
            placed += share;
            let mut left = share;
            let mut d = 0;
            while left > 0 {
                let plant = ns_index == skewed_ns_index && d == 0;
                let replicas = if plant {
                    left.min(4)
                } else {
                    (1 + rng.below(10) as usize).min(left)
                };
                left -= replicas;
                let app = *rng.pick(APPS);
                let deployment = if plant {
                    "billing-legacy".to_string()
                } else {
                    format!("{app}-{}", rng.suffix(4))
                };
                let sidecar = enrolment.revision().map(|revision| {
                    let image = if plant {
                        skewed_image
                    } else {
                        proxy_image(revision, &mut rng)
                    };
                    Sidecar {
                        revision,
                        image,
                        gateway: false,
                    }
                });
                let app_image = format!(
                    "{}/{team}/{app}:{}.{}.{}",
                    rng.pick(REGISTRIES),
                    1 + rng.below(4),
                    rng.below(30),
                    rng.below(12)
                );
                let hash = rng.suffix(10);
                let rs_uid = rng.uid();
                let workload = Workload {
                    namespace: &namespace,
                    name: &deployment,
                    team,
                    app,
                    hash: &hash,
                    replicas,
                    image: &app_image,
                    sidecar: sidecar.as_ref(),
                };
                let dep_uid = rng.uid();
                self.seed_compact(deployment_object(&workload, &dep_uid))?;
                self.seed_compact(replicaset_object(&workload, &rs_uid, &dep_uid))?;
                deployments += 1;
                let owner = Owner {
                    kind: "ReplicaSet",
                    name: format!("{deployment}-{hash}"),
                    uid: rs_uid,
                };
                for r in 0..replicas {
                    let name = format!("{}-{}", owner.name, rng.suffix(5));
                    let mut labels = Map::new();
                    labels.insert("app".into(), json!(deployment));
                    labels.insert("app.kubernetes.io/name".into(), json!(app));
                    labels.insert("app.kubernetes.io/part-of".into(), json!(team));
                    labels.insert("pod-template-hash".into(), json!(hash));
                    labels.insert("version".into(), json!("v1"));
                    let p = PodShape {
                        namespace: &namespace,
                        name: &name,
                        owner: &owner,
                        labels,
                        app_container: app,
                        app_image: &app_image,
                        sidecar: sidecar.clone(),
                        node: linux[rng.below(linux.len() as u64) as usize],
                        index: r,
                    };
                    self.seed_compact(pod(&p, &mut rng))?;
                    pods += 1;
                    sidecar_pods += usize::from(sidecar.is_some());
                }
                if plant {
                    skewed = (format!("{namespace}/{deployment}"), replicas);
                }
                d += 1;
            }
        }

        Ok(Generated {
            nodes: nodes.len(),
            pods,
            namespaces: spec.namespaces,
            deployments,
            sidecar_pods,
            old_kernel_node,
            old_kernel: OLD_KERNEL.kernel.to_string(),
            skewed_deployment: skewed.0,
            skewed_pods: skewed.1,
            skewed_proxy_image: skewed_image.to_string(),
        })
    }

    /// Nodes from the pools by weight, about one Windows node in 400 (at least one), and the planted
    /// old-kernel node. Returns their names.
    fn generate_nodes(&self, spec: &GenerateSpec, rng: &mut Rng) -> Result<Vec<String>, Error> {
        let windows = (spec.nodes / 400).max(1).min(spec.nodes - 1);
        let total_weight: u32 = POOLS.iter().map(|p| p.weight).sum();
        let mut names = Vec::with_capacity(spec.nodes);
        for i in 0..spec.nodes {
            let pool = if i == spec.nodes - 1 {
                &OLD_KERNEL
            } else if i < windows {
                &WINDOWS
            } else {
                let mut w = rng.below(u64::from(total_weight)) as u32;
                POOLS
                    .iter()
                    .find(|p| {
                        if w < p.weight {
                            true
                        } else {
                            w -= p.weight;
                            false
                        }
                    })
                    .unwrap_or(&POOLS[0])
            };
            let name = node_name(pool, i);
            self.seed_value(node(pool, &name, i, rng))?;
            names.push(name);
        }
        Ok(names)
    }
}

fn node_name(pool: &Pool, i: usize) -> String {
    if pool.prefix.starts_with("ip-") {
        format!(
            "{}-{}-{}.eu-west-1.compute.internal",
            pool.prefix,
            (i / 250) % 250,
            i % 250 + 2
        )
    } else if pool.prefix.starts_with("akswin") {
        format!("{}{i:06}", pool.prefix)
    } else if pool.prefix.starts_with("aks-") {
        format!("{}{i:06x}", pool.prefix)
    } else {
        format!("{}-{i:05}", pool.prefix)
    }
}

fn node(pool: &Pool, name: &str, i: usize, rng: &mut Rng) -> Value {
    let os = if pool.prefix == WINDOWS.prefix {
        "windows"
    } else {
        "linux"
    };
    let ip = format!("10.{}.{}.{}", i / 62_500 % 250, i / 250 % 250, i % 250 + 2);
    let zone = ["eu-west-1a", "eu-west-1b", "eu-west-1c"][i % 3];
    let instance = ["m6i.2xlarge", "m6i.4xlarge", "c6i.4xlarge", "r6i.2xlarge"][i % 4];
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "lastHeartbeatTime": STARTED,
               "lastTransitionTime": CREATED, "reason": reason, "message": message})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": rng.uid(),
            "creationTimestamp": CREATED,
            "labels": {
                "beta.kubernetes.io/arch": pool.arch,
                "beta.kubernetes.io/os": os,
                "kubernetes.io/arch": pool.arch,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": os,
                "node.kubernetes.io/instance-type": instance,
                "topology.kubernetes.io/region": "eu-west-1",
                "topology.kubernetes.io/zone": zone,
                "failure-domain.beta.kubernetes.io/zone": zone
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"
            }
        },
        "spec": {"providerID": format!("aws:///{zone}/i-0{}", rng.hex(16))},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": name}
            ],
            "allocatable": {"cpu": "7910m", "ephemeral-storage": "95551679124", "hugepages-1Gi": "0",
                            "hugepages-2Mi": "0", "memory": "31482236Ki", "pods": "110"},
            "capacity": {"cpu": "8", "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0",
                         "hugepages-2Mi": "0", "memory": "32465276Ki", "pods": "110"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [
                {"names": ["docker.io/istio/proxyv2:1.22.8"], "sizeBytes": 93_475_328},
                {"names": ["docker.io/istio/ztunnel:1.22.8-distroless"], "sizeBytes": 14_582_711}
            ],
            "nodeInfo": {
                "architecture": pool.arch,
                "bootID": rng.uid(),
                "containerRuntimeVersion": pool.runtime,
                "kernelVersion": pool.kernel,
                "kubeProxyVersion": pool.kubelet,
                "kubeletVersion": pool.kubelet,
                "machineID": rng.hex(32),
                "operatingSystem": os,
                "osImage": pool.os_image,
                "systemUUID": rng.uid()
            }
        }
    })
}

fn namespace_object(name: &str, team: &str, enrolment: Enrolment) -> Value {
    let mut labels = Map::new();
    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    labels.insert("team".into(), json!(team));
    match enrolment {
        Enrolment::Tag(tag) => {
            labels.insert("istio.io/rev".into(), json!(tag));
        }
        Enrolment::Injection => {
            labels.insert("istio-injection".into(), json!("enabled"));
        }
        Enrolment::Ambient => {
            labels.insert("istio.io/dataplane-mode".into(), json!("ambient"));
        }
        Enrolment::None => {}
    }
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels, "creationTimestamp": CREATED},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"}
    })
}

/// Proxy versions as a cluster mid-upgrade has them: most at the revision's version, some pods not
/// restarted since an earlier patch or minor (all within the allowed skew).
fn proxy_image(revision: &str, rng: &mut Rng) -> &'static str {
    let roll = rng.below(10);
    if revision == "1-24-6" {
        if roll < 8 {
            "docker.io/istio/proxyv2:1.24.6"
        } else {
            "docker.io/istio/proxyv2:1.23.3"
        }
    } else if roll < 7 {
        "docker.io/istio/proxyv2:1.22.8"
    } else if roll < 9 {
        "docker.io/istio/proxyv2:1.22.3"
    } else {
        "docker.io/istio/proxyv2:1.21.6"
    }
}

#[derive(Clone)]
struct Sidecar {
    revision: &'static str,
    image: &'static str,
    /// Gateways run the proxy as their only container (the `gateway` injection template).
    gateway: bool,
}

struct Owner {
    kind: &'static str,
    name: String,
    uid: String,
}

struct PodShape<'a> {
    namespace: &'a str,
    name: &'a str,
    owner: &'a Owner,
    labels: Map<String, Value>,
    app_container: &'a str,
    app_image: &'a str,
    sidecar: Option<Sidecar>,
    node: &'a str,
    index: usize,
}

struct Workload<'a> {
    namespace: &'a str,
    name: &'a str,
    team: &'a str,
    app: &'a str,
    hash: &'a str,
    replicas: usize,
    image: &'a str,
    sidecar: Option<&'a Sidecar>,
}

fn sidecar_status(revision: &str) -> String {
    format!(
        "{{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"volumes\":[\"workload-socket\",\
         \"istio-envoy\",\"istio-data\",\"istio-podinfo\",\"istio-token\",\
         \"istiod-ca-cert\"],\"imagePullSecrets\":null,\"revision\":\"{revision}\"}}"
    )
}

fn app_container(name: &str, image: &str, tenant: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": [
            {"name": "APP_ENV", "value": "production"},
            {"name": "TENANT", "value": tenant},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4317"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}
        ],
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 8080, "scheme": "HTTP"},
                           "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

fn proxy_container(image: &str, gateway: bool) -> Value {
    json!({
        "name": "istio-proxy",
        "image": image,
        "args": ["proxy", if gateway { "router" } else { "sidecar" }, "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "env": [
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "SERVICE_ACCOUNT", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.serviceAccountName"}}},
            {"name": "PROXY_CONFIG", "value": "{}\n"},
            {"name": "ISTIO_META_POD_PORTS", "value": "[\n    {\"name\":\"http\",\"containerPort\":8080,\"protocol\":\"TCP\"}\n]"},
            {"name": "ISTIO_META_APP_CONTAINERS", "value": "app"},
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
            {"name": "ISTIO_META_NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}
        ],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"failureThreshold": 4, "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
                           "periodSeconds": 15, "successThreshold": 1, "timeoutSeconds": 3},
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "privileged": false,
                            "readOnlyRootFilesystem": true, "runAsGroup": 1337, "runAsNonRoot": true, "runAsUser": 1337},
        "volumeMounts": [
            {"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"},
            {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
            {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
            {"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
            {"mountPath": "/etc/istio/pod", "name": "istio-podinfo"}
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

fn istio_volumes() -> Vec<Value> {
    vec![
        json!({"name": "workload-socket", "emptyDir": {}}),
        json!({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "istio-data", "emptyDir": {}}),
        json!({"name": "istio-podinfo", "downwardAPI": {"defaultMode": 420, "items": [
            {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}, "path": "labels"},
            {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.annotations"}, "path": "annotations"}]}}),
        json!({"name": "istio-token", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}}),
        json!({"name": "istiod-ca-cert", "configMap": {"defaultMode": 420, "name": "istio-ca-root-cert"}}),
    ]
}

fn container_status(name: &str, image: &str, rng: &mut Rng) -> Value {
    json!({
        "name": name, "image": image, "imageID": format!("{}@sha256:{}", image.split(':').next().unwrap_or(image), rng.hex(64)),
        "containerID": format!("containerd://{}", rng.hex(64)),
        "ready": true, "restartCount": 0, "started": true,
        "state": {"running": {"startedAt": STARTED}}, "lastState": {}
    })
}

fn pod(p: &PodShape, rng: &mut Rng) -> Value {
    let mut labels = p.labels.clone();
    let mut annotations = Map::new();
    annotations.insert(
        "kubectl.kubernetes.io/default-container".into(),
        json!(p.app_container),
    );
    annotations.insert("prometheus.io/scrape".into(), json!("true"));
    annotations.insert("prometheus.io/port".into(), json!("15020"));
    annotations.insert("prometheus.io/path".into(), json!("/stats/prometheus"));
    let mut init_containers = Vec::new();
    let mut init_statuses = Vec::new();
    let mut containers = Vec::new();
    let mut statuses = Vec::new();
    let mut volumes = vec![
        json!({"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}]}}),
    ];
    match &p.sidecar {
        Some(s) if s.gateway => {
            labels.insert("istio.io/rev".into(), json!(s.revision));
            labels.insert(
                "service.istio.io/canonical-name".into(),
                json!(p.owner.name),
            );
            labels.insert(
                "service.istio.io/canonical-revision".into(),
                json!("latest"),
            );
            annotations.insert("inject.istio.io/templates".into(), json!("gateway"));
            annotations.insert("istio.io/rev".into(), json!(s.revision));
            annotations.insert(
                "sidecar.istio.io/status".into(),
                json!(sidecar_status(s.revision)),
            );
            containers.push(proxy_container(s.image, true));
            statuses.push(container_status("istio-proxy", s.image, rng));
            volumes.extend(istio_volumes());
        }
        Some(s) => {
            labels.insert("istio.io/rev".into(), json!(s.revision));
            labels.insert("security.istio.io/tlsMode".into(), json!("istio"));
            labels.insert(
                "service.istio.io/canonical-name".into(),
                json!(p.app_container),
            );
            labels.insert("service.istio.io/canonical-revision".into(), json!("v1"));
            annotations.insert("istio.io/rev".into(), json!(s.revision));
            annotations.insert(
                "sidecar.istio.io/status".into(),
                json!(sidecar_status(s.revision)),
            );
            init_containers.push(json!({
                "name": "istio-init", "image": s.image,
                "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*"],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                                    "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0}
            }));
            init_statuses.push(json!({
                "name": "istio-init", "image": s.image, "imageID": format!("docker.io/istio/proxyv2@sha256:{}", rng.hex(64)),
                "containerID": format!("containerd://{}", rng.hex(64)), "ready": true, "restartCount": 0, "started": false,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": STARTED, "finishedAt": STARTED,
                                         "containerID": "containerd://0"}}, "lastState": {}
            }));
            containers.push(app_container(p.app_container, p.app_image, p.namespace));
            statuses.push(container_status(p.app_container, p.app_image, rng));
            containers.push(proxy_container(s.image, false));
            statuses.push(container_status("istio-proxy", s.image, rng));
            volumes.push(json!({"name": "config", "configMap": {"defaultMode": 420, "name": format!("{}-config", p.owner.name)}}));
            volumes.extend(istio_volumes());
        }
        None => {
            containers.push(app_container(p.app_container, p.app_image, p.namespace));
            statuses.push(container_status(p.app_container, p.app_image, rng));
            volumes.push(json!({"name": "config", "configMap": {"defaultMode": 420, "name": format!("{}-config", p.owner.name)}}));
        }
    }
    let ip = format!(
        "10.{}.{}.{}",
        100 + rng.below(50),
        rng.below(256),
        p.index % 250 + 2
    );
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": STARTED});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name,
            "generateName": format!("{}-", p.owner.name),
            "namespace": p.namespace,
            "uid": rng.uid(),
            "creationTimestamp": CREATED,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": p.owner.kind, "name": p.owner.name,
                                 "uid": p.owner.uid, "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "initContainers": init_containers,
            "containers": containers,
            "volumes": volumes,
            "nodeName": p.node,
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        },
        "status": {
            "phase": "Running",
            "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"),
                           condition("ContainersReady"), condition("PodScheduled")],
            "hostIP": format!("10.0.{}.{}", p.index % 250, p.node.len()),
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": STARTED,
            "initContainerStatuses": init_statuses,
            "containerStatuses": statuses,
            "qosClass": "Burstable"
        }
    })
}

fn pod_template(w: &Workload) -> Value {
    let mut containers = vec![app_container(w.app, w.image, w.team)];
    // Deployments carry no sidecar (injection happens when pods are created), only proxy settings.
    let mut annotations = Map::new();
    if w.sidecar.is_some() {
        annotations.insert(
            "proxy.istio.io/config".into(),
            json!("{ \"holdApplicationUntilProxyStarts\": true }"),
        );
    }
    if let Some(env) = containers[0]["env"].as_array_mut() {
        env.push(json!({"name": "DEPLOYMENT", "value": w.name}));
    }
    json!({
        "metadata": {"labels": {"app": w.name, "app.kubernetes.io/name": w.app, "version": "v1"},
                     "annotations": annotations},
        "spec": {
            "containers": containers,
            "volumes": [{"name": "config", "configMap": {"defaultMode": 420, "name": format!("{}-config", w.name)}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler", "securityContext": {}
        }
    })
}

fn deployment_object(w: &Workload, uid: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": w.name, "namespace": w.namespace, "uid": uid, "generation": 3, "creationTimestamp": CREATED,
            "labels": {"app": w.name, "app.kubernetes.io/name": w.app, "app.kubernetes.io/part-of": w.team},
            "annotations": {"deployment.kubernetes.io/revision": "3"}
        },
        "spec": {
            "replicas": w.replicas, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": w.name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": pod_template(w)
        },
        "status": {
            "observedGeneration": 3, "replicas": w.replicas, "updatedReplicas": w.replicas,
            "readyReplicas": w.replicas, "availableReplicas": w.replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.", "lastUpdateTime": STARTED, "lastTransitionTime": STARTED},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": format!("ReplicaSet \"{}-{}\" has successfully progressed.", w.name, w.hash),
                 "lastUpdateTime": STARTED, "lastTransitionTime": CREATED}
            ]
        }
    })
}

fn replicaset_object(w: &Workload, uid: &str, deployment_uid: &str) -> Value {
    let mut template = pod_template(w);
    template["metadata"]["labels"]["pod-template-hash"] = json!(w.hash);
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{}", w.name, w.hash), "namespace": w.namespace, "uid": uid, "generation": 1,
            "creationTimestamp": CREATED,
            "labels": {"app": w.name, "pod-template-hash": w.hash},
            "annotations": {"deployment.kubernetes.io/desired-replicas": w.replicas.to_string(),
                            "deployment.kubernetes.io/max-replicas": (w.replicas + 1).to_string(),
                            "deployment.kubernetes.io/revision": "3"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name, "uid": deployment_uid,
                                 "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "replicas": w.replicas,
            "selector": {"matchLabels": {"app": w.name, "pod-template-hash": w.hash}},
            "template": template
        },
        "status": {"observedGeneration": 1, "replicas": w.replicas, "fullyLabeledReplicas": w.replicas,
                   "readyReplicas": w.replicas, "availableReplicas": w.replicas}
    })
}

impl GenerateSpec {
    /// Pods the generator places before application pods: kube-proxy and ztunnel on every Linux
    /// node, 6 istiod and 5 gateway pods.
    fn system_pods(&self) -> usize {
        let windows = (self.nodes / 400).max(1).min(self.nodes.saturating_sub(1));
        2 * (self.nodes - windows) + 11
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeApiServer;

    #[test]
    fn specs_parse_and_reject_what_cannot_be_built() {
        let spec: GenerateSpec = "nodes=5000,pods=150_000,namespaces=2000,seed=7"
            .parse()
            .unwrap();
        assert_eq!(
            spec,
            GenerateSpec {
                nodes: 5000,
                pods: 150_000,
                namespaces: 2000,
                seed: 7
            }
        );
        assert_eq!(spec.to_string().parse::<GenerateSpec>().unwrap(), spec);
        assert!("nodes=10,pods=5".parse::<GenerateSpec>().is_err());
        assert!("nodes=ten".parse::<GenerateSpec>().is_err());
        assert!("racks=3".parse::<GenerateSpec>().is_err());
    }

    #[test]
    fn a_generated_cluster_has_the_counts_asked_and_the_planted_problems() {
        let server = FakeApiServer::start();
        let spec: GenerateSpec = "nodes=40,pods=1200,namespaces=12".parse().unwrap();
        let g = server.generate(&spec).unwrap();
        assert_eq!(g.pods, 1200);
        assert_eq!(server.count("pods", ""), 1200);
        assert_eq!(server.count("nodes", ""), 40);
        assert_eq!(server.count("deployments", ""), g.deployments + 6);
        let node = server.get("nodes", "", &g.old_kernel_node).unwrap();
        assert_eq!(
            node["status"]["nodeInfo"]["kernelVersion"],
            "4.18.0-513.24.1.el8_9.x86_64"
        );
        let (ns, name) = g.skewed_deployment.split_once('/').unwrap();
        let skewed: Vec<Value> = server
            .list("pods", ns)
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == name)
            .collect();
        assert_eq!(skewed.len(), g.skewed_pods);
        assert!(
            skewed.iter().all(|p| {
                p["spec"]["containers"][1]["image"] == "docker.io/istio/proxyv2:1.20.8"
            })
        );
        // Deep in the list: most pods sort before the planted ones.
        let all = server.list("pods", "");
        let first = all
            .iter()
            .position(|p| p["metadata"]["namespace"] == ns)
            .unwrap();
        assert!(first > all.len() / 2, "{first} of {}", all.len());
        // Same seed, same cluster.
        let again = FakeApiServer::start();
        assert_eq!(again.generate(&spec).unwrap(), g);
    }

    #[test]
    fn pods_are_a_few_kilobytes() {
        let server = FakeApiServer::start();
        server
            .generate(&"nodes=10,pods=300,namespaces=3".parse().unwrap())
            .unwrap();
        let pods = server.list("pods", "");
        let sizes: Vec<usize> = pods
            .iter()
            .map(|p| serde_json::to_vec(p).unwrap().len())
            .collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((2_000..8_000).contains(&mean), "mean pod size {mean} bytes");
    }
}
