//! Secrets never leave the process: the one place that takes them out of text.
//!
//! - [`url`]: a server or proxy URL without its userinfo (`http://user:pw@host` → `http://host`); used
//!   wherever a URL is printed, logged or written (errors, `-v` logs, snapshots, plans).
//! - [`text`]: free text (a failing tool's last lines, kept in the journal ConfigMap) with
//!   credential-looking values replaced by `[redacted]`: userinfo in URLs, `Authorization:` headers,
//!   bearer and basic credentials, `password=`/`token=`/`secret=`-style assignments, JWTs, and
//!   private-key blocks.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret, in text and in documents alike.
pub const REDACTED: &str = "[redacted]";

/// `scheme://userinfo@` at the start of an authority.
static USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s]*@").expect("valid regex"));

/// `Authorization: …` (header or log form) up to the end of the line.
static AUTHORIZATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b((?:proxy-)?authorization["']?\s*[:=]\s*)[^\r\n]+"#).expect("valid regex")
});

/// `Bearer xyz`, `Basic xyz`.
static SCHEME_CREDENTIAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{4,}").expect("valid regex")
});

/// `key=value`, `key: value`, `"key": "value"` where the key names a secret (`DB_PASSWORD`, `client-secret`, `api_key`, `token`, …).
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_\-.]*(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|credentials?)["']?\s*[:=]\s*["']?)[^\s"'&,;]+"#,
    )
    .expect("valid regex")
});

/// A JSON Web Token: three base64url parts, the first starting `eyJ` (`{"`).
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
        .expect("valid regex")
});

/// A PEM private key, or its beginning when the text was cut.
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
    )
    .expect("valid regex")
});

/// `url` without its userinfo. Text that is not a URL with userinfo comes back unchanged.
pub fn url(url: &str) -> String {
    USERINFO.replace_all(url, "$1").into_owned()
}

/// `text` with every credential-looking value replaced by `[redacted]`.
pub fn text(text: &str) -> String {
    let t = PRIVATE_KEY.replace_all(text, "[redacted private key]");
    let t = USERINFO.replace_all(&t, format!("${{1}}{REDACTED}@"));
    let t = AUTHORIZATION.replace_all(&t, format!("${{1}}{REDACTED}"));
    let t = SCHEME_CREDENTIAL.replace_all(&t, format!("${{1}}${{2}}{REDACTED}"));
    let t = ASSIGNMENT.replace_all(&t, format!("${{1}}{REDACTED}"));
    JWT.replace_all(&t, REDACTED).into_owned()
}

/// Key names whose values are credentials (compared without case, `-` and `_`).
const SECRET_KEYS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "clientsecret",
    "credentials",
    "authorization",
];

fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.iter().any(|s| k.ends_with(s)) || k == "key" || k.ends_with("keydata")
}

fn is_secret_text(s: &str) -> bool {
    s.contains("-----BEGIN") || s.to_ascii_lowercase().starts_with("bearer ")
}

/// In a structured document (Helm values, a mesh config): replaces every value under a credential-looking key, and every string that is a private key or a
/// bearer token, with [`REDACTED`]. Objects and lists are walked; the structure stays.
pub fn json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) && !v.is_object() && !v.is_array() && !v.is_null() {
                    *v = serde_json::Value::String(REDACTED.to_string());
                } else {
                    json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(json),
        serde_json::Value::String(s) if is_secret_text(s) => *s = REDACTED.to_string(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_userinfo_and_keep_the_rest() {
        assert_eq!(
            url("http://admin:PASSWORD@10.0.0.1:6443/api?x=1"),
            "http://10.0.0.1:6443/api?x=1"
        );
        assert_eq!(url("socks5://u:p@proxy:1080"), "socks5://proxy:1080");
        assert_eq!(url("https://h:6443"), "https://h:6443");
        assert_eq!(
            url("https://h/a@b"),
            "https://h/a@b",
            "an @ in the path stays"
        );
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn credential_looking_values_are_redacted_and_the_rest_kept() {
        let cases = [
            (
                "Error: Get \"https://bob:hunter2@api:6443/x\": EOF",
                "Error: Get \"https://[redacted]@api:6443/x\": EOF",
            ),
            (
                "Authorization: Bearer abc.def.ghi",
                "Authorization: [redacted]",
            ),
            (
                "using bearer s3cr3tT0ken now",
                "using bearer [redacted] now",
            ),
            (
                "DB_PASSWORD=hunter2 user=bob",
                "DB_PASSWORD=[redacted] user=bob",
            ),
            (
                r#"{"token": "abcd1234", "name": "x"}"#,
                r#"{"token": "[redacted]", "name": "x"}"#,
            ),
            (
                "--set auth.clientSecret=xyz",
                "--set auth.clientSecret=[redacted]",
            ),
            (
                "header eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig_nature-1 end",
                "header [redacted] end",
            ),
            (
                "key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY----- done",
                "key: [redacted private key] done",
            ),
            (
                "cut -----BEGIN RSA PRIVATE KEY-----\nMIIEow",
                "cut [redacted private key]",
            ),
            (
                "Error: deployment istiod not ready after 5m0s",
                "Error: deployment istiod not ready after 5m0s",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }
}
