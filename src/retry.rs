//! Bounded retries for idempotent reads, as a layer on every client [`crate::client::connect`] builds.
//!
//! kube-rs 5's own retry (`Config::default_retry`, on by default) retries 429, 503 and 504 for every
//! method, writes included, up to 15 times with exponential backoff from 5 ms (capped at 1000 s, plus
//! a random extra of up to twice that), sleeping `Retry-After` (whole seconds, uncapped) instead when
//! it is longer than the backoff; it never retries 500 or a dropped connection
//! (`kube-client-5.0.0/src/client/retry.rs`, `RetryPolicy::server_retry`). Fifteen doublings is minutes of waiting on a server
//! that stays down, and a 504 on a write may mean the write happened. So clients here turn it off and
//! use this policy instead:
//! - reads (`GET`, `HEAD`, and SelfSubjectAccessReviews, which store nothing) are retried on 429, 500, 502, 503, 504 and on transport failures (refused
//!   or dropped connections, timeouts), at most [`RetryPolicy::max_attempts`] attempts in all, within
//!   [`RetryPolicy::budget`] of waiting, and none starting once that budget has passed since the first
//!   attempt (each attempt may itself wait out `--request-timeout`, [`crate::limits::BoundsLayer`]);
//!   `Retry-After` is honoured up to [`RetryPolicy::max_retry_after`];
//! - writes are retried only on 429, which the API server's priority-and-fairness answers before doing
//!   anything (so the write did not happen); never on 5xx or a lost connection, where it may have.
//!
//! When the bound is reached the last answer goes back to the caller unchanged, so the error names
//! what failed (observe adds what it was reading).

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use tokio::time::Instant;
use tower::BoxError;
use tower::buffer::BufferLayer;
use tower::retry::{Policy, RetryLayer};

use crate::limits::BoundsLayer;

/// How hard to retry. The defaults keep a failing `check` to a few seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included; 1 turns retrying off.
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles per retry (with jitter of ±50%).
    pub first_backoff: Duration,
    /// Cap of one backoff.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one is shortened to this.
    pub max_retry_after: Duration,
    /// Total waiting per request; no retry starts that would end after it, nor once this long has
    /// passed since the request's first attempt began.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(10),
            budget: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }
}

/// What one answer means for retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Done,
    /// Retry after this long (the server's `Retry-After`), or after the backoff when `None`.
    Retry(Option<Duration>),
}

/// Whether a request only reads: `GET`, `HEAD`, or the `POST` of a SelfSubjectAccessReview, which
/// asks a question and stores nothing (`apply` checks its permissions with them).
fn is_read(method: &Method, path: &str) -> bool {
    method == Method::GET
        || method == Method::HEAD
        || (method == Method::POST && path.ends_with("/selfsubjectaccessreviews"))
}

/// The rule, apart from bookkeeping: which answers are worth another attempt.
fn verdict(
    method: &Method,
    path: &str,
    status: Option<StatusCode>,
    retry_after: Option<&str>,
) -> Verdict {
    let server_delay = || {
        retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    };
    match status {
        Some(StatusCode::TOO_MANY_REQUESTS) => Verdict::Retry(server_delay()),
        Some(
            StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT,
        ) if is_read(method, path) => Verdict::Retry(server_delay()),
        Some(_) => Verdict::Done,
        // No answer at all: refused, reset or dropped connection, or a timeout.
        None if is_read(method, path) => Verdict::Retry(None),
        None => Verdict::Done,
    }
}

/// One request's retry state; tower clones the layer's policy for every request.
#[derive(Clone)]
struct Attempts {
    policy: RetryPolicy,
    attempt: u32,
    waited: Duration,
    /// When this request's first attempt started: no retry starts after [`RetryPolicy::budget`], so
    /// attempts that each wait out `--request-timeout` do not add up to minutes.
    started: Option<Instant>,
    seed: u64,
}

impl Attempts {
    fn new(policy: RetryPolicy) -> Self {
        Attempts {
            policy,
            attempt: 1,
            waited: Duration::ZERO,
            started: None,
            seed: RandomState::new().hash_one(0u8) | 1,
        }
    }

    /// The next backoff: `first * 2^(n-1)`, capped, times a factor in [0.5, 1.5).
    fn backoff(&mut self) -> Duration {
        let exp = self.attempt.saturating_sub(1).min(20);
        let base = self
            .policy
            .first_backoff
            .saturating_mul(1 << exp)
            .min(self.policy.max_backoff);
        // xorshift64: enough randomness to spread clients apart.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let factor = 0.5 + (self.seed % 1000) as f64 / 1000.0;
        base.mul_f64(factor)
    }

    /// The wait before the next attempt, or `None` when the bound is reached.
    fn next_wait(&mut self, server_delay: Option<Duration>) -> Option<Duration> {
        if self.attempt >= self.policy.max_attempts {
            return None;
        }
        let wait = match server_delay {
            Some(d) => d.min(self.policy.max_retry_after),
            None => self.backoff(),
        };
        if self.waited + wait > self.policy.budget {
            return None;
        }
        if let Some(started) = self.started
            && started.elapsed() + wait > self.policy.budget
        {
            return None;
        }
        self.attempt += 1;
        self.waited += wait;
        Some(wait)
    }
}

impl<B> Policy<Request<Body>, Response<B>, BoxError> for Attempts {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        let (status, retry_after) = match result {
            Ok(resp) if resp.status().is_success() => return None,
            Ok(resp) => (
                Some(resp.status()),
                resp.headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            ),
            Err(_) => (None, None),
        };
        let Verdict::Retry(server_delay) =
            verdict(req.method(), req.uri().path(), status, retry_after)
        else {
            return None;
        };
        let wait = self.next_wait(server_delay)?;
        // The path only: the query may carry a continue token, and headers carry credentials.
        tracing::info!(
            method = %req.method(),
            path = req.uri().path(),
            status = status.map(|s| s.as_u16()),
            attempt = self.attempt,
            of = self.policy.max_attempts,
            wait_ms = wait.as_millis() as u64,
            "retrying a failed request"
        );
        Some(tokio::time::sleep_until(Instant::now() + wait))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Called on the layer's policy before tower copies it for this request: a new seed per
        // request, so concurrent retries of one client do not move in step.
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            | 1;
        self.started = Some(Instant::now());
        // Streaming bodies cannot be replayed; kube-rs sends whole bodies, so this covers every call.
        let body = req.body().try_clone()?;
        let mut builder = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(req.headers().clone());
        }
        let mut copy = builder.body(body).ok()?;
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

/// Builds a client for `config` with kube-rs's own retry replaced by `policy`, each attempt bounded by
/// `bounds` (its deadline covers the body; see [`crate::limits`]). Must run inside a tokio runtime (the
/// buffer that makes the stack cloneable for retries runs as a task).
pub fn client(
    mut config: Config,
    policy: &RetryPolicy,
    bounds: BoundsLayer,
) -> Result<Client, kube::Error> {
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config)?;
    Ok(builder
        .with_layer(&bounds)
        .with_layer(&BufferLayer::new(1024))
        .with_layer(&RetryLayer::new(Attempts::new(policy.clone())))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(2),
            budget: Duration::from_secs(5),
        }
    }

    #[test]
    fn reads_retry_on_throttling_server_errors_and_lost_connections() {
        let get = Method::GET;
        for code in [429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).ok();
            assert_eq!(
                verdict(&get, PODS, status, None),
                Verdict::Retry(None),
                "{code}"
            );
        }
        assert_eq!(verdict(&get, PODS, None, None), Verdict::Retry(None));
        for code in [400, 401, 403, 404, 409, 410, 422] {
            let status = StatusCode::from_u16(code).ok();
            assert_eq!(verdict(&get, PODS, status, None), Verdict::Done, "{code}");
        }
    }

    const PODS: &str = "/api/v1/namespaces/bookinfo/pods";

    #[test]
    fn access_reviews_are_questions_retried_like_reads() {
        let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
        for code in [500, 503] {
            let status = StatusCode::from_u16(code).ok();
            assert_eq!(
                verdict(&Method::POST, path, status, None),
                Verdict::Retry(None)
            );
        }
        assert_eq!(
            verdict(&Method::POST, path, None, None),
            Verdict::Retry(None)
        );
    }

    #[test]
    fn writes_retry_only_on_429() {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(
                verdict(
                    &method,
                    PODS,
                    Some(StatusCode::TOO_MANY_REQUESTS),
                    Some("1")
                ),
                Verdict::Retry(Some(Duration::from_secs(1)))
            );
            for code in [500, 502, 503, 504] {
                let status = StatusCode::from_u16(code).ok();
                assert_eq!(
                    verdict(&method, PODS, status, None),
                    Verdict::Done,
                    "{method} {code}"
                );
            }
            assert_eq!(
                verdict(&method, PODS, None, None),
                Verdict::Done,
                "{method}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap_and_dates_fall_back_to_backoff() {
        let mut a = Attempts::new(policy());
        let status = Some(StatusCode::TOO_MANY_REQUESTS);
        let Verdict::Retry(d) = verdict(&Method::GET, PODS, status, Some("1")) else {
            panic!("429 is retried")
        };
        assert_eq!(a.next_wait(d), Some(Duration::from_secs(1)));
        let Verdict::Retry(d) = verdict(&Method::GET, PODS, status, Some("3600")) else {
            panic!("429 is retried")
        };
        assert_eq!(a.next_wait(d), Some(Duration::from_secs(2)));
        let http_date = verdict(
            &Method::GET,
            PODS,
            status,
            Some("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(http_date, Verdict::Retry(None));
    }

    #[test]
    fn attempts_and_total_wait_are_bounded() {
        let mut a = Attempts::new(policy());
        let waits: Vec<Duration> = std::iter::from_fn(|| a.next_wait(None)).collect();
        assert_eq!(waits.len(), 3, "4 attempts = 3 retries: {waits:?}");
        for (i, w) in waits.iter().enumerate() {
            let base = Duration::from_millis(100 * (1 << i)).min(Duration::from_millis(300));
            assert!(*w >= base / 2 && *w < base * 3 / 2, "{i}: {w:?}");
        }

        let mut tight = Attempts::new(RetryPolicy {
            budget: Duration::from_millis(1500),
            max_attempts: 100,
            ..policy()
        });
        let mut total = Duration::ZERO;
        while let Some(w) = tight.next_wait(Some(Duration::from_secs(1))) {
            total += w;
        }
        assert_eq!(
            total,
            Duration::from_secs(1),
            "a second wait would pass the budget"
        );
        assert_eq!(Attempts::new(RetryPolicy::none()).next_wait(None), None);
    }
}
