//! The one HTTP client for servers that are not Kubernetes API servers: `compat update`'s downloads
//! and `check --push-metrics`'s PUT to a Pushgateway. reqwest over rustls with ring (the crypto
//! provider kube uses), the system's trust store, proxies from the environment (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `NO_PROXY`, as kubectl takes them) and a user agent that names the plugin. Each use
//! bounds its time ([`client`]'s timeout) and what it reads of an answer ([`read_at_most`]).

use std::time::Duration;

/// A client whose every request ends after `timeout` (connecting, sending and reading the answer).
pub fn client(timeout: Option<Duration>) -> Result<reqwest::Client, reqwest::Error> {
    // rustls needs its crypto provider chosen once per process: ring, as kube's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("kubectl-meshup/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    builder.build()
}

/// At most `limit` bytes of `response`'s body, and whether it had more (then reading stopped there).
pub async fn read_at_most(
    response: &mut reqwest::Response,
    limit: u64,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            body.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            return Ok((body, true));
        }
    }
    Ok((body, false))
}
