//! Turns kubectl-style connection flags into one `kube::Client` per context, and classifies client
//! failures into one-line errors that name the cause and the fix. Nothing here prints credentials:
//! messages carry context names, server URLs and causes, never tokens, keys or credential-plugin output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use crate::retry::RetryPolicy;

/// The connection flags, as kubectl reads them.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `--kubeconfig`: one explicit file (else `KUBECONFIG`, a list of files merged, else
    /// `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// `--context`, repeated or comma-separated; empty means the current context.
    pub contexts: Vec<String>,
    /// `--all-contexts`: every context in the kubeconfig.
    pub all_contexts: bool,
    pub cluster: Option<String>,
    pub user: Option<String>,
    /// `-n/--namespace`: overrides the context's namespace.
    pub namespace: Option<String>,
    /// `--request-timeout`; `None` keeps the client's defaults (kubectl's `0`).
    pub request_timeout: Option<Duration>,
    /// How failed requests are retried (reads only, bounded; see [`crate::retry`]).
    pub retry: RetryPolicy,
    /// This binary, to run exec credential plugins through within bounds
    /// ([`crate::credentials::exec_wrapper`]); `None` lets kube-rs run them directly.
    pub exec_wrapper: Option<PathBuf>,
}

/// One cluster to read: a context, its API server and a client for it.
#[derive(Clone)]
pub struct ConnectedCluster {
    pub context: String,
    pub server: String,
    /// The kubeconfig's `proxy-url` for this cluster, without userinfo.
    pub proxy: Option<String>,
    pub client: Client,
}

impl ConnectedCluster {
    /// Where requests go, for messages: the server, and the proxy they pass through if any (a refused
    /// connection may be the proxy's).
    pub fn address(&self) -> String {
        match &self.proxy {
            Some(proxy) => format!("{} through proxy {proxy}", self.server),
            None => self.server.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no kubeconfig found: KUBECONFIG is unset and {default} does not exist; pass --kubeconfig FILE or set KUBECONFIG"
    )]
    NoKubeconfig { default: String },
    #[error("cannot read kubeconfig {path}: {reason}; check --kubeconfig or KUBECONFIG")]
    ReadKubeconfig { path: String, reason: String },
    #[error(
        "kubeconfig {path} is malformed: {reason}; fix the file or point --kubeconfig at a valid one"
    )]
    MalformedKubeconfig { path: String, reason: String },
    #[error("the kubeconfig sets no current-context; pass --context NAME (available: {available})")]
    NoCurrentContext { available: String },
    #[error(
        "context \"{name}\" is not in the kubeconfig; available contexts: {available} (see `kubectl config get-contexts`)"
    )]
    UnknownContext { name: String, available: String },
    #[error(
        "cannot use context \"{context}\": {reason}; fix its cluster or user entry in the kubeconfig"
    )]
    InvalidContext { context: String, reason: String },
    #[error(
        "cannot reach the API server of context \"{context}\" at {server}: {reason}; check the server address, your network or VPN, or raise --request-timeout"
    )]
    Unreachable {
        context: String,
        server: String,
        reason: String,
    },
    #[error(
        "TLS with the API server of context \"{context}\" at {server} failed: {reason}; check certificate-authority-data (or insecure-skip-tls-verify) for this cluster in the kubeconfig"
    )]
    Tls {
        context: String,
        server: String,
        reason: String,
    },
    #[error(
        "the API server of context \"{context}\" at {server} rejected the credentials (401 Unauthorized); log in again or refresh the credentials in the kubeconfig"
    )]
    Unauthorized { context: String, server: String },
    #[error(
        "getting credentials for context \"{context}\" failed ({kind}); run its credential plugin or check its token file by hand to see why"
    )]
    Credentials { context: String, kind: String },
    #[error("cannot use the credentials of context \"{context}\": {reason}")]
    CredentialFile { context: String, reason: String },
    #[error("getting credentials for context \"{context}\" stopped: {reason}")]
    CredentialLimit { context: String, reason: String },
    #[error(
        "reading {what} in context \"{context}\" is forbidden (403): {message}; ask for read access (see `kubectl auth can-i`)"
    )]
    Forbidden {
        context: String,
        what: String,
        message: String,
    },
    #[error(
        "reading {what} in context \"{context}\" failed: {code} {reason}: {message}; retry, or run with -v for details"
    )]
    Api {
        context: String,
        what: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// A limit ended the read (see [`crate::limits`]); `reason` names the limit and what lifts it.
    #[error("reading {what} in context \"{context}\" at {server} stopped: {reason}")]
    Limit {
        context: String,
        server: String,
        what: String,
        reason: String,
    },
    /// The server answered, but not with what was asked for (a redirect, an HTML page, a `Status`).
    #[error(
        "reading {what} in context \"{context}\" at {server}: {reason}; check the server address in the kubeconfig (a proxy or login page answers instead of the API server?)"
    )]
    Unexpected {
        context: String,
        server: String,
        what: String,
        reason: String,
    },
    #[error(
        "reading {what} in context \"{context}\" failed: {reason}; retry, or run with -v for details"
    )]
    Other {
        context: String,
        what: String,
        reason: String,
    },
}

/// Parses kubectl's `--request-timeout`: `0` (no timeout), a number of seconds, or a duration such as
/// `30s`, `1m`, `1h`, `1m30s`, `500ms`.
pub fn parse_request_timeout(text: &str) -> Result<Option<Duration>, String> {
    let err = || {
        format!(
            "invalid request timeout `{text}`: use 0, a number of seconds, or a duration such as 30s, 1m, 1h"
        )
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(err());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = t.parse().map_err(|_| err())?;
        return Ok((secs > 0).then(|| Duration::from_secs(secs)));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(err()),
        };
        total += part;
        rest = &rest[unit_len..];
    }
    Ok((!total.is_zero()).then_some(total))
}

/// Loads the kubeconfig the way kubectl does and builds one client per selected context.
/// In a pod with no kubeconfig (none given, `KUBECONFIG` unset, no `~/.kube/config`) the pod's own
/// configuration is used, as kubectl does: one context, [`crate::incluster::CONTEXT`].
pub async fn connect(opts: &ConnectionOptions) -> Result<Vec<ConnectedCluster>, ClusterError> {
    let kubeconfig = kubeconfig_or_in_cluster(opts)?;
    let contexts = select_contexts(&kubeconfig, opts)?;
    let mut targets = Vec::with_capacity(contexts.len());
    for context in contexts {
        targets.push(client_for(&kubeconfig, &context, opts).await?);
    }
    Ok(targets)
}

/// Like [`connect`], but a context whose client cannot be built (a broken user entry, a credential
/// plugin that fails) is that context's error, not the run's: the fleet view shows it as a row.
pub async fn connect_each(
    opts: &ConnectionOptions,
) -> Result<Vec<(String, Result<ConnectedCluster, ClusterError>)>, ClusterError> {
    let kubeconfig = kubeconfig_or_in_cluster(opts)?;
    let contexts = select_contexts(&kubeconfig, opts)?;
    let mut out = Vec::with_capacity(contexts.len());
    for context in contexts {
        let target = client_for(&kubeconfig, &context, opts).await;
        out.push((context, target));
    }
    Ok(out)
}

fn kubeconfig_or_in_cluster(opts: &ConnectionOptions) -> Result<Kubeconfig, ClusterError> {
    Ok(match load_kubeconfig(opts.kubeconfig.as_deref()) {
        Err(ClusterError::NoKubeconfig { .. }) if crate::incluster::detected() => {
            let kubeconfig =
                crate::incluster::kubeconfig().map_err(|reason| ClusterError::InvalidContext {
                    context: crate::incluster::CONTEXT.to_string(),
                    reason,
                })?;
            tracing::info!(
                serviceaccount = %crate::incluster::serviceaccount_dir().display(),
                "no kubeconfig: using the pod's in-cluster configuration"
            );
            kubeconfig
        }
        other => other?,
    })
}

/// The kubeconfig file(s) kubectl would read, and where that choice came from. Tools run by `apply`
/// are given exactly these files, and hints name `--kubeconfig` when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigFiles {
    /// In `KUBECONFIG` order (the first file to set a value wins); one file for the flag and the default.
    pub files: Vec<PathBuf>,
    pub source: KubeconfigSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeconfigSource {
    /// `--kubeconfig FILE`.
    Flag,
    /// The `KUBECONFIG` environment variable (empty entries dropped).
    Env,
    /// `~/.kube/config` (nothing when there is no home directory).
    Home,
}

impl KubeconfigFiles {
    /// `--kubeconfig`, else each file of `KUBECONFIG`, else `~/.kube/config`: kubectl's order.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        if let Some(path) = explicit {
            return Self {
                files: vec![path.to_path_buf()],
                source: KubeconfigSource::Flag,
            };
        }
        let from_env: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !from_env.is_empty() {
            return Self {
                files: from_env,
                source: KubeconfigSource::Env,
            };
        }
        Self {
            files: home_kubeconfig().into_iter().collect(),
            source: KubeconfigSource::Home,
        }
    }

    /// The file given with `--kubeconfig`, which hints for a person repeat.
    pub fn flag(&self) -> Option<&Path> {
        match self.source {
            KubeconfigSource::Flag => self.files.first().map(PathBuf::as_path),
            _ => None,
        }
    }

    /// The files as one `KUBECONFIG` value.
    pub fn joined(&self) -> std::ffi::OsString {
        std::env::join_paths(&self.files).unwrap_or_else(|_| {
            // A path with the separator in it cannot be listed; the first file is the best there is.
            self.files
                .first()
                .map(|p| p.as_os_str().to_owned())
                .unwrap_or_default()
        })
    }

    fn load(&self) -> Result<Kubeconfig, ClusterError> {
        match self.source {
            KubeconfigSource::Flag => match self.files.first() {
                Some(path) => read_kubeconfig(path),
                None => Err(ClusterError::NoKubeconfig {
                    default: "~/.kube/config".to_string(),
                }),
            },
            KubeconfigSource::Env => {
                // As client-go: files that do not exist are skipped; the first file to set a value wins.
                let mut merged: Option<Kubeconfig> = None;
                for path in self.files.iter().filter(|p| p.exists()) {
                    let next = read_kubeconfig(path)?;
                    merged = Some(match merged {
                        None => next,
                        Some(m) => {
                            m.merge(next)
                                .map_err(|e| ClusterError::MalformedKubeconfig {
                                    path: path.display().to_string(),
                                    reason: e.to_string(),
                                })?
                        }
                    });
                }
                merged.ok_or_else(|| ClusterError::ReadKubeconfig {
                    path: self.joined().to_string_lossy().into_owned(),
                    reason: "none of the files in KUBECONFIG exists".to_string(),
                })
            }
            KubeconfigSource::Home => match self.files.first() {
                Some(path) if path.exists() => read_kubeconfig(path),
                other => Err(ClusterError::NoKubeconfig {
                    default: other
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "~/.kube/config".to_string()),
                }),
            },
        }
    }
}

fn load_kubeconfig(explicit: Option<&Path>) -> Result<Kubeconfig, ClusterError> {
    KubeconfigFiles::resolve(explicit).load()
}

/// The API server `context` names in `files` as they are now (read afresh), as a URL in the form
/// [`connect`] reports it. What a tool given these files and this context would talk to.
pub fn context_server(files: &KubeconfigFiles, context: &str) -> Result<String, ClusterError> {
    let kubeconfig = files.load()?;
    let Some(named) = kubeconfig.contexts.iter().find(|c| c.name == context) else {
        return Err(ClusterError::UnknownContext {
            name: context.to_string(),
            available: list_or_none(&context_names(&kubeconfig)),
        });
    };
    let invalid = |reason: &str| ClusterError::InvalidContext {
        context: context.to_string(),
        reason: reason.to_string(),
    };
    let cluster_name = named
        .context
        .as_ref()
        .map(|c| c.cluster.clone())
        .ok_or_else(|| invalid("it names no cluster"))?;
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| invalid("its cluster has no server"))?;
    let uri: http::Uri = server
        .parse()
        .map_err(|_| invalid("its cluster's server is not a URL"))?;
    Ok(server_url(&uri))
}

/// A server URL as [`ConnectedCluster::server`] holds it.
/// The server URL as the tool prints and records it: without userinfo, without a trailing `/`.
fn server_url(uri: &http::Uri) -> String {
    crate::redact::url(uri.to_string().trim_end_matches('/'))
}

fn home_kubeconfig() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".kube").join("config"))
}

fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, ClusterError> {
    Kubeconfig::read_from(path).map_err(|e| match e {
        KubeconfigError::ReadConfig(source, _) => ClusterError::ReadKubeconfig {
            path: path.display().to_string(),
            reason: source.to_string(),
        },
        other => ClusterError::MalformedKubeconfig {
            path: path.display().to_string(),
            reason: without_file_content(&other.to_string()),
        },
    })
}

/// A YAML error's first line (where and what), with quoted values elided: the parser quotes snippets
/// of the file, and a kubeconfig holds tokens and keys.
fn without_file_content(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim_end();
    let mut out = String::with_capacity(first.len());
    let mut quoted = false;
    for c in first.chars() {
        if c == '"' {
            if quoted {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

fn context_names(kubeconfig: &Kubeconfig) -> Vec<String> {
    kubeconfig.contexts.iter().map(|c| c.name.clone()).collect()
}

/// The context names of the kubeconfig kubectl would use (`--kubeconfig`, else `KUBECONFIG`, else
/// `~/.kube/config`), for shell completion. Nothing when there is no readable kubeconfig.
pub fn kubeconfig_contexts(explicit: Option<&Path>) -> Vec<String> {
    load_kubeconfig(explicit)
        .map(|kc| context_names(&kc))
        .unwrap_or_default()
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn select_contexts(
    kubeconfig: &Kubeconfig,
    opts: &ConnectionOptions,
) -> Result<Vec<String>, ClusterError> {
    let available = context_names(kubeconfig);
    if opts.all_contexts {
        if available.is_empty() {
            return Err(ClusterError::NoCurrentContext {
                available: "none".to_string(),
            });
        }
        return Ok(available);
    }
    let wanted: Vec<String> = if opts.contexts.is_empty() {
        match &kubeconfig.current_context {
            Some(c) if !c.is_empty() => vec![c.clone()],
            _ => {
                return Err(ClusterError::NoCurrentContext {
                    available: list_or_none(&available),
                });
            }
        }
    } else {
        let mut seen = Vec::new();
        for c in &opts.contexts {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
        }
        seen
    };
    for name in &wanted {
        if !available.contains(name) {
            return Err(ClusterError::UnknownContext {
                name: name.clone(),
                available: list_or_none(&available),
            });
        }
    }
    Ok(wanted)
}

async fn client_for(
    kubeconfig: &Kubeconfig,
    context: &str,
    opts: &ConnectionOptions,
) -> Result<ConnectedCluster, ClusterError> {
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        cluster: opts.cluster.clone(),
        user: opts.user.clone(),
    };
    let invalid = |reason: String| ClusterError::InvalidContext {
        context: context.to_string(),
        reason,
    };
    crate::credentials::check_files(
        kubeconfig,
        context,
        opts.cluster.as_deref(),
        opts.user.as_deref(),
    )
    .map_err(|reason| ClusterError::CredentialFile {
        context: context.to_string(),
        reason,
    })?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .map_err(|e| invalid(crate::redact::text(&without_file_content(&e.to_string()))))?;
    if let Some(ns) = &opts.namespace {
        config.default_namespace = ns.clone();
    }
    move_userinfo_to_basic_auth(&mut config);
    if let Some(wrapper) = &opts.exec_wrapper {
        crate::credentials::bound_exec(&mut config, wrapper, opts.request_timeout);
    }
    if let Some(timeout) = opts.request_timeout {
        // Reads and writes are bounded by the request's deadline (crate::limits::BoundsLayer), which
        // also covers a body that trickles; a second timer per read would only race it.
        config.connect_timeout = Some(timeout);
    }
    if config.cluster_url.scheme_str() == Some("http") && config.root_cert.is_none() {
        // A plain-HTTP server needs no certificate check, but without a CA in the kubeconfig kube
        // builds a verifier from the system's trust store (about 150 roots read and parsed, ~3 ms)
        // for every client. An empty store skips that; the connector still speaks plain HTTP.
        config.root_cert = Some(Vec::new());
    }
    if config.accept_invalid_certs {
        tracing::warn!(
            context,
            "insecure-skip-tls-verify is set: the API server's certificate is not verified"
        );
    }
    // Printed in errors and logs and written into snapshots: never with its userinfo. The same form
    // as `context_server` gives, so apply can compare the two.
    let server = server_url(&config.cluster_url);
    let proxy = config
        .proxy_url
        .as_ref()
        .map(|p| crate::redact::url(p.to_string().trim_end_matches('/')));
    // Building the client sends nothing: a failure here is the kubeconfig's (a client key or CA that
    // does not parse, or a credential plugin that fails), not the server's. Credential errors carry
    // the plugin's output, so they go through `classify`, which never prints it.
    let bounds = crate::limits::BoundsLayer {
        timeout: opts.request_timeout,
        max_bytes: crate::limits::max_response_bytes(),
    };
    let client = crate::retry::client(config, &opts.retry, bounds).map_err(|e| match e {
        e if crate::credentials::exec_limit(&e, opts.request_timeout).is_some() => {
            ClusterError::CredentialLimit {
                context: context.to_string(),
                reason: crate::credentials::exec_limit(&e, opts.request_timeout)
                    .unwrap_or_default(),
            }
        }
        kube::Error::Auth(_) => classify(context, &server, "", e),
        other => invalid(crate::redact::text(&without_file_content(&root_cause(
            &other,
        )))),
    })?;
    Ok(ConnectedCluster {
        context: context.to_string(),
        server,
        proxy,
        client,
    })
}

/// A server URL with userinfo (`https://user:password@host`) would be logged with it by kube-rs's
/// request tracing (`-vvv`); the client gets the URL without it. As with kubectl, the userinfo is
/// then the basic-auth credential when the user entry has no credential of its own.
fn move_userinfo_to_basic_auth(config: &mut Config) {
    let Some(authority) = config.cluster_url.authority() else {
        return;
    };
    let Some((userinfo, host)) = authority.as_str().rsplit_once('@') else {
        return;
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = (decode(user), decode(password));
    let mut parts = config.cluster_url.clone().into_parts();
    let Ok(host) = host.parse::<http::uri::Authority>() else {
        return;
    };
    parts.authority = Some(host);
    let Ok(url) = http::Uri::from_parts(parts) else {
        return;
    };
    config.cluster_url = url;
    let auth = &mut config.auth_info;
    let has_credentials = auth.token.is_some()
        || auth.token_file.is_some()
        || auth.username.is_some()
        || auth.exec.is_some()
        || auth.auth_provider.is_some()
        || auth.client_certificate.is_some()
        || auth.client_certificate_data.is_some();
    if !has_credentials && !user.is_empty() {
        auth.username = Some(user);
        auth.password = Some(password.into());
    }
}

/// True when the API server answered 403 Forbidden.
pub fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 403 || s.reason == "Forbidden")
}

/// True for 404, whether the API server sent a `Status` (an object not found) or plain text (`404
/// page not found`: the API group or resource is not served, such as a CRD that is not installed;
/// kube's `get_opt` only takes the former for "absent").
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404 || s.reason == "NotFound")
}

/// True when a continue token expired (410 Gone / `Expired`).
pub fn is_expired(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 410 || s.reason == "Expired" || s.reason == "Gone")
}

/// A kube error in one line a person can read: the API server's message with its code and reason
/// (`deployments.apps "x" not found (404 NotFound)`), or the innermost transport cause. kube's own
/// `Display` of an API error appends the whole `Status` struct in debug form.
pub fn brief(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                String::new()
            } else {
                format!(" {}", status.reason)
            };
            format!("{} ({}{reason})", status.message, status.code)
        }
        // Credential plugins may print secrets: never repeat what they said.
        kube::Error::Auth(_) => "the credential plugin, auth provider or token file failed".into(),
        other => root_cause(other),
    }
}

/// The innermost cause of an error, which is the one a person can act on ("Connection refused").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Classifies a failed request. `what` names what was being read (`/version`, `pods in all namespaces`).
pub fn classify(context: &str, server: &str, what: &str, err: kube::Error) -> ClusterError {
    let context_s = context.to_string();
    let server_s = server.to_string();
    if let Some(limit) = crate::limits::read_limit(&err) {
        return ClusterError::Limit {
            context: context_s,
            server: server_s,
            what: what.to_string(),
            reason: limit.to_string(),
        };
    }
    match err {
        kube::Error::Api(status) => match status.code {
            401 => ClusterError::Unauthorized {
                context: context_s,
                server: server_s,
            },
            403 => ClusterError::Forbidden {
                context: context_s,
                what: what.to_string(),
                message: status.message.clone(),
            },
            code => ClusterError::Api {
                context: context_s,
                what: what.to_string(),
                code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
        },
        // Credential plugins may print secrets: say which mechanism failed, never what it printed.
        kube::Error::Auth(_) => ClusterError::Credentials {
            context: context_s,
            kind: "exec plugin, auth provider or token file".to_string(),
        },
        kube::Error::RustlsTls(e) => ClusterError::Tls {
            context: context_s,
            server: server_s,
            reason: root_cause(&e),
        },
        kube::Error::HyperError(e) => transport(context_s, server_s, what, &e),
        kube::Error::Service(e) => transport(context_s, server_s, what, e.as_ref()),
        other => ClusterError::Other {
            context: context_s,
            what: what.to_string(),
            reason: brief(&other),
        },
    }
}

fn transport(
    context: String,
    server: String,
    what: &str,
    err: &(dyn std::error::Error + 'static),
) -> ClusterError {
    let cause = crate::redact::url(&root_cause(err));
    // Name what was being read: a server that drops one kind of request is reachable for others.
    let reading = if what.is_empty() {
        String::new()
    } else {
        format!(" while reading {what}")
    };
    let lower = cause.to_ascii_lowercase();
    let reason = format!("{cause}{reading}");
    // rustls's messages: "invalid peer certificate: UnknownIssuer", "received fatal alert: ...",
    // and "received corrupt message of type InvalidContentType" when the server does not speak TLS.
    if [
        "certificate",
        "tls",
        "handshake",
        "fatal alert",
        "corrupt message",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        ClusterError::Tls {
            context,
            server,
            reason,
        }
    } else if lower.contains("elapsed") || lower.contains("timed out") || lower.contains("timeout")
    {
        ClusterError::Unreachable {
            context,
            server,
            reason: format!("no answer in time ({cause}){reading}"),
        }
    } else {
        ClusterError::Unreachable {
            context,
            server,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contexts_server_is_read_afresh_from_the_files_first_file_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, cluster: &str, server: &str| {
            let path = dir.path().join(name);
            let text = format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\ncontexts:\n- name: staging\n  context:\n    cluster: {cluster}\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: staging\n"
            );
            std::fs::write(&path, text).expect("write");
            path
        };
        let first = write("a", "a-cluster", "https://10.0.0.1:6443/");
        let second = write("b", "b-cluster", "https://10.0.0.2:6443");
        let files = KubeconfigFiles {
            files: vec![first.clone(), second],
            source: KubeconfigSource::Env,
        };
        assert_eq!(
            context_server(&files, "staging").expect("server"),
            "https://10.0.0.1:6443"
        );
        write("a", "a-cluster", "https://10.9.9.9:6443");
        assert_eq!(
            context_server(&files, "staging").expect("server"),
            "https://10.9.9.9:6443",
            "read afresh"
        );
        let err = context_server(&files, "prod").expect_err("no such context");
        assert!(
            err.to_string()
                .contains("\"prod\" is not in the kubeconfig"),
            "{err}"
        );
        let flag = KubeconfigFiles {
            files: vec![first],
            source: KubeconfigSource::Flag,
        };
        assert_eq!(flag.flag(), Some(dir.path().join("a").as_path()));
        assert_eq!(files.flag(), None, "KUBECONFIG is not repeated in hints");
    }

    #[test]
    fn api_errors_read_in_one_line_without_the_status_dump() {
        let status =
            kube::core::Status::failure("deployments.apps \"reviews-v1\" not found", "NotFound")
                .with_code(404);
        let line = brief(&kube::Error::Api(Box::new(status)));
        assert_eq!(
            line,
            "deployments.apps \"reviews-v1\" not found (404 NotFound)"
        );
    }

    #[test]
    fn request_timeouts_in_kubectl_syntax() {
        assert_eq!(parse_request_timeout("0"), Ok(None));
        assert_eq!(parse_request_timeout("0s"), Ok(None));
        assert_eq!(
            parse_request_timeout("30"),
            Ok(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            parse_request_timeout("30s"),
            Ok(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            parse_request_timeout("1m30s"),
            Ok(Some(Duration::from_secs(90)))
        );
        assert_eq!(
            parse_request_timeout("1h"),
            Ok(Some(Duration::from_secs(3600)))
        );
        assert_eq!(
            parse_request_timeout("500ms"),
            Ok(Some(Duration::from_millis(500)))
        );
        for bad in ["", "abc", "5x", "-1", "1.5s", "s"] {
            assert!(parse_request_timeout(bad).is_err(), "{bad}");
        }
    }

    fn kubeconfig(yaml: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(yaml).unwrap()
    }

    const TWO_CONTEXTS: &str = "
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: c1
  cluster: {server: 'https://127.0.0.1:6443'}
contexts:
- name: prod
  context: {cluster: c1, user: u1}
- name: staging
  context: {cluster: c1, user: u1}
users:
- name: u1
  user: {token: not-a-real-token}
";

    #[test]
    fn contexts_default_to_current_and_unknown_ones_list_the_available() {
        let kc = kubeconfig(TWO_CONTEXTS);
        let opts = ConnectionOptions::default();
        assert_eq!(select_contexts(&kc, &opts).unwrap(), ["prod"]);
        let all = ConnectionOptions {
            all_contexts: true,
            ..Default::default()
        };
        assert_eq!(select_contexts(&kc, &all).unwrap(), ["prod", "staging"]);
        let missing = ConnectionOptions {
            contexts: vec!["prod".into(), "nope".into()],
            ..Default::default()
        };
        let err = select_contexts(&kc, &missing).unwrap_err().to_string();
        assert!(
            err.contains("\"nope\"") && err.contains("prod, staging"),
            "{err}"
        );
        assert!(!err.contains("not-a-real-token"));
    }

    #[test]
    fn a_kubeconfig_without_current_context_asks_for_one() {
        let kc = kubeconfig(&TWO_CONTEXTS.replace("current-context: prod\n", ""));
        let err = select_contexts(&kc, &ConnectionOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--context") && err.contains("staging"),
            "{err}"
        );
    }

    #[test]
    fn yaml_errors_keep_the_location_and_drop_file_content() {
        let message = "failed to parse kubeconfig YAML: invalid type: string \"tok-123\", expected a map\n --> <input>:2:13\n2 | token: tok-123";
        let cleaned = without_file_content(message);
        assert_eq!(
            cleaned,
            "failed to parse kubeconfig YAML: invalid type: string \"…\", expected a map"
        );
    }

    #[test]
    fn userinfo_in_the_server_url_becomes_basic_auth_and_leaves_the_url() {
        let url: http::Uri = "https://ad%6Din:p%40ss@10.0.0.1:6443".parse().unwrap();
        let mut config = Config::new(url);
        move_userinfo_to_basic_auth(&mut config);
        assert_eq!(config.cluster_url.to_string(), "https://10.0.0.1:6443/");
        assert_eq!(
            config.auth_info.username.as_deref(),
            Some("admin"),
            "decoded"
        );
        assert!(config.auth_info.password.is_some());
        // A user entry with its own credential keeps it; the URL still loses the userinfo.
        let url: http::Uri = "https://admin:pw@10.0.0.1:6443".parse().unwrap();
        let mut config = Config::new(url);
        config.auth_info.token = Some("t".to_string().into());
        move_userinfo_to_basic_auth(&mut config);
        assert_eq!(config.cluster_url.to_string(), "https://10.0.0.1:6443/");
        assert!(config.auth_info.username.is_none());
    }

    #[test]
    fn http_statuses_become_their_own_errors() {
        let status = |code: u16| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("m", "r").with_code(code),
            ))
        };
        assert!(matches!(
            classify("c", "https://s", "x", status(401)),
            ClusterError::Unauthorized { .. }
        ));
        assert!(matches!(
            classify("c", "https://s", "x", status(403)),
            ClusterError::Forbidden { .. }
        ));
        assert!(is_forbidden(&status(403)));
        assert!(is_expired(&status(410)));
        assert!(!is_expired(&status(500)));
    }
}
