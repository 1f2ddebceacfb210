//! Writers for data documents and messages. Data goes to stdout (or `--out FILE`), messages to
//! stderr; a closed pipe on either (`kubectl meshup snapshot | head`, `... 2>&1 | head -1`) is not an
//! error.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

/// A document or message that could not be written: what, and the IO error. The command layer turns
/// it into its error (`Error::Write`); this module knows nothing of commands.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {what}: {source}")]
pub struct WriteError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

/// The serialization of a document (`-o json|yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Json,
    Yaml,
}

/// Serializes `value` as pretty JSON or YAML, ending with a newline.
pub fn render<T: Serialize>(value: &T, format: DocFormat) -> Result<String, WriteError> {
    let text = match format {
        DocFormat::Json => serde_json::to_string_pretty(value).map_err(io::Error::other),
        DocFormat::Yaml => serde_saphyr::to_string(value).map_err(io::Error::other),
    }
    .map_err(|source| WriteError {
        what: "the document".to_string(),
        source,
    })?;
    Ok(if text.ends_with('\n') {
        text
    } else {
        text + "\n"
    })
}

/// Writes `text` to stdout; a broken pipe counts as success.
pub fn write_stdout(text: &str) -> Result<(), WriteError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(WriteError {
            what: "stdout".to_string(),
            source,
        }),
    }
}

/// Writes a message line to stderr. Unlike `eprintln!`, which panics (exit 101) when stderr is a
/// closed pipe, the line is then lost and the command ends with its own exit code.
pub fn write_stderr_line(line: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Writes `text` to stderr without ending the line (a step line whose result follows), flushed so
/// it shows at once; like [`write_stderr_line`], a closed stderr loses it instead of panicking.
pub fn write_stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Writes `text` to `path` when given, else to stdout.
pub fn write_to(text: &str, path: Option<&Path>) -> Result<(), WriteError> {
    match path {
        None => write_stdout(text),
        Some(path) => std::fs::write(path, text).map_err(|source| WriteError {
            what: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_end_with_a_newline_in_both_formats() {
        let value = serde_json::json!({"apiVersion": "meshup.dev/v1alpha1", "kind": "X"});
        let json = render(&value, DocFormat::Json).unwrap();
        assert!(json.starts_with('{') && json.ends_with("}\n"), "{json}");
        let yaml = render(&value, DocFormat::Yaml).unwrap();
        assert!(yaml.contains("kind: X\n"), "{yaml}");
    }
}
