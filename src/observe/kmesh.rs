//! Kmesh: its DaemonSet, version and mode. The chart renders the daemon's flags into one shell string
//! (`command: [/bin/sh, -c]`, `args: ["./start_kmesh.sh --mode=dual-engine --enable-bypass=false"]`);
//! older releases spelled the modes `workload` and `ads`, and the oldest used `-enable-ads=true|false`.

use k8s_openapi::api::apps::v1::DaemonSet;

use super::workload::{from_daemonset, pick_container};
use crate::snapshot::{Kmesh, KmeshMode};

pub const CONTAINER: &str = "kmesh";

pub fn from_daemonset_facts(ds: &DaemonSet) -> Kmesh {
    let container = pick_container(ds.spec.template.spec.as_ref(), CONTAINER);
    let words: Vec<String> = container
        .map(|c| {
            c.command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .flat_map(|a| a.split_whitespace().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let (mode, mode_source) = mode_from_args(&words);
    Kmesh {
        daemonset: from_daemonset(ds, CONTAINER),
        mode,
        mode_source,
    }
}

/// The mode and the argument it came from.
pub fn mode_from_args(words: &[String]) -> (KmeshMode, String) {
    for (i, word) in words.iter().enumerate() {
        let flag = word.trim_start_matches('-');
        if !word.starts_with('-') {
            continue;
        }
        if let Some(value) = flag.strip_prefix("mode=") {
            return (mode_named(value), format!("container argument {word}"));
        }
        if flag == "mode"
            && let Some(value) = words.get(i + 1)
        {
            return (
                mode_named(value),
                format!("container argument {word} {value}"),
            );
        }
        if let Some(value) = flag.strip_prefix("enable-ads=") {
            let mode = if value.eq_ignore_ascii_case("false") {
                KmeshMode::DualEngine
            } else {
                KmeshMode::KernelNative
            };
            return (mode, format!("container argument {word}"));
        }
    }
    (
        KmeshMode::Unknown(String::new()),
        "no --mode argument on the kmesh container".to_string(),
    )
}

fn mode_named(value: &str) -> KmeshMode {
    match value.trim_matches(['"', '\'']) {
        "dual-engine" | "workload" => KmeshMode::DualEngine,
        "kernel-native" | "ads" => KmeshMode::KernelNative,
        other => KmeshMode::Unknown(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn modes_old_and_new() {
        let cases = [
            (
                "/bin/sh -c ./start_kmesh.sh --mode=dual-engine --enable-bypass=false",
                KmeshMode::DualEngine,
            ),
            (
                "./start_kmesh.sh --mode=kernel-native",
                KmeshMode::KernelNative,
            ),
            ("./start_kmesh.sh --mode=workload", KmeshMode::DualEngine),
            ("./start_kmesh.sh -mode=ads", KmeshMode::KernelNative),
            ("./start_kmesh.sh --mode ads", KmeshMode::KernelNative),
            (
                "./start_kmesh.sh -enable-kmesh -enable-ads=false",
                KmeshMode::DualEngine,
            ),
            (
                "./start_kmesh.sh --mode=turbo",
                KmeshMode::Unknown("turbo".into()),
            ),
        ];
        for (args, want) in cases {
            assert_eq!(mode_from_args(&words(args)).0, want, "{args}");
        }
        let (mode, source) = mode_from_args(&words("./start_kmesh.sh"));
        assert_eq!(mode, KmeshMode::Unknown(String::new()));
        assert!(source.contains("no --mode"));
    }
}
