//! The HTTP side: connection handling, fault injection, routing and the REST verbs.

// Handlers return `Err(response)` for API errors; the response is the error value by design.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::cluster::{Change, Cluster, RecordedRequest};
use crate::discovery;
use crate::faults::FaultAction;
use crate::patch::{fields_v1, strategic_merge};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::state::{Event, EventType, ObjKey, State, Stored, meta_str, metadata_mut, now_rfc3339};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Returned to hyper to drop the connection without an answer.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}
impl std::error::Error for DropConnection {}

// ----- small helpers ---------------------------------------------------------------------------

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(p), String::new()),
        })
        .collect()
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn json_bytes(code: u16, b: Bytes) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("Content-Type", "application/json")
        .body(full(b))
        .expect("response")
}

fn json_resp(code: u16, v: &Value) -> Response<Body> {
    json_bytes(code, Bytes::from(serde_json::to_vec(v).expect("json")))
}

fn text(code: u16, t: &'static str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(full(t))
        .expect("response")
}

fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// A `Status` object for errors.
pub(crate) fn status_value(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Value {
    let mut v = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

type Res<T> = Result<T, Response<Body>>;

fn err(code: u16, message: impl AsRef<str>) -> Response<Body> {
    json_resp(
        code,
        &status_value(code, reason_of(code), message.as_ref(), None),
    )
}

fn err_details(
    code: u16,
    reason: &str,
    message: impl AsRef<str>,
    details: Value,
) -> Response<Body> {
    json_resp(
        code,
        &status_value(code, reason, message.as_ref(), Some(details)),
    )
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": rt.plural});
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    d
}

fn not_found(rt: &ResourceType, name: &str) -> Response<Body> {
    err_details(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", rt.qualified_plural()),
        details(rt, name),
    )
}

fn conflict(rt: &ResourceType, name: &str) -> Response<Body> {
    err_details(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            rt.qualified_plural()
        ),
        details(rt, name),
    )
}

fn invalid(rt: &ResourceType, name: &str, cause: &str) -> Response<Body> {
    err_details(
        422,
        "Invalid",
        format!("{} \"{name}\" is invalid: {cause}", rt.qualified_kind()),
        details(rt, name),
    )
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_continue(rv: u64, key: &ObjKey) -> String {
    hex_encode(
        serde_json::to_string(&json!({"rv": rv, "ns": key.0, "name": key.1}))
            .expect("json")
            .as_bytes(),
    )
}

fn decode_continue(tok: &str) -> Option<(u64, ObjKey)> {
    let v: Value = serde_json::from_slice(&hex_decode(tok)?).ok()?;
    Some((
        v["rv"].as_u64()?,
        (
            v["ns"].as_str()?.to_string(),
            v["name"].as_str()?.to_string(),
        ),
    ))
}

fn set_path(obj: &mut Value, path: &str, val: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, s) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let m = cur.as_object_mut().expect("object");
        if i + 1 == segs.len() {
            m.insert(s.to_string(), val);
            return;
        }
        cur = m.entry(s.to_string()).or_insert_with(|| json!({}));
    }
}

fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for s in path.trim_start_matches('.').split('.') {
        cur = cur.get(s)?;
    }
    Some(cur)
}

// ----- the request -----------------------------------------------------------------------------

struct Req {
    method: String,
    params: HashMap<String, String>,
    content_type: String,
    accept: String,
    user_agent: String,
    host: String,
    body: Bytes,
    body_dry_run: bool,
}

impl Req {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn dry_run(&self) -> Res<bool> {
        match self.param("dryRun") {
            None => Ok(self.body_dry_run),
            Some("All") => Ok(true),
            Some(other) => Err(err(
                400,
                format!("Invalid dry run value: {other:?}; only \"All\" is supported"),
            )),
        }
    }

    fn wants_metadata(&self) -> bool {
        self.accept.contains("as=PartialObjectMetadata")
    }

    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }

    fn body_value(&self) -> Res<Value> {
        if self.body.is_empty() {
            return Err(err(400, "the body of the request was empty"));
        }
        if self.content_type.contains("protobuf") || self.content_type.contains("cbor") {
            return Err(err(
                415,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {:?}",
                    self.content_type
                ),
            ));
        }
        let v = if self.content_type.contains("yaml") {
            let s = std::str::from_utf8(&self.body).map_err(|e| err(400, e.to_string()))?;
            serde_json::from_str(s).or_else(|_| {
                serde_saphyr::from_str::<Value>(s).map_err(|e| err(400, e.to_string()))
            })?
        } else {
            serde_json::from_slice(&self.body).map_err(|e| {
                err(
                    400,
                    format!("couldn't get version/kind; json parse error: {e}"),
                )
            })?
        };
        if !v.is_object() {
            return Err(err(400, "the body of the request must be an object"));
        }
        Ok(v)
    }

    /// The field manager of a non-apply write: the parameter, else the user agent's first word.
    fn manager(&self) -> String {
        self.param("fieldManager")
            .map(String::from)
            .unwrap_or_else(|| {
                let ua = self.user_agent.split('/').next().unwrap_or("").trim();
                if ua.is_empty() {
                    "unknown".into()
                } else {
                    ua.into()
                }
            })
    }
}

/// Serve one connection's requests.
pub(crate) async fn handle(
    cluster: Cluster,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let content_type = h("content-type");
    let accept = h("accept");
    let user_agent = h("user-agent");
    let host = h("host").unwrap_or_default();
    // Always drain the body.
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let params = parse_query(&query);
    // DeleteOptions may carry `dryRun: ["All"]` in the body (kube-rs sends it there).
    let body_dry_run = method == "DELETE"
        && serde_json::from_slice::<Value>(&body).is_ok_and(|v| {
            v.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All"))
        });
    let mut rec = RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        accept: accept.clone(),
        user_agent: user_agent.clone(),
        dry_run: body_dry_run || params.get("dryRun").is_some_and(|v| !v.is_empty()),
        status: 0,
    };
    let (latency, action) = cluster.check_faults(
        &method,
        &path,
        params.get("continue").is_some_and(|c| !c.is_empty()),
    );
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = match action {
        Some(FaultAction::DropConnection) => {
            cluster.record(rec);
            return Err(DropConnection);
        }
        Some(FaultAction::Status {
            code,
            retry_after,
            message,
        }) => {
            let msg = message.unwrap_or_else(|| match code {
                429 => "Too many requests, please try again later.".into(),
                503 => "The server is currently unable to handle the request".into(),
                _ => format!("injected fault: HTTP {code}"),
            });
            let mut st = status_value(code, reason_of(code), &msg, None);
            if let Some(s) = retry_after {
                st["details"] = json!({"retryAfterSeconds": s});
            }
            let mut r = json_resp(code, &st);
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("Retry-After", s.to_string().parse().expect("header"));
            }
            r
        }
        Some(FaultAction::ExpiredContinue) => expired_continue(),
        Some(FaultAction::Raw {
            code,
            content_type,
            headers,
            body,
        }) => {
            let mut b = Response::builder()
                .status(code)
                .header("Content-Type", content_type);
            for (name, value) in headers {
                b = b.header(name, value);
            }
            b.body(full(body)).expect("response")
        }
        Some(FaultAction::RepeatContinue) => json_resp(
            200,
            &json!({"kind": "List", "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1", "continue": "the-same-token"}, "items": []}),
        ),
        Some(FaultAction::Trickle(every)) => streamed(move |tx| async move {
            let head = b"{\"kind\":\"List\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[";
            for byte in head.iter().copied().chain(std::iter::repeat(b' ')) {
                tokio::time::sleep(every).await;
                if tx.send(Bytes::from(vec![byte])).await.is_err() {
                    return;
                }
            }
        }),
        Some(FaultAction::EndlessList) => streamed(|tx| async move {
            let head = b"{\"kind\":\"List\",\"apiVersion\":\"v1\",\"metadata\":{},\"items\":[";
            if tx.send(Bytes::from_static(head)).await.is_err() {
                return;
            }
            let item = "{\"metadata\":{\"name\":\"endless\",\"namespace\":\"default\"}},";
            let chunk = Bytes::from(item.repeat(64 * 1024 / item.len()));
            while tx.send(chunk.clone()).await.is_ok() {}
        }),
        Some(FaultAction::NeverAnswer) => {
            cluster.record(rec);
            std::future::pending::<()>().await;
            return Err(DropConnection);
        }
        Some(FaultAction::Latency(_)) | None => {
            let r = Req {
                method,
                params,
                content_type: content_type.unwrap_or_default(),
                accept: accept.unwrap_or_default(),
                user_agent: user_agent.unwrap_or_default(),
                host,
                body,
                body_dry_run,
            };
            route(&cluster, &path, &r)
        }
    };
    rec.status = resp.status().as_u16();
    cluster.record(rec);
    Ok(resp)
}

/// A 200 `application/json` answer whose body `produce` sends chunk by chunk (it stops when the
/// client goes away and a send fails).
fn streamed<F, Fut>(produce: F) -> Response<Body>
where
    F: FnOnce(mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(produce(tx));
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(ChannelBody(rx).boxed())
        .expect("response")
}

fn expired_continue() -> Response<Body> {
    err(
        410,
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    )
}

// ----- routing ---------------------------------------------------------------------------------

fn route(c: &Cluster, path: &str, r: &Req) -> Response<Body> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get = r.method == "GET" || r.method == "HEAD";
    match segs.as_slice() {
        ["version"] if get => json_resp(200, &discovery::version_info(&c.config().server_version)),
        ["healthz" | "readyz" | "livez", ..] if get => text(200, "ok"),
        ["api"] if get => json_resp(200, &discovery::api_versions(&r.host)),
        ["apis"] if get => json_resp(200, &discovery::api_group_list(&c.state())),
        ["apis", g] if get => match discovery::api_group(&c.state(), g) {
            Some(v) => json_resp(200, &v),
            None => page_not_found(),
        },
        ["openapi", "v3"] if get => json_resp(200, &discovery::openapi_v3_index(&c.state())),
        ["openapi", "v3", "api", v] if get => openapi_doc(c, "", v),
        ["openapi", "v3", "apis", g, v] if get => openapi_doc(c, g, v),
        ["api", v, rest @ ..] => resource_route(c, "", v, rest, r),
        ["apis", g, v, rest @ ..] => resource_route(c, g, v, rest, r),
        _ => page_not_found(),
    }
}

/// A path the server does not serve (an API group or resource no CRD declares): the real
/// kube-apiserver answers `404 page not found` as plain text, not a `Status` (its mux's NotFound
/// handler), which clients must not take for an absent object of a served resource.
fn page_not_found() -> Response<Body> {
    text(404, "404 page not found\n")
}

fn openapi_doc(c: &Cluster, g: &str, v: &str) -> Response<Body> {
    match discovery::openapi_v3_doc(&c.state(), g, v) {
        Some(d) => json_resp(200, &d),
        None => page_not_found(),
    }
}

struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn resource_route(c: &Cluster, g: &str, v: &str, rest: &[&str], r: &Req) -> Response<Body> {
    let target = {
        let st = c.state();
        if !discovery::group_version_served(&st, g, v) {
            return page_not_found();
        }
        if rest.is_empty() {
            if r.method != "GET" {
                return err(
                    405,
                    "the server does not allow this method on the requested resource",
                );
            }
            return json_resp(200, &discovery::api_resource_list(&st, g, v));
        }
        let namespaced = |p: &str| st.find_type(g, v, p).is_some_and(|t| t.namespaced);
        let (ns, plural, more) = match rest {
            ["namespaces", ns, plural, more @ ..] if namespaced(plural) => {
                (Some(ns.to_string()), *plural, more)
            }
            [plural, more @ ..] => (None, *plural, more),
            [] => unreachable!(),
        };
        let Some(rt) = st.find_type(g, v, plural).cloned() else {
            return page_not_found();
        };
        if more.len() > 2 || (ns.is_some() && !rt.namespaced) {
            return page_not_found();
        }
        Target {
            rt,
            namespace: ns,
            name: more.first().map(|s| s.to_string()),
            sub: more.get(1).map(|s| s.to_string()),
        }
    };
    if let Some(sub) = &target.sub {
        let ok = (sub == "status" && target.rt.has_status)
            || (sub == "scale" && target.rt.scale.is_some());
        if !ok {
            return page_not_found();
        }
    }
    // Namespaced item requests need a namespace.
    if target.rt.namespaced && target.name.is_some() && target.namespace.is_none() {
        return page_not_found();
    }
    let watch = matches!(r.param("watch"), Some("true" | "1"));
    let verb = match (r.method.as_str(), target.name.is_some()) {
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) if watch => "watch",
        ("GET" | "HEAD", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => {
            return err(
                405,
                "the server does not allow this method on the requested resource",
            );
        }
    };
    if !target.rt.verbs().contains(&verb) {
        return err(
            405,
            "the server does not allow this method on the requested resource",
        );
    }
    let ns = target.namespace.clone().unwrap_or_default();
    let rbac_resource = match &target.sub {
        Some(s) => format!("{}/{s}", target.rt.plural),
        None => target.rt.plural.clone(),
    };
    if c.is_denied(verb, &target.rt.group, &rbac_resource, &ns) {
        let user = c.user();
        let who = match &target.name {
            Some(n) => format!("{} \"{n}\"", target.rt.qualified_plural()),
            None => target.rt.qualified_plural(),
        };
        let scope = if ns.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{ns}\"")
        };
        let msg = format!(
            "{who} is forbidden: User \"{user}\" cannot {verb} resource \"{rbac_resource}\" in API group \"{}\" {scope}",
            target.rt.group
        );
        return err_details(
            403,
            "Forbidden",
            msg,
            details(&target.rt, target.name.as_deref().unwrap_or("")),
        );
    }
    let result = match verb {
        "get" => get(c, &target, r),
        "list" => list(c, &target, r),
        "watch" => watch_(c, &target, r),
        "create" => create(c, &target, r),
        "update" => update(c, &target, r),
        "patch" => patch(c, &target, r),
        "delete" => delete(c, &target, r),
        _ => delete_collection(c, &target, r),
    };
    result.unwrap_or_else(|e| e)
}

// ----- reads -----------------------------------------------------------------------------------

fn meta_only(v: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v.get("metadata").cloned().unwrap_or(json!({}))})
}

/// The stored JSON, with apiVersion rewritten when the request names another served version.
fn item_bytes(s: &Stored, rt: &ResourceType) -> Bytes {
    if s.value.get("apiVersion").and_then(Value::as_str) == Some(rt.api_version().as_str()) {
        s.json.clone()
    } else {
        let mut v = (*s.full()).clone();
        v["apiVersion"] = json!(rt.api_version());
        Bytes::from(serde_json::to_vec(&v).expect("json"))
    }
}

fn age(ts: Option<&str>) -> String {
    let Some(ts) = ts else {
        return "<unknown>".into();
    };
    let Ok(t) = ts.parse::<k8s_openapi::jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (crate::state::now_seconds() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn table(items: &[Arc<Value>], rv: u64, cont: Option<String>) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({
                "cells": [meta_str(o, "name").unwrap_or(""), age(meta_str(o, "creationTimestamp"))],
                "object": meta_only(o),
            })
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
            {"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}
        ],
        "rows": rows
    })
}

fn one(rt: &ResourceType, s: &Stored, r: &Req, code: u16) -> Response<Body> {
    if r.wants_metadata() {
        json_resp(code, &meta_only(&s.value))
    } else if r.wants_table() && code == 200 && r.method == "GET" {
        json_resp(code, &table(std::slice::from_ref(&s.value), 0, None))
    } else {
        json_bytes(code, item_bytes(s, rt))
    }
}

fn get(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let s = c
        .state()
        .get(&t.rt.key(), ns, name)
        .cloned()
        .ok_or_else(|| not_found(&t.rt, name))?;
    if t.sub.as_deref() == Some("scale") {
        return Ok(json_resp(200, &scale_of(&t.rt, &s.full())));
    }
    Ok(one(&t.rt, &s, r, 200))
}

fn selectors(r: &Req) -> Res<(LabelSelector, FieldSelector)> {
    let l =
        LabelSelector::parse(r.param("labelSelector").unwrap_or("")).map_err(|e| err(400, e))?;
    let f =
        FieldSelector::parse(r.param("fieldSelector").unwrap_or("")).map_err(|e| err(400, e))?;
    Ok((l, f))
}

/// One page of matching objects, in key order, starting after `after`.
fn select_page(
    st: &State,
    rt: &ResourceType,
    ns: Option<&str>,
    after: Option<&ObjKey>,
    limit: usize,
    l: &LabelSelector,
    f: &FieldSelector,
) -> (Vec<Stored>, Option<ObjKey>) {
    let Some(map) = st.objects.get(&rt.key()) else {
        return (vec![], None);
    };
    // A pinned name in a namespace: a single lookup.
    if let (Some(ns), Some(name), None) = (ns, f.pinned_name(), after) {
        let items = map
            .get(&(ns.to_string(), name.to_string()))
            .filter(|s| l.matches(&s.value) && f.matches(&s.value))
            .cloned()
            .into_iter()
            .collect();
        return (items, None);
    }
    let lower = match (after, ns) {
        (Some(k), _) => Bound::Excluded(k.clone()),
        (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
        (None, None) => Bound::Unbounded,
    };
    let mut it = map
        .range((lower, Bound::Unbounded))
        .take_while(|((n, _), _)| ns.is_none_or(|ns| n == ns));
    let mut out = Vec::new();
    let mut last = None;
    for (k, s) in it.by_ref() {
        if l.matches(&s.value) && f.matches(&s.value) {
            out.push(s.clone());
            last = Some(k.clone());
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
    }
    let more = limit > 0 && out.len() >= limit && it.next().is_some();
    (out, if more { last } else { None })
}

fn list(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    let (l, f) = selectors(r)?;
    let limit: usize = match r.param("limit") {
        Some(s) => s
            .parse()
            .map_err(|_| err(400, format!("invalid limit {s:?}")))?,
        None => 0,
    };
    let after = match r.param("continue") {
        Some(tok) => Some(decode_continue(tok).ok_or_else(|| err(400, "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?),
        None => None,
    };
    let (items, next, rv) = {
        let st = c.state();
        let (items, next) = select_page(
            &st,
            &t.rt,
            t.namespace.as_deref(),
            after.as_ref().map(|a| &a.1),
            limit,
            &l,
            &f,
        );
        let rv = after.as_ref().map(|a| a.0).unwrap_or(st.rv);
        (items, next, rv)
    };
    let cont = next.map(|k| encode_continue(rv, &k));
    if r.wants_table() && !r.wants_metadata() {
        let vals: Vec<Arc<Value>> = items.iter().map(|s| s.value.clone()).collect();
        return Ok(json_resp(200, &table(&vals, rv, cont)));
    }
    let (kind, api_version) = if r.wants_metadata() {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (t.rt.list_kind.clone(), t.rt.api_version())
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = &cont {
        meta["continue"] = json!(c);
    }
    let mut out = Vec::with_capacity(items.iter().map(|s| s.json.len() + 1).sum::<usize>() + 200);
    out.extend_from_slice(
        format!(
            "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
            json!(kind),
            json!(api_version),
            meta
        )
        .as_bytes(),
    );
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if r.wants_metadata() {
            out.extend_from_slice(&serde_json::to_vec(&meta_only(&s.value)).expect("json"));
        } else {
            out.extend_from_slice(&item_bytes(s, &t.rt));
        }
    }
    out.extend_from_slice(b"]}");
    Ok(json_bytes(200, Bytes::from(out)))
}

// ----- watch -----------------------------------------------------------------------------------

struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(object.len() + 32);
    v.extend_from_slice(b"{\"type\":\"");
    v.extend_from_slice(kind.as_bytes());
    v.extend_from_slice(b"\",\"object\":");
    v.extend_from_slice(object);
    v.extend_from_slice(b"}\n");
    Bytes::from(v)
}

struct WatchFilter {
    rt: ResourceType,
    ns: Option<String>,
    label: LabelSelector,
    field: FieldSelector,
    meta: bool,
}

impl WatchFilter {
    fn matches(&self, v: &Value) -> bool {
        self.label.matches(v) && self.field.matches(v)
    }

    fn object(&self, s: &Stored) -> Bytes {
        if self.meta {
            Bytes::from(serde_json::to_vec(&meta_only(&s.value)).expect("json"))
        } else {
            item_bytes(s, &self.rt)
        }
    }

    /// The line to send for an event, if any (selector transitions become ADDED/DELETED).
    fn line(&self, ev: &Event) -> Option<Bytes> {
        if ev.key != self.rt.key() || self.ns.as_ref().is_some_and(|n| *n != ev.namespace) {
            return None;
        }
        let now = self.matches(&ev.object.value);
        let before = ev.old.as_ref().is_some_and(|o| self.matches(o));
        let kind = match ev.kind {
            EventType::Deleted => before.then_some("DELETED")?,
            EventType::Added => now.then_some("ADDED")?,
            EventType::Modified => match (before, now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            },
        };
        Some(event_line(kind, &self.object(&ev.object)))
    }
}

fn watch_(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    let (label, field) = selectors(r)?;
    let filter = WatchFilter {
        rt: t.rt.clone(),
        ns: t.namespace.clone(),
        label,
        field,
        meta: r.wants_metadata(),
    };
    let timeout = r
        .param("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let send_initial = r.param("sendInitialEvents") == Some("true");
    let rv_param = r.param("resourceVersion").unwrap_or("");
    let mut initial: Vec<Bytes> = Vec::new();
    let (events, start_rv) = {
        let st = c.state();
        let events = st.events_tx.subscribe();
        if rv_param.is_empty() || rv_param == "0" || send_initial {
            if let Some(map) = st.objects.get(&t.rt.key()) {
                for ((ns, _), s) in map.iter() {
                    if filter.ns.as_ref().is_none_or(|n| n == ns) && filter.matches(&s.value) {
                        initial.push(event_line("ADDED", &filter.object(s)));
                    }
                }
            }
            if send_initial {
                let bm = json!({"kind": t.rt.kind, "apiVersion": t.rt.api_version(),
                    "metadata": {"resourceVersion": st.rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}}});
                initial.push(event_line(
                    "BOOKMARK",
                    &serde_json::to_vec(&bm).expect("json"),
                ));
            }
        } else {
            let from: u64 = rv_param
                .parse()
                .map_err(|_| err(400, format!("invalid resource version {rv_param:?}")))?;
            if from < st.compacted_rv {
                let st410 = status_value(
                    410,
                    "Expired",
                    &format!("too old resource version: {from} ({})", st.compacted_rv),
                    None,
                );
                initial.push(event_line(
                    "ERROR",
                    &serde_json::to_vec(&st410).expect("json"),
                ));
                drop(st);
                return Ok(stream_response(initial, None, filter, 0, None));
            }
            for ev in st.history.iter().filter(|e| e.rv > from) {
                if let Some(line) = filter.line(ev) {
                    initial.push(line);
                }
            }
        }
        (events, st.rv)
    };
    Ok(stream_response(
        initial,
        Some(events),
        filter,
        start_rv,
        timeout,
    ))
}

fn stream_response(
    initial: Vec<Bytes>,
    events: Option<broadcast::Receiver<Arc<Event>>>,
    filter: WatchFilter,
    start_rv: u64,
    timeout: Option<Duration>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let Some(mut events) = events else { return };
        let deadline =
            tokio::time::Instant::now() + timeout.unwrap_or(Duration::from_secs(3600 * 24 * 365));
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= start_rv {
                            continue;
                        }
                        if let Some(line) = filter.line(&ev)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let st = status_value(410, "Expired", "watch fell too far behind; start a new watch", None);
                        let _ = tx.send(event_line("ERROR", &serde_json::to_vec(&st).expect("json"))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(ChannelBody(rx).boxed())
        .expect("response")
}

// ----- writes ----------------------------------------------------------------------------------

fn upsert_managed(
    obj: &mut Value,
    manager: &str,
    operation: &str,
    api_version: &str,
    sub: Option<&str>,
    fields: Value,
) {
    let m = metadata_mut(obj);
    let list = m.entry("managedFields").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let arr = list.as_array_mut().expect("array");
    let mut entry = json!({
        "manager": manager, "operation": operation, "apiVersion": api_version,
        "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields
    });
    if let Some(s) = sub {
        entry["subresource"] = json!(s);
    }
    let same = |e: &Value| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some(operation)
            && e.get("subresource").and_then(Value::as_str) == sub
    };
    match arr.iter_mut().find(|e| same(e)) {
        Some(e) => *e = entry,
        None => arr.push(entry),
    }
}

fn check_type(rt: &ResourceType, v: &Value) -> Res<()> {
    let av = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let group_of = |av: &str| {
        av.split_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    if !av.is_empty() && group_of(av) != rt.group {
        return Err(err(
            400,
            format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                rt.api_version()
            ),
        ));
    }
    if !kind.is_empty() && kind != rt.kind {
        return Err(err(
            400,
            format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                rt.kind
            ),
        ));
    }
    Ok(())
}

/// Build the object to store from the old one and the written one, for the main resource or a
/// subresource: status only through `/status`, generation bumped on spec changes, identity kept.
fn merge_for_write(rt: &ResourceType, sub: Option<&str>, old: &Value, mut new: Value) -> Value {
    if sub == Some("status") {
        let mut out = old.clone();
        match new.get("status") {
            Some(s) => out["status"] = s.clone(),
            None => {
                if let Some(o) = out.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        // Keep managedFields from the write (the caller updated them on `new`).
        if let Some(mf) = new.pointer("/metadata/managedFields").cloned() {
            metadata_mut(&mut out).insert("managedFields".into(), mf);
        }
        return out;
    }
    if rt.has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    new["apiVersion"] = old
        .get("apiVersion")
        .cloned()
        .unwrap_or(json!(rt.api_version()));
    new["kind"] = json!(rt.kind);
    let om = old.get("metadata").cloned().unwrap_or(json!({}));
    let m = metadata_mut(&mut new);
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
    ] {
        match om.get(k) {
            Some(v) => m.insert(k.into(), v.clone()),
            None => m.remove(k),
        };
    }
    if rt.tracks_generation() && old.get("spec") != new.get("spec") {
        let g = om.get("generation").and_then(Value::as_i64).unwrap_or(0);
        metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    new
}

fn change(
    rt: &ResourceType,
    event: EventType,
    sub: Option<&str>,
    object: &Value,
    old: Option<&Value>,
) -> Change {
    Change {
        event,
        group: rt.group.clone(),
        version: rt.version.clone(),
        kind: rt.kind.clone(),
        plural: rt.plural.clone(),
        namespace: meta_str(object, "namespace").map(String::from),
        name: meta_str(object, "name").unwrap_or("").to_string(),
        subresource: sub.map(String::from),
        object: object.clone(),
        old: old.cloned(),
    }
}

fn ssar(c: &Cluster, r: &Req) -> Res<Response<Body>> {
    let mut v = if r.content_type.contains("protobuf") {
        crate::protobuf::self_subject_access_review(&r.body).ok_or_else(|| {
            err(
                400,
                "the protobuf body is not a SelfSubjectAccessReview this server can read",
            )
        })?
    } else {
        r.body_value()?
    };
    let a = v
        .pointer("/spec/resourceAttributes")
        .cloned()
        .unwrap_or(json!({}));
    let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let resource = match s("subresource") {
        sub if sub.is_empty() => s("resource"),
        sub => format!("{}/{sub}", s("resource")),
    };
    let denied = a.is_object() && c.is_denied(&s("verb"), &s("group"), &resource, &s("namespace"));
    v["apiVersion"] = json!("authorization.k8s.io/v1");
    v["kind"] = json!("SelfSubjectAccessReview");
    v["metadata"] = json!({"creationTimestamp": null});
    v["status"] = if denied {
        json!({"allowed": false, "denied": true})
    } else {
        json!({"allowed": true})
    };
    Ok(json_resp(201, &v))
}

fn create(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    if t.rt.create_only {
        return ssar(c, r);
    }
    let dry = r.dry_run()?;
    let mut v = r.body_value()?;
    check_type(&t.rt, &v)?;
    let body_ns = meta_str(&v, "namespace").map(String::from);
    if let (Some(bns), Some(pns)) = (&body_ns, &t.namespace)
        && !bns.is_empty()
        && bns != pns
    {
        return Err(err(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let ns = if t.rt.namespaced {
        t.namespace
            .clone()
            .or(body_ns)
            .unwrap_or_else(|| "default".into())
    } else {
        String::new()
    };
    let (stored, changes) = {
        let mut st = c.state();
        let name = match meta_str(&v, "name").filter(|s| !s.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta_str(&v, "generateName").filter(|s| !s.is_empty()) {
                Some(g) => {
                    let n = format!("{g}{}", st.name_suffix());
                    metadata_mut(&mut v).insert("name".into(), json!(n));
                    n
                }
                None => {
                    return Err(invalid(
                        &t.rt,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        if t.rt.namespaced && !st.namespace_exists(&ns) {
            let nsrt = st.resolve("namespaces").expect("namespaces");
            return Err(not_found(&nsrt, &ns));
        }
        if st.get(&t.rt.key(), &ns, &name).is_some() {
            return Err(err_details(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.rt.qualified_plural()),
                details(&t.rt, &name),
            ));
        }
        let m = metadata_mut(&mut v);
        m.remove("resourceVersion");
        m.remove("uid");
        m.remove("creationTimestamp");
        m.remove("generation");
        m.remove("managedFields");
        if t.rt.has_status
            && let Some(o) = v.as_object_mut()
        {
            o.remove("status");
        }
        if t.rt.kind == "Namespace" && t.rt.group.is_empty() {
            v["status"] = json!({"phase": "Active"});
        }
        st.prepare_new(&t.rt, &mut v, Some(&ns));
        let fields = fields_v1(&v);
        upsert_managed(
            &mut v,
            &r.manager(),
            "Update",
            &t.rt.api_version(),
            None,
            fields,
        );
        if dry {
            if Cluster::is_crd(&t.rt) {
                crate::state::fill_crd_status(&mut v);
            }
            (Stored::new(v), vec![])
        } else {
            let s = st.put(&t.rt, v);
            let ch = change(&t.rt, EventType::Added, None, &s.value, None);
            (s, vec![ch])
        }
    };
    c.after_api_changes(changes);
    Ok(one(&t.rt, &stored, r, 201))
}

/// Store `new` (already merged) over `old`, unless dry run; run hooks; answer.
fn commit(
    c: &Cluster,
    t: &Target,
    r: &Req,
    dry: bool,
    old: Option<Arc<Value>>,
    new: Value,
    code: u16,
) -> Res<Response<Body>> {
    let (stored, changes) = {
        let mut st = c.state();
        let name = meta_str(&new, "name").unwrap_or("").to_string();
        let ns = t.namespace.clone().unwrap_or_default();
        // Re-check under the lock: the object may have changed since it was read.
        let cur = st.get(&t.rt.key(), &ns, &name).map(|s| s.full());
        match (&old, &cur) {
            (Some(o), Some(cur))
                if meta_str(o, "resourceVersion") != meta_str(cur, "resourceVersion") =>
            {
                return Err(conflict(&t.rt, &name));
            }
            (Some(_), None) => return Err(not_found(&t.rt, &name)),
            (None, Some(_)) => {
                return Err(err_details(
                    409,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", t.rt.qualified_plural()),
                    details(&t.rt, &name),
                ));
            }
            _ => {}
        }
        if t.rt.namespaced && old.is_none() && !st.namespace_exists(&ns) {
            let nsrt = st.resolve("namespaces").expect("namespaces");
            return Err(not_found(&nsrt, &ns));
        }
        if dry {
            (Stored::new(new), vec![])
        } else {
            let s = st.put(&t.rt, new);
            let ev = if old.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            };
            let ch = change(&t.rt, ev, t.sub.as_deref(), &s.value, old.as_deref());
            (s, vec![ch])
        }
    };
    c.after_api_changes(changes);
    if t.sub.as_deref() == Some("scale") {
        return Ok(json_resp(code, &scale_of(&t.rt, &stored.value)));
    }
    Ok(one(&t.rt, &stored, r, code))
}

fn current(c: &Cluster, t: &Target) -> Option<Arc<Value>> {
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    c.state().get(&t.rt.key(), ns, name).map(|s| s.full())
}

fn update(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    let dry = r.dry_run()?;
    let name = t.name.clone().unwrap_or_default();
    let body = r.body_value()?;
    if t.sub.as_deref() == Some("scale") {
        let old = current(c, t).ok_or_else(|| not_found(&t.rt, &name))?;
        if let Some(rv) = meta_str(&body, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(conflict(&t.rt, &name));
        }
        let replicas = body.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
        let new = apply_scale(&t.rt, &old, replicas)?;
        return commit(c, t, r, dry, Some(old), new, 200);
    }
    check_type(&t.rt, &body)?;
    if let Some(n) = meta_str(&body, "name")
        && n != name
    {
        return Err(err(
            400,
            format!("the name of the object ({n}) does not match the name on the URL ({name})"),
        ));
    }
    let old = current(c, t).ok_or_else(|| not_found(&t.rt, &name))?;
    if let Some(rv) = meta_str(&body, "resourceVersion").filter(|s| !s.is_empty())
        && Some(rv) != meta_str(&old, "resourceVersion")
    {
        return Err(conflict(&t.rt, &name));
    }
    let mut new = merge_for_write(&t.rt, t.sub.as_deref(), &old, body);
    let fields = fields_v1(&new);
    upsert_managed(
        &mut new,
        &r.manager(),
        "Update",
        &t.rt.api_version(),
        t.sub.as_deref(),
        fields,
    );
    commit(c, t, r, dry, Some(old), new, 200)
}

fn scale_of(rt: &ResourceType, o: &Value) -> Value {
    let paths = rt.scale.clone().expect("scale");
    let spec = get_path(o, &paths.spec_replicas)
        .cloned()
        .unwrap_or(json!(1));
    let status = get_path(o, &paths.status_replicas)
        .cloned()
        .unwrap_or(json!(0));
    let selector = match &paths.label_selector {
        Some(p) => get_path(o, p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        None => o
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
    };
    let m = o.get("metadata").cloned().unwrap_or(json!({}));
    let mut meta = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta[k] = v.clone();
        }
    }
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": spec},
        "status": {"replicas": status, "selector": selector}
    })
}

fn apply_scale(rt: &ResourceType, old: &Value, replicas: Value) -> Res<Value> {
    if !replicas.is_i64() || replicas.as_i64().is_some_and(|n| n < 0) {
        let name = meta_str(old, "name").unwrap_or("");
        return Err(invalid(
            rt,
            name,
            "spec.replicas: Invalid value: must be greater than or equal to 0",
        ));
    }
    let paths = rt.scale.clone().expect("scale");
    let mut new = old.clone();
    set_path(&mut new, &paths.spec_replicas, replicas);
    if rt.tracks_generation() && old.get("spec") != new.get("spec") {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    Ok(new)
}

fn patch_value(r: &Req, rt: &ResourceType, target: &mut Value) -> Res<()> {
    let ct = r.content_type.split(';').next().unwrap_or("").trim();
    let name = meta_str(target, "name").unwrap_or("").to_string();
    match ct {
        "application/json-patch+json" => {
            let p: json_patch::Patch =
                serde_json::from_slice(&r.body).map_err(|e| err(400, e.to_string()))?;
            json_patch::patch(target, &p).map_err(|e| invalid(rt, &name, &e.to_string()))?;
        }
        "application/merge-patch+json" => {
            let p: Value = serde_json::from_slice(&r.body).map_err(|e| err(400, e.to_string()))?;
            json_patch::merge(target, &p);
        }
        "application/strategic-merge-patch+json" => {
            let p: Value = serde_json::from_slice(&r.body).map_err(|e| err(400, e.to_string()))?;
            strategic_merge(target, &p, true);
        }
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            let p = r.body_value_apply()?;
            strategic_merge(target, &p, true);
        }
        other => {
            return Err(err(
                415,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {other:?}"
                ),
            ));
        }
    }
    Ok(())
}

impl Req {
    fn body_value_apply(&self) -> Res<Value> {
        let s = std::str::from_utf8(&self.body).map_err(|e| err(400, e.to_string()))?;
        let v: Value = serde_json::from_str(s).or_else(|_| {
            serde_saphyr::from_str::<Value>(s)
                .map_err(|e| err(400, format!("error decoding YAML: {e}")))
        })?;
        if !v.is_object() {
            return Err(err(400, "the apply configuration must be an object"));
        }
        Ok(v)
    }

    fn is_apply(&self) -> bool {
        self.content_type.starts_with("application/apply-patch")
    }
}

fn patch(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    let dry = r.dry_run()?;
    let name = t.name.clone().unwrap_or_default();
    let apply = r.is_apply();
    let manager = r.param("fieldManager").map(String::from);
    if apply && manager.is_none() {
        return Err(invalid(
            &t.rt,
            &name,
            "metadata.managedFields.fieldManager: Required value: is required for apply patch",
        ));
    }
    let old = current(c, t);
    if t.sub.as_deref() == Some("scale") {
        let old = old.ok_or_else(|| not_found(&t.rt, &name))?;
        let mut scale = scale_of(&t.rt, &old);
        patch_value(r, &t.rt, &mut scale)?;
        if let Some(rv) = meta_str(&scale, "resourceVersion")
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(conflict(&t.rt, &name));
        }
        let new = apply_scale(
            &t.rt,
            &old,
            scale
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(json!(null)),
        )?;
        return commit(c, t, r, dry, Some(old), new, 200);
    }
    let Some(old) = old else {
        if !apply || t.sub.is_some() {
            return Err(not_found(&t.rt, &name));
        }
        // Apply creates a missing object.
        let mut v = r.body_value_apply()?;
        check_type(&t.rt, &v)?;
        if meta_str(&v, "name").is_some_and(|n| n != name) {
            return Err(err(
                400,
                format!("the name of the object does not match the name on the URL ({name})"),
            ));
        }
        metadata_mut(&mut v).insert("name".into(), json!(name));
        if t.rt.has_status
            && let Some(o) = v.as_object_mut()
        {
            o.remove("status");
        }
        let fields = fields_v1(&v);
        {
            let mut st = c.state();
            st.prepare_new(&t.rt, &mut v, t.namespace.as_deref());
        }
        upsert_managed(
            &mut v,
            manager.as_deref().unwrap_or(""),
            "Apply",
            &t.rt.api_version(),
            None,
            fields,
        );
        return commit(c, t, r, dry, None, v, 201);
    };
    let mut patched = (*old).clone();
    if apply {
        let body = r.body_value_apply()?;
        check_type(&t.rt, &body)?;
        // As the real server: fields another manager owns are not taken over without force=true.
        if r.param("force") != Some("true") {
            let conflicts =
                crate::patch::apply_conflicts(&old, &body, manager.as_deref().unwrap_or(""));
            if !conflicts.is_empty() {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| {
                        json!({"type": "FieldManagerConflict", "field": c.path,
                               "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version)})
                    })
                    .collect();
                let mut d = details(&t.rt, &name);
                d["causes"] = json!(causes);
                return Err(err_details(
                    409,
                    "Conflict",
                    crate::patch::conflict_message(&conflicts),
                    d,
                ));
            }
        }
    }
    patch_value(r, &t.rt, &mut patched)?;
    if meta_str(&patched, "resourceVersion") != meta_str(&old, "resourceVersion")
        && meta_str(&patched, "resourceVersion").is_some_and(|s| !s.is_empty())
    {
        return Err(conflict(&t.rt, &name));
    }
    let mut new = merge_for_write(&t.rt, t.sub.as_deref(), &old, patched);
    if apply {
        let fields = fields_v1(&r.body_value_apply()?);
        upsert_managed(
            &mut new,
            manager.as_deref().unwrap_or(""),
            "Apply",
            &t.rt.api_version(),
            t.sub.as_deref(),
            fields,
        );
    } else {
        let fields = json!({});
        upsert_managed(
            &mut new,
            &r.manager(),
            "Update",
            &t.rt.api_version(),
            t.sub.as_deref(),
            fields,
        );
    }
    commit(c, t, r, dry, Some(old), new, 200)
}

fn delete(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    let dry = r.dry_run()?;
    let name = t.name.clone().unwrap_or_default();
    let ns = t.namespace.clone().unwrap_or_default();
    let opts: Value = serde_json::from_slice(&r.body).unwrap_or(json!({}));
    let (stored, changes) = {
        let mut st = c.state();
        let cur = st
            .get(&t.rt.key(), &ns, &name)
            .cloned()
            .ok_or_else(|| not_found(&t.rt, &name))?;
        if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
            && Some(uid) != meta_str(&cur.value, "uid")
        {
            return Err(err_details(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&cur.value, "uid").unwrap_or("")
                ),
                details(&t.rt, &name),
            ));
        }
        if let Some(rv) = opts
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && Some(rv) != meta_str(&cur.value, "resourceVersion")
        {
            return Err(conflict(&t.rt, &name));
        }
        if dry {
            (cur, vec![])
        } else {
            let s = st.remove(&t.rt.key(), &ns, &name).expect("present");
            let ch = change(&t.rt, EventType::Deleted, None, &s.value, Some(&cur.full()));
            (s, vec![ch])
        }
    };
    c.after_api_changes(changes);
    Ok(one(&t.rt, &stored, r, 200))
}

fn delete_collection(c: &Cluster, t: &Target, r: &Req) -> Res<Response<Body>> {
    let dry = r.dry_run()?;
    let (l, f) = selectors(r)?;
    let (items, changes, rv) = {
        let mut st = c.state();
        let (items, _) = select_page(&st, &t.rt, t.namespace.as_deref(), None, 0, &l, &f);
        let mut out = Vec::new();
        let mut changes = Vec::new();
        for s in items {
            if dry {
                out.push(s);
                continue;
            }
            let ns = meta_str(&s.value, "namespace").unwrap_or("").to_string();
            let name = meta_str(&s.value, "name").unwrap_or("").to_string();
            if let Some(d) = st.remove(&t.rt.key(), &ns, &name) {
                changes.push(change(
                    &t.rt,
                    EventType::Deleted,
                    None,
                    &d.value,
                    Some(&s.full()),
                ));
                out.push(d);
            }
        }
        (out, changes, st.rv)
    };
    c.after_api_changes(changes);
    let body = json!({
        "kind": t.rt.list_kind, "apiVersion": t.rt.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items.iter().map(|s| (*s.full()).clone()).collect::<Vec<_>>()
    });
    Ok(json_resp(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&limit=5&watch");
        assert_eq!(q["labelSelector"], "app=web,tier in (a,b)");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["watch"], "");
        assert_eq!(pct_decode("100%"), "100%");
        assert_eq!(pct_decode("a%2"), "a%2");
    }

    #[test]
    fn continue_tokens_roundtrip() {
        let t = encode_continue(42, &("ns".into(), "a b".into()));
        assert_eq!(decode_continue(&t), Some((42, ("ns".into(), "a b".into()))));
        assert_eq!(decode_continue("zz"), None);
    }

    #[test]
    fn paths() {
        let mut v = json!({});
        set_path(&mut v, ".spec.replicas", json!(3));
        assert_eq!(get_path(&v, ".spec.replicas"), Some(&json!(3)));
    }
}
