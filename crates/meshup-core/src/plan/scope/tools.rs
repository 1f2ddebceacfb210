//! The scope of a tool's arguments, for `run` steps and the commands `manual` steps show: per tool,
//! the subcommands and flags the runbooks use, with their values checked (`--repo` only the vendors'
//! repositories or an approved mirror, `--namespace` only mesh namespaces, `--set` only the keys the
//! runbooks set); anything else (`--post-renderer`, `--kubeconfig`, `--kube-context`, `-f`, an unknown
//! flag) is refused.

use super::*;
use crate::plan::Action;

impl Cx<'_> {
    pub(in crate::plan) fn tool(&self, tool: Tool, args: &[String], manual: bool) -> Checked {
        let parsed = Parsed::read(args);
        let sub: Vec<&str> = parsed.positional.iter().map(String::as_str).collect();
        let program = tool.program();
        let known: &[&str] = match tool {
            Tool::Helm => &[
                "--short",
                "--repo",
                "--version",
                "--namespace",
                "-n",
                "--reuse-values",
                "--reset-values",
                "--reset-then-reuse-values",
                "--wait",
                "--set",
            ],
            Tool::Istioctl => &[
                "--remote",
                "-y",
                "--skip-confirmation",
                "--set",
                "--revision",
                "--overwrite",
            ],
            Tool::Meshctl => &["--cluster-name", "--remote-context", "--mgmt-context"],
        };
        if let Some((flag, _)) = parsed
            .flags
            .iter()
            .find(|(f, _)| !known.contains(&f.as_str()))
        {
            return Err(format!(
                "{program} flag {flag} is not one the runbooks use ({})",
                known.join(", ")
            ));
        }
        match (tool, sub.as_slice()) {
            (Tool::Helm, ["version"]) => parsed.only(program, &[("--short", false)]),
            (Tool::Helm, ["upgrade" | "install", release, chart]) => {
                self.helm_chart(&parsed, release, chart)
            }
            (Tool::Helm, ["uninstall", release]) => {
                self.needs(Mesh::Istio, "helm uninstall")?;
                parsed.only(
                    program,
                    &[("--namespace", true), ("-n", true), ("--wait", false)],
                )?;
                if !self.istiod_release(release) {
                    return Err(format!(
                        "helm uninstall {release}: only the istiod release of a revision this plan moves between may be removed"
                    ));
                }
                for ns in parsed
                    .values("--namespace")
                    .into_iter()
                    .chain(parsed.values("-n"))
                {
                    self.mesh_namespace(ns, &format!("helm release {release}"))?;
                }
                Ok(())
            }
            (Tool::Istioctl, ["version"]) => parsed.only(program, &[("--remote", true)]),
            (Tool::Istioctl, ["install"]) => {
                self.needs(Mesh::Istio, "istioctl install")?;
                parsed.only(
                    program,
                    &[
                        ("-y", false),
                        ("--skip-confirmation", false),
                        ("--set", true),
                    ],
                )?;
                for set in parsed.values("--set") {
                    self.istioctl_set(set)?;
                }
                Ok(())
            }
            (Tool::Istioctl, ["uninstall"]) => {
                self.needs(Mesh::Istio, "istioctl uninstall")?;
                parsed.only(
                    program,
                    &[
                        ("-y", false),
                        ("--skip-confirmation", false),
                        ("--revision", true),
                    ],
                )?;
                let revisions = parsed.values("--revision");
                if revisions.len() != 1 {
                    return Err(
                        "istioctl uninstall must name exactly one --revision (never --purge)"
                            .to_string(),
                    );
                }
                self.revision(revisions[0])
            }
            (Tool::Istioctl, ["tag", "set", tag]) => {
                self.needs(Mesh::Istio, "istioctl tag set")?;
                parsed.only(program, &[("--revision", true), ("--overwrite", false)])?;
                if !self.scope.tags.contains(*tag) {
                    return Err(format!(
                        "moves revision tag {tag}, which the cluster does not have ({})",
                        list(&self.scope.tags)
                    ));
                }
                for r in parsed.values("--revision") {
                    self.revision(r)?;
                }
                Ok(())
            }
            (Tool::Meshctl, ["check" | "version"]) => parsed.only(program, &[]),
            (Tool::Meshctl, ["cluster", "register", rest @ ..]) => {
                self.needs(Mesh::GlooMesh, "meshctl cluster register")?;
                parsed.only(
                    program,
                    &[
                        ("--cluster-name", true),
                        ("--remote-context", true),
                        ("--mgmt-context", true),
                    ],
                )?;
                let named: Vec<&str> = match rest {
                    ["community", name] => vec![name],
                    [] => parsed.values("--cluster-name"),
                    _ => vec![],
                };
                let [name] = named.as_slice() else {
                    return Err(
                        "meshctl cluster register must name exactly one registered cluster"
                            .to_string(),
                    );
                };
                if !self.scope.registered.contains(*name) {
                    return Err(format!(
                        "registers cluster {name}, which is not registered with this management plane ({})",
                        list(&self.scope.registered)
                    ));
                }
                for ctx in parsed.values("--mgmt-context") {
                    if ctx != self.step.cluster {
                        return Err(format!(
                            "--mgmt-context {ctx} is not the step's cluster {}",
                            self.step.cluster
                        ));
                    }
                }
                for ctx in parsed.values("--remote-context") {
                    let placeholder = manual && ctx.starts_with('<') && ctx.ends_with('>');
                    if !placeholder
                        && (ctx != *name || !self.plan.clusters.iter().any(|c| c == ctx))
                    {
                        return Err(format!(
                            "--remote-context {ctx} is not the registered cluster's own context among the plan's clusters"
                        ));
                    }
                }
                Ok(())
            }
            _ => Err(format!(
                "runs `{program} {}`, which is not a {program} command the runbooks use",
                sub.join(" ")
            )),
        }
    }

    fn revision(&self, revision: &str) -> Checked {
        if self.scope.revisions.contains(revision) {
            Ok(())
        } else {
            Err(format!(
                "names revision {revision}, which is neither installed nor installed by this plan ({})",
                list(&self.scope.revisions)
            ))
        }
    }

    fn istioctl_set(&self, set: &str) -> Checked {
        let (key, value) = set.split_once('=').unwrap_or((set, ""));
        match key {
            "revision" => self.revision(value),
            "profile" if value == "ambient" => Ok(()),
            "values.pilot.env.PILOT_ENABLE_AMBIENT" if value == "true" => Ok(()),
            "hub" => self.hub(value),
            "tag" => self.image_tag(value),
            _ => Err(format!(
                "istioctl install --set {set}: the runbooks only set revision, profile=ambient, hub, tag and values.pilot.env.PILOT_ENABLE_AMBIENT=true"
            )),
        }
    }

    /// The istiod chart's release of a revision the plan moves between (`istiod-<rev>`, `istiod` for
    /// the default revision), or an istiod release the cluster has (fingerprint facts).
    fn istiod_release(&self, release: &str) -> bool {
        release == "istiod"
            || release
                .strip_prefix("istiod-")
                .is_some_and(|r| self.scope.revisions.contains(r))
            || self.scope.helm_releases.contains(release)
    }

    fn hub(&self, hub: &str) -> Checked {
        match &self.scope.hubs {
            Some(hubs) if !hubs.contains(hub) => Err(format!(
                "sets the image hub {hub}, but the installed istiod comes from {}",
                list(hubs)
            )),
            _ => Ok(()),
        }
    }

    fn image_tag(&self, tag: &str) -> Checked {
        let (version, flavor) = tag.split_once('-').unwrap_or((tag, ""));
        if !flavor.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "sets the image tag {tag}, which is not VERSION[-FLAVOR]"
            ));
        }
        self.chart_version(Mesh::Istio, version)
    }

    fn helm_chart(&self, parsed: &Parsed, release: &str, chart: &str) -> Checked {
        parsed.only(
            "helm",
            &[
                ("--repo", true),
                ("--version", true),
                ("--namespace", true),
                ("-n", true),
                ("--reuse-values", false),
                ("--reset-values", false),
                ("--reset-then-reuse-values", false),
                ("--wait", false),
                ("--set", true),
            ],
        )?;
        let repos = parsed.values("--repo");
        let repo = match repos.as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => return Err("helm is given --repo twice".to_string()),
        };
        let from = |vendor: &str| repo.is_some_and(|r| self.chart_repo(r, vendor));
        let (mesh, releases_ok) = match (repo, chart) {
            (Some(_), c) if ISTIO_CHARTS.contains(&c) && from(ISTIO_CHART_REPO) => {
                let rev_release = self.istiod_release(release);
                let gateway = self.scope.gateways.values().any(|g| g.contains(release));
                let ok = match c {
                    "base" => release == "istio-base",
                    "istiod" => release == "istiod" || rev_release,
                    "cni" => release == "istio-cni",
                    "ztunnel" => release == "ztunnel",
                    _ => gateway,
                };
                (Mesh::Istio, ok)
            }
            (Some(_), GLOO_CHART) if from(GLOO_REPO) => (Mesh::GlooMesh, release == GLOO_CHART),
            (None, KMESH_CHART) => (Mesh::Kmesh, release == "kmesh"),
            (Some(other), _) => {
                return Err(format!(
                    "helm --repo {other} is not a vendor chart repository this plan uses ({ISTIO_CHART_REPO}, {GLOO_REPO}){}",
                    self.mirrors_named()
                ));
            }
            (None, _) => {
                return Err(format!(
                    "helm chart {chart} is not one of the meshes' charts"
                ));
            }
        };
        if !releases_ok {
            return Err(format!(
                "helm release {release} of chart {chart} is not a release of the meshes being upgraded"
            ));
        }
        // A manual step may set istiod's ambient flag on a Kmesh plan; a run step needs its mesh.
        if !matches!(self.step.action, Action::Manual { .. }) {
            self.needs(mesh, &format!("helm upgrade of {chart}"))?;
        }
        for v in parsed.values("--version") {
            self.chart_version(mesh, v)?;
        }
        for ns in parsed
            .values("--namespace")
            .into_iter()
            .chain(parsed.values("-n"))
        {
            self.mesh_namespace(ns, &format!("helm release {release}"))?;
        }
        for set in parsed.values("--set") {
            let (key, value) = set.split_once('=').unwrap_or((set, ""));
            match key {
                "global.hub" => self.hub(value)?,
                "global.tag" if mesh == Mesh::Istio => self.image_tag(value)?,
                // The charts' own image keys (`IstioContext::image_values`).
                "hub" if mesh == Mesh::Istio && IMAGE_CHARTS.contains(&chart) => self.hub(value)?,
                "tag" if mesh == Mesh::Istio && IMAGE_CHARTS.contains(&chart) => {
                    self.image_tag(value)?
                }
                "global.variant" | "variant"
                    if mesh == Mesh::Istio
                        && IMAGE_CHARTS.contains(&chart)
                        && ["", "distroless"].contains(&value) => {}
                "pilot.env.PILOT_ENABLE_AMBIENT" if mesh == Mesh::Istio && value == "true" => {}
                "revision" if mesh == Mesh::Istio && ["istiod", "gateway"].contains(&chart) => {
                    self.revision(value)?
                }
                _ => {
                    return Err(format!(
                        "helm --set {set}: the runbooks only set global.hub, global.tag, global.variant (distroless or none), the same keys of istiod, cni and ztunnel, revision (istiod, gateway) and pilot.env.PILOT_ENABLE_AMBIENT=true"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Arguments split into positionals and flags (`--flag value`, `--flag=value`, `-y`).
struct Parsed {
    positional: Vec<String>,
    /// (flag, value) in order; the value is what follows `=` or the next word for flags that take one.
    flags: Vec<(String, Option<String>)>,
}

/// Flags whose value is the next word when not given with `=`.
const TAKES_VALUE: [&str; 9] = [
    "--repo",
    "--version",
    "--namespace",
    "-n",
    "--set",
    "--revision",
    "--cluster-name",
    "--remote-context",
    "--mgmt-context",
];

impl Parsed {
    fn read(args: &[String]) -> Self {
        let mut positional = Vec::new();
        let mut flags = Vec::new();
        let mut words = args.iter();
        while let Some(word) = words.next() {
            if word.starts_with('-') && word.len() > 1 {
                match word.split_once('=') {
                    Some((flag, value)) => flags.push((flag.to_string(), Some(value.to_string()))),
                    None if TAKES_VALUE.contains(&word.as_str()) => {
                        flags.push((word.clone(), words.next().cloned()));
                    }
                    None => flags.push((word.clone(), None)),
                }
            } else {
                positional.push(word.clone());
            }
        }
        Parsed { positional, flags }
    }

    /// Every flag must be one of `allowed` (name, takes a value).
    fn only(&self, program: &str, allowed: &[(&str, bool)]) -> Checked {
        for (flag, value) in &self.flags {
            match allowed.iter().find(|(name, _)| name == flag) {
                Some((_, true)) if value.is_none() => {
                    return Err(format!("{program} {flag} has no value"));
                }
                Some((_, false)) if value.is_some() => {
                    return Err(format!("{program} {flag} takes no value"));
                }
                Some(_) => {}
                None => {
                    return Err(format!(
                        "{program} flag {flag} is not one the runbooks use{}",
                        if allowed.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (allowed here: {})",
                                allowed
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ));
                }
            }
        }
        Ok(())
    }

    fn values(&self, flag: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(f, _)| f == flag)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}
