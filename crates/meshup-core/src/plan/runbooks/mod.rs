//! The vendors' upgrade procedures, one module each, emitting typed steps whose reasons cite the runbook
//! step they implement:
//! - [`environment`]: DaoCloud's wizard (select target, environment detection, upgrade, health check):
//!   Kubernetes version gates and the final health gate;
//! - [`istio_canary`] and [`istio_in_place`]: Istio's two upgrade methods, one hop at a time;
//! - [`gloo_mesh`]: the ten-step pre-1.0 runbook and the 1.x Helm procedure;
//! - [`kmesh`]: prerequisites, then the Kmesh DaemonSet upgrade.

pub(crate) mod environment;
pub(crate) mod gloo_mesh;
pub(crate) mod istio_canary;
pub(crate) mod istio_in_place;
pub(crate) mod kmesh;

use std::collections::{BTreeMap, BTreeSet};

use super::install_method;
use super::istio_install::IstioInstall;
use super::{Action, ObjectRef, Renewal, Tool, WaitCondition};
use crate::compat::CompatData;
use crate::version::{Flavor, Version};

use super::istio_install::tag_for;

/// Istio's Helm chart repository (the charts `base`, `istiod`, `cni`, `ztunnel`, `gateway`).
pub(crate) const ISTIO_CHART_REPO: &str = "https://istio-release.storage.googleapis.com/charts";

pub(crate) const TOOL_TIMEOUT_SECONDS: u64 = 600;
pub(crate) const INSTALL_TIMEOUT_SECONDS: u64 = 900;
pub(crate) const WAIT_TIMEOUT_SECONDS: u64 = 600;

pub(crate) fn run(tool: Tool, args: &[&str], timeout_seconds: u64) -> Action {
    Action::Run {
        tool,
        args: args.iter().map(|a| a.to_string()).collect(),
        timeout_seconds,
        config: None,
    }
}

/// `helm upgrade RELEASE CHART --repo REPO --version V --namespace NS` and how the release keeps its
/// values: with the release's stored values carried (`--reset-values --values FILE`: the new chart's
/// defaults plus the user's values, reviewable in the plan), or, where the values could not be read,
/// `--reset-then-reuse-values` (Helm 3.14+), which does the same from the release itself. Never
/// `--reuse-values`, which keeps the old chart's defaults across chart versions.
pub(crate) fn helm_upgrade_args(
    release: &str,
    chart: &str,
    repo: &str,
    namespace: &str,
    to: Version,
    carried: bool,
) -> Vec<String> {
    let values_flag = if carried {
        "--reset-values"
    } else {
        "--reset-then-reuse-values"
    };
    [
        "upgrade",
        release,
        chart,
        "--repo",
        repo,
        "--version",
        &to.to_string(),
        "--namespace",
        namespace,
        values_flag,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(crate) fn run_owned(tool: Tool, args: Vec<String>, timeout_seconds: u64) -> Action {
    Action::Run {
        tool,
        args,
        timeout_seconds,
        config: None,
    }
}

pub(crate) fn rollout(kind: &str, namespace: &str, name: &str) -> Action {
    Action::Wait {
        condition: WaitCondition::RolloutComplete {
            target: object(kind, namespace, name),
        },
        timeout_seconds: WAIT_TIMEOUT_SECONDS,
    }
}

pub(crate) fn object(kind: &str, namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// Everything an Istio runbook needs for one cluster.
pub(crate) struct IstioContext<'a> {
    pub cluster: &'a str,
    pub install: &'a IstioInstall<'a>,
    pub compat: &'a CompatData,
    /// The Istio chart repository the helm steps name (the vendor's, or `--chart-repo istio=URL`).
    pub chart_repo: &'a str,
}

impl IstioContext<'_> {
    /// DaoCloud: no rollback after an upgrade of its builds.
    pub fn upgrades_irreversible(&self) -> bool {
        self.install.is_mspider() && self.compat.mspider.no_rollback.value
    }

    /// The `--set` arguments that put an Istio chart's images at `to` in this install's registry and
    /// flavor, with the keys that chart reads (Istio 1.2x/1.3x charts):
    /// - `istiod` and `cni` read `tag | default global.tag` and `variant | default global.variant`
    ///   (the image is `hub/name:tag-variant`), and istiod's injection template gives proxies
    ///   `global.hub`/`global.tag`: so `global.*`, and the chart's own key too where the release's
    ///   values set it (it would win over `global.*`);
    /// - `ztunnel` reads its own `hub`, `tag`, `variant` (globals are merged under them): those;
    /// - `gateway` runs `image: auto` (injected by istiod) and `base` runs none: nothing.
    ///
    /// Each of istio-cni and ztunnel keeps its own observed flavor unless `--to` named one.
    /// A distroless build is `tag=VERSION` with `variant=distroless`, since the charts append the
    /// variant (a tag of `1.24.6-distroless` would render `1.24.6-distroless-distroless` where the
    /// values already say distroless); other flavors are their whole tag.
    pub fn image_values(
        &self,
        chart: &str,
        to: Version,
        values: Option<&serde_json::Value>,
    ) -> Vec<String> {
        let keys: &[&str] = match chart {
            "istiod" | "cni" => &["global.", ""],
            "ztunnel" => &[""],
            _ => return Vec::new(),
        };
        let own = match chart {
            "cni" => self.install.istio.cni.as_ref(),
            "ztunnel" => self.install.istio.ztunnel.as_ref(),
            _ => None,
        }
        .filter(|w| w.version.version.is_some() && !self.install.flavor_requested)
        .map(|w| &w.version.flavor);
        let (tag, variant) = match own.unwrap_or(&self.install.flavor) {
            Flavor::Upstream => (to.to_string(), None),
            Flavor::Distroless => (to.to_string(), Some("distroless")),
            other => (tag_for(to, other), Some("")),
        };
        let set_in_values = |key: &str, name: &str| {
            let path = format!("{key}{name}");
            let mut at = values;
            for part in path.split('.') {
                at = at.and_then(|v| v.get(part));
            }
            at.is_some_and(|v| !v.is_null() && v != "")
        };
        let mut sets = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            // The first key is always set; the chart's own keys only where the values set them.
            let wanted = |name: &str| i == 0 || set_in_values(key, name);
            if let Some(hub) = &self.install.hub
                && wanted("hub")
            {
                sets.push(format!("{key}hub={hub}"));
            }
            if wanted("tag") {
                sets.push(format!("{key}tag={tag}"));
            }
            // An upstream target clears a variant the values carry (`distroless`, asked away).
            match variant {
                Some(v) if wanted("variant") => sets.push(format!("{key}variant={v}")),
                None if set_in_values(key, "variant") => sets.push(format!("{key}variant=")),
                _ => {}
            }
        }
        sets.into_iter()
            .flat_map(|s| ["--set".to_string(), s])
            .collect()
    }

    /// [`helm_upgrade_args`] from the Istio chart repository, keeping the installed image hub and
    /// flavor for charts that run images.
    pub fn helm_upgrade(&self, release: &str, chart: &str, namespace: &str, to: Version) -> Action {
        let stored = install_method::find_release(self.install.istio, namespace, release);
        let config = stored.map(install_method::helm_values);
        let mut args = helm_upgrade_args(
            release,
            chart,
            self.chart_repo,
            namespace,
            to,
            config.is_some(),
        );
        args.extend(self.image_values(chart, to, config.as_ref().map(|c| &c.document)));
        Action::Run {
            tool: Tool::Helm,
            args,
            timeout_seconds: TOOL_TIMEOUT_SECONDS,
            config,
        }
    }
}

/// The sidecar data plane as the plan moves it: namespace labels and revision tags are updated hop by
/// hop; the workloads to restart come from the snapshot's proxies and gateways, only those a restart
/// renews ([`Renewal::Restart`]); the other owners are listed for the plan's warnings.
#[derive(Debug, Clone)]
pub(crate) struct DataPlane {
    /// Namespace -> (label, value) that enrolls it.
    pub labels: BTreeMap<String, (String, String)>,
    /// Revision tag -> revision.
    pub tags: BTreeMap<String, String>,
    /// Namespace -> `Kind/name` of the Deployments, StatefulSets and DaemonSets whose pods carry a
    /// sidecar.
    pub workloads: BTreeMap<String, BTreeSet<String>>,
    /// `namespace/Kind/name` of Job and CronJob owners: their next run gets the new sidecar.
    pub next_run: Vec<String>,
    /// `namespace/Kind/name` of owners no restart can renew (pods without a controller, ReplicaSets
    /// without a Deployment, other controllers): a person recreates their pods.
    pub by_hand: Vec<String>,
}

pub(crate) const REV_LABEL: &str = "istio.io/rev";
pub(crate) const INJECTION_LABEL: &str = "istio-injection";

impl DataPlane {
    pub fn read(install: &IstioInstall<'_>) -> Self {
        let istio = install.istio;
        let labels = istio
            .namespaces
            .iter()
            .map(|n| (n.name.clone(), (n.label.clone(), n.value.clone())))
            .collect();
        let mut workloads: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut next_run = BTreeSet::new();
        let mut by_hand = BTreeSet::new();
        let owners = istio
            .proxies
            .iter()
            .map(|p| (p.namespace.clone(), p.owner.clone()))
            .chain(istio.gateways.iter().map(|gw| {
                let w = &gw.workload;
                (w.namespace.clone(), format!("{}/{}", w.kind, w.name))
            }));
        for (namespace, owner) in owners {
            match Renewal::of_owner(&owner) {
                Renewal::Restart => {
                    workloads.entry(namespace).or_default().insert(owner);
                }
                Renewal::NextRun => {
                    next_run.insert(format!("{namespace}/{owner}"));
                }
                Renewal::ByHand => {
                    by_hand.insert(format!("{namespace}/{owner}"));
                }
            }
        }
        DataPlane {
            labels,
            tags: istio.revision_tags.clone(),
            workloads,
            next_run: next_run.into_iter().collect(),
            by_hand: by_hand.into_iter().collect(),
        }
    }
}
