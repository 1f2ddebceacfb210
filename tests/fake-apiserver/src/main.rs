//! `fake-apiserver --listen 127.0.0.1:0 --kubeconfig-out FILE [--seed FILE_OR_DIR]...
//! [--generate nodes=N,pods=N,namespaces=N[,seed=N]] [--server-version v1.29.6-eks-db838b0] [--auto-rollout]`
//!
//! Prints the server URL on stdout once ready, then serves until killed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use fake_apiserver::{FakeApiServer, GenerateSpec};

const USAGE: &str = "usage: fake-apiserver [--listen ADDR] [--kubeconfig-out FILE] [--seed FILE_OR_DIR]... [--generate SPEC] [--server-version VERSION] [--auto-rollout] [--no-default-namespaces]

  --listen ADDR             address to listen on (default 127.0.0.1:0)
  --kubeconfig-out FILE     write a kubeconfig for the server to FILE
  --seed FILE_OR_DIR        store the objects of a YAML/JSON file or directory (repeatable)
  --generate SPEC           store a synthetic cluster, e.g. nodes=5000,pods=150000,namespaces=2000[,seed=N]
                            (Istio 1-22-8/1-24-6 canary, gateways, ambient, Kmesh, Gloo Mesh, workloads
                            with sidecars; one old-kernel node and one out-of-skew Deployment planted)
  --server-version VERSION  gitVersion reported by /version (default v1.29.6-eks-db838b0)
  --auto-rollout            complete Deployment/DaemonSet/StatefulSet rollouts after spec changes
  --no-default-namespaces   do not create default, kube-system, kube-public, kube-node-lease

Prints the URL on stdout once ready and serves until killed.";

struct Args {
    listen: SocketAddr,
    kubeconfig_out: Option<PathBuf>,
    seeds: Vec<PathBuf>,
    generate: Option<GenerateSpec>,
    server_version: Option<String>,
    auto_rollout: bool,
    default_namespaces: bool,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        kubeconfig_out: None,
        seeds: vec![],
        generate: None,
        server_version: None,
        auto_rollout: false,
        default_namespaces: true,
    };
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                a.listen = v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--kubeconfig-out" => a.kubeconfig_out = Some(value("--kubeconfig-out")?.into()),
            "--seed" => a.seeds.push(value("--seed")?.into()),
            "--generate" => {
                let v = value("--generate")?;
                a.generate = Some(v.parse().map_err(|e| format!("--generate {v:?}: {e}"))?);
            }
            "--server-version" => a.server_version = Some(value("--server-version")?),
            "--auto-rollout" => a.auto_rollout = true,
            "--no-default-namespaces" => a.default_namespaces = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-apiserver: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut b = FakeApiServer::builder()
        .listen(args.listen)
        .auto_rollout(args.auto_rollout)
        .default_namespaces(args.default_namespaces);
    if let Some(v) = args.server_version {
        b = b.server_version(v);
    }
    let server = match b.try_start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-apiserver: cannot start on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    if !args.seeds.is_empty() {
        match server.seed_paths(&args.seeds) {
            Ok(objs) => eprintln!("fake-apiserver: seeded {} objects", objs.len()),
            Err(e) => {
                eprintln!("fake-apiserver: --seed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(spec) = &args.generate {
        let started = std::time::Instant::now();
        match server.generate(spec) {
            Ok(g) => eprintln!(
                "fake-apiserver: generated {} nodes, {} pods, {} Deployments in {} namespaces in {:.1} s \
                 (old-kernel node {}, out-of-skew Deployment {})",
                g.nodes,
                g.pods,
                g.deployments,
                g.namespaces,
                started.elapsed().as_secs_f64(),
                g.old_kernel_node,
                g.skewed_deployment
            ),
            Err(e) => {
                eprintln!("fake-apiserver: --generate: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(p) = &args.kubeconfig_out
        && let Err(e) = server.write_kubeconfig(p)
    {
        eprintln!("fake-apiserver: --kubeconfig-out {}: {e}", p.display());
        return ExitCode::FAILURE;
    }
    println!("{}", server.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
