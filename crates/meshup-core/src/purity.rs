//! Purity is enforced, not promised. This crate is the decide step: everything it does is a function of
//! its inputs, which is what lets check and plan be unit-tested without a server, a clock or files, and
//! what lets `plan` and `apply` trust that the same inputs give the same plan. Two ways that could
//! quietly stop being true are held here:
//! - a dependency that does IO (a Kubernetes client, an async runtime, an HTTP client): the crate's
//!   `[dependencies]` must stay within [`ALLOWED`];
//! - a direct use of the standard library's IO and environment (`std::fs`, `std::net`'s sockets,
//!   `std::process`, `std::env`) or of `tokio`: no source file may name one outside a `#[cfg(test)]`
//!   module. (`core::net`, where `IpAddr` lives, is only address types and stays allowed.)
//!
//! The source scan is a plain text scan, not a parser; it errs towards failing (a `#[cfg(test)]`
//! module is only recognised in its rustfmt shape, `#[cfg(test)]` above `mod name;` or `mod name {`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The crates this one may depend on: data formats, error derives, hashing, the calendar and `http`'s
/// types (for `http::Uri`; it has no client). None does IO on its own.
const ALLOWED: [&str; 7] = [
    "serde",
    "serde_json",
    "serde-saphyr",
    "thiserror",
    "sha2",
    "jiff",
    "http",
];

/// What no production source here may name.
const FORBIDDEN: [&str; 5] = ["std::fs", "std::net", "std::process", "std::env", "tokio"];

/// The names a `use std::{…}` group may not import.
const FORBIDDEN_IN_STD_GROUP: [&str; 4] = ["fs", "net", "process", "env"];

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The dependency names in every section of `manifest` that the built crate links: `[dependencies]`,
/// `[build-dependencies]` and their `[target.….dependencies]` forms, however they are spelled
/// (`name = …`, `name.workspace = true`, `[dependencies.name]`). Dev-dependencies are the tests' own.
fn linked_dependencies(manifest: &str) -> BTreeSet<String> {
    let doc: toml::Table = manifest.parse().expect("a TOML manifest");
    let sections = |table: &toml::Table| {
        ["dependencies", "build-dependencies"]
            .into_iter()
            .filter_map(|s| table.get(s).and_then(toml::Value::as_table))
            .flat_map(|deps| deps.keys().cloned())
            .collect::<Vec<_>>()
    };
    let mut names: BTreeSet<String> = sections(&doc).into_iter().collect();
    for target in doc
        .get("target")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(toml::Value::as_table)
    {
        names.extend(sections(target));
    }
    names
}

#[test]
fn dependencies_are_within_the_allow_list() {
    let path = crate_dir().join("Cargo.toml");
    let manifest = std::fs::read_to_string(&path).expect("the crate's Cargo.toml");
    let deps = linked_dependencies(&manifest);
    assert!(deps.contains("serde"), "the scan found {deps:?}");
    let outside: Vec<&String> = deps
        .iter()
        .filter(|d| !ALLOWED.contains(&d.as_str()))
        .collect();
    assert!(
        outside.is_empty(),
        "{} depends on {outside:?}, outside the pure core's allow-list {ALLOWED:?}: IO belongs in the plugin crate",
        path.display()
    );
}

#[test]
fn the_dependency_scan_reads_every_linked_section() {
    let manifest = r#"
[package]
name = "x"
[dependencies]
serde = { workspace = true }
kube.workspace = true
[dependencies.tokio]
version = "1"
[build-dependencies]
reqwest = "0.13"
[target.'cfg(unix)'.dependencies]
hyper = "1"
[dev-dependencies]
insta = "1"
"#;
    assert_eq!(
        linked_dependencies(manifest),
        ["hyper", "kube", "reqwest", "serde", "tokio"]
            .map(String::from)
            .into()
    );
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("a source directory")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The line after `#[cfg(test)]` (other attributes skipped) when it declares a module: its name, and
/// whether the module's body is inline (`{`) rather than a file of its own.
fn test_module(lines: &[&str], cfg_at: usize) -> Option<(String, bool)> {
    let line = lines[cfg_at + 1..]
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.starts_with("#["))?;
    let rest = line
        .strip_prefix("pub(crate) ")
        .or_else(|| line.strip_prefix("pub(super) "))
        .or_else(|| line.strip_prefix("pub "))
        .unwrap_or(line)
        .strip_prefix("mod ")?;
    let (name, inline) = match rest.strip_suffix(" {") {
        Some(name) => (name, true),
        None => (rest.strip_suffix(';')?, false),
    };
    Some((name.to_string(), inline))
}

/// The files that are `#[cfg(test)]` modules of their own (`#[cfg(test)] mod name;`).
fn test_module_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut test_files = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("a source file");
        let lines: Vec<&str> = text.lines().collect();
        // The directory holding this module's children: `a/` for `a/mod.rs` or `lib.rs`, `a/b/`
        // for `a/b.rs`.
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let parent = file.parent().expect("a directory");
        let children = if stem == "mod" || stem == "lib" {
            parent.to_path_buf()
        } else {
            parent.join(stem)
        };
        for (at, line) in lines.iter().enumerate() {
            if line.trim() == "#[cfg(test)]"
                && let Some((name, false)) = test_module(&lines, at)
            {
                test_files.insert(children.join(format!("{name}.rs")));
                test_files.insert(children.join(&name).join("mod.rs"));
            }
        }
    }
    test_files
}

/// The lines of `text` outside inline `#[cfg(test)]` modules and comments, with their numbers. An
/// inline module ends at the first `}` at its own indentation (rustfmt's shape); a raw string that
/// puts a `}` there would end it early, which only scans more.
fn production_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut skip_until: Option<String> = None;
    for (at, line) in lines.iter().enumerate() {
        if let Some(end) = &skip_until {
            if line == end {
                skip_until = None;
            }
            continue;
        }
        if line.trim() == "#[cfg(test)]"
            && let Some((_, true)) = test_module(&lines, at)
        {
            let indent = &line[..line.len() - line.trim_start().len()];
            skip_until = Some(format!("{indent}}}"));
            continue;
        }
        if !line.trim_start().starts_with("//") {
            out.push((at + 1, *line));
        }
    }
    out
}

/// Why `line` breaks purity, if it does.
fn impurity(line: &str) -> Option<String> {
    if let Some(name) = FORBIDDEN.iter().find(|f| line.contains(**f)) {
        return Some(format!("names `{name}`"));
    }
    let (_, group) = line.split_once("std::{")?;
    let words: Vec<&str> = group
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    FORBIDDEN_IN_STD_GROUP
        .iter()
        .find(|f| words.contains(f))
        .map(|name| format!("imports `std::{name}`"))
}

#[test]
fn no_source_uses_io_the_environment_or_tokio_outside_tests() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    let test_files = test_module_files(&files);
    assert!(
        test_files.contains(&crate_dir().join("src").join("purity.rs")),
        "the scan did not see this file as a test module: {test_files:#?}"
    );
    let mut found = Vec::new();
    let mut scanned = 0;
    for file in files.iter().filter(|f| !test_files.contains(*f)) {
        let text = std::fs::read_to_string(file).expect("a source file");
        for (number, line) in production_lines(&text) {
            scanned += 1;
            if let Some(why) = impurity(line) {
                found.push(format!(
                    "{}:{number} {why}: {}",
                    file.display(),
                    line.trim()
                ));
            }
        }
    }
    assert!(scanned > 10_000, "the scan read only {scanned} lines");
    assert!(
        found.is_empty(),
        "the pure core must not do IO or read the environment (that belongs in the plugin crate):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_source_scan_skips_tests_and_comments_only() {
    let text = "use std::path::Path;\n\
                // std::fs in a comment\n\
                fn f() {}\n\
                \n\
                #[cfg(test)]\n\
                mod tests {\n    \
                    fn g() { std::fs::read(\"x\"); }\n\
                }\n\
                use std::{env, fmt};\n";
    let kept: Vec<usize> = production_lines(text).iter().map(|(n, _)| *n).collect();
    assert_eq!(kept, [1, 3, 4, 9]);
    assert_eq!(
        impurity("use std::{env, fmt};").as_deref(),
        Some("imports `std::env`")
    );
    assert_eq!(
        impurity("let x = std::fs::read(p);").as_deref(),
        Some("names `std::fs`")
    );
    assert_eq!(
        impurity("tokio::spawn(f);").as_deref(),
        Some("names `tokio`")
    );
    assert_eq!(impurity("use std::{collections::BTreeSet, fmt};"), None);
    assert_eq!(impurity(".parse::<core::net::IpAddr>()"), None);
}
