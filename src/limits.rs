//! Every read is bounded: in time, in bytes, in pages. The limits, the environment variables that lift
//! them, and the two mechanisms that enforce them on API requests and on files.
//!
//! - API requests: one deadline per request that covers the answer's whole body (`--request-timeout`,
//!   default [`DEFAULT_REQUEST_TIMEOUT`]; kube-rs's read timeout alone lets a body that trickles a
//!   byte at a time run forever) and a cap on the size of one answer ([`MAX_RESPONSE_ENV`]), both
//!   enforced by [`BoundsLayer`] on every client;
//! - lists: a cap on pages per list ([`MAX_PAGES_ENV`]) and on repeated continue tokens (in
//!   `observe::paging`);
//! - files: plan and snapshot files read with a size cap ([`MAX_FILE_ENV`]), regular files only
//!   ([`read_file`]); token files and exec credential plugins' output capped by
//!   [`MAX_CREDENTIAL_ENV`] (in `client` and `credentials`); tools' output by [`MAX_TOOL_OUTPUT_ENV`].
//!
//! Each limit, when reached, is one line naming it and what lifts it.

use std::future::Future;
use std::io::Read as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Layer, Service};

/// `--request-timeout` when the flag is not given (kubectl has none; `--request-timeout 0` is none).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// MiB in one API answer (one page of a list).
pub const MAX_RESPONSE_ENV: &str = "KUBECTL_MESHUP_MAX_RESPONSE_MIB";
const DEFAULT_MAX_RESPONSE_MIB: u64 = 64;
/// Pages in one list (500 objects each).
pub const MAX_PAGES_ENV: &str = "KUBECTL_MESHUP_MAX_PAGES";
const DEFAULT_MAX_PAGES: u64 = 10_000;
/// MiB in a plan or snapshot file.
pub const MAX_FILE_ENV: &str = "KUBECTL_MESHUP_MAX_FILE_MIB";
const DEFAULT_MAX_FILE_MIB: u64 = 32;
/// MiB a tool (helm, istioctl, meshctl) may print for the apply to keep.
pub const MAX_TOOL_OUTPUT_ENV: &str = "KUBECTL_MESHUP_MAX_TOOL_OUTPUT_MIB";
const DEFAULT_MAX_TOOL_OUTPUT_MIB: u64 = 16;
/// KiB in a token file or in what an exec credential plugin prints.
pub const MAX_CREDENTIAL_ENV: &str = "KUBECTL_MESHUP_MAX_CREDENTIAL_KIB";
const DEFAULT_MAX_CREDENTIAL_KIB: u64 = 1024;

/// MiB in one download of `compat update` (a vendor's table is a few KiB).
pub const MAX_DOWNLOAD_ENV: &str = "KUBECTL_MESHUP_MAX_DOWNLOAD_MIB";
const DEFAULT_MAX_DOWNLOAD_MIB: u64 = 4;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// A positive whole number from the environment, else `default` (an unreadable value is ignored with
/// a warning, so a typo never lifts a limit). Each limit reads its variable once per process.
fn from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                tracing::warn!(
                    variable = name,
                    value = %text,
                    default,
                    "not a positive whole number; the default limit applies"
                );
                default
            }
        },
        Err(_) => default,
    }
}

pub fn max_response_bytes() -> u64 {
    static VALUE: OnceLock<u64> = OnceLock::new();
    *VALUE.get_or_init(|| from_env(MAX_RESPONSE_ENV, DEFAULT_MAX_RESPONSE_MIB).saturating_mul(MIB))
}

pub fn max_pages() -> u64 {
    static VALUE: OnceLock<u64> = OnceLock::new();
    *VALUE.get_or_init(|| from_env(MAX_PAGES_ENV, DEFAULT_MAX_PAGES))
}

pub fn max_file_bytes() -> u64 {
    static VALUE: OnceLock<u64> = OnceLock::new();
    *VALUE.get_or_init(|| from_env(MAX_FILE_ENV, DEFAULT_MAX_FILE_MIB).saturating_mul(MIB))
}

pub fn max_tool_output_bytes() -> u64 {
    static VALUE: OnceLock<u64> = OnceLock::new();
    *VALUE.get_or_init(|| {
        from_env(MAX_TOOL_OUTPUT_ENV, DEFAULT_MAX_TOOL_OUTPUT_MIB).saturating_mul(MIB)
    })
}

pub fn max_credential_bytes() -> u64 {
    static VALUE: OnceLock<u64> = OnceLock::new();
    *VALUE.get_or_init(|| {
        from_env(MAX_CREDENTIAL_ENV, DEFAULT_MAX_CREDENTIAL_KIB).saturating_mul(KIB)
    })
}

pub fn max_download_bytes() -> u64 {
    static VALUE: OnceLock<u64> = OnceLock::new();
    *VALUE.get_or_init(|| from_env(MAX_DOWNLOAD_ENV, DEFAULT_MAX_DOWNLOAD_MIB).saturating_mul(MIB))
}

/// `64 MiB`, `512 KiB`, `100 bytes`.
pub fn size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// `2s`, `1m30s`, `500ms`: as `--request-timeout` takes it.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// An API answer that a limit cut short. Its message names the limit and what lifts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadLimit {
    #[error(
        "no complete answer within {} (--request-timeout); raise --request-timeout if the server is slow (0 waits without limit)",
        duration(*.0)
    )]
    Deadline(Duration),
    #[error(
        "the answer is larger than {} (the limit per answer); set {MAX_RESPONSE_ENV} to raise it",
        size(*.0)
    )]
    TooLarge(u64),
}

/// The [`ReadLimit`] somewhere in an error's chain, if a limit ended the request.
pub fn read_limit(err: &(dyn std::error::Error + 'static)) -> Option<ReadLimit> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(limit) = e.downcast_ref::<ReadLimit>() {
            return Some(limit.clone());
        }
        current = e.source();
    }
    None
}

/// Bounds every request of a client: its answer, body included, must arrive within `timeout` and be
/// at most `max_bytes` long.
#[derive(Debug, Clone, Copy)]
pub struct BoundsLayer {
    pub timeout: Option<Duration>,
    pub max_bytes: u64,
}

impl<S> Layer<S> for BoundsLayer {
    type Service = Bounded<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Bounded {
            inner,
            bounds: *self,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bounded<S> {
    inner: S,
    bounds: BoundsLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, B> Service<Request<ReqBody>> for Bounded<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoundedBody<B>>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let bounds = self.bounds;
        let deadline = bounds.timeout.map(|t| (t, Instant::now() + t));
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = match deadline {
                Some((t, at)) => tokio::time::timeout_at(at, answer)
                    .await
                    .map_err(|_| ReadLimit::Deadline(t))?,
                None => answer.await,
            }
            .map_err(Into::into)?;
            Ok(response.map(|inner| BoundedBody {
                inner,
                deadline: deadline.map(|(t, at)| (t, Box::pin(tokio::time::sleep_until(at)))),
                read: 0,
                max_bytes: bounds.max_bytes,
            }))
        })
    }
}

/// A response body that fails once its request's deadline passes or it grows past the cap.
pub struct BoundedBody<B> {
    inner: B,
    deadline: Option<(Duration, Pin<Box<Sleep>>)>,
    read: u64,
    max_bytes: u64,
}

impl<B> http_body::Body for BoundedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some((t, sleep)) = &mut this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(ReadLimit::Deadline(*t).into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.max_bytes {
                        return Poll::Ready(Some(Err(ReadLimit::TooLarge(this.max_bytes).into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is not a regular file (a pipe, a device or a directory)")]
    NotAFile,
    #[error("it is larger than {} (the limit for this file); set {env} to raise it", size(*.limit))]
    TooLarge { limit: u64, env: &'static str },
    #[error("it is not UTF-8 text")]
    NotText,
}

/// Reads a regular file of at most `limit` bytes as text; `-` is stdin, read up to the same limit.
/// `env` names the variable that lifts the limit.
pub fn read_file(path: &Path, limit: u64, env: &'static str) -> Result<String, FileError> {
    let too_large = FileError::TooLarge { limit, env };
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)?;
    } else {
        // Checked before opening: opening a FIFO blocks until a writer comes.
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Err(FileError::NotAFile);
        }
        if meta.len() > limit {
            return Err(too_large);
        }
        std::fs::File::open(path)?
            .take(limit + 1)
            .read_to_end(&mut bytes)?;
    }
    if bytes.len() as u64 > limit {
        return Err(too_large);
    }
    String::from_utf8(bytes).map_err(|_| FileError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_the_flags_take_them() {
        assert_eq!(size(64 * MIB), "64 MiB");
        assert_eq!(size(512 * KIB), "512 KiB");
        assert_eq!(size(100), "100 bytes");
        assert_eq!(duration(Duration::from_secs(2)), "2s");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(60)), "1m");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn files_are_read_up_to_the_limit_and_only_when_regular() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abcdef").unwrap();
        assert_eq!(read_file(&path, 6, MAX_FILE_ENV).unwrap(), "abcdef");
        let err = read_file(&path, 5, MAX_FILE_ENV).unwrap_err().to_string();
        assert_eq!(
            err,
            "it is larger than 5 bytes (the limit for this file); set KUBECTL_MESHUP_MAX_FILE_MIB to raise it"
        );
        assert!(matches!(
            read_file(dir.path(), 5, MAX_FILE_ENV),
            Err(FileError::NotAFile)
        ));
        #[cfg(unix)]
        assert!(matches!(
            read_file(Path::new("/dev/zero"), 5, MAX_FILE_ENV),
            Err(FileError::NotAFile)
        ));
    }

    #[tokio::test]
    async fn a_body_past_its_deadline_or_its_cap_fails_with_the_limit() {
        use http_body_util::BodyExt;
        use http_body_util::StreamBody;

        // A body that sends a byte every 50 ms, forever.
        let trickle = || {
            let stream = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((
                    Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"x"))),
                    (),
                ))
            });
            StreamBody::new(Box::pin(stream))
        };
        let svc = tower::service_fn(move |_req: Request<()>| async move {
            Ok::<_, std::io::Error>(Response::new(trickle()))
        });
        let mut bounded = BoundsLayer {
            timeout: Some(Duration::from_millis(300)),
            max_bytes: 1000,
        }
        .layer(svc);
        let started = std::time::Instant::now();
        let body = bounded.call(Request::new(())).await.unwrap().into_body();
        let err = body.collect().await.expect_err("cut at the deadline");
        assert_eq!(
            read_limit(err.as_ref()),
            Some(ReadLimit::Deadline(Duration::from_millis(300)))
        );
        assert!(started.elapsed() < Duration::from_secs(2));

        let mut capped = BoundsLayer {
            timeout: None,
            max_bytes: 3,
        }
        .layer(tower::service_fn(move |_req: Request<()>| async move {
            Ok::<_, std::io::Error>(Response::new(trickle()))
        }));
        let body = capped.call(Request::new(())).await.unwrap().into_body();
        let err = body.collect().await.expect_err("cut at the cap");
        assert_eq!(read_limit(err.as_ref()), Some(ReadLimit::TooLarge(3)));
    }
}
