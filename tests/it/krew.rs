//! Distribution checks: the krew manifests pass krew-index's validation, the release script packages
//! what krew installs, and the `kubectl_complete-meshup` helper reaches `kubectl meshup __complete`.
//!
//! The validator mirrors kubernetes-sigs/krew (commit db921d5):
//! - `internal/index/validation/validate.go` (`ValidatePlugin`, `validatePlatform`, `validateFiles`,
//!   `validateSelector`), run by krew on every manifest it reads;
//! - `cmd/validate-krew-manifest/main.go`, the krew-index CI check (file name, supported platforms,
//!   overlapping selectors, a license file in every installed archive);
//! - `internal/installation/semver/version.go` (`Parse`: a leading `v`, then strict semantic version).
//!
//! Rules marked "project" are ours: they make the release complete (six platforms, the license and the
//! completion helper shipped) or keep krew's UI tidy, and are not enforced by krew itself.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------------------
// The manifest types, as in krew `pkg/index/types.go` (unknown fields are ignored there too).

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Plugin {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Metadata,
    spec: PluginSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginSpec {
    #[serde(default)]
    version: String,
    #[serde(default)]
    short_description: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    caveats: String,
    #[serde(default)]
    homepage: String,
    #[serde(default)]
    platforms: Vec<Platform>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Platform {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    sha256: String,
    selector: Option<LabelSelector>,
    files: Option<Vec<FileOperation>>,
    #[serde(default)]
    bin: String,
}

/// `metav1.LabelSelector`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<SelectorRequirement>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct SelectorRequirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct FileOperation {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

// ---------------------------------------------------------------------------------------------------------
// The rules.

/// `pkg/constants/constants.go`: `CurrentAPIVersion`, `PluginKind`, `ManifestExtension`.
const KREW_API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
const KREW_KIND: &str = "Plugin";
const MANIFEST_EXTENSION: &str = ".yaml";

/// `cmd/validate-krew-manifest/main.go:234-248` (`allPlatforms`): the pairs krew itself ships for.
const KREW_SUPPORTED_PLATFORMS: [(&str, &str); 11] = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// Project: the platforms every release of kubectl-meshup ships (issue 6).
const RELEASE_PLATFORMS: [(&str, &str); 6] = [
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
    ("windows", "arm64"),
];

/// `internal/index/validation/validate.go:39-41`: names Windows cannot use as file names.
const WINDOWS_FORBIDDEN_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// `cmd/validate-krew-manifest/main.go:171-180`: what counts as a license file (lower-cased).
const LICENSE_FILE_NAMES: [&str; 8] = [
    "license",
    "license.txt",
    "license.md",
    "licenses",
    "licenses.txt",
    "licenses.md",
    "copying",
    "copying.txt",
];

/// `cmd/krew/cmd/search.go:132,167`: `krew search` cuts a longer short description to 47 chars + "...".
const SEARCH_SHORT_DESCRIPTION_WIDTH: usize = 50;

/// The completion helper kubectl 1.26+ looks for (`plugin_completion.go`), shipped in every archive.
const COMPLETION_HELPER: &str = "kubectl_complete-meshup";

/// `validate.go:35,45-55`: `^[\w-]+$` (Go's `\w` is ASCII) and not a Windows device name.
fn is_safe_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !WINDOWS_FORBIDDEN_NAMES
            .iter()
            .any(|forbidden| forbidden.eq_ignore_ascii_case(name))
}

/// `validate.go:31`: `^[a-f0-9]{64}$`.
fn is_valid_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `semver/version.go:45-55`: a leading `v`, then a semantic version with all three parts.
fn semver_problem(version: &str) -> Option<String> {
    let Some(rest) = version.strip_prefix('v') else {
        return Some(format!("version string {version:?} not starting with 'v'"));
    };
    semver::Version::parse(rest)
        .err()
        .map(|e| format!("version {version:?} is not a semantic version: {e}"))
}

/// Whether `selector` selects the platform `os`/`arch`, as `metav1.LabelSelectorAsSelector(..).Matches`
/// does for the label set `{os, arch}` (`cmd/validate-krew-manifest/main.go:220-231`).
fn selector_matches(selector: &LabelSelector, os: &str, arch: &str) -> bool {
    let label = |key: &str| match key {
        "os" => Some(os),
        "arch" => Some(arch),
        _ => None,
    };
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| label(key) == Some(value.as_str()));
    let expressions_match = selector.match_expressions.iter().flatten().all(|req| {
        let value = label(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| req.values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| req.values.iter().all(|x| x != v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false, // LabelSelectorAsSelector fails on an unknown operator: it matches nothing.
        }
    });
    labels_match && expressions_match
}

/// Everything wrong with the manifest stored in a file named `file_name`, one message per broken rule
/// (krew stops at the first; listing all of them makes a failing test say everything at once).
fn violations(file_name: &str, plugin: &Plugin) -> Vec<String> {
    let mut errors = Vec::new();
    let spec = &plugin.spec;

    // validate-krew-manifest/main.go:73-79: the plugin name is the file name without ".yaml".
    let Some(name_from_file) = file_name.strip_suffix(MANIFEST_EXTENSION) else {
        return vec![format!(
            "file {file_name:?}: expected manifest extension {MANIFEST_EXTENSION:?}"
        )];
    };
    // validate.go:66-68
    if plugin.api_version != KREW_API_VERSION {
        errors.push(format!(
            "apiVersion={:?}, krew supports only {KREW_API_VERSION:?}",
            plugin.api_version
        ));
    }
    // validate.go:70-72
    if plugin.kind != KREW_KIND {
        errors.push(format!(
            "kind={:?}, only {KREW_KIND:?} is supported",
            plugin.kind
        ));
    }
    // validate.go:73-75
    if !is_safe_plugin_name(name_from_file) {
        errors.push(format!(
            "the plugin name {name_from_file:?} is not allowed, must match ^[\\w-]+$"
        ));
    }
    // validate.go:76-78
    if plugin.metadata.name != name_from_file {
        errors.push(format!(
            "plugin should be named {name_from_file:?} (its file name), not {:?}",
            plugin.metadata.name
        ));
    }
    // validate.go:79-84
    if spec.short_description.is_empty() {
        errors.push("should have a short description".to_string());
    }
    if spec.short_description.contains(['\r', '\n']) {
        errors.push("should not have line breaks in short description".to_string());
    }
    // project (search.go:132,167): `krew search` would truncate a longer one.
    if spec.short_description.chars().count() > SEARCH_SHORT_DESCRIPTION_WIDTH {
        errors.push(format!(
            "short description is longer than the {SEARCH_SHORT_DESCRIPTION_WIDTH} characters `krew search` shows"
        ));
    }
    // krew docs plugin-manifest.md:67-74 call these required; issue 6 requires a homepage.
    if spec.description.trim().is_empty() {
        errors.push("should have a description".to_string());
    }
    if !spec.homepage.starts_with("https://") {
        errors.push(format!(
            "homepage {:?} should be an https:// URL",
            spec.homepage
        ));
    }
    // validate.go:85-87
    if spec.platforms.is_empty() {
        errors.push("should have a platform specified".to_string());
    }
    // validate.go:88-93
    if spec.version.is_empty() {
        errors.push("should have a version specified".to_string());
    } else if let Some(problem) = semver_problem(&spec.version) {
        errors.push(format!("failed to parse plugin version: {problem}"));
    }
    for (i, platform) in spec.platforms.iter().enumerate() {
        for problem in platform_violations(platform) {
            errors.push(format!("spec.platforms[{i}]: {problem}"));
        }
    }

    // validate-krew-manifest/main.go:87-93: each platform selects a supported pair.
    for (i, platform) in spec.platforms.iter().enumerate() {
        if let Some(selector) = &platform.selector
            && !KREW_SUPPORTED_PLATFORMS
                .iter()
                .any(|(os, arch)| selector_matches(selector, os, arch))
        {
            errors.push(format!(
                "spec.platforms[{i}]'s selector doesn't match any supported platforms"
            ));
        }
    }
    // validate-krew-manifest/main.go:115-131: no supported pair is selected by two platforms.
    for (os, arch) in KREW_SUPPORTED_PLATFORMS {
        let matching: Vec<usize> = selecting(spec, os, arch);
        if matching.len() > 1 {
            errors.push(format!(
                "multiple spec.platforms (at indexes {matching:?}) have overlapping selectors that select {os}/{arch}"
            ));
        }
    }
    // project (issue 6): every release platform is covered.
    for (os, arch) in RELEASE_PLATFORMS {
        if selecting(spec, os, arch).is_empty() {
            errors.push(format!("no platform for {os}/{arch}"));
        }
    }
    errors
}

fn selecting(spec: &PluginSpec, os: &str, arch: &str) -> Vec<usize> {
    spec.platforms
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.selector
                .as_ref()
                .is_some_and(|s| selector_matches(s, os, arch))
        })
        .map(|(i, _)| i)
        .collect()
}

fn platform_violations(platform: &Platform) -> Vec<String> {
    let mut errors = Vec::new();
    // validate.go:104-106
    if platform.uri.is_empty() {
        errors.push("`uri` has to be set".to_string());
    }
    // plugin-manifest.md:84-88: krew installs .zip or .tar.gz archives (project: served over https).
    if !platform.uri.starts_with("https://")
        || !(platform.uri.ends_with(".tar.gz") || platform.uri.ends_with(".zip"))
    {
        errors.push(format!(
            "`uri` {:?} should be an https URL of a .tar.gz or .zip archive",
            platform.uri
        ));
    }
    // validate.go:107-112
    if platform.sha256.is_empty() {
        errors.push("`sha256` sum has to be set".to_string());
    } else if !is_valid_sha256(&platform.sha256) {
        errors.push(format!(
            "`sha256` value {} is not valid, must match pattern ^[a-f0-9]{{64}}$",
            platform.sha256
        ));
    }
    // validate.go:113-115
    if platform.bin.is_empty() {
        errors.push("`bin` has to be set".to_string());
    }
    // validate.go:125-140
    if let Some(files) = &platform.files {
        if files.is_empty() {
            errors.push("`files` has to be unspecified or non-empty".to_string());
        }
        for op in files {
            if op.from.is_empty() {
                errors.push("`files`: `from` field has to be set".to_string());
            } else if op.to.is_empty() {
                errors.push("`files`: `to` field has to be set".to_string());
            }
        }
        // validate-krew-manifest/main.go:167-205 fails an install that leaves no license file; with an
        // explicit `files` list only listed files are installed, so the list must name one.
        if !files.iter().any(|op| {
            LICENSE_FILE_NAMES.contains(
                &op.from
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_lowercase()
                    .as_str(),
            )
        }) {
            errors.push("`files` installs no LICENSE (or alike) file".to_string());
        }
        // project: the binary and the completion helper are installed.
        for wanted in [platform.bin.as_str(), COMPLETION_HELPER] {
            if !files.iter().any(|op| op.from == wanted) {
                errors.push(format!("`files` does not install {wanted}"));
            }
        }
    }
    // validate.go:143-172
    match &platform.selector {
        None => errors.push("nil selector is not supported".to_string()),
        Some(selector) => {
            if selector.match_labels.is_none()
                && selector
                    .match_expressions
                    .as_ref()
                    .is_none_or(Vec::is_empty)
            {
                errors.push("empty selector is not supported".to_string());
            }
            let keys = selector
                .match_labels
                .iter()
                .flat_map(|labels| labels.keys())
                .chain(selector.match_expressions.iter().flatten().map(|r| &r.key));
            for key in keys {
                if key != "os" && key != "arch" {
                    errors.push(format!(
                        "invalid platform selector: key {key:?} not supported"
                    ));
                }
            }
            if selector
                .match_labels
                .as_ref()
                .is_some_and(BTreeMap::is_empty)
            {
                errors.push("`matchLabels` specified but empty".to_string());
            }
            if selector
                .match_expressions
                .as_ref()
                .is_some_and(Vec::is_empty)
            {
                errors.push("`matchExpressions` specified but empty".to_string());
            }
            // project: krew links `bin` as kubectl-meshup.exe on Windows; it must be the .exe.
            let windows = selector
                .match_labels
                .as_ref()
                .and_then(|labels| labels.get("os"))
                .is_some_and(|os| os == "windows");
            if windows && !platform.bin.ends_with(".exe") {
                errors.push(format!(
                    "Windows `bin` {:?} should end in .exe",
                    platform.bin
                ));
            }
        }
    }
    errors
}

// ---------------------------------------------------------------------------------------------------------
// Helpers.

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn release_tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse(text: &str) -> Plugin {
    serde_saphyr::from_str(text)
        .unwrap_or_else(|e| panic!("manifest is not valid YAML: {e}\n{text}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Renders `.krew.yaml` the way krew-release-bot does (`pkg/source/template.go`, `RenderTemplate`):
/// `{{addURIAndSha "URL" .TagName }}` becomes `uri: URL` + newline + four spaces + `sha256: SUM` (the bot
/// downloads the URL; here `sha_for` supplies the sum), and `{{ .TagName }}` becomes the tag.
fn render_like_krew_release_bot(
    template: &str,
    tag: &str,
    sha_for: impl Fn(&str) -> String,
) -> String {
    const OPEN: &str = "{{addURIAndSha \"";
    const CLOSE: &str = "\" .TagName }}";
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let end = after
            .find(CLOSE)
            .unwrap_or_else(|| panic!("unterminated addURIAndSha in .krew.yaml: {after}"));
        let uri = after[..end].replace("{{ .TagName }}", tag);
        out.push_str(&rest[..start]);
        out.push_str(&format!("uri: {uri}\n    sha256: {}", sha_for(&uri)));
        rest = &after[end + CLOSE.len()..];
    }
    out.push_str(rest);
    let rendered = out.replace("{{ .TagName }}", tag);
    assert!(
        !rendered.contains("{{"),
        ".krew.yaml uses a template action this renderer does not know:\n{rendered}"
    );
    rendered
}

/// A distinct, well-formed sample sum per archive.
fn sample_sha(uri: &str) -> String {
    sha256_hex(uri.as_bytes())
}

fn rendered_template() -> String {
    render_like_krew_release_bot(&read(&repo_root().join(".krew.yaml")), "v0.1.0", sample_sha)
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn stdout_of(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn release_script(out: &Path) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("scripts/release.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_kubectl-meshup"))
        .arg("--platform")
        .arg("linux_amd64")
        .arg("--out")
        .arg(out.join("dist"))
        .arg("--manifest")
        .arg(out.join("manifest/meshup.yaml"))
        // A fixed archive timestamp: the sums must not depend on the checkout.
        .env("SOURCE_DATE_EPOCH", "1700000000");
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} missing: {e}", path.display()))
        .permissions()
        .mode()
}

// ---------------------------------------------------------------------------------------------------------
// The manifests.

#[test]
fn krew_release_bot_template_renders_to_a_valid_manifest() {
    let rendered = rendered_template();
    let plugin = parse(&rendered);
    assert_eq!(
        violations("meshup.yaml", &plugin),
        Vec::<String>::new(),
        "\n{rendered}"
    );
    assert_eq!(plugin.spec.version, "v0.1.0");
    // The caveats tell how to put the completion helper on PATH, from the version's store directory.
    assert!(
        plugin
            .spec
            .caveats
            .contains("${KREW_ROOT:-$HOME/.krew}/store/meshup/v0.1.0/kubectl_complete-meshup"),
        "caveats: {}",
        plugin.spec.caveats
    );
    // Each platform downloads the archive release.sh names for it.
    for platform in &plugin.spec.platforms {
        let labels = platform
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        let (os, arch) = (&labels["os"], &labels["arch"]);
        let extension = if os == "windows" { "zip" } else { "tar.gz" };
        assert!(
            platform.uri.ends_with(&format!(
                "/v0.1.0/kubectl-meshup_v0.1.0_{os}_{arch}.{extension}"
            )),
            "{os}/{arch}: {}",
            platform.uri
        );
        assert_eq!(platform.sha256, sample_sha(&platform.uri));
    }
}

#[test]
fn committed_manifest_is_valid_current_and_rendered_from_the_template() {
    let path = repo_root().join("plugin-manifest/meshup.yaml");
    let text = read(&path);
    let manifest = parse(&text);
    assert_eq!(violations("meshup.yaml", &manifest), Vec::<String>::new());
    assert_eq!(
        manifest.spec.version,
        release_tag(),
        "plugin-manifest/meshup.yaml is for another version; run scripts/release.sh {}",
        release_tag()
    );
    // Sums of archives this machine could not build are zeros, and each one says so.
    let placeholders = manifest
        .spec
        .platforms
        .iter()
        .filter(|p| p.sha256.bytes().all(|b| b == b'0'))
        .count();
    assert_eq!(
        text.matches("# PLACEHOLDER sha256: ").count(),
        placeholders,
        "every placeholder sum is marked, and only those"
    );
    assert!(
        placeholders < manifest.spec.platforms.len(),
        "at least one real archive sum"
    );
    // Nothing edited by hand: it is .krew.yaml rendered with the manifest's own sums.
    let sums: BTreeMap<String, String> = manifest
        .spec
        .platforms
        .iter()
        .map(|p| (p.uri.clone(), p.sha256.clone()))
        .collect();
    let template = read(&repo_root().join(".krew.yaml"));
    let expected = parse(&render_like_krew_release_bot(
        &template,
        &release_tag(),
        |uri| {
            sums.get(uri)
                .cloned()
                .unwrap_or_else(|| format!("no sum for {uri}"))
        },
    ));
    assert_eq!(
        manifest,
        expected,
        "run scripts/release.sh {} to regenerate it",
        release_tag()
    );
}

/// Each case breaks one rule in an otherwise valid manifest, and the validator must name that rule.
#[test]
fn validator_rejects_manifests_that_krew_index_rejects() {
    let valid = rendered_template();
    assert_eq!(
        violations("meshup.yaml", &parse(&valid)),
        Vec::<String>::new()
    );
    let first_sha = parse(&valid).spec.platforms[0].sha256.clone();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "uppercase sha256",
            valid.replacen(&first_sha, &first_sha.to_uppercase(), 1),
            "meshup.yaml",
            "is not valid, must match pattern",
        ),
        (
            "short sha256",
            valid.replacen(&first_sha, &first_sha[..63], 1),
            "meshup.yaml",
            "is not valid, must match pattern",
        ),
        (
            "two platforms for darwin/amd64",
            valid.replacen(
                "os: darwin\n        arch: arm64",
                "os: darwin\n        arch: amd64",
                1,
            ),
            "meshup.yaml",
            "have overlapping selectors that select darwin/amd64",
        ),
        (
            "a selector on another key",
            valid.replacen("arch: amd64\n", "arch: amd64\n        distro: ubuntu\n", 1),
            "meshup.yaml",
            "key \"distro\" not supported",
        ),
        (
            "an unsupported architecture",
            valid.replacen("arch: arm64", "arch: riscv64", 1),
            "meshup.yaml",
            "doesn't match any supported platforms",
        ),
        (
            "a missing release platform",
            valid.replacen(
                "os: windows\n        arch: arm64",
                "os: linux\n        arch: ppc64le",
                1,
            ),
            "meshup.yaml",
            "no platform for windows/arm64",
        ),
        (
            "version without v",
            valid.replace("version: v0.1.0", "version: 0.1.0"),
            "meshup.yaml",
            "not starting with 'v'",
        ),
        (
            "version that is not semver",
            valid.replace("version: v0.1.0", "version: v0.1"),
            "meshup.yaml",
            "is not a semantic version",
        ),
        (
            "multi-line short description",
            valid.replace(
                "shortDescription: Check, plan and apply service-mesh upgrades",
                "shortDescription: \"Check and plan\\nservice-mesh upgrades\"",
            ),
            "meshup.yaml",
            "should not have line breaks in short description",
        ),
        (
            "file name different from metadata.name",
            valid.clone(),
            "mesh-up.yaml",
            "plugin should be named \"mesh-up\"",
        ),
        (
            "wrong apiVersion",
            valid.replace("/v1alpha2", "/v1alpha1"),
            "meshup.yaml",
            "krew supports only",
        ),
        (
            "wrong kind",
            valid.replace("kind: Plugin", "kind: Plugins"),
            "meshup.yaml",
            "only \"Plugin\" is supported",
        ),
        (
            "no LICENSE installed",
            valid.replacen("    - from: LICENSE\n      to: .\n", "", 1),
            "meshup.yaml",
            "installs no LICENSE",
        ),
        (
            "a Windows bin without .exe",
            valid.replacen("bin: kubectl-meshup.exe", "bin: kubectl-meshup", 1),
            "meshup.yaml",
            "should end in .exe",
        ),
        (
            "no homepage",
            valid.replace(
                "  homepage: https://github.com/meshup-dev/kubectl-meshup\n",
                "",
            ),
            "meshup.yaml",
            "should be an https:// URL",
        ),
    ];
    for (what, text, file_name, expected) in cases {
        assert!(
            text != valid || file_name != "meshup.yaml",
            "{what}: the mutation did not apply"
        );
        let found = violations(file_name, &parse(&text));
        assert!(
            found.iter().any(|v| v.contains(expected)),
            "{what}: expected a violation containing {expected:?}, got {found:?}"
        );
    }
}

#[test]
fn selector_matching_follows_label_selector_semantics() {
    let yaml = |s: &str| -> LabelSelector {
        serde_saphyr::from_str(s).unwrap_or_else(|e| panic!("bad selector {s}: {e}"))
    };
    let unix = yaml("matchExpressions:\n- {key: os, operator: In, values: [darwin, linux]}\n");
    assert!(selector_matches(&unix, "linux", "arm64"));
    assert!(!selector_matches(&unix, "windows", "amd64"));
    let not_arm = yaml(
        "matchLabels: {os: linux}\nmatchExpressions:\n- {key: arch, operator: NotIn, values: [arm, arm64]}\n",
    );
    assert!(selector_matches(&not_arm, "linux", "amd64"));
    assert!(!selector_matches(&not_arm, "linux", "arm64"));
    assert!(!selector_matches(&not_arm, "darwin", "amd64"));
}

// ---------------------------------------------------------------------------------------------------------
// The release archive.

#[test]
fn release_script_packages_binary_license_and_completion_helper() {
    let work = tempfile::tempdir().expect("tempdir");
    let dist = work.path().join("dist");
    let first = run(release_script(work.path())
        .arg("--allow-missing")
        .arg(release_tag()));
    assert!(
        first.status.success(),
        "release.sh failed:\n{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let archive_name = format!("kubectl-meshup_{}_linux_amd64.tar.gz", release_tag());
    let archive = dist.join(&archive_name);
    let listing = stdout_of(Command::new("tar").arg("-tzf").arg(&archive));
    let members: BTreeSet<&str> = listing.lines().collect();
    assert_eq!(
        members,
        BTreeSet::from(["LICENSE", "README.md", "kubectl-meshup", COMPLETION_HELPER]),
        "archive members (flat, as the manifest's `files` expect)"
    );

    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).expect("mkdir");
    stdout_of(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    );
    for executable in ["kubectl-meshup", COMPLETION_HELPER] {
        assert_eq!(
            mode(&unpacked.join(executable)) & 0o111,
            0o111,
            "{executable} is executable"
        );
    }
    assert_eq!(
        std::fs::read(unpacked.join("kubectl-meshup")).expect("binary"),
        std::fs::read(env!("CARGO_BIN_EXE_kubectl-meshup")).expect("built binary"),
        "the archive holds the binary it was given"
    );
    assert_eq!(
        read(&unpacked.join("LICENSE")),
        read(&repo_root().join("LICENSE"))
    );
    assert!(
        read(&unpacked.join("LICENSE"))
            .contains("Apache License\n                           Version 2.0")
    );

    // checksums.txt, in sha256sum format, holds the archive's real sum.
    let archive_sha = sha256_hex(&std::fs::read(&archive).expect("archive"));
    let checksums = read(&dist.join("checksums.txt"));
    assert_eq!(checksums, format!("{archive_sha}  {archive_name}\n"));

    // The rendered manifest is valid and points at this archive with that sum.
    let manifest = parse(&read(&work.path().join("manifest/meshup.yaml")));
    assert_eq!(violations("meshup.yaml", &manifest), Vec::<String>::new());
    let linux_amd64 = &manifest.spec.platforms[selecting(&manifest.spec, "linux", "amd64")[0]];
    assert!(
        linux_amd64
            .uri
            .ends_with(&format!("/{}/{archive_name}", release_tag()))
    );
    assert_eq!(linux_amd64.sha256, archive_sha);

    // Running it again gives the same bytes (reproducible archives, idempotent script).
    let second = run(release_script(work.path())
        .arg("--allow-missing")
        .arg(release_tag()));
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(read(&dist.join("checksums.txt")), checksums);
}

#[test]
fn release_script_refuses_a_manifest_with_missing_archives_unless_told() {
    let work = tempfile::tempdir().expect("tempdir");
    let output = run(release_script(work.path()).arg(release_tag()));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no archive in") && stderr.contains("_darwin_arm64.tar.gz"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--allow-missing"),
        "says what to do next: {stderr}"
    );
    assert!(!work.path().join("manifest/meshup.yaml").exists());
}

#[test]
fn release_script_refuses_a_tag_that_is_not_cargo_version() {
    let work = tempfile::tempdir().expect("tempdir");
    let output = run(release_script(work.path()).arg("v99.0.0"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not match Cargo.toml version"),
        "{stderr}"
    );
    assert!(!work.path().join("dist").exists(), "nothing packaged");
}

// ---------------------------------------------------------------------------------------------------------
// The completion helper.

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn path_with(dir: &Path) -> String {
    let system = std::env::var("PATH").unwrap_or_default();
    format!("{}:{system}", dir.display())
}

#[test]
fn completion_helper_forwards_every_argument_to_kubectl_meshup_complete() {
    let bin = tempfile::tempdir().expect("tempdir");
    // A stand-in kubectl that prints its arguments one per line.
    write_executable(
        &bin.path().join("kubectl"),
        "#!/bin/sh\nprintf '%s\\n' \"$@\"\n",
    );
    let stdout = stdout_of(
        Command::new(repo_root().join("scripts").join(COMPLETION_HELPER))
            .args(["plan", "--to", "istio=1.2 4", ""])
            .env("PATH", path_with(bin.path())),
    );
    assert_eq!(stdout, "meshup\n__complete\nplan\n--to\nistio=1.2 4\n\n");
}

/// The whole chain through the real kubectl: `kubectl __complete meshup …` finds the helper on PATH, the
/// helper runs `kubectl meshup __complete …`, and kubectl relays the candidates and the directive.
#[test]
fn kubectl_plugin_completion_reaches_the_plugin_through_the_helper() {
    let bin = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo_root().join("scripts").join(COMPLETION_HELPER),
        bin.path().join(COMPLETION_HELPER),
    )
    .expect("copy helper");
    // A stand-in plugin speaking the contract of `kubectl meshup __complete`: candidates (TAB and a
    // description allowed), then `:4` (cobra's ShellCompDirectiveNoFileComp).
    write_executable(
        &bin.path().join("kubectl-meshup"),
        "#!/bin/sh\n[ \"$1\" = __complete ] || exit 9\nprintf 'check\\tCheck a cluster\\nplan\\n:4\\n'\n",
    );
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "").expect("kubeconfig");
    // Plugin completion clears kubectl's global flags and rejects flags before the plugin name, so the
    // kubeconfig and cache are isolated through the environment instead of --kubeconfig.
    let stdout = stdout_of(
        Command::new("kubectl")
            .args(["__complete", "meshup", ""])
            .env("PATH", path_with(bin.path()))
            .env("KUBECONFIG", &kubeconfig)
            .env("KUBECACHEDIR", home.path().join("cache"))
            .env("HOME", home.path()),
    );
    assert_eq!(stdout, "check\tCheck a cluster\nplan\n:4\n");
}
