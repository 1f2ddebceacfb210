//! The sidecar injector the harness plays instead of istiod.
//!
//! Under KWOK istiod's pods are fakes: nothing answers the injection webhooks istioctl and helm
//! create. So this module plays that part of istiod, and only that part:
//!
//! - an HTTPS admission webhook on 127.0.0.1 (a certificate made for the test by rcgen, its CA handed
//!   to the API server as `caBundle`) that answers AdmissionReview v1 for pods at `/inject/<rev>` as
//!   istiod of revision `<rev>` would: a JSONPatch adding the `istio-init` init container and the
//!   `istio-proxy` native sidecar (image `<hub>/proxyv2:<tag>`, the hub and tag of that revision's
//!   istiod image), istiod's volumes, the `sidecar.istio.io/status` annotation, the `istio.io/rev`
//!   annotation and the `security.istio.io/tlsMode` and `service.istio.io/canonical-*` labels, as the
//!   injection template of istio-discovery (files/injection-template.yaml) renders them. istiod puts
//!   the proxy in `initContainers` with `restartPolicy: Always` on nodes with Kubernetes 1.33 or newer
//!   (`ENABLE_NATIVE_SIDECARS=auto`, pkg/kube/inject/webhook.go `DetectNativeSidecar`), which is what
//!   the harness's nodes run;
//! - the caBundle patcher istiod runs: a loop that rewrites every Istio MutatingWebhookConfiguration
//!   (labelled `istio.io/rev`: the `istio-sidecar-injector[-REV]` ones istioctl and helm create, and
//!   `istio-revision-tag-*`) to call `https://127.0.0.1:PORT/inject/<its istio.io/rev>` with our CA,
//!   where the charts point them at the `istiod[-REV]` Service.
//!
//! The URL is where this differs from istiod, which only patches `caBundle`: `helm upgrade` of the
//! istiod chart patches the webhooks back to their Service (a three-way merge keeps the URL as well,
//! which the API server refuses: "exactly one of url or service is required"). A test that upgrades
//! istiod in place with helm calls [`Injector::hand_back`] first (the loop restores each webhook's
//! Service, as the chart rendered it, and stops) and [`Injector::take_over`] once helm is done.
//!
//! A revision whose istiod Deployment is gone gets a refusal, as a webhook without its istiod fails
//! (the charts' `failurePolicy: Fail`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ServiceReference};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::{Value, json};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The webhook and the caBundle loop, running until dropped.
pub struct Injector {
    port: u16,
    ca_pem: String,
    injected: Arc<AtomicU64>,
    /// Whether the loop points the webhooks at the injector (else it restores their Services).
    pointing: Arc<AtomicBool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Injector {
    /// Starts the webhook on 127.0.0.1 and the loop pointing every Istio webhook configuration of the
    /// cluster behind `kubeconfig` (its current context) at it.
    pub fn start(kubeconfig: &Path) -> Injector {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("injector")
            .enable_all()
            .build()
            .expect("injector runtime");
        let (ca_pem, tls) = certificates();
        let client = runtime.block_on(client(kubeconfig));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the injector");
        let port = listener.local_addr().expect("injector address").port();
        let injected = Arc::new(AtomicU64::new(0));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let served = Served {
            client: client.clone(),
            injected: injected.clone(),
        };
        runtime.spawn(serve(listener, acceptor, served));
        let pointing = Arc::new(AtomicBool::new(true));
        runtime.spawn(patch_webhooks(
            client,
            port,
            ca_pem.clone().into_bytes(),
            pointing.clone(),
        ));
        Injector {
            port,
            ca_pem,
            injected,
            pointing,
            runtime: Some(runtime),
        }
    }

    /// The URL a webhook of revision `rev` is pointed at.
    pub fn url(&self, rev: &str) -> String {
        format!("https://127.0.0.1:{}/inject/{rev}", self.port)
    }

    /// The CA of its serving certificate (PEM): what the webhooks' caBundle holds.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Hands the webhooks back to the Services the charts named (as helm's next upgrade expects
    /// them) and stops pointing them at the injector; returns once every Istio webhook names its
    /// Service again. Pods created meanwhile are refused, as with an unreachable istiod.
    pub fn hand_back(&self, kubeconfig: &Path) {
        self.pointing.store(false, Ordering::SeqCst);
        let runtime = self.runtime.as_ref().expect("injector runtime");
        runtime.block_on(async {
            let api: Api<MutatingWebhookConfiguration> = Api::all(client(kubeconfig).await);
            let lp = ListParams::default().labels("istio.io/rev");
            for _ in 0..150 {
                let list = api.list(&lp).await.expect("list webhooks");
                let all_services = list.items.iter().all(|mwc| {
                    mwc.webhooks
                        .iter()
                        .flatten()
                        .all(|w| w.client_config.url.is_none() && w.client_config.service.is_some())
                });
                if all_services {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("the injector did not hand the webhooks back to their Services in 30 s");
        });
    }

    /// Points the webhooks at the injector again (after [`Injector::hand_back`]).
    pub fn take_over(&self) {
        self.pointing.store(true, Ordering::SeqCst);
    }

    /// How many pods it has injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn client(kubeconfig: &Path) -> Client {
    let config = Kubeconfig::read_from(kubeconfig).expect("read the harness kubeconfig");
    let config = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .expect("client config for the injector");
    Client::try_from(config).expect("client for the injector")
}

/// A CA and a server certificate for 127.0.0.1 signed by it: the CA's PEM (the webhooks' caBundle)
/// and the server's TLS configuration.
fn certificates() -> (String, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "meshup test injector CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "istiod (played by the test)");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).expect("server certificate");

    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .expect("TLS configuration");
    (ca_cert.pem(), tls)
}

#[derive(Clone)]
struct Served {
    client: Client,
    injected: Arc<AtomicU64>,
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    served: Served,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let served = served.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let served = served.clone();
                async move { Ok::<_, Infallible>(answer(req, &served).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn answer(req: Request<Incoming>, served: &Served) -> Response<Full<Bytes>> {
    let Some(rev) = req
        .uri()
        .path()
        .strip_prefix("/inject/")
        .map(str::to_string)
    else {
        return reply(
            StatusCode::NOT_FOUND,
            json!({"error": "not an injection path"}),
        );
    };
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    };
    let review: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    };
    let request = &review["request"];
    let uid = request["uid"].clone();
    let response = match proxy_image(&served.client, &rev).await {
        Err(message) => json!({"uid": uid, "allowed": false,
            "status": {"code": 500, "message": message}}),
        Ok(image) => match injection_patch(&request["object"], &rev, &image) {
            None => json!({"uid": uid, "allowed": true}),
            Some(patch) => {
                if request["dryRun"] != json!(true) {
                    served.injected.fetch_add(1, Ordering::SeqCst);
                }
                json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
                    "patch": BASE64.encode(patch.to_string())})
            }
        },
    };
    reply(
        StatusCode::OK,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}

/// `<hub>/proxyv2:<tag>` of the revision's istiod image (`docker.io/istio/pilot:1.30.4` →
/// `docker.io/istio/proxyv2:1.30.4`), as the charts derive both from one `hub` and `tag`.
async fn proxy_image(client: &Client, rev: &str) -> Result<String, String> {
    let deployments: Api<Deployment> = Api::all(client.clone());
    let selector = format!("app=istiod,istio.io/rev={rev}");
    let list = deployments
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("istiod of revision {rev}: {e}"))?;
    let image = list
        .items
        .iter()
        .filter(|d| d.metadata.deletion_timestamp.is_none())
        .filter_map(|d| d.spec.template.spec.as_ref())
        .flat_map(|spec| spec.containers.iter())
        .find(|c| c.name == "discovery")
        .and_then(|c| c.image.clone())
        .ok_or_else(|| format!("no istiod of revision {rev} is installed"))?;
    proxy_of_pilot(&image).ok_or_else(|| format!("istiod image {image} has no tag"))
}

fn proxy_of_pilot(pilot: &str) -> Option<String> {
    let (repository, tag) = pilot
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))?;
    let hub = repository.rsplit_once('/').map_or("", |(hub, _)| hub);
    Some(if hub.is_empty() {
        format!("proxyv2:{tag}")
    } else {
        format!("{hub}/proxyv2:{tag}")
    })
}

/// A JSON pointer segment (RFC 6901).
fn pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The JSONPatch istiod's injector would return for `pod`, or `None` when it leaves the pod alone
/// (already injected, or opted out with `sidecar.istio.io/inject: "false"`).
pub fn injection_patch(pod: &Value, rev: &str, proxy_image: &str) -> Option<Value> {
    let meta = &pod["metadata"];
    let labels = meta["labels"].as_object().cloned().unwrap_or_default();
    let annotations = meta["annotations"].as_object().cloned().unwrap_or_default();
    if annotations.contains_key("sidecar.istio.io/status")
        || labels.get("sidecar.istio.io/inject") == Some(&json!("false"))
        || annotations.get("sidecar.istio.io/inject") == Some(&json!("false"))
    {
        return None;
    }
    let string = |map: &serde_json::Map<String, Value>, key: &str| {
        map.get(key).and_then(Value::as_str).map(str::to_string)
    };
    // DeploymentMeta.Name: the ReplicaSet's name without its pod-template-hash, else the pod's.
    let workload = meta["ownerReferences"]
        .as_array()
        .and_then(|owners| owners.first())
        .and_then(|o| o["name"].as_str())
        .map(|rs| match string(&labels, "pod-template-hash") {
            Some(hash) => rs
                .strip_suffix(&format!("-{hash}"))
                .unwrap_or(rs)
                .to_string(),
            None => rs.to_string(),
        })
        .or_else(|| meta["name"].as_str().map(str::to_string))
        .unwrap_or_default();
    let canonical_name = string(&labels, "service.istio.io/canonical-name")
        .or_else(|| string(&labels, "app.kubernetes.io/name"))
        .or_else(|| string(&labels, "app"))
        .unwrap_or(workload);
    let canonical_revision = string(&labels, "service.istio.io/canonical-revision")
        .or_else(|| string(&labels, "app.kubernetes.io/version"))
        .or_else(|| string(&labels, "version"))
        .unwrap_or_else(|| "latest".to_string());
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .filter(|n| *n != "istio-proxy")
        .map(str::to_string)
        .collect();

    // The `gateway` template (the gateway chart's pods: an `istio-proxy` container with image `auto`)
    // fills in that container instead of adding a sidecar.
    let gateway_proxy = pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().position(|c| c["name"] == "istio-proxy"));
    let mut new_labels = BTreeMap::new();
    if gateway_proxy.is_none() {
        new_labels.insert("security.istio.io/tlsMode", "istio".to_string());
    }
    new_labels.insert("service.istio.io/canonical-name", canonical_name);
    new_labels.insert("service.istio.io/canonical-revision", canonical_revision);
    let volumes = [
        "workload-socket",
        "credential-socket",
        "workload-certs",
        "istio-envoy",
        "istio-data",
        "istio-podinfo",
        "istio-token",
        "istiod-ca-cert",
    ];
    let (status_init, status_containers) = match gateway_proxy {
        Some(_) => (json!(null), json!(["istio-proxy"])),
        None => (json!(["istio-init", "istio-proxy"]), json!(null)),
    };
    let status = json!({
        "initContainers": status_init,
        "containers": status_containers,
        "volumes": volumes,
        "imagePullSecrets": null,
        "revision": rev,
    });
    let mut new_annotations = BTreeMap::new();
    new_annotations.insert("istio.io/rev", rev.to_string());
    if let Some(first) = containers.first() {
        new_annotations.insert("kubectl.kubernetes.io/default-container", first.clone());
        new_annotations.insert(
            "kubectl.kubernetes.io/default-logs-container",
            first.clone(),
        );
    }
    new_annotations.insert("sidecar.istio.io/status", status.to_string());

    let mut ops = Vec::new();
    for (field, present, new) in [
        ("labels", !meta["labels"].is_null(), &new_labels),
        (
            "annotations",
            !meta["annotations"].is_null(),
            &new_annotations,
        ),
    ] {
        if !present {
            ops.push(json!({"op": "add", "path": format!("/metadata/{field}"), "value": {}}));
        }
        for (key, value) in new {
            ops.push(json!({"op": "add",
                "path": format!("/metadata/{field}/{}", pointer(key)), "value": value}));
        }
    }
    if let Some(i) = gateway_proxy {
        ops.push(json!({"op": "replace", "path": format!("/spec/containers/{i}/image"), "value": proxy_image}));
        return Some(Value::Array(ops));
    }
    let init = [
        json!({
            "name": "istio-init",
            "image": proxy_image,
            "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                     "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"],
            "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                                "privileged": false, "readOnlyRootFilesystem": false, "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0},
        }),
        json!({
            "name": "istio-proxy",
            "image": proxy_image,
            "restartPolicy": "Always",
            "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                     "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
            "env": [
                {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
                {"name": "CA_ADDR", "value": format!("istiod-{rev}.istio-system.svc:15012")},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "ISTIO_META_APP_CONTAINERS", "value": containers.join(",")},
            ],
            "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 15,
                               "timeoutSeconds": 3, "failureThreshold": 4},
            "startupProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 1,
                             "timeoutSeconds": 3, "failureThreshold": 600},
            "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "privileged": false,
                                "readOnlyRootFilesystem": true, "runAsGroup": 1337, "runAsNonRoot": true, "runAsUser": 1337},
            "volumeMounts": [
                {"mountPath": "/var/run/secrets/workload-spiffe-uds", "name": "workload-socket"},
                {"mountPath": "/var/run/secrets/credential-uds", "name": "credential-socket"},
                {"mountPath": "/var/run/secrets/workload-spiffe-credentials", "name": "workload-certs"},
                {"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"},
                {"mountPath": "/var/lib/istio/data", "name": "istio-data"},
                {"mountPath": "/etc/istio/proxy", "name": "istio-envoy"},
                {"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
                {"mountPath": "/etc/istio/pod", "name": "istio-podinfo"},
            ],
        }),
    ];
    let volume_specs = [
        json!({"name": "workload-socket", "emptyDir": {}}),
        json!({"name": "credential-socket", "emptyDir": {}}),
        json!({"name": "workload-certs", "emptyDir": {}}),
        json!({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "istio-data", "emptyDir": {}}),
        json!({"name": "istio-podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}}),
        json!({"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}}),
        json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}),
    ];
    for (field, items) in [
        ("initContainers", &init[..]),
        ("volumes", &volume_specs[..]),
    ] {
        if pod["spec"][field].as_array().is_none() {
            ops.push(json!({"op": "add", "path": format!("/spec/{field}"), "value": []}));
        }
        for item in items {
            ops.push(json!({"op": "add", "path": format!("/spec/{field}/-"), "value": item}));
        }
    }
    Some(Value::Array(ops))
}

/// Every Istio webhook configuration, pointed at the injector: what istiod's webhook controller does
/// for its caBundle, here for the URL as well. Runs until the runtime stops.
async fn patch_webhooks(client: Client, port: u16, ca_pem: Vec<u8>, pointing: Arc<AtomicBool>) {
    let ca = k8s_openapi::ByteString(ca_pem);
    let api: Api<MutatingWebhookConfiguration> = Api::all(client);
    let lp = ListParams::default().labels("istio.io/rev");
    // The Service each webhook named before it was pointed here, by (configuration, webhook).
    let services: Mutex<BTreeMap<(String, String), ServiceReference>> = Mutex::new(BTreeMap::new());
    loop {
        if !pointing.load(Ordering::SeqCst) {
            if let Ok(list) = api.list(&lp).await {
                for mut mwc in list.items {
                    let name = mwc.metadata.name.clone().unwrap_or_default();
                    let mut changed = false;
                    for hook in mwc.webhooks.iter_mut().flatten() {
                        let saved = services
                            .lock()
                            .expect("services")
                            .get(&(name.clone(), hook.name.clone()))
                            .cloned();
                        if let Some(service) = saved
                            && hook.client_config.url.is_some()
                        {
                            hook.client_config.url = None;
                            hook.client_config.service = Some(service);
                            changed = true;
                        }
                    }
                    if changed {
                        let _ = api.replace(&name, &PostParams::default(), &mwc).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if let Ok(list) = api.list(&lp).await {
            for mut mwc in list.items {
                let rev = mwc
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("istio.io/rev"))
                    .cloned()
                    .unwrap_or_else(|| "default".to_string());
                let url = format!("https://127.0.0.1:{port}/inject/{rev}");
                let mut changed = false;
                let mwc_name = mwc.metadata.name.clone().unwrap_or_default();
                for hook in mwc.webhooks.iter_mut().flatten() {
                    if let Some(service) = &hook.client_config.service {
                        services
                            .lock()
                            .expect("services")
                            .insert((mwc_name.clone(), hook.name.clone()), service.clone());
                    }
                    let config = &mut hook.client_config;
                    if config.url.as_deref() != Some(url.as_str())
                        || config.service.is_some()
                        || config.ca_bundle.as_ref() != Some(&ca)
                    {
                        config.url = Some(url.clone());
                        config.service = None;
                        config.ca_bundle = Some(ca.clone());
                        changed = true;
                    }
                }
                if changed {
                    let name = mwc.metadata.name.clone().unwrap_or_default();
                    // A conflict (istioctl or helm wrote it meanwhile) is retried on the next turn.
                    let _ = api.replace(&name, &PostParams::default(), &mwc).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_pod_gets_istiods_native_sidecar_labels_and_status() {
        let pod = json!({
            "metadata": {"generateName": "reviews-v1-5d8f7c9b-", "namespace": "bookinfo",
                "labels": {"app": "reviews", "version": "v1", "pod-template-hash": "5d8f7c9b"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "reviews-v1-5d8f7c9b", "controller": true}]},
            "spec": {"containers": [{"name": "reviews", "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.20.2"}]}
        });
        let patch = injection_patch(&pod, "1-30-4", "docker.io/istio/proxyv2:1.30.4").unwrap();
        let mut patched = pod.clone();
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
        let labels = &patched["metadata"]["labels"];
        assert_eq!(labels["service.istio.io/canonical-name"], "reviews");
        assert_eq!(labels["service.istio.io/canonical-revision"], "v1");
        assert_eq!(labels["security.istio.io/tlsMode"], "istio");
        let annotations = &patched["metadata"]["annotations"];
        assert_eq!(annotations["istio.io/rev"], "1-30-4");
        let status: Value =
            serde_json::from_str(annotations["sidecar.istio.io/status"].as_str().unwrap()).unwrap();
        assert_eq!(status["revision"], "1-30-4");
        let init = patched["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(init[1]["name"], "istio-proxy");
        assert_eq!(init[1]["image"], "docker.io/istio/proxyv2:1.30.4");
        assert_eq!(init[1]["restartPolicy"], "Always");
        assert_eq!(patched["spec"]["volumes"].as_array().unwrap().len(), 8);
        // Injected once: the injector leaves an injected pod alone.
        assert!(injection_patch(&patched, "1-30-4", "docker.io/istio/proxyv2:1.30.4").is_none());
    }

    #[test]
    fn a_gateway_pod_gets_its_auto_image_filled_in() {
        let pod = json!({
            "metadata": {"generateName": "istio-ingressgateway-6c9d8b7f5-", "annotations": {"inject.istio.io/templates": "gateway"},
                "labels": {"app": "istio-ingressgateway", "istio": "ingressgateway", "sidecar.istio.io/inject": "true"}},
            "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}
        });
        let patch = injection_patch(&pod, "default", "docker.io/istio/proxyv2:1.30.4").unwrap();
        let mut patched = pod.clone();
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(
            patched["spec"]["containers"][0]["image"],
            "docker.io/istio/proxyv2:1.30.4"
        );
        assert!(patched["spec"]["initContainers"].is_null());
        assert_eq!(
            patched["metadata"]["labels"]["service.istio.io/canonical-name"],
            "istio-ingressgateway"
        );
        assert!(patched["metadata"]["annotations"]["sidecar.istio.io/status"].is_string());
    }

    /// Against the fake API server (no real binaries needed): the loop points a webhook configuration
    /// as the istiod chart renders it at the injector with its CA, and the injector answers an
    /// AdmissionReview over TLS verified with that CA.
    #[test]
    fn the_injector_patches_webhooks_and_answers_admission_reviews_over_tls() {
        let server = fake_apiserver::FakeApiServer::start();
        server
            .seed_yaml(
                r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod-1-30-4
  namespace: istio-system
  labels: {app: istiod, istio.io/rev: 1-30-4}
spec:
  selector: {matchLabels: {app: istiod, istio.io/rev: 1-30-4}}
  template:
    metadata: {labels: {app: istiod, istio.io/rev: 1-30-4}}
    spec:
      containers: [{name: discovery, image: "docker.io/istio/pilot:1.30.4"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: istio-sidecar-injector-1-30-4
  labels: {istio.io/rev: 1-30-4, app: sidecar-injector}
webhooks:
- name: rev.namespace.sidecar-injector.istio.io
  clientConfig:
    service: {name: istiod-1-30-4, namespace: istio-system, path: /inject, port: 443}
  sideEffects: None
  admissionReviewVersions: [v1]
"#,
            )
            .unwrap();
        let injector = Injector::start(server.kubeconfig_path());
        let url = injector.url("1-30-4");
        let start = std::time::Instant::now();
        loop {
            let mwc = server
                .get(
                    "mutatingwebhookconfigurations",
                    "",
                    "istio-sidecar-injector-1-30-4",
                )
                .unwrap();
            let config = &mwc["webhooks"][0]["clientConfig"];
            if config["url"] == url.as_str() {
                assert!(config["service"].is_null(), "{config}");
                let ca = BASE64.decode(config["caBundle"].as_str().unwrap()).unwrap();
                assert_eq!(ca, injector.ca_pem().as_bytes());
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{mwc:#}");
            std::thread::sleep(Duration::from_millis(100));
        }

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), injector.ca_pem()).unwrap();
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "4b1c", "operation": "CREATE", "namespace": "bookinfo",
                "object": {"metadata": {"generateName": "ratings-v1-7c9d-", "labels": {"app": "ratings"}},
                           "spec": {"containers": [{"name": "ratings", "image": "ratings:1"}]}}}});
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(dir.path().join("ca.pem"))
            .args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &review.to_string(),
                &url,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        let response = &answer["response"];
        assert_eq!(response["uid"], "4b1c");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        let patch: Value =
            serde_json::from_slice(&BASE64.decode(response["patch"].as_str().unwrap()).unwrap())
                .unwrap();
        assert!(
            patch.to_string().contains("docker.io/istio/proxyv2:1.30.4"),
            "{patch}"
        );
        assert_eq!(injector.injected(), 1);

        // A revision without istiod is refused, as a webhook whose istiod is gone fails.
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail", "--cacert"])
            .arg(dir.path().join("ca.pem"))
            .args(["-d", &review.to_string(), &injector.url("1-29-0")])
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(
            answer["response"]["status"]["message"],
            "no istiod of revision 1-29-0 is installed"
        );
    }

    #[test]
    fn the_proxy_image_follows_istiods_hub_and_tag() {
        assert_eq!(
            proxy_of_pilot("docker.io/istio/pilot:1.30.4").as_deref(),
            Some("docker.io/istio/proxyv2:1.30.4")
        );
        assert_eq!(
            proxy_of_pilot("localhost:5000/istio/pilot:1.31.0-distroless").as_deref(),
            Some("localhost:5000/istio/proxyv2:1.31.0-distroless")
        );
        assert_eq!(proxy_of_pilot("localhost:5000/istio/pilot"), None);
    }
}
