//! The whole CLI as a person sees it, in snapshots (tests/it/snapshots/): help texts, usage errors,
//! `version`, completions; terminal manners (colour, `-q`/`-v`, closed pipes); and the plugin run
//! through the real kubectl. Every run gets a clean environment: HOME and KUBECONFIG point into a
//! temporary directory, no colour variables, and a fixed help width.
//!
//! Each snapshot holds one whole run: `exit: N`, then stdout, then stderr.

use std::ffi::OsStr;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = "kubectl-meshup";
/// Commands and subcommands that must each have a help text with examples.
const COMMANDS: [&[&str]; 12] = [
    &[],
    &["check"],
    &["snapshot"],
    &["plan"],
    &["plan", "show"],
    &["apply"],
    &["fleet"],
    &["version"],
    &["compat"],
    &["compat", "update"],
    &["compat", "show"],
    &["completion"],
];
const SEED_SNAPSHOT: &str = "tests/fixtures/snapshots/gloo-mesh-istio-1-9-k8s-1-22.yaml";
const EXAMPLE_SNAPSHOT: &str = "examples/istio-1.20-eks.yaml";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin(BIN)
}

/// A clean environment for one run: its HOME (with no kubeconfig) lives as long as this value.
struct CleanEnv {
    home: tempfile::TempDir,
}

impl CleanEnv {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `program` with only the variables a run should see; cwd is the repository, so the fixture
    /// paths in snapshots stay short.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("no-kubeconfig"))
            .env("COLUMNS", "100")
            .current_dir(repo())
            .stdin(Stdio::null());
        cmd
    }

    fn meshup(&self) -> Command {
        self.command(binary())
    }
}

fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let clean = CleanEnv::new();
    clean
        .meshup()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("kubectl-meshup runs")
}

/// One run as text: exit code, stdout, stderr.
fn transcript(out: &Output) -> String {
    let code = out
        .status
        .code()
        .map_or_else(|| format!("{:?}", out.status), |c| c.to_string());
    format!(
        "exit: {code}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn has_escape_codes(bytes: &[u8]) -> bool {
    bytes.contains(&0x1b)
}

fn snapshot_name(prefix: &str, words: &[&str]) -> String {
    if words.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}_{}", words.join("_"))
    }
}

// ---------------------------------------------------------------------------------------------
// help

#[test]
fn every_command_has_help_with_kubectl_usage_and_examples() {
    for words in COMMANDS {
        let mut args = words.to_vec();
        args.push("--help");
        let out = run(&args);
        let usage = format!("Usage: kubectl meshup {}", words.join(" "));
        let help = stdout(&out);
        assert!(out.status.success(), "{}", transcript(&out));
        assert!(help.contains(usage.trim_end()), "{words:?}: {help}");
        assert!(help.contains("\nExamples:\n"), "{words:?} has no examples");
        assert!(out.stderr.is_empty(), "{words:?}: {}", stderr(&out));
        insta::assert_snapshot!(snapshot_name("help", words), transcript(&out));
    }
}

#[test]
fn the_help_subcommand_shows_the_same_text_as_the_help_flag() {
    for words in COMMANDS {
        let mut via_flag = words.to_vec();
        via_flag.push("--help");
        // `help plan show` for `plan show --help`.
        let mut via_subcommand = vec!["help"];
        via_subcommand.extend_from_slice(words);
        let (flag, subcommand) = (run(&via_flag), run(&via_subcommand));
        assert!(subcommand.status.success(), "{}", transcript(&subcommand));
        assert_eq!(
            stdout(&subcommand),
            stdout(&flag),
            "`help {}` differs from `{} --help`",
            words.join(" "),
            words.join(" ")
        );
    }
}

#[test]
fn short_help_is_the_one_line_summary_of_long_help() {
    let short = stdout(&run(&["plan", "-h"]));
    let long = stdout(&run(&["plan", "--help"]));
    assert!(short.contains("Examples:"), "{short}");
    assert!(!short.contains("Possible values:"), "{short}");
    assert!(
        long.contains("Possible values:\n          - canary:"),
        "{long}"
    );
}

#[test]
fn global_options_are_listed_apart_from_the_commands_own() {
    let help = stdout(&run(&["check", "--help"]));
    let (own, rest) = help
        .split_once("\nGlobal options:\n")
        .expect("a Global options section");
    let global = rest.split("\n\n").next().unwrap_or_default();
    assert!(
        own.contains("--snapshot <FILE>") && !own.contains("--kubeconfig"),
        "{own}"
    );
    assert!(
        global.contains("--kubeconfig <FILE>") && !global.contains("--snapshot"),
        "{global}"
    );
}

// ---------------------------------------------------------------------------------------------
// usage errors: exit 2, clap's message, the command's usage line, nothing on stdout

#[test]
fn usage_errors_exit_2_with_claps_message() {
    // Clap puts the command's usage line under errors about the command line's shape (the line for
    // the arguments at fault); under a bad value it names the accepted values instead.
    const TOP: Option<&str> = Some("kubectl meshup [OPTIONS] <COMMAND>");
    const VALUES: Option<&str> = None;
    let cases: [(&str, &[&str], Option<&str>); 13] = [
        ("unknown_subcommand", &["upgrade"], TOP),
        ("misspelt_subcommand", &["chek"], TOP),
        (
            "unknown_flag",
            &["check", "--bogus"],
            Some("kubectl meshup check [OPTIONS]"),
        ),
        (
            "flag_of_another_command",
            &["check", "--to", "istio=1.24"],
            Some("kubectl meshup check "),
        ),
        (
            "missing_plan_file",
            &["plan", "show"],
            Some("kubectl meshup plan show <PLAN_FILE>"),
        ),
        (
            "apply_without_plan_or_target",
            &["apply"],
            Some("kubectl meshup apply <PLAN_FILE>"),
        ),
        (
            "missing_shell",
            &["completion"],
            Some("kubectl meshup completion <SHELL>"),
        ),
        (
            "verbose_and_quiet",
            &["check", "-v", "-q"],
            Some("kubectl meshup check "),
        ),
        (
            "output_format_the_command_does_not_write",
            &["check", "-o", "markdown"],
            Some("kubectl meshup check [OPTIONS]"),
        ),
        (
            "output_format_for_a_command_writing_none",
            &["completion", "bash", "-o", "json"],
            Some("kubectl meshup completion [OPTIONS] <SHELL>"),
        ),
        ("unknown_shell", &["completion", "tcsh"], VALUES),
        ("unknown_output_format", &["check", "-o", "xml"], VALUES),
        ("bad_date", &["check", "--date", "June"], VALUES),
    ];
    for (name, args, usage) in cases {
        let out = run(args);
        insta::assert_snapshot!(format!("usage_error_{name}"), transcript(&out));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", transcript(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(
            err.ends_with("For more information, try '--help'.\n"),
            "{args:?}: {err}"
        );
        match usage {
            Some(usage) => assert!(
                err.contains(&format!("\nUsage: {usage}")),
                "{args:?}: {err}"
            ),
            None => assert!(
                err.contains("[possible values: ") || err.contains("invalid value"),
                "{args:?}: {err}"
            ),
        }
    }
}

#[test]
fn no_command_shows_the_help_on_stderr_and_exits_2() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(stderr(&out), stdout(&run(&["--help"])));
}

#[test]
fn a_format_the_command_does_not_write_is_refused_before_anything_is_read() {
    // The snapshot file does not exist: the format is refused first, as clap refuses a bad value.
    let out = run(&["plan", "show", "no-such-plan.yaml", "-o", "xml"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    let out = run(&["snapshot", "-o", "table"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(
        stderr(&out).contains("`snapshot` writes -o yaml|json"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// version

/// The values that change from build to build, replaced by placeholders in snapshots.
struct BuildFacts {
    version: String,
    commit: String,
    data_date: String,
}

impl BuildFacts {
    fn read() -> Self {
        let out = run(&["version", "-o", "json"]);
        assert!(out.status.success(), "{}", transcript(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        let text = |v: &serde_json::Value| v.as_str().expect("a string").to_string();
        Self {
            version: text(&doc["version"]),
            commit: text(&doc["commit"]),
            data_date: text(&doc["compatData"]["date"]),
        }
    }

    fn redact(&self, text: &str) -> String {
        // YAML quotes a commit that reads as a number (`"6683558"`), not one with letters.
        text.replace(&format!("commit: \"{}\"", self.commit), "commit: [COMMIT]")
            .replace(&self.commit, "[COMMIT]")
            .replace(&self.version, "[VERSION]")
            .replace(&self.data_date, "[DATA-DATE]")
    }
}

#[test]
fn version_names_the_tool_commit_and_compatibility_data() {
    let facts = BuildFacts::read();
    assert_eq!(facts.version, env!("CARGO_PKG_VERSION"));
    assert!(
        facts.commit == "unknown" || facts.commit.chars().all(|c| c.is_ascii_hexdigit()),
        "commit {}",
        facts.commit
    );
    let date = facts.data_date.as_bytes();
    assert!(
        date.len() == 10 && date[4] == b'-' && date[7] == b'-',
        "data date {}",
        facts.data_date
    );
    for (name, args) in [
        ("version", &["version"][..]),
        ("version_json", &["version", "-o", "json"]),
        ("version_yaml", &["version", "-o", "yaml"]),
        ("version_flag", &["--version"]),
    ] {
        let out = run(args);
        assert!(out.status.success(), "{}", transcript(&out));
        insta::assert_snapshot!(name, facts.redact(&transcript(&out)));
    }
}

// ---------------------------------------------------------------------------------------------
// completion

#[test]
fn completion_scripts_generate_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run(&["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", transcript(&out));
        assert!(out.stderr.is_empty(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains(BIN),
            "{shell}: the script does not name {BIN}"
        );
        for sub in ["check", "plan", "apply", "version"] {
            assert!(script.contains(sub), "{shell}: no `{sub}` in the script");
        }
    }
}

#[test]
fn the_bash_completion_script_is_valid_bash() {
    let clean = CleanEnv::new();
    let script = clean.home.path().join("kubectl-meshup.bash");
    std::fs::write(&script, run(&["completion", "bash"]).stdout).expect("write script");
    let out = clean
        .command("bash")
        .env("PATH", "/usr/bin:/bin")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", transcript(&out));
}

// ---------------------------------------------------------------------------------------------
// terminal manners: colour

fn check_table(extra_args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["check", "--date", "2025-06-30", "--snapshot", SEED_SNAPSHOT];
    args.extend_from_slice(extra_args);
    let out = run_with(&args, env);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(!out.stdout.is_empty(), "no table");
    out
}

#[test]
fn on_a_pipe_output_has_no_escape_codes() {
    for args in [
        &["check", "--date", "2025-06-30", "--snapshot", SEED_SNAPSHOT][..],
        &["plan", "--snapshot", EXAMPLE_SNAPSHOT, "--to", "istio=1.24"],
        &["--help"],
        &["check", "--bogus"],
    ] {
        // A terminal type that can colour: only the pipe keeps the colour away.
        let out = run_with(args, &[("TERM", "xterm-256color")]);
        assert!(!has_escape_codes(&out.stdout), "{args:?}: stdout");
        assert!(!has_escape_codes(&out.stderr), "{args:?}: stderr");
    }
}

#[test]
fn colour_follows_the_flags_then_no_color_then_the_terminal() {
    let coloured =
        |extra: &[&str], env: &[(&str, &str)]| has_escape_codes(&check_table(extra, env).stdout);
    // --color always colours even a pipe, and an explicit choice wins over NO_COLOR (as uv).
    assert!(coloured(&["--color", "always"], &[]));
    assert!(coloured(&["--color", "always"], &[("NO_COLOR", "1")]));
    // --no-color wins over everything.
    assert!(!coloured(&["--color", "always", "--no-color"], &[]));
    assert!(!coloured(&["--no-color"], &[("FORCE_COLOR", "1")]));
    // auto: FORCE_COLOR colours a pipe, but NO_COLOR beats it.
    assert!(coloured(&[], &[("FORCE_COLOR", "1")]));
    assert!(!coloured(&[], &[("FORCE_COLOR", "1"), ("NO_COLOR", "1")]));
    assert!(!coloured(&["--color", "never"], &[("FORCE_COLOR", "1")]));
}

/// Runs `kubectl-meshup ARGS` with stdout and stderr on a terminal (util-linux `script` gives it a
/// pty); both arrive on the returned stdout.
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> Output {
    let clean = CleanEnv::new();
    let command_line = std::iter::once(binary().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    clean
        .command("script")
        .env("PATH", "/usr/bin:/bin")
        .env("TERM", "xterm-256color")
        .envs(env.iter().copied())
        .args([
            "--quiet",
            "--return",
            "--command",
            &command_line,
            "/dev/null",
        ])
        .output()
        .expect("util-linux `script` gives the run a terminal")
}

#[test]
fn on_a_terminal_the_table_is_coloured_unless_no_color_says_otherwise() {
    let args = ["check", "--date", "2025-06-30", "--snapshot", SEED_SNAPSHOT];
    let out = on_a_terminal(&args, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(has_escape_codes(&out.stdout), "no colour on a terminal");
    let out = on_a_terminal(&args, &[("NO_COLOR", "1")]);
    assert_eq!(out.status.code(), Some(3), "{}", transcript(&out));
    assert!(!has_escape_codes(&out.stdout), "NO_COLOR ignored");
    let mut no_color = args.to_vec();
    no_color.push("--no-color");
    let out = on_a_terminal(&no_color, &[]);
    assert!(!has_escape_codes(&out.stdout), "--no-color ignored");
    let out = on_a_terminal(&args, &[("TERM", "dumb")]);
    assert!(!has_escape_codes(&out.stdout), "TERM=dumb coloured");
}

#[test]
fn on_a_terminal_no_color_also_plainens_help_and_usage_errors() {
    // Clap styles help and errors itself, before the flags are parsed.
    assert!(has_escape_codes(&on_a_terminal(&["--help"], &[]).stdout));
    for args in [
        &["--no-color", "--help"][..],
        &["check", "--help", "--color=never"],
        &["--no-color", "check", "--bogus"],
        &["--no-color", "check", "-o", "markdown"],
    ] {
        let out = on_a_terminal(args, &[]);
        assert!(
            !has_escape_codes(&out.stdout),
            "{args:?}: {}",
            transcript(&out)
        );
    }
    let out = on_a_terminal(&["--help"], &[("NO_COLOR", "1")]);
    assert!(!has_escape_codes(&out.stdout));
}

// ---------------------------------------------------------------------------------------------
// terminal manners: -q, -v

/// A kubeconfig whose server refuses connections and that skips TLS verification, which the tool
/// warns about: one warning, then an error.
fn refusing_insecure_kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("insecure-kubeconfig");
    std::fs::write(
        &path,
        "\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
users:
- name: nobody
  user: {token: not-a-secret}
",
    )
    .expect("write kubeconfig");
    path
}

#[test]
fn quiet_silences_warnings_but_keeps_the_error() {
    let clean = CleanEnv::new();
    let kubeconfig = refusing_insecure_kubeconfig(clean.home.path());
    let check = |quiet: bool| {
        let mut cmd = clean.meshup();
        cmd.args(["check", "--request-timeout", "1s", "--kubeconfig"])
            .arg(&kubeconfig);
        if quiet {
            cmd.arg("-q");
        }
        cmd.output().expect("kubectl-meshup runs")
    };
    let loud = check(false);
    assert_eq!(loud.status.code(), Some(1), "{}", transcript(&loud));
    let loud_err = stderr(&loud);
    assert!(
        loud_err.contains("WARN") && loud_err.contains("insecure-skip-tls-verify"),
        "{loud_err}"
    );

    let quiet = check(true);
    assert_eq!(quiet.status.code(), Some(1), "{}", transcript(&quiet));
    let quiet_err = stderr(&quiet);
    assert_eq!(quiet_err.lines().count(), 1, "{quiet_err}");
    assert!(
        quiet_err.starts_with("error: cannot reach the API server of context \"nowhere\""),
        "{quiet_err}"
    );
    assert!(quiet.stdout.is_empty() && loud.stdout.is_empty());
}

#[test]
fn verbose_logs_go_to_stderr_and_never_change_stdout() {
    let args = [
        "plan",
        "--snapshot",
        EXAMPLE_SNAPSHOT,
        "--to",
        "istio=1.24",
        "-o",
        "json",
    ];
    let plain = run(&args);
    let mut verbose_args = args.to_vec();
    verbose_args.push("-v");
    let verbose = run(&verbose_args);
    assert!(plain.status.success() && verbose.status.success());
    assert!(plain.stderr.is_empty(), "{}", stderr(&plain));
    let logs = stderr(&verbose);
    assert!(
        logs.contains("INFO") && logs.contains("read snapshot"),
        "{logs}"
    );
    // The plan carries its creation time, and its integrity hash covers that time (two runs a second
    // apart differ there, as seen on a loaded machine); everything else is the same document.
    let doc = |out: &Output| {
        let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        doc["metadata"]["createdAt"] = serde_json::Value::Null;
        doc["integrity"] = serde_json::Value::Null;
        doc
    };
    assert_eq!(doc(&plain), doc(&verbose));
    assert!(!stdout(&verbose).contains("INFO"));
}

// ---------------------------------------------------------------------------------------------
// terminal manners: a closed pipe is not an error

/// Runs with stdout a pipe whose reading end is closed before the program writes.
fn with_stdout_closed(args: &[&str], stderr_too: bool) -> Output {
    let clean = CleanEnv::new();
    let mut child = clean
        .meshup()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl-meshup starts");
    drop(child.stdout.take());
    if stderr_too {
        drop(child.stderr.take());
    }
    child.wait_with_output().expect("kubectl-meshup ends")
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    for args in [
        &["plan", "--snapshot", EXAMPLE_SNAPSHOT, "--to", "istio=1.24"][..],
        &[
            "plan",
            "--snapshot",
            EXAMPLE_SNAPSHOT,
            "--to",
            "istio=1.24",
            "-o",
            "yaml",
        ],
        &[
            "check",
            "--date",
            "2025-06-30",
            "--snapshot",
            EXAMPLE_SNAPSHOT,
        ],
        &["version", "-o", "json"],
        &["completion", "zsh"],
        &["--help"],
    ] {
        let out = with_stdout_closed(args, false);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", transcript(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_closed_stderr_loses_messages_but_keeps_the_exit_code() {
    let clean = CleanEnv::new();
    let plan_file = clean.home.path().join("plan.yaml");
    let plan_file = plan_file.to_str().expect("UTF-8 temp path");
    // `plan --out` says on stderr where the plan went; a failing check says why on stderr.
    for (args, code) in [
        (
            &[
                "plan",
                "--snapshot",
                EXAMPLE_SNAPSHOT,
                "--to",
                "istio=1.24",
                "--out",
                plan_file,
            ][..],
            0,
        ),
        (&["check", "--snapshot", "no-such-snapshot.yaml"], 1),
    ] {
        let out = with_stdout_closed(args, true);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
    }
}

#[test]
fn plan_piped_into_head_exits_0_with_nothing_on_stderr() {
    let clean = CleanEnv::new();
    let mut child = clean
        .meshup()
        .args(["plan", "--snapshot", EXAMPLE_SNAPSHOT, "--to", "istio=1.24"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl-meshup starts");
    // `| head -1`: read one line, then close.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).expect("read stdout") == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    drop(stdout);
    let out = child.wait_with_output().expect("kubectl-meshup ends");
    assert!(String::from_utf8_lossy(&first).starts_with("Upgrade plan: istio 1.24"));
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// through kubectl

/// A PATH on which kubectl finds exactly one `kubectl-meshup`, the one under test, and nothing else
/// named `kubectl-*` that is not a plugin (target/debug also holds `kubectl-meshup.d`).
struct PluginPath {
    _dir: tempfile::TempDir,
    path: std::ffi::OsString,
    cache: tempfile::TempDir,
}

impl PluginPath {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join(BIN);
        std::os::unix::fs::symlink(binary(), &link).expect("link the plugin");
        let kubectl = kubectl();
        let kubectl_dir = kubectl.parent().expect("kubectl's directory").to_path_buf();
        let path = std::env::join_paths([
            dir.path().to_path_buf(),
            kubectl_dir,
            "/usr/bin".into(),
            "/bin".into(),
        ])
        .expect("PATH");
        Self {
            _dir: dir,
            path,
            cache: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn kubectl(&self, clean: &CleanEnv, args: &[&str]) -> Output {
        clean
            .command(kubectl())
            .env("PATH", &self.path)
            .env("KUBECACHEDIR", self.cache.path())
            .args(args)
            .output()
            .expect("kubectl runs")
    }
}

/// `KUBECTL` if set, else the `kubectl` found on this process's PATH (here gcloud's dispatcher in
/// /usr/bin; on a machine where CI installed it from PyPI, Python's scripts directory). The tests run it
/// by absolute path because they give it a PATH of their own.
fn kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return PathBuf::from(k);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .expect("kubectl on PATH (CI installs one when the machine has none)")
}

#[test]
fn kubectl_plugin_list_finds_the_plugin_without_warnings() {
    let plugin = PluginPath::new();
    let clean = CleanEnv::new();
    let out = plugin.kubectl(&clean, &["plugin", "list"]);
    assert!(out.status.success(), "{}", transcript(&out));
    assert!(out.stderr.is_empty(), "warnings: {}", stderr(&out));
    let listed: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.contains("kubectl-"))
        .map(str::to_string)
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].ends_with("/kubectl-meshup"), "{listed:?}");
}

#[test]
fn kubectl_meshup_help_shows_the_kubectl_usage() {
    let plugin = PluginPath::new();
    let clean = CleanEnv::new();
    let out = plugin.kubectl(&clean, &["meshup", "--help"]);
    assert!(out.status.success(), "{}", transcript(&out));
    assert!(stdout(&out).contains("Usage: kubectl meshup [OPTIONS] <COMMAND>"));
    // kubectl execs the plugin: the same help as running the binary.
    assert_eq!(stdout(&out), stdout(&run(&["--help"])));
    let out = plugin.kubectl(&clean, &["meshup", "plan", "show", "--help"]);
    assert!(stdout(&out).contains("Usage: kubectl meshup plan show"));
}

#[test]
fn kubectl_meshup_works_from_any_directory_and_keeps_exit_codes() {
    let plugin = PluginPath::new();
    let clean = CleanEnv::new();
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let mut cmd = clean.command(kubectl());
    cmd.env("PATH", &plugin.path)
        .env("KUBECACHEDIR", plugin.cache.path())
        .current_dir(elsewhere.path());
    let out = cmd
        .args(["meshup", "version", "-o", "json"])
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{}", transcript(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    // On Unix kubectl execs the plugin, so a usage error is still 2.
    let out = plugin.kubectl(&clean, &["meshup", "check", "--bogus"]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    assert!(stderr(&out).contains("Usage: kubectl meshup check"));
}
