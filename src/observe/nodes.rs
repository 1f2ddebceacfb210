//! Nodes folded into groups of identical platform facts (kernel, OS, kubelet, runtime, architecture).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::paging::{Meta, null_as_default};
use crate::snapshot::NodeGroup;
use crate::version::KernelVersion;

/// The fields of a Node that observe reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeFacts {
    pub metadata: Meta,
    #[serde(deserialize_with = "null_as_default")]
    pub status: NodeStatusFacts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeStatusFacts {
    #[serde(deserialize_with = "null_as_default")]
    pub node_info: NodeInfo,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeInfo {
    pub kernel_version: String,
    pub os_image: String,
    pub operating_system: String,
    pub architecture: String,
    pub kubelet_version: String,
    pub container_runtime_version: String,
}

/// Node names per identical platform facts.
#[derive(Debug, Default)]
pub struct NodeFold(BTreeMap<NodeInfo, Vec<String>>);

impl NodeFold {
    pub fn add(&mut self, node: NodeFacts) {
        self.0
            .entry(node.status.node_info)
            .or_default()
            .push(node.metadata.name);
    }

    pub fn finish(self) -> Vec<NodeGroup> {
        self.0
            .into_iter()
            .map(|(info, mut names)| {
                names.sort();
                let kernel = if info.operating_system.eq_ignore_ascii_case("windows") {
                    None
                } else {
                    KernelVersion::parse(&info.kernel_version)
                };
                NodeGroup {
                    kernel,
                    kernel_version: info.kernel_version,
                    os_image: info.os_image,
                    operating_system: info.operating_system,
                    architecture: info.architecture,
                    kubelet_version: info.kubelet_version,
                    container_runtime_version: info.container_runtime_version,
                    names,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, kernel: &str, os: &str) -> NodeFacts {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": {"nodeInfo": {
                "kernelVersion": kernel, "osImage": "Amazon Linux 2", "operatingSystem": os,
                "architecture": "amd64", "kubeletVersion": "v1.29.6-eks-1552ad0",
                "containerRuntimeVersion": "containerd://1.7.11"}}
        }))
        .unwrap()
    }

    #[test]
    fn identical_nodes_share_a_group_and_windows_has_no_linux_kernel() {
        let mut fold = NodeFold::default();
        fold.add(node("b", "5.10.225-213.878.amzn2.x86_64", "linux"));
        fold.add(node("a", "5.10.225-213.878.amzn2.x86_64", "linux"));
        fold.add(node("w", "10.0.20348.2527", "windows"));
        let groups = fold.finish();
        assert_eq!(groups.len(), 2);
        let linux = groups.iter().find(|g| g.is_linux()).unwrap();
        assert_eq!(linux.names, ["a", "b"]);
        assert_eq!(linux.kernel.as_ref().unwrap().to_string(), "5.10.225");
        let windows = groups.iter().find(|g| !g.is_linux()).unwrap();
        assert_eq!(windows.kernel, None);
        assert_eq!(windows.kernel_version, "10.0.20348.2527");
    }

    #[test]
    fn a_node_without_status_is_still_counted() {
        let mut fold = NodeFold::default();
        fold.add(serde_json::from_str(r#"{"metadata":{"name":"new"},"status":null}"#).unwrap());
        let groups = fold.finish();
        assert_eq!(groups[0].names, ["new"]);
        assert_eq!(groups[0].kernel, None);
    }
}
