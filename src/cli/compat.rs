//! `kubectl meshup compat update|show`, and which compatibility data every command uses: `--compat
//! FILE`, else the file `compat update` wrote when it is newer than the built-in data, else the built-in
//! data. The network, the environment, the clock and the files are here; parsing and checking are the
//! importer's (`compat::import`), the same code the built-in data is made with.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::args::{CompatAction, GlobalArgs, OutputFormat};
use super::clock;
use crate::compat::import::{self, Sources};
use crate::compat::{CompatData, CompatError, CompatInUse};
use crate::error::{Error, Exit};
use crate::limits;
use crate::output::{DocFormat, render, write_stderr_line, write_stdout};

/// The user data file: `$XDG_DATA_HOME/kubectl-meshup/compat.json`, else
/// `~/.local/share/kubectl-meshup/compat.json`; `None` when neither variable is set.
pub fn data_file() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?)
            .join(".local")
            .join("share"),
    };
    Some(base.join("kubectl-meshup").join("compat.json"))
}

/// The data a command judges with, and where it came from.
pub fn load(global: &GlobalArgs) -> Result<CompatInUse, Error> {
    if let Some(path) = &global.compat {
        let data = read_compat_file(path)?;
        return Ok(in_use(data, format!("--compat {}", path.display())));
    }
    let embedded = CompatData::embedded();
    if let Some(path) = data_file()
        && path.exists()
    {
        match read_user_file(&path) {
            Ok(data) if data.date > embedded.date => {
                return Ok(in_use(data, format!("compat update, {}", path.display())));
            }
            Ok(data) => tracing::info!(
                file = %path.display(),
                date = %data.date,
                "the built-in compatibility data is as new or newer; using it"
            ),
            Err(reason) => write_stderr_line(&format!(
                "warning: ignoring {}: {reason}; using the built-in data (run `kubectl meshup compat update` to rewrite it)",
                path.display()
            )),
        }
    }
    Ok(in_use(embedded, "built in".to_string()))
}

/// Reads a `--compat FILE` override (here, not in the pure core, because it reads a file), within
/// the file limit as every file the plugin reads.
fn read_compat_file(path: &Path) -> Result<CompatData, CompatError> {
    let text =
        limits::read_file(path, limits::max_file_bytes(), limits::MAX_FILE_ENV).map_err(|e| {
            CompatError::Read {
                path: path.display().to_string(),
                source: match e {
                    limits::FileError::Io(e) => e,
                    other => std::io::Error::other(other),
                },
            }
        })?;
    CompatData::parse(&text, &path.display().to_string())
}

fn in_use(data: CompatData, origin: String) -> CompatInUse {
    tracing::info!(date = %data.date, from = %origin, "compatibility data");
    CompatInUse { data, origin }
}

fn read_user_file(path: &Path) -> Result<CompatData, String> {
    let text = limits::read_file(path, limits::max_file_bytes(), limits::MAX_FILE_ENV)
        .map_err(|e| e.to_string())?;
    CompatData::parse(&text, &path.display().to_string()).map_err(|e| e.to_string())
}

pub async fn run(
    global: &GlobalArgs,
    action: &CompatAction,
    format: OutputFormat,
) -> Result<Exit, Error> {
    match action {
        CompatAction::Show => show(global, format),
        CompatAction::Update { from } => update(global, from.as_deref()).await,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    date: String,
    from: String,
    age_days: Option<i64>,
    today: String,
    user_file: Option<String>,
    sources: Vec<String>,
}

fn show(global: &GlobalArgs, format: OutputFormat) -> Result<Exit, Error> {
    let compat = load(global)?;
    let today = clock::today_utc();
    let shown = Shown {
        age_days: compat.data.age_days(&today),
        date: compat.data.date.clone(),
        from: compat.origin.clone(),
        today,
        user_file: data_file().map(|p| p.display().to_string()),
        sources: compat.data.sources.clone(),
    };
    let text = match format {
        OutputFormat::Json => render(&shown, DocFormat::Json)?,
        OutputFormat::Yaml => render(&shown, DocFormat::Yaml)?,
        _ => {
            let mut text = format!(
                "compatibility data: dated {} ({})\nage: {} (as of {})\n",
                shown.date,
                shown.from,
                shown
                    .age_days
                    .map(|d| format!("{d} days"))
                    .unwrap_or_else(|| "unknown".into()),
                shown.today
            );
            if let Some(w) = compat
                .data
                .age_days(&shown.today)
                .filter(|d| *d > crate::compat::STALE_AFTER_DAYS)
            {
                text.push_str(&format!(
                    "warning: older than {} days ({w}); run `{}`\n",
                    crate::compat::STALE_AFTER_DAYS,
                    crate::compat::UPDATE_COMMAND
                ));
            }
            text.push_str(&format!(
                "update file: {}\nsources:\n",
                shown
                    .user_file
                    .as_deref()
                    .unwrap_or("none (neither XDG_DATA_HOME nor HOME is set)")
            ));
            for s in &shown.sources {
                text.push_str(&format!("  - {s}\n"));
            }
            text
        }
    };
    write_stdout(&text)?;
    Ok(Exit::Ok)
}

/// The documents `compat update` may replace, by their path under `data/sources/`.
const UPDATABLE: [&str; 3] = [
    import::ISTIO_SUPPORT_STATUS,
    import::ISTIO_RELEASES,
    import::KMESH_SUPPORT,
];

async fn update(global: &GlobalArgs, from: Option<&str>) -> Result<Exit, Error> {
    let current = load(global)?;
    let fail = |reason: String| Error::CompatUpdate {
        reason,
        in_use: format!("the data dated {}", current.label()),
    };
    let target = data_file().ok_or_else(|| {
        fail("neither XDG_DATA_HOME nor HOME is set, so there is no place to keep the data".into())
    })?;
    let mut sources = Sources::embedded();
    let manifest = sources.manifest().map_err(|e| fail(e.to_string()))?;
    let fetched = match from {
        None => {
            let mut got = Vec::new();
            for f in manifest
                .files
                .iter()
                .filter(|f| UPDATABLE.contains(&f.path.as_str()))
            {
                if let Some(url) = &f.upstream {
                    got.push((
                        f.path.clone(),
                        url.clone(),
                        download(global, url).await.map_err(&fail)?,
                    ));
                }
            }
            got
        }
        Some(from) if is_url(from) => from_url(global, from).await.map_err(&fail)?,
        Some(from) => from_path(Path::new(from)).map_err(&fail)?,
    };
    let today = clock::today_utc();
    let mut names = Vec::new();
    for (path, origin, text) in fetched {
        sources.set(&path, text);
        names.push(origin);
    }
    let mut data = import::build(&sources, Some(&today)).map_err(|e| fail(e.to_string()))?;
    // A table cut at a row boundary still parses: it must still know every minor the built-in one does.
    let embedded = CompatData::embedded();
    let lost: Vec<String> = embedded
        .istio
        .releases
        .iter()
        .filter(|r| data.istio_release(r.minor).is_none())
        .map(|r| r.minor.to_string())
        .collect();
    if !lost.is_empty() {
        return Err(fail(format!(
            "the new supportStatus.yml lacks Istio {} that the built-in data has (a truncated download?)",
            lost.join(", ")
        )));
    }
    for n in &names {
        data.sources.push(format!("{n} (fetched {today})"));
    }
    data.sources.sort();
    let text = serde_json::to_string_pretty(&data).map_err(|e| fail(e.to_string()))? + "\n";
    // Read back as every command will read it, before it replaces anything.
    CompatData::parse(&text, "the new data").map_err(|e| fail(e.to_string()))?;
    write_atomically(&target, &text)
        .map_err(|e| fail(format!("cannot write {}: {e}", target.display())))?;
    let new: Vec<String> = data
        .istio
        .releases
        .iter()
        .filter(|r| embedded.istio_release(r.minor).is_none())
        .map(|r| r.minor.to_string())
        .collect();
    let newest = data
        .newest_istio()
        .map(|r| r.minor.to_string())
        .unwrap_or_default();
    write_stdout(&format!(
        "compatibility data updated: dated {today}, Istio up to {newest}{}, from {}; written to {}\n",
        if new.is_empty() {
            String::new()
        } else {
            format!(" (new: {})", new.join(", "))
        },
        names.join(", "),
        target.display()
    ))?;
    Ok(Exit::Ok)
}

fn is_url(from: &str) -> bool {
    from.starts_with("https://") || from.starts_with("http://")
}

/// The updatable document a file name stands for (`supportStatus.yml` -> `istio/supportStatus.yml`).
fn by_name(name: &str) -> Option<&'static str> {
    UPDATABLE
        .into_iter()
        .find(|p| p.rsplit('/').next() == Some(name))
}

/// `--from URL`: one document named by its file name, else a mirror laid out as `data/sources/`.
async fn from_url(global: &GlobalArgs, url: &str) -> Result<Vec<(String, String, String)>, String> {
    let name = url.rsplit('/').next().unwrap_or_default();
    if let Some(path) = by_name(name) {
        return Ok(vec![(
            path.to_string(),
            url.to_string(),
            download(global, url).await?,
        )]);
    }
    let base = url.trim_end_matches('/');
    let mut got = Vec::new();
    for path in UPDATABLE {
        let u = format!("{base}/{path}");
        match fetch(global, &u).await? {
            Some(text) => got.push((path.to_string(), u, text)),
            None => tracing::info!(url = %u, "not in the mirror; the built-in copy stays"),
        }
    }
    if got.is_empty() {
        return Err(format!(
            "{url} has none of {} (a mirror of data/sources/, or the URL of one file)",
            UPDATABLE.join(", ")
        ));
    }
    Ok(got)
}

/// `--from FILE|DIR`.
fn from_path(from: &Path) -> Result<Vec<(String, String, String)>, String> {
    let read = |p: &Path| {
        limits::read_file(p, limits::max_download_bytes(), limits::MAX_DOWNLOAD_ENV)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    if from.is_dir() {
        let mut got = Vec::new();
        for path in UPDATABLE {
            let file = from.join(path);
            if file.exists() {
                got.push((path.to_string(), file.display().to_string(), read(&file)?));
            }
        }
        if got.is_empty() {
            return Err(format!(
                "{} has none of {} (a copy of data/sources/)",
                from.display(),
                UPDATABLE.join(", ")
            ));
        }
        return Ok(got);
    }
    let name = from
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let path = by_name(name).ok_or_else(|| {
        format!(
            "{} is not one of the documents compat update reads ({}), nor a directory",
            from.display(),
            UPDATABLE
                .iter()
                .filter_map(|p| p.rsplit('/').next())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok(vec![(
        path.to_string(),
        from.display().to_string(),
        read(from)?,
    )])
}

async fn download(global: &GlobalArgs, url: &str) -> Result<String, String> {
    fetch(global, url)
        .await?
        .ok_or_else(|| format!("{url}: 404 Not Found"))
}

/// GET `url`, bounded by `--request-timeout` (default 60s) and the download cap; `None` on 404.
/// Proxies come from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as kubectl takes them.
async fn fetch(global: &GlobalArgs, url: &str) -> Result<Option<String>, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(format!(
            "{url}: only https:// URLs are fetched (http:// only on loopback)"
        ));
    }
    let timeout = match global.request_timeout {
        Some(t) => t.0,
        None => Some(limits::DEFAULT_REQUEST_TIMEOUT),
    };
    let client = crate::web::client(timeout).map_err(|e| chain(&e))?;
    let mut response = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", reason(&e, timeout)))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(format!("{url}: the server answered {}", response.status()));
    }
    let cap = limits::max_download_bytes();
    let too_large = || {
        format!(
            "{url}: the download is larger than {} (the limit per download); set {} to raise it",
            limits::size(cap),
            limits::MAX_DOWNLOAD_ENV
        )
    };
    if response.content_length().is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let (body, more) = crate::web::read_at_most(&mut response, cap)
        .await
        .map_err(|e| format!("{url}: {}", reason(&e, timeout)))?;
    if more {
        return Err(too_large());
    }
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| format!("{url}: the download is not UTF-8 text"))
}

fn reason(e: &reqwest::Error, timeout: Option<std::time::Duration>) -> String {
    match timeout {
        Some(t) if e.is_timeout() => format!(
            "no complete answer within {} (--request-timeout); raise --request-timeout if the server is slow",
            limits::duration(t)
        ),
        _ => chain(e),
    }
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so a reader
/// sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compat_file_that_cannot_be_read_or_parsed_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let missing = dir.path().join("missing.json");
        let err = read_compat_file(&missing).expect_err("no such file");
        assert!(matches!(err, CompatError::Read { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(&format!(
                "cannot read compatibility data {}: ",
                missing.display()
            )),
            "{err}"
        );

        // Bounded as every file: a FIFO is refused before it is opened (opening one would block).
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .expect("mkfifo runs")
                .success()
        );
        let err = read_compat_file(&fifo).expect_err("not a regular file");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read compatibility data {}: it is not a regular file (a pipe, a device or a directory)",
                fifo.display()
            )
        );

        let invalid = dir.path().join("invalid.json");
        std::fs::write(&invalid, "{}").expect("write");
        let err = read_compat_file(&invalid).expect_err("not compatibility data");
        assert!(matches!(err, CompatError::Invalid { .. }), "{err:?}");
        assert!(
            err.to_string()
                .ends_with("; use a file written by kubectl meshup compat update"),
            "{err}"
        );
    }
}
