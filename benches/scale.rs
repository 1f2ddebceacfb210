//! The scale benchmark (not a test): `scripts/bench.sh`, or `cargo bench --bench scale [-- OPTIONS]`.
//!
//! For each cluster size it starts a fake API server holding a generated cluster and measures, as
//! separate processes under `/usr/bin/time`:
//! - `kubectl-meshup check` (wall time, peak RSS, requests the server answered);
//! - `kubectl get nodes -o json` then `kubectl get pods -A -o json` (what a user would pipe into jq),
//!   with the kubectl binary the gcloud dispatcher would pick, called directly (see `kubectl_binary`);
//! - the floor: the exact requests `check` made, replayed over keep-alive connections with no parsing
//!   (each list's pages in order, the lists in parallel, as `check` runs them).
//!
//! Then `plan` on a snapshot, `--version` start-up, and a fleet: one `check` over N contexts of N fake
//! servers against one context alone. Prints the figures and the ratios against the targets of issue 7.
//!
//! kubectl keeps every object of `get -o json` in memory (about 190 KB per generated pod); where the
//! run before projects more than 70% of the available memory, kubectl is not run at that size and its
//! figures are extrapolated linearly from the two largest sizes measured (marked `~`).
//!
//! Options: `--sizes 1000,10000,50000,150000` `--fleet 20` `--fleet-pods 1000`
//! `--fleet-latency-ms 20` `--reps 3`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, Fault, GenerateSpec, RecordedRequest};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-meshup");
const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/istio-1.20-eks.yaml");

struct Options {
    sizes: Vec<usize>,
    fleet: usize,
    fleet_pods: usize,
    /// Round-trip time added to every request of the fleet's servers in the second fleet run, as
    /// remote clusters have; the first run has none.
    fleet_latency_ms: u64,
    reps: usize,
}

fn options() -> Options {
    let mut o = Options {
        sizes: vec![1_000, 10_000, 50_000, 150_000],
        fleet: 20,
        fleet_pods: 1_000,
        fleet_latency_ms: 20,
        reps: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--sizes" => {
                o.sizes = value()
                    .split(',')
                    .filter_map(|s| s.replace('_', "").parse().ok())
                    .collect()
            }
            "--fleet" => o.fleet = value().parse().unwrap_or(o.fleet),
            "--fleet-pods" => o.fleet_pods = value().parse().unwrap_or(o.fleet_pods),
            "--fleet-latency-ms" => {
                o.fleet_latency_ms = value().parse().unwrap_or(o.fleet_latency_ms)
            }
            "--reps" => o.reps = value().parse::<usize>().unwrap_or(o.reps).max(1),
            _ => {} // cargo bench passes --bench
        }
    }
    o
}

/// One process run: wall time, peak RSS, exit code.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    max_rss_kib: u64,
    code: i32,
}

/// Runs `program args` under `/usr/bin/time` (peak RSS of that process), stdout to /dev/null.
fn timed(program: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Run {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M %x")
        .arg("-o")
        .arg(out.path())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let output = cmd.output().expect("run /usr/bin/time");
    let wall = started.elapsed();
    // GNU time writes "Command exited with non-zero status N" before the format line.
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    let mut fields = text.lines().last().unwrap_or("").split_whitespace();
    let max_rss_kib = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let code = fields.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
    if code != 0 && code != 3 {
        eprintln!(
            "warning: {} {args:?} exited {code}: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Run {
        wall,
        max_rss_kib,
        code,
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// The kubectl a user of this server runs. `/usr/bin/kubectl` is gcloud's dispatcher, which picks
/// `kubectl.1.MINOR` from the server's version and runs it as a child; `/usr/bin/time` would then
/// report the dispatcher's own RSS. So the dispatched binary is called directly (`KUBECTL` overrides).
fn kubectl_binary(server_minor: &str) -> PathBuf {
    if let Ok(k) = std::env::var("KUBECTL") {
        return PathBuf::from(k);
    }
    let dispatched = PathBuf::from(format!(
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.{server_minor}"
    ));
    if dispatched.exists() {
        dispatched
    } else {
        PathBuf::from("kubectl")
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A request `check` made, reduced to what replaying it needs.
#[derive(Debug, Clone)]
struct Replay {
    path_and_query: String,
    accept: String,
}

/// Groups the request log into chains: the pages of one list (same path and selector, same Accept)
/// in order; other requests one per chain. `check` runs the chains concurrently.
fn chains(log: &[RecordedRequest]) -> Vec<Vec<Replay>> {
    let mut by_list: BTreeMap<(String, String, String), Vec<Replay>> = BTreeMap::new();
    for (i, r) in log.iter().enumerate() {
        let accept = r.accept.clone().unwrap_or_else(|| "*/*".into());
        let key = if r.param("limit").is_some() {
            (
                r.path.clone(),
                r.param("labelSelector").unwrap_or_default(),
                accept.clone(),
            )
        } else {
            (format!("#{i}"), String::new(), String::new())
        };
        let path_and_query = if r.query.is_empty() {
            r.path.clone()
        } else {
            format!("{}?{}", r.path, r.query)
        };
        by_list.entry(key).or_default().push(Replay {
            path_and_query,
            accept,
        });
    }
    by_list.into_values().collect()
}

/// Reads one HTTP/1.1 response (Content-Length or chunked body) and drops it; returns body bytes.
fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<usize> {
    let mut line = String::new();
    let mut length: Option<usize> = None;
    let mut chunked = false;
    reader.read_line(&mut line)?;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut sink = vec![0u8; 64 * 1024];
    let mut drain = |reader: &mut BufReader<TcpStream>, mut n: usize| -> std::io::Result<()> {
        while n > 0 {
            let k = reader.read(&mut sink[..n.min(64 * 1024)])?;
            if k == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            n -= k;
        }
        Ok(())
    };
    if let Some(n) = length {
        drain(reader, n)?;
        return Ok(n);
    }
    let mut total = 0;
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            drain(reader, n + 2)?;
            total += n;
            if n == 0 {
                break;
            }
        }
    }
    Ok(total)
}

/// The floor: replays the chains (each on its own keep-alive connection, all at once), reading and
/// dropping the bytes. Returns the wall time.
fn floor(addr: SocketAddr, chains: &[Vec<Replay>]) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for chain in chains {
            s.spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).ok();
                let mut writer = stream.try_clone().expect("clone stream");
                let mut reader = BufReader::with_capacity(256 * 1024, stream);
                for r in chain {
                    write!(
                        writer,
                        "GET {} HTTP/1.1\r\nHost: {addr}\r\nAccept: {}\r\nAuthorization: Bearer fake\r\n\r\n",
                        r.path_and_query, r.accept
                    )
                    .expect("send");
                    read_response(&mut reader).expect("read response");
                }
            });
        }
    });
    started.elapsed()
}

struct SizeResult {
    pods: usize,
    nodes: usize,
    check: Run,
    check_requests: usize,
    pod_pages: usize,
    /// `None` when kubectl was not run at this size (see `kubectl_fits`).
    kubectl: Option<Run>,
    kubectl_requests: usize,
    floor: Duration,
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemAvailable"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether kubectl at `pods` pods fits in memory, projected linearly from the last size measured.
fn kubectl_fits(pods: usize, before: Option<&SizeResult>) -> Result<(), String> {
    let Some((prev_pods, prev)) = before.and_then(|b| Some((b.pods, b.kubectl?))) else {
        return Ok(());
    };
    let projected = prev.max_rss_kib as f64 * pods as f64 / prev_pods as f64;
    let available = mem_available_kib() as f64;
    if projected > 0.7 * available {
        Err(format!(
            "kubectl not run at {pods} pods: projected peak RSS {:.1} GiB, {:.1} GiB available",
            projected / 1048576.0,
            available / 1048576.0
        ))
    } else {
        Ok(())
    }
}

fn measure_size(pods: usize, reps: usize, before: Option<&SizeResult>) -> SizeResult {
    let spec = GenerateSpec::scaled(pods);
    let server = FakeApiServer::start();
    let started = Instant::now();
    let generated = server.generate(&spec).expect("generate");
    eprintln!(
        "# {spec}: generated {} pods, {} nodes, {} Deployments in {:.1} s",
        generated.pods,
        generated.nodes,
        generated.deployments,
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = server.kubeconfig_path().to_str().expect("utf-8 path");
    let cache = dir.path().join("kube-cache");
    let env = [
        ("KUBECACHEDIR", cache.as_os_str()),
        ("HOME", dir.path().as_os_str()),
        ("NO_COLOR", OsStr::new("1")),
    ];

    // check: the first run's request log is the one replayed for the floor.
    let mut runs = Vec::new();
    let mut log = Vec::new();
    for i in 0..reps {
        server.clear_requests();
        runs.push(timed(
            Path::new(PLUGIN),
            &["check", "--kubeconfig", kubeconfig],
            &env,
        ));
        if i == 0 {
            log = server.requests();
        }
    }
    let check = pick_median(&runs);
    let pod_pages = log.iter().filter(|r| r.path == "/api/v1/pods").count();

    let chains = chains(&log);
    let floor = median((0..reps).map(|_| floor(server.addr(), &chains)).collect());

    // kubectl: warm its discovery cache once, then measure both commands.
    if let Err(why) = kubectl_fits(generated.pods, before) {
        eprintln!("# {why}");
        return SizeResult {
            pods: generated.pods,
            nodes: generated.nodes,
            check,
            check_requests: log.len(),
            pod_pages,
            kubectl: None,
            kubectl_requests: 0,
            floor,
        };
    }
    let kubectl = kubectl_binary("29");
    let k_args_nodes = ["--kubeconfig", kubeconfig, "get", "nodes", "-o", "json"];
    let k_args_pods = [
        "--kubeconfig",
        kubeconfig,
        "get",
        "pods",
        "-A",
        "-o",
        "json",
    ];
    timed(
        &kubectl,
        &["--kubeconfig", kubeconfig, "api-resources"],
        &env,
    );
    let k_reps = if pods > 50_000 { 1 } else { reps };
    let mut k_runs = Vec::new();
    let mut kubectl_requests = 0;
    for _ in 0..k_reps {
        server.clear_requests();
        let a = timed(&kubectl, &k_args_nodes, &env);
        let b = timed(&kubectl, &k_args_pods, &env);
        kubectl_requests = server.requests().len();
        k_runs.push(Run {
            wall: a.wall + b.wall,
            max_rss_kib: a.max_rss_kib.max(b.max_rss_kib),
            code: a.code.max(b.code),
        });
    }
    let kubectl = Some(pick_median(&k_runs));
    SizeResult {
        pods: generated.pods,
        nodes: generated.nodes,
        check,
        check_requests: log.len(),
        pod_pages,
        kubectl,
        kubectl_requests,
        floor,
    }
}

/// The run with the median wall time; its peak RSS is reported with it (the highest RSS of the runs
/// is printed too, since memory is the stricter target).
fn pick_median(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by_key(|r| r.wall);
    let mut m = sorted[sorted.len() / 2];
    m.max_rss_kib = runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
    m
}

/// kubectl's wall time and peak RSS at `pods`, on the line through the two largest sizes measured.
fn extrapolate_kubectl(results: &[SizeResult], pods: usize) -> Run {
    let measured: Vec<(f64, Run)> = results
        .iter()
        .filter_map(|r| Some((r.pods as f64, r.kubectl?)))
        .collect();
    let line = |f: &dyn Fn(&Run) -> f64| -> f64 {
        match measured.as_slice() {
            [.., (x0, a), (x1, b)] => {
                let slope = (f(b) - f(a)) / (x1 - x0);
                f(b) + slope * (pods as f64 - x1)
            }
            [(x, a)] => f(a) * pods as f64 / x,
            [] => 0.0,
        }
    };
    Run {
        wall: Duration::from_secs_f64(line(&|r| secs(r.wall)).max(0.0)),
        max_rss_kib: line(&|r| r.max_rss_kib as f64).max(0.0) as u64,
        code: 0,
    }
}

fn plan_library(reps: usize) -> Duration {
    use kubectl_meshup::compat::CompatData;
    use kubectl_meshup::plan::{Mesh, PlanRequest, Target, plan};
    use kubectl_meshup::snapshot::ClusterSnapshot;
    use kubectl_meshup::version::Version;
    let mut times = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let text = std::fs::read_to_string(SNAPSHOT).expect("read the example snapshot");
        let snapshot: ClusterSnapshot =
            serde_saphyr::from_str(&text).expect("parse the example snapshot");
        let compat = CompatData::embedded();
        let request = PlanRequest {
            targets: vec![Target {
                mesh: Mesh::Istio,
                version: Version::parse("1.24").expect("version"),
                flavor: None,
            }],
            tool_version: env!("CARGO_PKG_VERSION").into(),
            ..PlanRequest::default()
        };
        let plan = plan(&snapshot, &compat, &request).expect("plan");
        std::hint::black_box(plan);
        times.push(started.elapsed());
    }
    median(times)
}

fn fleet_kubeconfig(servers: &[FakeApiServer]) -> String {
    let mut clusters = String::new();
    let mut contexts = String::new();
    for (i, s) in servers.iter().enumerate() {
        clusters.push_str(&format!(
            "- name: c{i:02}\n  cluster:\n    server: {}\n",
            s.url()
        ));
        contexts.push_str(&format!(
            "- name: c{i:02}\n  context:\n    cluster: c{i:02}\n    user: bench\n"
        ));
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n- name: bench\n  user:\n    token: fake\n\
         contexts:\n{contexts}current-context: c00\npreferences: {{}}\n"
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn main() {
    let o = options();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| k / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kubectl = kubectl_binary("29");
    println!("## Machine\n");
    println!("- CPU: {cpu}, {cores} cores (nproc), {mem:.1} GiB memory");
    println!(
        "- kubectl: {} (what /usr/bin/kubectl dispatches to for a 1.29 server)",
        kubectl.display()
    );
    println!(
        "- repetitions: {} (median wall time; highest peak RSS)\n",
        o.reps
    );

    println!("## check vs kubectl vs floor\n");
    println!(
        "| pods | nodes | check wall s | check peak RSS MiB | check requests (pod pages) | kubectl wall s | kubectl peak RSS MiB | kubectl requests | floor wall s | check/kubectl wall | check/kubectl RSS | check/floor |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut results: Vec<SizeResult> = Vec::new();
    for &pods in &o.sizes {
        let r = measure_size(pods, o.reps, results.last());
        let (k, mark) = match r.kubectl {
            Some(k) => (k, ""),
            None => (extrapolate_kubectl(&results, r.pods), "~"),
        };
        let requests = if mark.is_empty() {
            r.kubectl_requests.to_string()
        } else {
            "not run".to_string()
        };
        println!(
            "| {} | {} | {:.3} | {:.1} | {} ({}) | {mark}{:.3} | {mark}{:.1} | {requests} | {:.3} | {mark}{:.3} | {mark}{:.4} | {:.2} |",
            r.pods,
            r.nodes,
            secs(r.check.wall),
            mib(r.check.max_rss_kib),
            r.check_requests,
            r.pod_pages,
            secs(k.wall),
            mib(k.max_rss_kib),
            secs(r.floor),
            secs(r.check.wall) / secs(k.wall),
            r.check.max_rss_kib as f64 / k.max_rss_kib.max(1) as f64,
            secs(r.check.wall) / secs(r.floor),
        );
        let _ = std::io::stdout().flush();
        results.push(r);
    }
    if results.iter().any(|r| r.kubectl.is_none()) {
        println!(
            "\n`~`: kubectl was not run at that size (it would not fit in this machine's memory); its figures are \
             extrapolated linearly from the two largest sizes where it ran."
        );
    }

    // plan and start-up.
    println!("\n## plan and start-up\n");
    let plan_lib = plan_library(20);
    let plan_cli = timed(
        Path::new(PLUGIN),
        &["plan", "--snapshot", SNAPSHOT, "--to", "istio=1.24"],
        &[],
    );
    println!(
        "- plan library call (read examples/istio-1.20-eks.yaml, embedded compat data, plan to istio=1.24), median of 20: {:.2} ms",
        plan_lib.as_secs_f64() * 1e3,
    );
    if plan_cli.code == 0 {
        println!(
            "- `kubectl-meshup plan --snapshot examples/istio-1.20-eks.yaml --to istio=1.24` (whole process): {:.2} ms",
            plan_cli.wall.as_secs_f64() * 1e3
        );
    } else {
        println!(
            "- `kubectl-meshup plan --snapshot ...` exited {} (plan is not wired into the CLI on this branch); the library call above is the figure",
            plan_cli.code
        );
    }
    let version = median(
        (0..20)
            .map(|_| timed(Path::new(PLUGIN), &["--version"], &[]).wall)
            .collect(),
    );
    let version_rss = timed(Path::new(PLUGIN), &["--version"], &[]).max_rss_kib;
    println!(
        "- `kubectl-meshup --version` start-up, median of 20: {:.2} ms, peak RSS {:.1} MiB",
        version.as_secs_f64() * 1e3,
        mib(version_rss)
    );

    // fleet.
    let fleet = if o.fleet > 0 {
        println!(
            "\n## fleet: one check over {} contexts of {} pods each\n",
            o.fleet, o.fleet_pods
        );
        let started = Instant::now();
        let servers: Vec<FakeApiServer> = (0..o.fleet)
            .map(|_| {
                let s = FakeApiServer::start();
                s.generate(&GenerateSpec::scaled(o.fleet_pods))
                    .expect("generate");
                s
            })
            .collect();
        eprintln!(
            "# fleet generated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("fleet.kubeconfig");
        std::fs::write(&kubeconfig, fleet_kubeconfig(&servers)).expect("write kubeconfig");
        let kc = kubeconfig.to_str().expect("utf-8");
        let env = [("HOME", dir.path().as_os_str())];
        let all: Vec<String> = (0..o.fleet).map(|i| format!("c{i:02}")).collect();
        let all = all.join(",");
        println!(
            "| added round trip per request | clusters | wall s | peak RSS MiB | fleet / one |"
        );
        println!("|---:|---:|---:|---:|---:|");
        let mut ratios = Vec::new();
        for latency in [0, o.fleet_latency_ms] {
            if latency > 0 {
                for s in &servers {
                    s.inject(Fault::latency(Duration::from_millis(latency)).on("*"));
                }
            }
            let measure = |contexts: &str| {
                let runs: Vec<Run> = (0..o.reps)
                    .map(|_| {
                        timed(
                            Path::new(PLUGIN),
                            &["check", "--kubeconfig", kc, "--context", contexts],
                            &env,
                        )
                    })
                    .collect();
                pick_median(&runs)
            };
            let (one, many) = (measure("c00"), measure(&all));
            let ratio = secs(many.wall) / secs(one.wall);
            println!(
                "| {latency} ms | 1 | {:.3} | {:.1} | |\n| {latency} ms | {} | {:.3} | {:.1} | {ratio:.2} |",
                secs(one.wall),
                mib(one.max_rss_kib),
                o.fleet,
                secs(many.wall),
                mib(many.max_rss_kib)
            );
            ratios.push((latency, ratio));
        }
        Some(ratios)
    } else {
        None
    };

    // targets.
    println!("\n## targets\n");
    if let Some(big) = results.iter().max_by_key(|r| r.pods) {
        let (k, note) = match big.kubectl {
            Some(k) => (k, String::new()),
            None => (
                extrapolate_kubectl(&results, big.pods),
                " (kubectl extrapolated: it does not fit in memory here)".to_string(),
            ),
        };
        let wall = secs(big.check.wall) / secs(k.wall);
        let rss = big.check.max_rss_kib as f64 / k.max_rss_kib.max(1) as f64;
        let fl = secs(big.check.wall) / secs(big.floor);
        let p = big.pods;
        println!(
            "- at {p} pods, check wall / kubectl wall = {wall:.3} (target <= 0.5): {}{note}",
            verdict(wall <= 0.5)
        );
        println!(
            "- at {p} pods, check peak RSS / kubectl peak RSS = {rss:.4} (target <= 0.1): {}{note}",
            verdict(rss <= 0.1)
        );
        if let Some(measured) = results.iter().rfind(|r| r.kubectl.is_some())
            && measured.pods != p
            && let Some(mk) = measured.kubectl
        {
            println!(
                "- at {} pods (largest size kubectl ran at), check/kubectl wall = {:.3}, peak RSS = {:.4}",
                measured.pods,
                secs(measured.check.wall) / secs(mk.wall),
                measured.check.max_rss_kib as f64 / mk.max_rss_kib.max(1) as f64
            );
        }
        println!(
            "- at {p} pods, check wall / floor wall = {fl:.2} (target <= 1.5): {}",
            verdict(fl <= 1.5)
        );
        println!(
            "- at {p} pods, check peak RSS = {:.1} MiB (target < 64): {}",
            mib(big.check.max_rss_kib),
            verdict(mib(big.check.max_rss_kib) < 64.0)
        );
    }
    for pair in results.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let pods = b.pods as f64 / a.pods as f64;
        if (9.0..=11.0).contains(&pods) {
            let growth = b.check.max_rss_kib as f64 / a.check.max_rss_kib.max(1) as f64;
            println!(
                "- peak RSS growth {} -> {} pods ({pods:.0}x pods): {growth:.2}x (target < 2x): {}",
                a.pods,
                b.pods,
                verdict(growth < 2.0)
            );
        }
    }
    if let (Some(first), Some(last)) = (results.first(), results.last())
        && last.pods > first.pods
    {
        println!(
            "- peak RSS growth {} -> {} pods ({:.0}x pods): {:.2}x",
            first.pods,
            last.pods,
            last.pods as f64 / first.pods as f64,
            last.check.max_rss_kib as f64 / first.check.max_rss_kib.max(1) as f64
        );
    }
    println!(
        "- plan (library call) = {:.2} ms (target < 10 ms): {}",
        plan_lib.as_secs_f64() * 1e3,
        verdict(plan_lib < Duration::from_millis(10))
    );
    if let Some(ratios) = fleet {
        for (latency, ratio) in ratios {
            println!(
                "- fleet of {} / one cluster, {latency} ms added round trip = {ratio:.2} (target <= 2): {}",
                o.fleet,
                verdict(ratio <= 2.0)
            );
        }
    }
}
