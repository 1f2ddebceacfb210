//! Text from plans, clusters and tools made safe to show on a terminal: the one escaping function every
//! renderer and prompt uses (the plan's table and markdown, `plan show`, `apply`'s step lines and
//! prompts, error lines). Pure.
//!
//! A plan file is text anyone can edit; shown raw, an escape sequence in a step title could erase the
//! lines above it, hide text (`ESC[8m`), write the clipboard (OSC 52) or reorder what the reviewer reads
//! (bidirectional overrides). Every control character, bidirectional control and zero-width character
//! is shown as a visible escape instead (`\n`, `\u{1b}`), so what the reviewer sees is what the plan
//! holds.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1), bidirectional control and zero-width character
/// replaced by a visible escape: `\n`, `\r`, `\t`, else `\u{XX}`. Text without any is returned as is.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// JSON text with every character [`escape_control`] would escape written as a JSON `\uXXXX` escape:
/// the same document, nothing raw for a terminal to obey. serde_json escapes C0 controls itself, but
/// not DEL, C1 controls (`\u{9b}` is a CSI), bidirectional or zero-width characters. Outside strings
/// JSON text is ASCII, and a raw newline there is layout, so only those are replaced.
pub fn escape_json_text(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c != '\n' && needs_escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `text` holds anything [`escape_control`] would escape, other than line breaks.
pub fn has_control(text: &str) -> bool {
    text.chars().any(|c| c != '\n' && needs_escape(c))
}

/// Every string (and object key) in a JSON value, escaped with [`escape_control`].
pub fn escape_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(escape_control(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (escape_control(&k).into_owned(), escape_json(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sequences_are_shown_not_obeyed() {
        assert_eq!(escape_control("plain text: ok"), "plain text: ok");
        assert!(matches!(escape_control("plain"), Cow::Borrowed(_)));
        // Erase line, OSC 52 clipboard write, hidden text, carriage return over a line.
        assert_eq!(escape_control("a\x1b[2Kb"), "a\\u{1b}[2Kb");
        assert_eq!(
            escape_control("\x1b]52;c;ZXZpbA==\x07"),
            "\\u{1b}]52;c;ZXZpbA==\\u{7}"
        );
        assert_eq!(
            escape_control("\x1b[8mhidden\x1b[0m"),
            "\\u{1b}[8mhidden\\u{1b}[0m"
        );
        assert_eq!(escape_control("ok\rEVIL\nx\ty"), "ok\\rEVIL\\nx\\ty");
        assert_eq!(escape_control("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(
            escape_control("a\u{202e}b\u{200b}c"),
            "a\\u{202e}b\\u{200b}c"
        );
        assert_eq!(escape_control("Schöne Grüße ✓"), "Schöne Grüße ✓");
    }

    #[test]
    fn json_text_keeps_its_value_and_loses_its_raw_controls() {
        let value = serde_json::json!({"title": "a\u{9b}31m\u{202e}b\u{7f}", "n": 1});
        let raw = serde_json::to_string_pretty(&value).unwrap();
        let shown = escape_json_text(&raw);
        assert!(!has_control(&shown), "{shown}");
        assert!(shown.contains(r"a\u009b31m\u202eb\u007f"), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
        assert!(matches!(
            escape_json_text("{\n  \"a\": 1\n}"),
            Cow::Borrowed(_)
        ));
    }
}
