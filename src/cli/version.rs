//! `kubectl meshup version`: tool version, commit, and the compatibility data's date and sources.

use serde::Serialize;

use super::args::{GlobalArgs, OutputFormat};
use super::load_compat;
use crate::error::{Error, Exit};
use crate::output::{DocFormat, render, write_stdout};

/// The commit the binary was built from (`build.rs`), `unknown` outside a git checkout.
const COMMIT: &str = env!("MESHUP_GIT_COMMIT");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    version: &'static str,
    commit: &'static str,
    compat_data: CompatInfo,
}

#[derive(Serialize)]
struct CompatInfo {
    date: String,
    sources: Vec<String>,
}

pub fn run(global: &GlobalArgs, format: OutputFormat) -> Result<Exit, Error> {
    let compat = load_compat(global)?;
    let info = VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: COMMIT,
        compat_data: CompatInfo {
            date: compat.date,
            sources: compat.sources,
        },
    };
    let text = match format {
        OutputFormat::Json => render(&info, DocFormat::Json)?,
        OutputFormat::Yaml => render(&info, DocFormat::Yaml)?,
        _ => {
            let mut text = format!(
                "kubectl-meshup {} (commit {})\ncompatibility data: {}\nsources:\n",
                info.version, info.commit, info.compat_data.date
            );
            for s in &info.compat_data.sources {
                text.push_str(&format!("  - {s}\n"));
            }
            text
        }
    };
    write_stdout(&text)?;
    Ok(Exit::Ok)
}
