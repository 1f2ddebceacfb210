//! Injected faults: which requests they hit, how often, and what they do.

use std::time::Duration;

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a `Status` body (reason derived from the code); with
    /// `retry_after`, also a `Retry-After` header and `details.retryAfterSeconds`.
    Status {
        code: u16,
        retry_after: Option<u32>,
        message: Option<String>,
    },
    /// Wait this long, then handle the request normally (latency faults combine with others).
    Latency(Duration),
    /// Close the connection without answering.
    DropConnection,
    /// Answer list requests that carry a `continue` token with 410 Gone, reason `Expired`, as the
    /// real server does for a compacted token. Requests without a token are not matched.
    ExpiredContinue,
    /// Answer with exactly this status, content type, extra headers and body (a 200 whose body is a
    /// `Status`, a 302 to a login page, an HTML page from a proxy).
    Raw {
        code: u16,
        content_type: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Answer list requests with an empty page whose `continue` token is always the same, so a client
    /// that follows tokens pages forever.
    RepeatContinue,
    /// Answer 200 `application/json` with the start of a list, then one more byte every interval,
    /// never ending.
    Trickle(Duration),
    /// Answer 200 `application/json` with a list whose items never end, sent as fast as the client
    /// reads them (chunked).
    EndlessList,
    /// Read the request and never answer (the connection stays open).
    NeverAnswer,
}

#[derive(Debug, Clone, PartialEq)]
enum Trigger {
    Always,
    Times(u64),
    Rate { probability: f64, rng: u64 },
}

/// A fault rule. Build with one of the constructors, narrow it with [`Fault::on`] and
/// [`Fault::method`], and limit it with [`Fault::times`] or [`Fault::rate`].
///
/// ```
/// use fake_apiserver::Fault;
/// let f = Fault::status(503).on("/apis/apps/v1/*").method("GET").times(2);
/// let g = Fault::status(429).retry_after(1).on("/api/v1/pods").rate(0.5, 42);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub(crate) action: FaultAction,
    path: String,
    method: Option<String>,
    trigger: Trigger,
    pub(crate) hits: u64,
}

impl Fault {
    fn new(action: FaultAction) -> Self {
        Fault {
            action,
            path: "*".into(),
            method: None,
            trigger: Trigger::Always,
            hits: 0,
        }
    }

    /// Answer with an HTTP error status (500, 503, 429, 504, ...).
    pub fn status(code: u16) -> Self {
        Fault::new(FaultAction::Status {
            code,
            retry_after: None,
            message: None,
        })
    }

    /// Add latency before the request is handled.
    pub fn latency(d: Duration) -> Self {
        Fault::new(FaultAction::Latency(d))
    }

    /// Drop the connection without an answer.
    pub fn drop_connection() -> Self {
        Fault::new(FaultAction::DropConnection)
    }

    /// 410 Gone `Expired` for list requests continuing with a `continue` token.
    pub fn expired_continue() -> Self {
        Fault::new(FaultAction::ExpiredContinue)
    }

    /// Answer with this status, content type and body; add headers with [`Fault::header`].
    pub fn raw(code: u16, content_type: impl Into<String>, body: impl Into<String>) -> Self {
        Fault::new(FaultAction::Raw {
            code,
            content_type: content_type.into(),
            headers: Vec::new(),
            body: body.into(),
        })
    }

    /// A header on a raw fault (`Location` for a redirect).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let FaultAction::Raw { headers, .. } = &mut self.action {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// List pages whose `continue` token never changes.
    pub fn repeat_continue() -> Self {
        Fault::new(FaultAction::RepeatContinue)
    }

    /// A 200 whose body comes one byte per `every`, forever.
    pub fn trickle(every: Duration) -> Self {
        Fault::new(FaultAction::Trickle(every))
    }

    /// A 200 list whose items never end.
    pub fn endless_list() -> Self {
        Fault::new(FaultAction::EndlessList)
    }

    /// Never answer.
    pub fn never_answer() -> Self {
        Fault::new(FaultAction::NeverAnswer)
    }

    /// Set `Retry-After` (seconds) on a status fault.
    pub fn retry_after(mut self, secs: u32) -> Self {
        if let FaultAction::Status { retry_after, .. } = &mut self.action {
            *retry_after = Some(secs);
        }
        self
    }

    /// Set the message of a status fault.
    pub fn message(mut self, msg: impl Into<String>) -> Self {
        if let FaultAction::Status { message, .. } = &mut self.action {
            *message = Some(msg.into());
        }
        self
    }

    /// Only requests whose path (without query) matches this glob; `*` matches any run of
    /// characters, `/` included. Default `*`.
    pub fn on(mut self, path_glob: impl Into<String>) -> Self {
        self.path = path_glob.into();
        self
    }

    /// Only requests with this HTTP method.
    pub fn method(mut self, m: impl Into<String>) -> Self {
        self.method = Some(m.into().to_ascii_uppercase());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u64) -> Self {
        self.trigger = Trigger::Times(n);
        self
    }

    /// Each matching request with this probability, drawn from a deterministic RNG seeded with `seed`.
    pub fn rate(mut self, probability: f64, seed: u64) -> Self {
        self.trigger = Trigger::Rate {
            probability,
            rng: seed ^ 0x2545F4914F6CDD1D,
        };
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str, has_continue: bool) -> bool {
        if self.action == FaultAction::ExpiredContinue && (!has_continue || method != "GET") {
            return false;
        }
        self.method.as_deref().is_none_or(|m| m == method) && glob_match(&self.path, path)
    }

    /// Decide whether this matching request is hit, consuming a count or an RNG draw.
    pub(crate) fn fire(&mut self) -> bool {
        let hit = match &mut self.trigger {
            Trigger::Always => true,
            Trigger::Times(0) => false,
            Trigger::Times(n) => {
                *n -= 1;
                true
            }
            Trigger::Rate { probability, rng } => {
                // xorshift64*
                let mut x = *rng;
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                *rng = x;
                let r = x.wrapping_mul(0x2545F4914F6CDD1D) >> 11;
                (r as f64 / (1u64 << 53) as f64) < *probability
            }
        };
        if hit {
            self.hits += 1;
        }
        hit
    }
}

/// Glob match where `*` matches any sequence of characters (including `/`).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    let first = parts[0];
    if !rest.starts_with(first) {
        return false;
    }
    rest = &rest[first.len()..];
    let last = parts[parts.len() - 1];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "/api/v1/pods"));
        assert!(glob_match("/api/v1/pods", "/api/v1/pods"));
        assert!(!glob_match("/api/v1/pods", "/api/v1/pods/x"));
        assert!(glob_match("/api/v1/*", "/api/v1/namespaces/a/pods"));
        assert!(glob_match(
            "/apis/*/deployments*",
            "/apis/apps/v1/namespaces/x/deployments/y"
        ));
        assert!(!glob_match(
            "/apis/*/deployments",
            "/apis/apps/v1/namespaces/x/pods"
        ));
        assert!(glob_match(
            "*/scale",
            "/apis/apps/v1/namespaces/x/deployments/y/scale"
        ));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn counts_and_rates_are_deterministic() {
        let mut f = Fault::status(500).times(2);
        assert_eq!((0..5).filter(|_| f.fire()).count(), 2);
        let draws = |seed| {
            let mut f = Fault::status(500).rate(0.3, seed);
            (0..1000).map(|_| f.fire()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let n = draws(7).iter().filter(|x| **x).count();
        assert!((200..400).contains(&n), "{n}");
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn expired_continue_needs_a_token() {
        let f = Fault::expired_continue().on("/api/v1/pods");
        assert!(!f.matches("GET", "/api/v1/pods", false));
        assert!(f.matches("GET", "/api/v1/pods", true));
    }
}
