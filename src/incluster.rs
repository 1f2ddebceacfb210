//! In-cluster mode: the binary in a pod (the CronJob of `deploy/`) talks to its own API server as
//! its ServiceAccount, as kubectl and client-go do when there is no kubeconfig and
//! `KUBERNETES_SERVICE_HOST` is set. The pod's configuration is turned into a one-context kubeconfig
//! (context [`CONTEXT`]) so that it goes through the same client building, bounds and error messages
//! as any other context; kube-rs re-reads the token file as the kubelet rotates it.

use std::path::{Path, PathBuf};

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

/// The context name the in-cluster configuration is reported under (as client-go's `inClusterConfig`
/// has no name, kubectl shows none; this one appears in tables, findings and snapshots).
pub const CONTEXT: &str = "in-cluster";

/// Where the kubelet mounts the ServiceAccount's token, CA certificate and namespace.
pub const SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Overrides [`SERVICEACCOUNT_DIR`]. For tests, which reproduce a pod's environment on a workstation
/// where `/var/run/secrets` cannot be written; a pod has no reason to set it.
pub const SERVICEACCOUNT_DIR_ENV: &str = "KUBECTL_MESHUP_SERVICEACCOUNT_DIR";

/// The namespace file is a DNS label; anything longer is not one.
const MAX_NAMESPACE_BYTES: u64 = 256;

/// True when the process runs in a pod: the API server's service address is in the environment.
pub fn detected() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|h| !h.is_empty())
}

/// The directory holding `token`, `ca.crt` and `namespace`.
pub fn serviceaccount_dir() -> PathBuf {
    std::env::var_os(SERVICEACCOUNT_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SERVICEACCOUNT_DIR))
}

/// The pod's configuration as a kubeconfig with one context, [`CONTEXT`]: the server from
/// `KUBERNETES_SERVICE_HOST`/`_PORT`, the CA and token files of the ServiceAccount directory (by path,
/// so the rotated token is read afresh), the namespace from its `namespace` file.
pub fn kubeconfig() -> Result<Kubeconfig, String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST")
        .map_err(|_| "KUBERNETES_SERVICE_HOST is not set".to_string())?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".to_string());
    let port: u16 = port
        .trim()
        .parse()
        .map_err(|_| format!("KUBERNETES_SERVICE_PORT `{port}` is not a port number"))?;
    Ok(kubeconfig_for(&host, port, &serviceaccount_dir()))
}

fn kubeconfig_for(host: &str, port: u16, dir: &Path) -> Kubeconfig {
    let host = host.trim();
    // An IPv6 service address goes in brackets, as client-go writes it.
    let server = if host.contains(':') && !host.starts_with('[') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    };
    let namespace = crate::limits::read_file(
        &dir.join("namespace"),
        MAX_NAMESPACE_BYTES,
        crate::limits::MAX_FILE_ENV,
    )
    .ok()
    .map(|n| n.trim().to_string())
    .filter(|n| !n.is_empty());
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: CONTEXT.to_string(),
            cluster: Some(Cluster {
                server: Some(server),
                certificate_authority: Some(dir.join("ca.crt").display().to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: CONTEXT.to_string(),
            auth_info: Some(AuthInfo {
                token_file: Some(dir.join("token").display().to_string()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: CONTEXT.to_string(),
            context: Some(Context {
                cluster: CONTEXT.to_string(),
                user: Some(CONTEXT.to_string()),
                namespace,
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(CONTEXT.to_string()),
        ..Kubeconfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_environment_becomes_one_context_with_its_files_by_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("namespace"), "meshup\n").expect("write");
        let kc = kubeconfig_for("10.96.0.1", 443, dir.path());
        assert_eq!(kc.current_context.as_deref(), Some(CONTEXT));
        let cluster = kc.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://10.96.0.1:443"));
        assert_eq!(
            cluster.certificate_authority.as_deref(),
            Some(dir.path().join("ca.crt").display().to_string().as_str())
        );
        let user = kc.auth_infos[0].auth_info.as_ref().expect("user");
        assert_eq!(
            user.token_file.as_deref(),
            Some(dir.path().join("token").display().to_string().as_str())
        );
        let context = kc.contexts[0].context.as_ref().expect("context");
        assert_eq!(context.namespace.as_deref(), Some("meshup"));
        let v6 = kubeconfig_for("fd00::1", 6443, dir.path());
        assert_eq!(
            v6.clusters[0]
                .cluster
                .as_ref()
                .and_then(|c| c.server.as_deref()),
            Some("https://[fd00::1]:6443")
        );
    }
}
