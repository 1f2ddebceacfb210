//! `kubectl-meshup`: wiring only. Parse, resolve settings and logging, run on a tokio runtime (Ctrl-C
//! ends with 130), and map the outcome to the exit code.

use std::process::ExitCode;

use clap::Parser;
use kubectl_meshup::cli::{self, Cli, Settings};
use kubectl_meshup::error::{self, Error};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    let result = runtime.block_on(async {
        tokio::select! {
            result = cli::run(&cli, &settings) => result,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    });
    error::finish(result)
}
