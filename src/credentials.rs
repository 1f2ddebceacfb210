//! Credentials kube-rs would read or run on its own, bounded before it does:
//! - files the kubeconfig names for the selected context (`certificate-authority`,
//!   `client-certificate`, `client-key`, `tokenFile`) must be regular files of at most
//!   [`crate::limits::MAX_CREDENTIAL_ENV`] KiB: a FIFO would block the read forever, `/dev/zero` would
//!   fill memory;
//! - an exec credential plugin runs under this binary as a wrapper ([`WRAPPER_ARG`]), which stops it
//!   after the request timeout and when it prints more than the same cap. kube-rs still runs it
//!   (and re-runs it when the credential expires), so refresh works as before.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::Config;
use kube::config::Kubeconfig;

use crate::limits::{MAX_CREDENTIAL_ENV, max_credential_bytes, size};

/// `kubectl-meshup __exec-credential TIMEOUT_MS MAX_BYTES COMMAND ARGS...`: runs an exec credential
/// plugin within bounds (see [`exec_wrapper`]). Not a command for people.
pub const WRAPPER_ARG: &str = "__exec-credential";
/// The wrapper's exit code when the plugin ran out of time, as coreutils' `timeout`.
const TIMED_OUT: i32 = 124;
/// The wrapper's exit code when the plugin printed more than the cap.
const TOO_LARGE: i32 = 125;

/// Why a credential file is refused: one line naming the file, the field and the fix.
pub fn check_files(
    kubeconfig: &Kubeconfig,
    context: &str,
    cluster_override: Option<&str>,
    user_override: Option<&str>,
) -> Result<(), String> {
    let Some(ctx) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
    else {
        return Ok(());
    };
    let cluster_name = cluster_override.unwrap_or(&ctx.cluster);
    let user_name = user_override.or(ctx.user.as_deref());
    let mut files: Vec<(&str, &str)> = Vec::new();
    if let Some(cluster) = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        && cluster.certificate_authority_data.is_none()
        && let Some(ca) = &cluster.certificate_authority
    {
        files.push(("certificate-authority", ca));
    }
    if let Some(user) = user_name
        .and_then(|name| kubeconfig.auth_infos.iter().find(|a| a.name == name))
        .and_then(|a| a.auth_info.as_ref())
    {
        if user.client_certificate_data.is_none()
            && let Some(cert) = &user.client_certificate
        {
            files.push(("client-certificate", cert));
        }
        if user.client_key_data.is_none()
            && let Some(key) = &user.client_key
        {
            files.push(("client-key", key));
        }
        if user.token.is_none()
            && let Some(token) = &user.token_file
        {
            files.push(("tokenFile", token));
        }
    }
    let limit = max_credential_bytes();
    for (field, path) in files {
        let problem = match std::fs::metadata(path) {
            // A missing or unreadable file: kube-rs says so itself.
            Err(_) => continue,
            Ok(meta) if !meta.is_file() => {
                "is not a regular file (a pipe, a device or a directory); point it at a regular file"
                    .to_string()
            }
            Ok(meta) if meta.len() > limit => format!(
                "is larger than {} (the limit for a credential file); set {MAX_CREDENTIAL_ENV} to raise it",
                size(limit)
            ),
            Ok(_) => continue,
        };
        return Err(format!("its {field} {path} {problem}"));
    }
    Ok(())
}

/// Makes kube-rs run the exec credential plugin of `config` (if any) through `wrapper` (this binary),
/// bounded by `timeout` (none: no time limit) and the credential size cap.
pub fn bound_exec(config: &mut Config, wrapper: &Path, timeout: Option<Duration>) {
    let Some(exec) = config.auth_info.exec.as_mut() else {
        return;
    };
    let Some(command) = exec.command.take() else {
        return;
    };
    let mut args = vec![
        WRAPPER_ARG.to_string(),
        timeout.map_or(0, |t| t.as_millis()).to_string(),
        max_credential_bytes().to_string(),
        command,
    ];
    args.extend(exec.args.take().unwrap_or_default());
    exec.command = Some(wrapper.display().to_string());
    exec.args = Some(args);
}

/// The limit that stopped an exec credential plugin, in words with its fix, if one did.
pub fn exec_limit(err: &kube::Error, timeout: Option<Duration>) -> Option<String> {
    let kube::Error::Auth(kube::client::AuthError::AuthExecRun { out, .. }) = err else {
        return None;
    };
    match out.status.code() {
        Some(TIMED_OUT) => Some(format!(
            "its exec credential plugin did not finish within {} and was stopped; raise --request-timeout if it needs longer (0 waits without limit)",
            timeout.map_or_else(|| "the limit".to_string(), crate::limits::duration)
        )),
        Some(TOO_LARGE) => Some(format!(
            "its exec credential plugin printed more than {} and was stopped; set {MAX_CREDENTIAL_ENV} to raise the limit",
            size(max_credential_bytes())
        )),
        _ => None,
    }
}

/// The wrapper: runs `COMMAND ARGS...` with this process's stdin, stderr and environment (kube-rs set
/// them for the plugin), passes on at most `MAX_BYTES` of its stdout, and stops it after
/// `TIMEOUT_MS` (0: never). Exits with the plugin's code, 124 when it ran out of time or 125 when it
/// printed too much.
pub fn exec_wrapper(args: &[OsString]) -> ExitCode {
    let usage = || {
        eprintln!(
            "kubectl-meshup {WRAPPER_ARG}: internal use: {WRAPPER_ARG} TIMEOUT_MS MAX_BYTES COMMAND [ARGS...]"
        );
        ExitCode::from(2)
    };
    let [timeout_ms, max_bytes, command, rest @ ..] = args else {
        return usage();
    };
    let number = |s: &OsString| s.to_str().and_then(|s| s.parse::<u64>().ok());
    let (Some(timeout_ms), Some(max_bytes)) = (number(timeout_ms), number(max_bytes)) else {
        return usage();
    };
    let mut child = match std::process::Command::new(command)
        .args(rest)
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "kubectl-meshup: cannot start the credential plugin {}: {e}",
                Path::new(command).display()
            );
            return ExitCode::from(1);
        }
    };
    let Some(mut stdout) = child.stdout.take() else {
        return ExitCode::from(1);
    };
    let overflow = Arc::new(AtomicBool::new(false));
    let reader = {
        let overflow = overflow.clone();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = (&mut stdout).take(max_bytes + 1).read_to_end(&mut out);
            if out.len() as u64 > max_bytes {
                overflow.store(true, Ordering::SeqCst);
            }
            out
        })
    };
    let deadline = (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
    let stop = |child: &mut std::process::Child, code: i32, why: &str| {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("kubectl-meshup: the credential plugin {why}; it was stopped");
        ExitCode::from(code as u8)
    };
    let status = loop {
        if overflow.load(Ordering::SeqCst) {
            return stop(
                &mut child,
                TOO_LARGE,
                &format!("printed more than {}", size(max_bytes)),
            );
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(_) => return stop(&mut child, 1, "could not be waited for"),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return stop(
                &mut child,
                TIMED_OUT,
                &format!(
                    "did not finish within {}",
                    crate::limits::duration(Duration::from_millis(timeout_ms))
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = reader.join().unwrap_or_default();
    if out.len() as u64 > max_bytes {
        eprintln!(
            "kubectl-meshup: the credential plugin printed more than {}",
            size(max_bytes)
        );
        return ExitCode::from(TOO_LARGE as u8);
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(user: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:6443'}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {user}\n"
        ))
        .unwrap()
    }

    #[test]
    fn token_files_that_are_not_regular_files_are_refused() {
        let err = check_files(&kubeconfig("{tokenFile: /dev/zero}"), "c", None, None).unwrap_err();
        assert_eq!(
            err,
            "its tokenFile /dev/zero is not a regular file (a pipe, a device or a directory); point it at a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "abc").unwrap();
        let ok = kubeconfig(&format!("{{tokenFile: {}}}", token.display()));
        assert_eq!(check_files(&ok, "c", None, None), Ok(()));
        // An inline token wins over the file, as in kube-rs and kubectl: the file is not read.
        let inline = kubeconfig("{token: t, tokenFile: /dev/zero}");
        assert_eq!(check_files(&inline, "c", None, None), Ok(()));
    }
}
