//! `kubectl-meshup`: wiring only. Parse, resolve settings and logging, run on a tokio runtime, and map
//! the outcome to the exit code (Ctrl-C: 130, see `cli::run`).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use kubectl_meshup::cli::{self, Cli, Settings};
use kubectl_meshup::credentials;
use kubectl_meshup::error::{self, Error};

fn main() -> ExitCode {
    // kubectl's plugin completion: `kubectl meshup __complete ARGS... WORD` (before clap, which would
    // read the words as flags).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == cli::complete::SUBCOMMAND) {
        return cli::complete::main(&argv[2..]);
    }
    // An exec credential plugin, run by kube-rs through this binary within bounds.
    if argv.get(1).is_some_and(|a| a == credentials::WRAPPER_ARG) {
        return credentials::exec_wrapper(&argv[2..]);
    }
    let parsed = Cli::command()
        .color(cli::clap_color(&argv))
        .try_get_matches_from(&argv)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => return cli::parse_failure(err),
    };
    let format = match cli::output_format(&cli) {
        Ok(format) => format,
        Err(err) => return cli::parse_failure(err),
    };
    let settings = Settings::resolve(&cli.global);
    settings.init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return error::finish(Err(Error::Write {
                what: "the async runtime".into(),
                source: e,
            }));
        }
    };
    let result = runtime.block_on(cli::run(&cli, format, &settings));
    error::finish(result)
}
