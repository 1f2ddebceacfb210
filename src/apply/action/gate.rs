//! `gate`: a health condition that must hold before the next step — proxies at a version, a revision
//! unused, the check rules, node kernels, istiod's ambient flag (polled), or a tool's own version (run
//! once).

use futures::FutureExt;

use super::{KeepsState, Mode, Running, StepAction, StepRun, Undoing};
use crate::apply::awaited::Awaited;
use crate::apply::describe::{self, HintTarget};
use crate::apply::permissions::Needs;
use crate::apply::tools::Program;
use crate::plan::action::GateStep;
use crate::plan::{Gate, Tool};

impl StepAction for GateStep<'_> {
    fn changes_cluster(&self) -> bool {
        false
    }

    fn tool(&self) -> Option<Tool> {
        match self.gate {
            Gate::ToolVersion { tool, .. } => Some(*tool),
            Gate::ProxiesAtVersion { .. }
            | Gate::RevisionUnused { .. }
            | Gate::CheckPasses
            | Gate::NodeKernelsAtLeast { .. }
            | Gate::IstiodAmbientEnabled { .. } => None,
        }
    }

    /// The tool-version gate's version command; for the others, what they check.
    fn hand_command(&self, at: HintTarget<'_>) -> String {
        match self.gate {
            Gate::ToolVersion { tool, .. } => {
                let args: Vec<String> = tool.version_args().iter().map(|a| a.to_string()).collect();
                at.command_line(Program::Tool(*tool), &args)
            }
            Gate::ProxiesAtVersion { .. }
            | Gate::RevisionUnused { .. }
            | Gate::CheckPasses
            | Gate::NodeKernelsAtLeast { .. }
            | Gate::IstiodAmbientEnabled { .. } => describe::action(self.whole, None),
        }
    }

    /// The check-passes gate re-observes through the caller; the tool-version gate only runs the
    /// tool's version command, which reads no cluster.
    fn needs(&self, needs: &mut Needs<'_>) {
        match self.gate {
            Gate::ProxiesAtVersion { namespaces, .. } => {
                if namespaces.is_empty() {
                    needs.add(&["list"], "", "pods", "");
                }
                for ns in namespaces {
                    needs.add(&["list"], "", "pods", ns);
                }
            }
            Gate::RevisionUnused { .. } => {
                needs.add(&["list"], "", "pods", "");
                needs.add(&["list"], "", "namespaces", "");
                needs.add(
                    &["list"],
                    "admissionregistration.k8s.io",
                    "mutatingwebhookconfigurations",
                    "",
                );
            }
            Gate::CheckPasses | Gate::ToolVersion { .. } => {}
            Gate::NodeKernelsAtLeast { .. } => needs.add(&["list"], "", "nodes", ""),
            Gate::IstiodAmbientEnabled { namespace, .. } => {
                needs.add(&["list"], "apps", "deployments", namespace)
            }
        }
    }

    fn state(&self) -> Option<&dyn KeepsState> {
        None
    }

    fn run<'a>(&'a self, run: StepRun<'a, '_>) -> Running<'a> {
        async move {
            let StepRun {
                ex,
                client,
                step,
                mode,
                ..
            } = run;
            let awaited = match self.gate {
                Gate::ProxiesAtVersion {
                    version,
                    namespaces,
                } => Awaited::Proxies {
                    version: *version,
                    namespaces: namespaces.clone(),
                },
                Gate::RevisionUnused { revision } => Awaited::RevisionUnused(revision.clone()),
                Gate::CheckPasses => Awaited::Health,
                Gate::NodeKernelsAtLeast { min } => Awaited::NodeKernels(*min),
                Gate::IstiodAmbientEnabled {
                    namespace,
                    revision,
                } => Awaited::IstiodAmbient {
                    namespace: namespace.clone(),
                    revision: revision.clone(),
                },
                Gate::ToolVersion { tool, version } => {
                    if mode == Mode::Dry {
                        let command = self.hand_command(ex.hint(&step.cluster));
                        ex.ui.step_progress(&format!(
                            "would check that `{command}` prints {version}"
                        ));
                        return Ok(String::new());
                    }
                    return ex.tool_version(step, *tool, *version).await;
                }
            };
            if mode == Mode::Dry {
                ex.ui
                    .step_progress("skipped: nothing was changed to wait for");
                return Ok(String::new());
            }
            let timeout = ex.timeout(None);
            let note = ex.poll(client, &step.cluster, &awaited, timeout).await?;
            Ok(note.map_or_else(|| "passed".to_string(), |n| format!("passed; {n}")))
        }
        .boxed()
    }

    fn undo_now<'a>(&'a self, _: &'a kube::Client) -> Undoing<'a> {
        None
    }
}
