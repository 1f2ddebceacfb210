//! The fake API server driven by kube-rs 5, as the plugin will use it.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, Fault};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Discovery;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use serde_json::{Value, json};

use crate::CRD;

async fn config(server: &FakeApiServer) -> Config {
    let kc = Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let opts = KubeConfigOptions {
        context: Some(server.context().to_string()),
        ..Default::default()
    };
    Config::from_custom_kubeconfig(kc, &opts).await.unwrap()
}

async fn client(server: &FakeApiServer) -> Client {
    Client::try_from(config(server).await).unwrap()
}

/// A client without kube-rs's default retries of 429/503/504.
async fn client_no_retry(server: &FakeApiServer) -> Client {
    let mut cfg = config(server).await;
    cfg.default_retry = false;
    Client::try_from(cfg).unwrap()
}

fn api_err(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// One raw HTTP/1.1 GET: (status line, headers, body). `None` if the connection closed without
/// an answer.
fn raw_get(server: &FakeApiServer, path: &str) -> Option<(String, String, String)> {
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    if out.is_empty() {
        return None;
    }
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Some((status.into(), headers.into(), body.into()))
}

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"}
    }))
    .unwrap()
}

fn deployment(ns: &str, name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "img:1"}]}}
        }
    })
}

#[tokio::test]
async fn version_from_kubeconfig() {
    let server = FakeApiServer::start();
    let c = client(&server).await;
    let info = c.apiserver_version().await.unwrap();
    assert_eq!(info.git_version, "v1.29.6-eks-db838b0");
    assert_eq!(info.major, "1");
    assert_eq!(info.minor, "29+");
    assert_eq!(info.platform, "linux/amd64");
    server.set_server_version("v1.31.2");
    assert_eq!(c.apiserver_version().await.unwrap().minor, "31");
    assert_eq!(
        raw_get(&server, "/healthz").unwrap().2,
        "ok",
        "healthz answers ok"
    );
}

#[tokio::test]
async fn create_get_conflicts_and_delete() {
    let server = FakeApiServer::start();
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let created = api
        .create(&PostParams::default(), &cm("a", json!({"x": "1"})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| !u.is_empty()));
    assert!(meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv1 > 0);

    let dup = api_err(
        api.create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"a\" already exists");

    // Update with the current resourceVersion works and bumps it; the stale one conflicts.
    let mut upd = created.clone();
    upd.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = api
        .replace("a", &PostParams::default(), &upd)
        .await
        .unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    let stale = api_err(
        api.replace("a", &PostParams::default(), &upd)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(stale.message.contains("the object has been modified"));

    // Missing namespace: 404 for the namespace, as the real server's admission says.
    let nowhere: Api<ConfigMap> = Api::namespaced(client(&server).await, "nowhere");
    let e = api_err(
        nowhere
            .create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
    assert_eq!(e.message, "namespaces \"nowhere\" not found");

    // generateName.
    let mut g = cm("", json!({}));
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let made = api.create(&PostParams::default(), &g).await.unwrap();
    let gen_name = made.metadata.name.unwrap();
    assert!(
        gen_name.starts_with("gen-") && gen_name.len() == 9,
        "{gen_name}"
    );
    api.delete(&gen_name, &DeleteParams::default())
        .await
        .unwrap();

    let deleted = api.delete("a", &DeleteParams::default()).await.unwrap();
    let obj = deleted.left().expect("the deleted object");
    assert_eq!(obj.data.unwrap()["k"], "v2");
    let gone = api_err(api.get("a").await.unwrap_err());
    assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));
    assert!(api.get_opt("a").await.unwrap().is_none());
    assert_eq!(server.count("configmaps", "default"), 0);
}

#[tokio::test]
async fn patches_merge_json_strategic_and_apply() {
    let server = FakeApiServer::start();
    let c = client(&server).await;
    let api: Api<Deployment> = Api::namespaced(c, "default");
    // Server-side apply creates the missing object.
    let pp = PatchParams::apply("meshup-test");
    let d = api
        .patch("web", &pp, &Patch::Apply(deployment("default", "web", 2)))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let mf = d.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("meshup-test"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    // A label change (merge patch) does not bump generation; a spec change does.
    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert_eq!(d.metadata.labels.unwrap()["tier"], "front");
    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(3));
    assert_eq!(d.metadata.generation, Some(2));

    // Strategic merge: containers merge by name.
    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "img:2"}, {"name": "sidecar", "image": "proxy:1"}
            ]}}}})),
        )
        .await
        .unwrap();
    let containers = d.spec.template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].image.as_deref(), Some("img:2"));
    assert_eq!(d.metadata.generation, Some(3));

    // Apply again by another manager: one managedFields entry per manager.
    let d = api
        .patch(
            "web",
            &PatchParams::apply("other").force(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["meshup-test", "other"]);

    // Apply without a field manager is rejected.
    let e = api_err(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);

    // JSON patch `test` failure is an error; a merge patch on a missing object is 404.
    let e = api_err(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "test", "path": "/spec/replicas", "value": 99}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    let e = api_err(
        api.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let server = FakeApiServer::start();
    server.seed(deployment("default", "web", 2)).unwrap();
    server.complete_rollout("deploy", "default", "web").unwrap();
    let api: Api<Deployment> = Api::namespaced(client(&server).await, "default");

    // Main-resource writes keep the old status.
    let mut d = api.get("web").await.unwrap();
    assert_eq!(d.status.as_ref().unwrap().ready_replicas, Some(2));
    d.status = None;
    let d = api
        .replace("web", &PostParams::default(), &d)
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().ready_replicas, Some(2));

    // Status writes touch only status.
    let d = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"readyReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(2));
    assert_eq!(d.status.unwrap().ready_replicas, Some(1));
    assert_eq!(d.metadata.generation, Some(1));

    // Scale.
    let s = api.get_scale("web").await.unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(2));
    assert_eq!(s.status.as_ref().unwrap().replicas, 2);
    assert_eq!(s.status.unwrap().selector.as_deref(), Some("app=web"));
    let s = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(5));
    let d = server.get_as::<Deployment>("default", "web").unwrap();
    assert_eq!(d.spec.replicas, Some(5));
    assert_eq!(d.metadata.generation, Some(2));

    // DaemonSets have no /scale.
    server
        .seed(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "ds", "namespace": "default"}, "spec": {}}))
        .unwrap();
    let ds: Api<DaemonSet> = Api::namespaced(client(&server).await, "default");
    assert_eq!(api_err(ds.get_scale("ds").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn paging_and_selectors_with_metadata_lists() {
    let server = FakeApiServer::start();
    for ns in ["a", "b", "c"] {
        server
            .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
        for i in 0..9 {
            server
                .seed(json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("p{i}"), "namespace": ns,
                        "labels": {"app": if i % 3 == 0 { "web" } else { "db" }, "idx": i.to_string()}},
                    "spec": {"nodeName": format!("node-{}", i % 2)},
                    "status": {"phase": "Running"}}))
                .unwrap();
        }
    }
    let c = client(&server).await;
    let all: Api<Pod> = Api::all(c.clone());

    // Metadata-only pages of 10 over 27 pods.
    let mut names = Vec::new();
    let mut pages = 0;
    let mut lp = ListParams::default().limit(10);
    loop {
        let page = all.list_metadata(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        for p in &page.items {
            assert_eq!(p.types.as_ref().unwrap().kind, "PartialObjectMetadata");
            names.push(format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap(),
                p.metadata.name.as_deref().unwrap()
            ));
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(tok) => lp = lp.continue_token(&tok),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 27);
    let mut sorted = names.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 27);

    // Full lists carry kind/apiVersion on every item (checked on the raw body).
    let (_, _, body) = raw_get(&server, "/api/v1/namespaces/b/pods?limit=2").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "PodList");
    assert_eq!(v["items"][0]["kind"], "Pod");
    assert_eq!(v["items"][0]["apiVersion"], "v1");
    assert!(v["metadata"]["continue"].as_str().is_some());

    let count = |lp: ListParams| {
        let all = all.clone();
        async move { all.list(&lp).await.unwrap().items.len() }
    };
    assert_eq!(count(ListParams::default().labels("app=web")).await, 9);
    assert_eq!(count(ListParams::default().labels("app==web")).await, 9);
    assert_eq!(count(ListParams::default().labels("app!=web")).await, 18);
    assert_eq!(count(ListParams::default().labels("idx in (1,2)")).await, 6);
    assert_eq!(
        count(ListParams::default().labels("idx notin (1,2),app=db")).await,
        12
    );
    assert_eq!(count(ListParams::default().labels("idx")).await, 27);
    assert_eq!(count(ListParams::default().labels("!idx")).await, 0);
    assert_eq!(
        count(ListParams::default().fields("metadata.name=p4")).await,
        3
    );
    assert_eq!(
        count(ListParams::default().fields("metadata.namespace=c,metadata.name!=p4")).await,
        8
    );
    assert_eq!(
        count(ListParams::default().fields("spec.nodeName=node-1")).await,
        12
    );
    let in_b: Api<Pod> = Api::namespaced(c.clone(), "b");
    let l = in_b
        .list(&ListParams::default().labels("app=web").limit(2))
        .await
        .unwrap();
    assert_eq!(l.items.len(), 2);
    let l2 = in_b
        .list(
            &ListParams::default()
                .labels("app=web")
                .continue_token(l.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(l2.items.len(), 1);
    assert!(l2.metadata.continue_.is_none_or(|c| c.is_empty()));
    let e = api_err(
        all.list(&ListParams::default().labels("app in web"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);

    // An expired continue token: 410 Expired with the real server's message.
    let id = server.inject(Fault::expired_continue().on("/api/v1/pods").times(1));
    let first = all.list(&ListParams::default().limit(5)).await.unwrap();
    let tok = first.metadata.continue_.unwrap();
    let e = api_err(
        all.list(&ListParams::default().limit(5).continue_token(&tok))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
    assert!(e.message.contains("continue parameter is too old"));
    assert_eq!(server.fault_hits(id), 1);
    // The next continuation works again.
    let next = all
        .list(&ListParams::default().limit(5).continue_token(&tok))
        .await
        .unwrap();
    assert_eq!(next.items.len(), 5);

    // Single metadata get.
    let m = in_b.get_metadata("p1").await.unwrap();
    assert_eq!(m.metadata.labels.unwrap()["app"], "db");
}

#[tokio::test]
async fn delete_collection_and_dry_run_store_nothing() {
    let server = FakeApiServer::start();
    let c = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "y")] {
        api.create(&PostParams::default(), &cm(n, json!({"grp": l})))
            .await
            .unwrap();
    }
    server.clear_requests();

    // Dry runs: answered as if done, nothing stored, and the request log shows only dry runs.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let made = api.create(&dry, &cm("d", json!({}))).await.unwrap();
    assert_eq!(made.metadata.name.as_deref(), Some("d"));
    // Forced: `k` belongs to the manager that created `a`, and the real server refuses to take
    // another manager's field without force (a 409 Conflict).
    api.patch(
        "a",
        &PatchParams::apply("m").force().dry_run(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    api.patch(
        "new",
        &PatchParams::apply("m").dry_run(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "new"}})),
    )
    .await
    .unwrap();
    api.delete("b", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    api.delete_collection(&DeleteParams::default().dry_run(), &ListParams::default())
        .await
        .unwrap();
    assert_eq!(server.count("cm", "default"), 3);
    assert_eq!(server.get("cm", "default", "a").unwrap()["data"]["k"], "v");
    assert!(server.get("cm", "default", "new").is_none());
    let reqs = server.requests();
    assert_eq!(reqs.len(), 5);
    assert!(reqs.iter().all(|r| r.is_write() && r.is_dry_run()));
    // kube-rs sends dryRun in the query for create/patch and in the DeleteOptions body for deletes.
    assert_eq!(
        reqs.iter()
            .filter(|r| r.param("dryRun").as_deref() == Some("All"))
            .count(),
        3
    );
    assert!(server.mutating_requests().is_empty());

    // Real deletecollection with a label selector.
    let out = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("grp=x"),
        )
        .await
        .unwrap();
    let names: Vec<String> = out
        .left()
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(server.count("cm", "default"), 1);
    assert_eq!(server.mutating_requests().len(), 1);
    assert_eq!(server.mutating_requests()[0].method, "DELETE");
}

#[tokio::test]
async fn crds_discovery_dynamic_objects_and_await_established() {
    let server = FakeApiServer::start();
    let c = client(&server).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd: CustomResourceDefinition = serde_saphyr::from_str(CRD).unwrap();

    let d = Discovery::new(c.clone()).run().await.unwrap();
    assert!(!d.has_group("example.com"));

    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(
            crds.clone(),
            "widgets.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let conds = established.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "NamesAccepted" && c.status == "True")
    );

    let d = Discovery::new(c.clone()).run().await.unwrap();
    assert!(d.has_group("example.com"));
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let (ar, caps) = d.resolve_gvk(&gvk).unwrap();
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
    let d2 = Discovery::new(c.clone())
        .filter(&["apps"])
        .run()
        .await
        .unwrap();
    let apps = d2.get("apps").unwrap();
    let (dep, dcaps) = apps.recommended_kind("Deployment").unwrap();
    assert_eq!(dep.plural, "deployments");
    assert!(dcaps.subresources.iter().any(|(s, _)| s.plural == "scale"));

    let widgets: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let mut w = DynamicObject::new("w1", &ar).within("default");
    w.data = json!({"spec": {"size": 3}});
    let made = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(made.metadata.generation, Some(1));
    let patched = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(patched.data["spec"]["size"], 4);
    assert_eq!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Deleting the CRD stops serving the group and removes its objects.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let d = Discovery::new(c.clone()).run().await.unwrap();
    assert!(!d.has_group("example.com"));
    assert_eq!(api_err(widgets.get("w1").await.unwrap_err()).code, 404);
    assert!(!server.serves("widgets.example.com"));

    // pinned_kind finds a built-in without listing all groups.
    let (ar, _) =
        kube::discovery::pinned_kind(&c, &GroupVersionKind::gvk("apps", "v1", "DaemonSet"))
            .await
            .unwrap();
    assert_eq!(ar.plural, "daemonsets");
    let _ = ApiResource::erase::<Namespace>(&());
}

#[tokio::test]
async fn await_deployment_rollout_played_by_the_test_and_by_auto_rollout() {
    let server = FakeApiServer::start();
    server.seed(deployment("default", "web", 3)).unwrap();
    let api: Api<Deployment> = Api::namespaced(client(&server).await, "default");
    let cluster = server.cluster();
    let player = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cluster
            .complete_rollout("deployments", "default", "web")
            .unwrap();
    });
    let t0 = Instant::now();
    let done = tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(api.clone(), "web", conditions::is_deployment_completed()),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(150));
    assert_eq!(done.status.unwrap().available_replicas, Some(3));
    player.await.unwrap();

    let server = FakeApiServer::builder().auto_rollout(true).start();
    let api: Api<Deployment> = Api::namespaced(client(&server).await, "default");
    api.patch(
        "web",
        &PatchParams::apply("t"),
        &Patch::Apply(deployment("default", "web", 2)),
    )
    .await
    .unwrap();
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    let rolled = |d: Option<&Deployment>| {
        d.is_some_and(|d| {
            let s = d.status.clone().unwrap_or_default();
            s.observed_generation == d.metadata.generation && s.updated_replicas == Some(4)
        })
    };
    let d = tokio::time::timeout(
        Duration::from_secs(5),
        await_condition(api.clone(), "web", rolled),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(d.metadata.generation, Some(2));
}

#[tokio::test]
async fn watch_replays_filters_and_expires() {
    let server = FakeApiServer::builder().event_history(5).start();
    let c = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    api.create(&PostParams::default(), &cm("a", json!({"w": "yes"})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("b", json!({"w": "no"})))
        .await
        .unwrap();

    // resourceVersion 0: ADDED for current matching objects, then live events (with a label
    // transition turning into DELETED).
    let mut stream = api
        .watch(&WatchParams::default().labels("w=yes").timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"w": "yes"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"w": "no"}}})),
    )
    .await
    .unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("{other:?}"),
    }
    let rv_after = match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => {
            assert_eq!(o.metadata.name.as_deref(), Some("a"));
            o.metadata.resource_version.unwrap()
        }
        other => panic!("{other:?}"),
    };
    drop(stream);

    // Resume from a resourceVersion: only later events.
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), &rv_after)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("{other:?}"),
    }
    // ...and the stream ends at timeoutSeconds.
    let t0 = Instant::now();
    assert!(stream.try_next().await.unwrap().is_none());
    assert!(t0.elapsed() < Duration::from_secs(3));

    // sendInitialEvents: ADDED for current objects, then the initial-events-end BOOKMARK.
    let mut stream = api
        .watch(&WatchParams::streaming_lists().timeout(1), "")
        .await
        .unwrap()
        .boxed();
    let mut added = 0;
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(_) => added += 1,
            WatchEvent::Bookmark(b) => {
                assert!(
                    b.metadata
                        .annotations
                        .contains_key("k8s.io/initial-events-end")
                );
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(added, 1, "only `a` is left");
    drop(stream);

    // Too old: an ERROR event with 410 Expired.
    for i in 0..6 {
        api.create(&PostParams::default(), &cm(&format!("x{i}"), json!({})))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn injected_status_faults_latency_and_dropped_connections() {
    let server = FakeApiServer::start();
    let plain = client_no_retry(&server).await;
    let retrying = client(&server).await;
    let ns: Api<Namespace> = Api::all(plain.clone());

    // 500 once.
    let id = server.inject(Fault::status(500).on("/api/v1/namespaces").times(1));
    let e = api_err(ns.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    assert_eq!(
        ns.list(&ListParams::default()).await.unwrap().items.len(),
        4
    );
    assert_eq!(server.fault_hits(id), 1);

    // 503 twice: a client without retries sees it; kube-rs's default client retries through it.
    server.inject(Fault::status(503).on("/api/v1/namespaces/*").times(2));
    let e = api_err(ns.get("default").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (503, "ServiceUnavailable"));
    server.clear_requests();
    let ok = Api::<Namespace>::all(retrying.clone())
        .get("default")
        .await
        .unwrap();
    assert_eq!(ok.metadata.name.as_deref(), Some("default"));
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200]);

    // 429 with Retry-After, seen raw.
    server.inject(
        Fault::status(429)
            .retry_after(1)
            .on("/api/v1/namespaces/kube-system")
            .method("GET")
            .times(1),
    );
    let (status, headers, body) = raw_get(&server, "/api/v1/namespaces/kube-system").unwrap();
    assert!(status.contains("429"), "{status}");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: 1"),
        "{headers}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reason"], "TooManyRequests");
    assert_eq!(v["details"]["retryAfterSeconds"], 1);
    // kube-rs honours Retry-After and retries.
    server.inject(
        Fault::status(429)
            .retry_after(1)
            .on("/api/v1/namespaces/kube-public")
            .times(1),
    );
    let t0 = Instant::now();
    Api::<Namespace>::all(retrying.clone())
        .get("kube-public")
        .await
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(900));

    // Latency.
    server.inject(
        Fault::latency(Duration::from_millis(300))
            .on("/api/v1/namespaces/kube-node-lease")
            .times(1),
    );
    let t0 = Instant::now();
    ns.get("kube-node-lease").await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let t0 = Instant::now();
    ns.get("kube-node-lease").await.unwrap();
    assert!(t0.elapsed() < Duration::from_millis(300));

    // Dropped connection: a transport error, not an API error; then it works again.
    server.inject(
        Fault::drop_connection()
            .on("/api/v1/namespaces/default")
            .times(1),
    );
    assert!(raw_get(&server, "/api/v1/namespaces/default").is_none());
    server.inject(
        Fault::drop_connection()
            .on("/api/v1/namespaces/default")
            .times(1),
    );
    let e = ns.get("default").await.unwrap_err();
    assert!(!matches!(e, kube::Error::Api(_)), "{e:?}");
    ns.get("default").await.unwrap();
    let dropped = server.requests().iter().filter(|r| r.status == 0).count();
    assert_eq!(dropped, 2);
}

#[tokio::test]
async fn rate_faults_are_deterministic_per_seed() {
    let mut patterns = Vec::new();
    for _ in 0..2 {
        let server = FakeApiServer::start();
        let ns: Api<Namespace> = Api::all(client_no_retry(&server).await);
        server.inject(
            Fault::status(500)
                .on("/api/v1/namespaces/default")
                .rate(0.5, 7),
        );
        let mut pattern = Vec::new();
        for _ in 0..30 {
            pattern.push(ns.get("default").await.is_ok());
        }
        patterns.push(pattern);
    }
    assert_eq!(patterns[0], patterns[1]);
    let failures = patterns[0].iter().filter(|ok| !**ok).count();
    assert!((5..=25).contains(&failures), "{failures}");
}

#[tokio::test]
async fn self_subject_access_reviews_and_forbidden() {
    let server = FakeApiServer::start();
    let c = client(&server).await;
    let ssar: Api<SelfSubjectAccessReview> = Api::all(c.clone());
    let ask = |verb: &str, group: &str, resource: &str, ns: Option<&str>| SelfSubjectAccessReview {
        metadata: ObjectMeta::default(),
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: ns.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    };
    let allowed = |r: SelfSubjectAccessReview| r.status.unwrap().allowed;
    let pp = PostParams::default();
    assert!(allowed(
        ssar.create(&pp, &ask("list", "", "pods", None))
            .await
            .unwrap()
    ));

    server.deny("list", "", "pods");
    server.deny_in_namespace("patch", "apps", "deployments", "prod");
    assert!(!allowed(
        ssar.create(&pp, &ask("list", "", "pods", None))
            .await
            .unwrap()
    ));
    assert!(allowed(
        ssar.create(&pp, &ask("get", "", "pods", None))
            .await
            .unwrap()
    ));
    assert!(!allowed(
        ssar.create(&pp, &ask("patch", "apps", "deployments", Some("prod")))
            .await
            .unwrap()
    ));
    assert!(allowed(
        ssar.create(&pp, &ask("patch", "apps", "deployments", Some("dev")))
            .await
            .unwrap()
    ));

    let pods: Api<Pod> = Api::all(c.clone());
    let e = api_err(pods.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "pods is forbidden: User \"meshup-test\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
    );
    server.seed(deployment("prod", "web", 1)).unwrap();
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "prod");
    let e = api_err(
        deps.patch("web", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "deployments.apps \"web\" is forbidden: User \"meshup-test\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"prod\""
    );
    assert!(deps.get("web").await.is_ok());
    server.clear_denials();
    assert!(pods.list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn hooks_play_controllers() {
    let server = FakeApiServer::start();
    // When a Deployment is scaled up from zero, "the controller" creates a discovery resource.
    server.on_change(|change, cluster| {
        if change.kind == "Deployment" && change.subresource.as_deref() == Some("scale") {
            let replicas = change.object["spec"]["replicas"].as_i64().unwrap_or(0);
            if replicas > 0 {
                cluster
                    .seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("{}-discovered", change.name),
                            "namespace": change.namespace.clone().unwrap()}}))
                    .unwrap();
            }
        }
    });
    server.seed(deployment("default", "ctl", 0)).unwrap();
    let api: Api<Deployment> = Api::namespaced(client(&server).await, "default");
    api.patch_scale(
        "ctl",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    assert!(server.get("cm", "default", "ctl-discovered").is_some());
}

/// As the real API server (found by the real-cluster tier, tests/it/real/apply.rs): a server-side apply
/// that changes fields another manager set (here helm's create of a CRD) is refused with 409 Conflict
/// naming the manager and the field, unless forced; then it takes them.
#[tokio::test]
async fn server_side_apply_conflicts_with_another_managers_fields_unless_forced() {
    let server = FakeApiServer::start();
    let c = client(&server).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd: CustomResourceDefinition = serde_saphyr::from_str(CRD).unwrap();
    let pp = PostParams {
        field_manager: Some("helm".into()),
        ..PostParams::default()
    };
    crds.create(&pp, &crd).await.unwrap();

    let mut changed = serde_json::to_value(&crd).unwrap();
    changed["spec"]["versions"][0]["served"] = json!(false);
    let err = crds
        .patch(
            "widgets.example.com",
            &PatchParams::apply("kubectl-meshup"),
            &Patch::Apply(&changed),
        )
        .await
        .expect_err("conflict");
    let status = api_err(err);
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"helm\" using apiextensions.k8s.io/v1: .spec.versions"
    );
    let stored = crds.get("widgets.example.com").await.unwrap();
    assert!(stored.spec.versions[0].served, "nothing was changed");

    // The same values are no conflict; forced, the change is made.
    let same = serde_json::to_value(&crd).unwrap();
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("kubectl-meshup"),
        &Patch::Apply(&same),
    )
    .await
    .unwrap();
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("kubectl-meshup").force(),
        &Patch::Apply(&changed),
    )
    .await
    .unwrap();
    let stored = crds.get("widgets.example.com").await.unwrap();
    assert!(!stored.spec.versions[0].served);
}
