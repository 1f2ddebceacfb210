//! What the planner needs to know about one cluster's Istio, read once from the snapshot: the installed
//! version (the oldest control plane, which bounds every path), its flavor, the image hub to keep, and the
//! flavor check DaoCloud asks for (never mix `-mspider` and upstream builds in one upgrade).

use crate::snapshot::{Cluster, Istio, IstioControlPlane, KmeshMode, ObservedVersion};
use crate::version::{Flavor, Version};

use super::install_method::Method;
use super::{Mesh, PlanError};

#[derive(Debug, Clone)]
pub(crate) struct IstioInstall<'a> {
    pub istio: &'a Istio,
    /// The oldest control plane's version: every revision moves to the target.
    pub version: Version,
    pub flavor: Flavor,
    /// `--to` named the flavor: every component moves to it. Otherwise each component keeps its own
    /// (the ambient profile runs a distroless istio-cni beside an upstream ztunnel, for example).
    pub flavor_requested: bool,
    /// The namespace istiod runs in (`istio-system`).
    pub namespace: String,
    /// The registry path of the installed images (`docker.io/istio`), kept so air-gapped and vendor
    /// registries stay in use.
    pub hub: Option<String>,
    /// Every control plane, oldest first.
    pub control_planes: Vec<&'a IstioControlPlane>,
    /// ztunnel or istio-cni is installed (ambient): they have no canary and lag the control plane by at
    /// most `ambient_components_max_lag_minors`.
    pub ambient_components: bool,
    /// istiod must run with `PILOT_ENABLE_AMBIENT=true`: some control plane has it, or Kmesh runs in
    /// Dual-Engine mode (which needs it). A new revision carries it over.
    pub ambient_flag: bool,
    /// How the oldest control plane was installed, and what configuration a new one must carry.
    pub method: Method,
}

impl<'a> IstioInstall<'a> {
    /// `Ok(None)` when the cluster runs no istiod.
    pub fn read(cluster: &'a Cluster) -> Result<Option<IstioInstall<'a>>, PlanError> {
        let Some(istio) = cluster.istio.as_ref() else {
            return Ok(None);
        };
        if istio.control_planes.is_empty() {
            return Ok(None);
        }
        check_flavors(cluster, istio)?;
        let mut control_planes: Vec<&IstioControlPlane> = istio.control_planes.iter().collect();
        let mut versions = Vec::with_capacity(control_planes.len());
        for cp in &control_planes {
            let Some(v) = cp.istiod.version.version else {
                return Err(PlanError::MissingFact {
                    cluster: cluster.name.clone(),
                    mesh: Mesh::Istio,
                    what: format!(
                        "the version of istiod revision {} (image {})",
                        cp.revision, cp.istiod.version.image
                    ),
                    fix: "pin istiod to a tagged image or label it with app.kubernetes.io/version, then take a new snapshot".to_string(),
                });
            };
            versions.push(v);
        }
        control_planes.sort_by_key(|cp| (cp.istiod.version.version, cp.revision.clone()));
        let oldest = control_planes[0];
        let version = versions
            .iter()
            .copied()
            .min()
            .unwrap_or(Version::new(0, 0, 0));
        Ok(Some(IstioInstall {
            istio,
            version,
            flavor: oldest.istiod.version.flavor.clone(),
            flavor_requested: false,
            namespace: oldest.istiod.namespace.clone(),
            hub: hub_of(&oldest.istiod.version.image),
            method: Method::read(istio, oldest),
            control_planes,
            ambient_components: istio.ztunnel.is_some() || istio.cni.is_some(),
            ambient_flag: istio.control_planes.iter().any(|cp| cp.ambient_enabled)
                || cluster
                    .kmesh
                    .as_ref()
                    .is_some_and(|k| k.mode == KmeshMode::DualEngine),
        }))
    }

    /// The image tag for `version` in this install's flavor: `1.24.6`, `1.24.6-distroless`,
    /// `1.24.5-mspider`.
    pub fn tag(&self, version: Version) -> String {
        tag_for(version, &self.flavor)
    }

    pub fn is_mspider(&self) -> bool {
        self.flavor == Flavor::Mspider
    }
}

pub(crate) fn tag_for(version: Version, flavor: &Flavor) -> String {
    match flavor {
        Flavor::Upstream => version.to_string(),
        Flavor::Distroless => format!("{version}-distroless"),
        Flavor::Mspider => format!("{version}-mspider"),
        Flavor::Vendor(name) => format!("{version}-{name}"),
    }
}

/// The revision name Istio's docs use for a version: `1-24-6`.
pub(crate) fn revision_name(version: Version) -> String {
    version.to_string().replace('.', "-")
}

/// `docker.io/istio/pilot:1.20.8` → `docker.io/istio`; `None` for an image without a registry path.
pub(crate) fn hub_of(image: &str) -> Option<String> {
    let name = image.split('@').next().unwrap_or(image);
    let slash = name.rfind('/')?;
    let hub = &name[..slash];
    (!hub.is_empty()).then(|| hub.to_string())
}

/// DaoCloud: "mixed upgrades of different types are not supported". Any `-mspider` component beside a
/// non-`-mspider` one (control planes, gateways, ambient components, proxies) blocks the plan.
fn check_flavors(cluster: &Cluster, istio: &Istio) -> Result<(), PlanError> {
    let mut seen: Vec<(String, &ObservedVersion)> = Vec::new();
    for cp in &istio.control_planes {
        seen.push((
            format!("istiod revision {}", cp.revision),
            &cp.istiod.version,
        ));
    }
    for gw in &istio.gateways {
        seen.push((
            format!("gateway {}/{}", gw.workload.namespace, gw.workload.name),
            &gw.workload.version,
        ));
    }
    for (name, w) in [("ztunnel", &istio.ztunnel), ("istio-cni", &istio.cni)] {
        if let Some(w) = w {
            seen.push((name.to_string(), &w.version));
        }
    }
    for p in &istio.proxies {
        seen.push((
            format!("proxies of {}/{}", p.namespace, p.owner),
            &p.version,
        ));
    }
    let known: Vec<&(String, &ObservedVersion)> =
        seen.iter().filter(|(_, v)| v.version.is_some()).collect();
    let mspider = known.iter().find(|(_, v)| v.flavor == Flavor::Mspider);
    let other = known.iter().find(|(_, v)| v.flavor != Flavor::Mspider);
    if let (Some((a, av)), Some((b, bv))) = (mspider, other) {
        return Err(PlanError::MixedFlavors {
            cluster: cluster.name.clone(),
            found: format!("{a} is {} but {b} is {}", tag_of(av), tag_of(bv)),
        });
    }
    Ok(())
}

fn tag_of(v: &ObservedVersion) -> String {
    match v.version {
        Some(version) => tag_for(version, &v.flavor),
        None => v.image.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubs_and_tags_keep_registry_and_flavor() {
        assert_eq!(
            hub_of("docker.io/istio/pilot:1.20.8").as_deref(),
            Some("docker.io/istio")
        );
        assert_eq!(
            hub_of("registry.local:5000/mspider/pilot:1.21.4-mspider").as_deref(),
            Some("registry.local:5000/mspider")
        );
        assert_eq!(hub_of("pilot:1.20.8"), None);
        let v = Version::new(1, 24, 5);
        assert_eq!(tag_for(v, &Flavor::Mspider), "1.24.5-mspider");
        assert_eq!(tag_for(v, &Flavor::Distroless), "1.24.5-distroless");
        assert_eq!(tag_for(v, &Flavor::Vendor("solo".into())), "1.24.5-solo");
        assert_eq!(revision_name(v), "1-24-5");
    }
}
