//! External tools (helm, istioctl, meshctl only — the plan's `Tool` enum): found on a search path by
//! absolute path (relative entries, `.` or an empty one, are never used), pointed at the plan's cluster
//! explicitly ([`cluster_flags`], [`cluster_env`]), run as an argument vector (never through a shell),
//! output streamed line by line, bounded by a timeout.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::client::KubeconfigFiles;
use crate::plan::{Tool, command_line};
use crate::version::Version;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("`{command}` could not be started: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {seconds}s and was stopped")]
    Timeout { command: String, seconds: u64 },
    #[error("`{command}` exited with {status}{}", last_lines(.tail))]
    Failed {
        command: String,
        status: String,
        tail: Vec<String>,
    },
    #[error("`{command}` output could not be read: {source}")]
    Output {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

fn last_lines(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.join(" | "))
    }
}

/// A tool that is not on any absolute entry of the search path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The relative entries (`.`, an empty entry, `bin`) under which the tool exists but was not used,
    /// as the search path spells them (an empty entry as `""`).
    pub only_relative: Vec<String>,
}

impl NotFound {
    /// `istioctl is not on an absolute PATH entry (found only under "." and "", relative entries,
    /// which apply never uses: they depend on the working directory)`.
    pub fn describe(&self, program: &str) -> String {
        if self.only_relative.is_empty() {
            return format!("{program} is not on PATH");
        }
        let entries: Vec<String> = self
            .only_relative
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        format!(
            "{program} is not on an absolute PATH entry (found only under {}, relative PATH entries, which apply never uses: they depend on the working directory)",
            entries.join(" and ")
        )
    }
}

/// The executable for `tool` on `search_path` (the `PATH` syntax; `None`: the process's `PATH`), by
/// absolute path. Relative entries (an empty one, `.`, `bin`) name the working directory or a place in
/// it, so a file dropped there would run instead of the real tool: they are skipped, and named in the
/// answer when the tool is found only there.
pub fn locate(tool: Tool, search_path: Option<&OsStr>) -> Result<PathBuf, NotFound> {
    let from_env;
    let path = match search_path {
        Some(p) => p,
        None => {
            from_env = std::env::var_os("PATH").unwrap_or_default();
            from_env.as_os_str()
        }
    };
    let mut only_relative = Vec::new();
    for dir in std::env::split_paths(path) {
        let candidate = dir.join(tool.program());
        if !is_executable(&candidate) {
            continue;
        }
        if dir.is_absolute() {
            return Ok(candidate);
        }
        let entry = dir.display().to_string();
        if !only_relative.contains(&entry) {
            only_relative.push(entry);
        }
    }
    Err(NotFound { only_relative })
}

/// The flags that point `program` at `context` (and at `kubeconfig`, one file, when given), as that
/// program spells them, to go after the plan's `args`. The one place that knows them:
/// `kubectl --kubeconfig F --context C`, `istioctl --kubeconfig F --context C`,
/// `helm --kubeconfig F --kube-context C`, `meshctl --kubeconfig F --kubecontext C`. A meshctl command
/// that names its contexts itself (`cluster register --mgmt-context A --remote-context B`) has no
/// `--kubecontext` and gets the kubeconfig only.
pub fn cluster_flags(
    program: Program,
    args: &[String],
    kubeconfig: Option<&Path>,
    context: &str,
) -> Vec<String> {
    let context_flag = match program {
        Program::Kubectl | Program::Tool(Tool::Istioctl) => Some("--context"),
        Program::Tool(Tool::Helm) => Some("--kube-context"),
        Program::Tool(Tool::Meshctl) => {
            let names_its_contexts = args.iter().any(|a| {
                ["--mgmt-context", "--remote-context"]
                    .iter()
                    .any(|f| a == f || a.starts_with(&format!("{f}=")))
            });
            (!names_its_contexts).then_some("--kubecontext")
        }
    };
    let mut flags = Vec::new();
    // A path that is not UTF-8 cannot be an argument here; the tool then finds it in KUBECONFIG.
    if let Some(file) = kubeconfig.and_then(Path::to_str) {
        flags.extend(["--kubeconfig".to_string(), file.to_string()]);
    }
    if let Some(flag) = context_flag {
        flags.extend([flag.to_string(), context.to_string()]);
    }
    flags
}

/// What a tool run by apply is given: the plan's arguments, then the flags that select the plan's
/// cluster ([`cluster_flags`], with `--kubeconfig` when apply reads one file), and `KUBECONFIG` set to
/// exactly apply's files (several files cannot be one flag; and whatever the tool reads beyond its
/// flags, such as meshctl's `--remote-context`, comes from the same files).
pub fn cluster_command(
    tool: Tool,
    args: &[String],
    kubeconfig: &KubeconfigFiles,
    context: &str,
) -> (Vec<String>, Vec<(String, OsString)>) {
    let single = match kubeconfig.files.as_slice() {
        [one] => Some(one.as_path()),
        _ => None,
    };
    let mut full = args.to_vec();
    full.extend(cluster_flags(Program::Tool(tool), args, single, context));
    let env = cluster_env(kubeconfig);
    (full, env)
}

/// `KUBECONFIG` for a tool: apply's files, exactly.
pub fn cluster_env(kubeconfig: &KubeconfigFiles) -> Vec<(String, OsString)> {
    if kubeconfig.files.is_empty() {
        Vec::new()
    } else {
        vec![("KUBECONFIG".to_string(), kubeconfig.joined())]
    }
}

/// A program a command line names: kubectl in hints, or one of the plan's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Kubectl,
    Tool(Tool),
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// What a finished tool printed on stdout when asked to capture it.
pub struct ToolOutput {
    pub stdout: String,
}

/// Run `program args` with `env` added to its environment. Each output line goes to `on_line` (stderr
/// lines always; stdout lines too unless `capture_stdout`, which keeps stdout for the caller instead).
/// The child is killed on timeout and when the returned future is dropped.
pub async fn run(
    program: &Path,
    display_name: &str,
    args: &[String],
    env: &[(String, OsString)],
    timeout: Duration,
    capture_stdout: bool,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<ToolOutput, ToolError> {
    let command = command_line(display_name, args);
    let mut child = Command::new(program)
        .args(args.iter().map(OsString::from))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ToolError::Spawn {
            command: command.clone(),
            source,
        })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ToolError::Spawn {
            command,
            source: std::io::Error::other("no pipes to the child"),
        });
    };
    let mut out_lines = BufReader::new(stdout).lines();
    let mut err_lines = BufReader::new(stderr).lines();
    let mut captured = String::new();
    let mut tail: Vec<String> = Vec::new();
    let output_err = |source| ToolError::Output {
        command: command.clone(),
        source,
    };

    let streaming = async {
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                line = out_lines.next_line(), if out_open => match line.map_err(output_err)? {
                    Some(l) if capture_stdout => { captured.push_str(&l); captured.push('\n'); }
                    Some(l) => { remember(&mut tail, &l); on_line(&l); }
                    None => out_open = false,
                },
                line = err_lines.next_line(), if err_open => match line.map_err(output_err)? {
                    Some(l) => { remember(&mut tail, &l); on_line(&l); }
                    None => err_open = false,
                },
            }
        }
        child.wait().await.map_err(output_err)
    };
    let status = match tokio::time::timeout(timeout, streaming).await {
        Ok(status) => status?,
        Err(_) => {
            // `child` is dropped with the timed-out future's borrow ended; kill_on_drop stops it.
            return Err(ToolError::Timeout {
                command,
                seconds: timeout.as_secs(),
            });
        }
    };
    if status.success() {
        Ok(ToolOutput { stdout: captured })
    } else {
        Err(ToolError::Failed {
            command,
            status: status.to_string(),
            tail,
        })
    }
}

/// The version a tool's version command ([`Tool::version_args`]) reports as its own, the client's,
/// read from what it printed. Pure.
/// - JSON (meshctl 1.x): `client.version`, whatever the key case and wherever the server part is:
///   `{"client":{"version":"1.1.2"},"server":[...component images with their versions...]}`;
/// - text naming the client: the first version after the word `client`: `client version: 1.24.6`
///   (istioctl), `Client: {"version":"1.1.2"}` (some meshctl releases);
/// - otherwise the first version in the output: `1.10.0` (older istioctl), `v3.14.4+g81c902a` (helm).
///
/// A version here has a patch (`1.24.6`, `v1.1.2`, `1.24.6-distroless`); `1.24` alone is not one.
pub fn reported_version(output: &str) -> Option<Version> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(output.trim()) {
        return client_version_in_json(&json);
    }
    let lower = output.to_ascii_lowercase();
    if let Some(at) = lower.find("client")
        && let Some(v) = first_version(&output[at..])
    {
        return Some(v);
    }
    first_version(output)
}

fn client_version_in_json(json: &serde_json::Value) -> Option<Version> {
    let field = |v: &'_ serde_json::Value, key: &str| -> Option<serde_json::Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let version = field(&field(json, "client")?, "version")?;
    first_version(version.as_str()?)
}

/// The first `MAJOR.MINOR.PATCH` token (optional `v`, any suffix) in `text`.
fn first_version(text: &str) -> Option<Version> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "._+-".contains(c)))
        .filter(|token| {
            let digits = token.strip_prefix('v').unwrap_or(token);
            digits.starts_with(|c: char| c.is_ascii_digit())
        })
        .filter_map(Version::parse_prefix)
        .find(|(v, _)| v.patch.is_some())
        .map(|(v, _)| v)
}

fn remember(tail: &mut Vec<String>, line: &str) {
    const KEEP: usize = 3;
    if tail.len() == KEEP {
        tail.remove(0);
    }
    tail.push(line.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(output: &str) -> Option<String> {
        reported_version(output).map(|v| v.to_string())
    }

    #[test]
    fn istioctl_prints_its_client_version_with_or_without_a_label() {
        assert_eq!(
            reported("client version: 1.24.6\n").as_deref(),
            Some("1.24.6")
        );
        assert_eq!(reported("1.10.0\n").as_deref(), Some("1.10.0"));
        assert_eq!(
            reported("no running Istio pods in \"istio-system\"\n1.22.3-distroless\n").as_deref(),
            Some("1.22.3")
        );
    }

    #[test]
    fn meshctl_json_names_the_client_version_not_the_servers_components() {
        let json = r#"{
  "server": [{"Namespace": "gloo-mesh", "components": [{"componentName": "discovery",
    "images": [{"name": "discovery", "domain": "gcr.io", "path": "gloo-mesh/discovery", "version": "0.10.6"}]}]}],
  "Client": {"version": "1.0.0"}
}"#;
        assert_eq!(reported(json).as_deref(), Some("1.0.0"));
        assert_eq!(
            reported(r#"{"client":{"version":"v1.1.2"}}"#).as_deref(),
            Some("1.1.2")
        );
        assert_eq!(reported(r#"{"server":[]}"#), None, "no client in the JSON");
    }

    #[test]
    fn a_labelled_client_line_wins_over_earlier_versions() {
        let text = "Server: {\"version\":\"0.10.6\"}\nClient: {\"version\":\"1.1.2\"}\n";
        assert_eq!(reported(text).as_deref(), Some("1.1.2"));
    }

    #[test]
    fn helm_short_versions_and_unreadable_output() {
        assert_eq!(reported("v3.14.4+g81c902a\n").as_deref(), Some("3.14.4"));
        assert_eq!(reported("version: 1.24\n"), None, "no patch, no version");
        assert_eq!(reported("command not found"), None);
        assert_eq!(reported(""), None);
    }

    #[test]
    fn a_tool_missing_from_the_search_path_is_not_found() {
        let empty = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            locate(Tool::Meshctl, Some(empty.path().as_os_str())),
            Err(NotFound {
                only_relative: vec![]
            })
        );
    }

    #[test]
    fn each_tool_gets_the_context_flag_it_spells() {
        let kc = Some(Path::new("/home/me/.kube/config"));
        let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cluster_flags(Program::Tool(Tool::Istioctl), &[], kc, "staging"),
            args(&[
                "--kubeconfig",
                "/home/me/.kube/config",
                "--context",
                "staging"
            ])
        );
        assert_eq!(
            cluster_flags(Program::Tool(Tool::Helm), &[], None, "staging"),
            args(&["--kube-context", "staging"])
        );
        assert_eq!(
            cluster_flags(Program::Tool(Tool::Meshctl), &args(&["check"]), kc, "mgmt"),
            args(&[
                "--kubeconfig",
                "/home/me/.kube/config",
                "--kubecontext",
                "mgmt"
            ])
        );
        let register = args(&[
            "cluster",
            "register",
            "--mgmt-context",
            "mgmt",
            "--remote-context",
            "remote",
        ]);
        assert_eq!(
            cluster_flags(Program::Tool(Tool::Meshctl), &register, kc, "mgmt"),
            args(&["--kubeconfig", "/home/me/.kube/config"]),
            "cluster register names its own contexts and has no --kubecontext"
        );
        assert_eq!(
            cluster_flags(Program::Kubectl, &[], None, "prod"),
            args(&["--context", "prod"])
        );
    }

    #[test]
    fn several_kubeconfig_files_go_in_the_environment_and_the_context_in_a_flag() {
        let files = KubeconfigFiles {
            files: vec!["/a/config".into(), "/b/config".into()],
            source: crate::client::KubeconfigSource::Env,
        };
        let (args, env) =
            cluster_command(Tool::Istioctl, &["install".to_string()], &files, "staging");
        assert_eq!(args, ["install", "--context", "staging"]);
        assert_eq!(
            env,
            [(
                "KUBECONFIG".to_string(),
                OsString::from("/a/config:/b/config")
            )]
        );
    }

    #[cfg(unix)]
    #[test]
    fn relative_path_entries_are_skipped_and_named() {
        use std::os::unix::fs::PermissionsExt;
        let work = tempfile::tempdir().expect("tempdir");
        let tool = work.path().join("istioctl");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // Relative entries are relative to the working directory; this test's is the crate's, so
        // point them at the temp dir with a relative path from here.
        let cwd = std::env::current_dir().expect("cwd");
        let relative = pathdiff(work.path(), &cwd);
        let search = OsString::from(format!(":{}:/nonexistent", relative.display()));
        let err = locate(Tool::Istioctl, Some(&search)).expect_err("not on an absolute entry");
        assert_eq!(err.only_relative, vec![relative.display().to_string()]);
        assert!(
            err.describe("istioctl")
                .starts_with("istioctl is not on an absolute PATH entry (found only under"),
            "{}",
            err.describe("istioctl")
        );
        let absolute = OsString::from(format!("{}:{}", relative.display(), work.path().display()));
        assert_eq!(locate(Tool::Istioctl, Some(&absolute)), Ok(tool));
    }

    /// `to` relative to `from` (both absolute), with `..` where needed.
    fn pathdiff(to: &Path, from: &Path) -> PathBuf {
        let to: Vec<_> = to.components().collect();
        let from: Vec<_> = from.components().collect();
        let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
        let mut out = PathBuf::new();
        for _ in common..from.len() {
            out.push("..");
        }
        for c in &to[common..] {
            out.push(c);
        }
        out
    }
}
