//! Paged list reads: `limit` + `continue`, each page folded into an aggregate and dropped, so memory
//! follows the aggregate, not the number of objects. An expired continue token (410) restarts the list
//! from the beginning with a fresh aggregate.
//!
//! Bounded: at most [`crate::limits::max_pages`] pages per list, and a continue token the server
//! already gave for this list ends it (a server that repeats one would be read forever); each answer's
//! size and time are bounded by the client ([`crate::limits::BoundsLayer`]). An answer that is not a
//! list (a redirect, an HTML page, a `Status` object with 200) is [`ListError::Unexpected`], never an
//! empty list.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::Client;
use kube::api::ListParams;
use kube::core::Request;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::client::is_expired;

/// Objects per page, as kubectl's `--chunk-size` default.
pub const PAGE_SIZE: u32 = 500;

/// How often an expired list is restarted before giving up (each restart reads from the start).
const MAX_RESTARTS: u32 = 3;

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The server answered, but not with a list: what came back, in one line.
    #[error("{0}")]
    Unexpected(String),
    #[error(
        "the list did not end after {pages} pages (the limit per list); set {} to raise it",
        crate::limits::MAX_PAGES_ENV
    )]
    TooManyPages { pages: u64 },
    #[error(
        "the API server sent a continue token it had already sent for this list, so the list would never end; retry later, or report it to the cluster's administrator"
    )]
    RepeatedContinue,
}

/// One page of a list; `T` carries only the fields a fold reads, so the rest of each object is skipped
/// while parsing.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Page<T> {
    /// `PodList`, `PartialObjectMetadataList`; `Status` when the server answered with one.
    #[serde(default)]
    kind: String,
    /// A `Status` object's message, when the server answered with one.
    #[serde(default)]
    message: String,
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    items: Vec<T>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Which representation to ask the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Full,
    /// `PartialObjectMetadataList`: names, labels, annotations and owners only.
    Metadata,
}

/// Lists `path` (for example `/api/v1/pods`) page by page (`page_size` objects, normally
/// [`PAGE_SIZE`]), folding each object into `A`.
///
/// While one page is parsed and folded, the next one is already requested: its continue token is read
/// from the list metadata at the head of the page (every API server writes `metadata` before `items`),
/// so the server prepares page N+1 while this process parses page N. The token that counts is still
/// the one the full parse finds; a head that cannot be read just means no overlap for that page.
pub async fn fold_pages<T, A>(
    client: &Client,
    page_size: u32,
    path: &str,
    selector: Option<&str>,
    shape: Shape,
    mut fold: impl FnMut(&mut A, T),
) -> Result<A, ListError>
where
    T: DeserializeOwned + Send + 'static,
    A: Default,
{
    let fetch = |token: Option<String>| async move {
        let mut lp = ListParams::default().limit(page_size);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let request = Request::new(path);
        let request = match shape {
            Shape::Full => request.list(&lp),
            Shape::Metadata => request.list_metadata(&lp),
        }
        .map_err(kube::Error::BuildRequest)?;
        answer_body(client, request).await
    };

    let mut continuation = Continuation::default();
    let mut acc = A::default();
    let mut restarts = 0;
    // The answer to the request in flight, and whether that request continued a list.
    let mut pending = fetch(None).await;
    let mut continued = false;
    loop {
        let body = match pending {
            Ok(body) => body,
            Err(ListError::Kube(e)) if continued && is_expired(&e) && restarts < MAX_RESTARTS => {
                tracing::info!(path, "continue token expired; restarting the list");
                restarts += 1;
                acc = A::default();
                continuation = Continuation::default();
                pending = fetch(None).await;
                continued = false;
                continue;
            }
            Err(e) => return Err(e),
        };
        let prefetch = continue_in_head(&body).filter(|t| !continuation.seen.contains(t));
        // Parsing runs off the async worker, so the worker is free to send the next request and
        // receive its answer meanwhile (a task woken on this worker would otherwise wait for it).
        let parse = tokio::task::spawn_blocking(move || serde_json::from_slice::<Page<T>>(&body));
        let (next, parsed) = match prefetch.clone() {
            Some(t) => {
                let (next, parsed) = futures::join!(fetch(Some(t)), parse);
                (Some(next), parsed)
            }
            None => (None, parse.await),
        };
        let page = parsed
            .map_err(|e| kube::Error::Service(Box::new(e)))?
            .map_err(|e| {
                tracing::warn!(path, error = %e, "cannot parse a list page");
                kube::Error::SerdeError(e)
            })?;
        if !page.kind.ends_with("List") {
            let kind = if page.kind.is_empty() {
                "kind-less"
            } else {
                &page.kind
            };
            let message = if page.message.is_empty() {
                String::new()
            } else {
                format!(": {}", page.message)
            };
            return Err(ListError::Unexpected(format!(
                "the server answered 200 with a `{kind}` object instead of a list{message}"
            )));
        }
        for item in page.items {
            fold(&mut acc, item);
        }
        let parsed = continuation.next(page.metadata.continue_)?;
        continued = true;
        pending = match (parsed, next) {
            (None, _) => return Ok(acc),
            (Some(t), Some(next)) if prefetch.as_deref() == Some(t.as_str()) => next,
            (Some(t), _) => fetch(Some(t)).await,
        };
    }
}

/// Sends `request` and returns the answer's body when it is a successful JSON answer: an error status
/// becomes the API error it carries, anything else (a redirect, an HTML page) [`ListError::Unexpected`]
/// naming what came back.
async fn answer_body(
    client: &Client,
    request: http::Request<Vec<u8>>,
) -> Result<bytes::Bytes, ListError> {
    // One buffer per answer as the server sent it: no text copy, no UTF-8 pass before parsing.
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let code = response.status();
    let (content_type, location) = {
        let header = |name: http::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (
            header(http::header::CONTENT_TYPE).unwrap_or_default(),
            header(http::header::LOCATION),
        )
    };
    let body = response.into_body().collect_bytes().await?;
    if code.is_client_error() || code.is_server_error() {
        return Err(ListError::Kube(api_error(code.as_u16(), &body)));
    }
    if !code.is_success() || !content_type.to_ascii_lowercase().contains("json") {
        return Err(ListError::Unexpected(unexpected_answer(
            code,
            &content_type,
            location.as_deref(),
            &body,
        )));
    }
    Ok(body)
}

/// A single JSON document at `path` (`/version`, `/apis`), checked as list pages are.
pub async fn get_json<T: DeserializeOwned>(client: &Client, path: &str) -> Result<T, ListError> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| ListError::Kube(kube::Error::HttpError(e)))?;
    let body = answer_body(client, request).await?;
    serde_json::from_slice(&body).map_err(|e| ListError::Kube(kube::Error::SerdeError(e)))
}

/// Lists page by page with kube-rs's typed calls (`list`: `|p| api.list(&p)`, or `list_metadata`),
/// folding each object into `A`, within the same bounds as [`fold_pages`] ([`Continuation`]); an
/// expired continue token (410) restarts the list from the beginning with a fresh aggregate, as
/// [`fold_pages`] does. For callers that need the typed objects (apply's gates and actions).
pub async fn fold_typed<T, A, F, Fut>(
    params: &ListParams,
    mut list: F,
    mut fold: impl FnMut(&mut A, T),
) -> Result<A, kube::Error>
where
    T: Clone,
    A: Default,
    F: FnMut(ListParams) -> Fut,
    Fut: std::future::Future<Output = Result<kube::core::ObjectList<T>, kube::Error>>,
{
    let mut restarts = 0;
    'list: loop {
        let mut acc = A::default();
        let mut pages = Continuation::default();
        let mut page_params = params.clone();
        let mut continued = false;
        loop {
            let page = match list(page_params.clone()).await {
                Ok(page) => page,
                Err(e) if continued && is_expired(&e) && restarts < MAX_RESTARTS => {
                    tracing::info!("continue token expired; restarting the list");
                    restarts += 1;
                    continue 'list;
                }
                Err(e) => return Err(e),
            };
            for item in page.items {
                fold(&mut acc, item);
            }
            match pages.next(page.metadata.continue_)? {
                Some(token) => page_params = page_params.continue_token(&token),
                None => return Ok(acc),
            }
            continued = true;
        }
    }
}

/// The bounds of a paged list, for [`fold_pages`] and for loops that page with kube-rs's typed
/// `Api::list`: at most [`crate::limits::max_pages`] pages, and no continue token twice.
#[derive(Debug, Default)]
pub struct Continuation {
    seen: HashSet<String>,
    pages: u64,
}

impl Continuation {
    /// After a page that ended with `token`: the token to continue with, `None` when the list is
    /// complete, or the bound it would break.
    pub fn next(&mut self, token: Option<String>) -> Result<Option<String>, ListError> {
        self.pages += 1;
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let max = crate::limits::max_pages();
        if self.pages >= max {
            return Err(ListError::TooManyPages { pages: max });
        }
        if !self.seen.insert(token.clone()) {
            return Err(ListError::RepeatedContinue);
        }
        Ok(Some(token))
    }
}

/// For loops that return kube's error: a bound broken becomes a `Service` error carrying it, so its
/// message is what [`crate::client::brief`] shows.
impl From<ListError> for kube::Error {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Kube(e) => e,
            other => kube::Error::Service(Box::new(other)),
        }
    }
}

/// What came back instead of a list, in one line: status, content type, where a redirect points, and
/// the first bytes of the body, escaped.
fn unexpected_answer(
    code: http::StatusCode,
    content_type: &str,
    location: Option<&str>,
    body: &[u8],
) -> String {
    let content_type = if content_type.is_empty() {
        "no content type".to_string()
    } else {
        content_type.to_string()
    };
    let redirect = location
        .map(|l| format!(" to {}", crate::redact::url(l)))
        .unwrap_or_default();
    const SHOWN: usize = 60;
    let head: String = body[..body.len().min(SHOWN)].escape_ascii().to_string();
    let more = if body.len() > SHOWN { "…" } else { "" };
    format!(
        "the server answered {code}{redirect} ({content_type}) instead of JSON: \"{head}{more}\""
    )
}

/// The API error an unsuccessful answer carries, classified as kube-rs classifies it:
/// `kube::Error::Api` with the server's `Status` (or one made from the text of the body).
fn api_error(code: u16, body: &[u8]) -> kube::Error {
    let status = serde_json::from_slice::<kube::core::Status>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        kube::core::Status::failure(text.trim(), "Failed to parse error data").with_code(code)
    });
    kube::Error::Api(status.boxed())
}

/// The `metadata.continue` of a list page, read from the bytes before `"items"` without parsing the
/// items. `None` when the head does not carry it (then the full parse decides).
fn continue_in_head(body: &[u8]) -> Option<String> {
    const HEAD: usize = 64 * 1024;
    let start = &body[..body.len().min(HEAD)];
    let text = match std::str::from_utf8(start) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&start[..e.valid_up_to()]).ok()?,
    };
    let head = &text[..text.find("\"items\"")?];
    let at = head.find("\"metadata\"")? + "\"metadata\"".len();
    let value = head[at..].trim_start().strip_prefix(':')?;
    let meta = serde_json::Deserializer::from_str(value)
        .into_iter::<ListMeta>()
        .next()?
        .ok()?;
    meta.continue_.filter(|t| !t.is_empty())
}

/// The metadata every fold needs; other fields are skipped while parsing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub owner_references: Vec<OwnerRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    pub controller: Option<bool>,
}

/// Any object, read for its metadata only.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MetaOnly {
    pub metadata: Meta,
}

pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A collection path: `/apis/apps/v1` + optional `/namespaces/NS` + `/deployments`.
pub fn collection(group_version_path: &str, namespace: Option<&str>, plural: &str) -> String {
    match namespace {
        Some(ns) => format!("{group_version_path}/namespaces/{ns}/{plural}"),
        None => format!("{group_version_path}/{plural}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_null_items_and_skip_unread_fields() {
        let page: Page<MetaOnly> = serde_json::from_str(
            r#"{"kind":"PodList","metadata":{"continue":"abc"},"items":null}"#,
        )
        .unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.metadata.continue_.as_deref(), Some("abc"));
        let page: Page<MetaOnly> = serde_json::from_str(
            r#"{"metadata":{},"items":[{"metadata":{"name":"a","namespace":"n","labels":null,
              "managedFields":[{"manager":"x"}]},"spec":{"huge":[1,2,3]}}]}"#,
        )
        .unwrap();
        assert_eq!(page.items[0].metadata.name, "a");
        assert!(page.items[0].metadata.labels.is_empty());
    }

    #[test]
    fn unsuccessful_answers_become_api_errors_with_the_servers_status() {
        let gone = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}"#;
        assert!(crate::client::is_expired(&api_error(410, gone)));
        let forbidden = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden","reason":"Forbidden","code":403}"#;
        assert!(crate::client::is_forbidden(&api_error(403, forbidden)));
        match api_error(502, b"<html>Bad Gateway</html>") {
            kube::Error::Api(s) => {
                assert_eq!(s.code, 502);
                assert_eq!(s.message, "<html>Bad Gateway</html>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_continue_token_is_read_from_the_head_of_a_page() {
        let page = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7","continue":"tok"},"items":[{"metadata":{"name":"a"}}]}"#;
        assert_eq!(continue_in_head(page.as_bytes()).as_deref(), Some("tok"));
        let last = r#"{"kind":"PodList","metadata":{"resourceVersion":"7"},"items":[]}"#;
        assert_eq!(continue_in_head(last.as_bytes()), None);
        // Items before metadata: no overlap, the full parse decides.
        let reordered = r#"{"items":[],"metadata":{"continue":"tok"}}"#;
        assert_eq!(continue_in_head(reordered.as_bytes()), None);
        let metadata_list = r#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1", "metadata" : {"continue":"m"},"items":null}"#;
        assert_eq!(
            continue_in_head(metadata_list.as_bytes()).as_deref(),
            Some("m")
        );
    }

    #[test]
    fn continuation_ends_at_the_last_page_and_refuses_a_repeated_token() {
        let mut c = Continuation::default();
        assert_eq!(c.next(Some("a".into())).unwrap().as_deref(), Some("a"));
        assert_eq!(c.next(Some("b".into())).unwrap().as_deref(), Some("b"));
        assert!(matches!(
            c.next(Some("a".into())),
            Err(ListError::RepeatedContinue)
        ));
        let mut done = Continuation::default();
        assert_eq!(done.next(Some(String::new())).unwrap(), None);
        assert_eq!(done.next(None).unwrap(), None);
        let err = kube::Error::from(ListError::RepeatedContinue);
        assert!(
            crate::client::brief(&err).contains("continue token it had already sent"),
            "{err}"
        );
    }

    #[test]
    fn collection_paths() {
        assert_eq!(
            collection("/apis/apps/v1", Some("istio-system"), "deployments"),
            "/apis/apps/v1/namespaces/istio-system/deployments"
        );
        assert_eq!(collection("/api/v1", None, "pods"), "/api/v1/pods");
    }
}
