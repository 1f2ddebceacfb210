//! `apply-crds`: server-side apply of the CRDs a Helm chart renders (Gloo Mesh's chart).

use super::ActionKind;
use crate::plan::model::Mesh;
use crate::plan::runbooks::gloo_mesh::{CHART as GLOO_CHART, CHART_REPO as GLOO_REPO};
use crate::plan::scope::{Checked, Cx};

pub struct ApplyCrds<'a> {
    pub chart: &'a str,
    pub repo: &'a str,
    pub version: &'a str,
}

impl<'a> ActionKind<'a> for ApplyCrds<'a> {
    fn type_name(&self) -> &'static str {
        "apply-crds"
    }

    fn describe(&self, _: Option<u32>) -> String {
        let ApplyCrds {
            chart,
            repo,
            version,
        } = self;
        format!("server-side apply the CRDs of chart {chart} {version} from {repo}")
    }

    fn chart_repo(&self) -> Option<&'a str> {
        Some(self.repo)
    }

    fn scope(&self, cx: &Cx<'_>, _undo: bool) -> Checked {
        let ApplyCrds {
            chart,
            repo,
            version,
        } = *self;
        cx.needs(Mesh::GlooMesh, "applying CRDs")?;
        let expected = GLOO_CHART;
        if chart != expected || !cx.chart_repo(repo, GLOO_REPO) {
            return Err(format!(
                "applies the CRDs of chart {chart} from {repo}; only {expected} from {GLOO_REPO}{} may be applied",
                cx.mirrors_named()
            ));
        }
        cx.chart_version(Mesh::GlooMesh, version)
    }
}
