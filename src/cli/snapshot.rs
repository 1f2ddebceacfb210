//! `kubectl meshup snapshot`: write the observed facts as a ClusterSnapshot document.

use super::args::{GlobalArgs, OutputFormat, SnapshotArgs};
use super::observe_clusters;
use crate::error::{Error, Exit};
use crate::output::{DocFormat, render, write_to};

pub async fn run(
    global: &GlobalArgs,
    args: &SnapshotArgs,
    format: OutputFormat,
) -> Result<Exit, Error> {
    let format = match format {
        OutputFormat::Json => DocFormat::Json,
        _ => DocFormat::Yaml,
    };
    let snapshot = observe_clusters(global).await?;
    write_to(&render(&snapshot, format)?, args.out.as_deref())?;
    Ok(Exit::Ok)
}
