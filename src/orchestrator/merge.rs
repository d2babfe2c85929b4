//! `pingfleet merge`: the fleet figures of several shards combined exactly (worker
//! documents, or the fleet documents inside run result files).

use crate::fleet::report::WorkerReport;

/// Flags of `pingfleet merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Worker documents (`pingfleet devices --output`) or run results (`results/*.json`,
    /// whose fleet documents are merged) of several shards or machines.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<std::path::PathBuf>,
    /// Where to write the merged document.
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
}

/// The worker document in `bytes`: a worker's own, or the merged fleet document inside a
/// `pingfleet run` result file.
fn fleet_document(bytes: &[u8]) -> anyhow::Result<WorkerReport> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| anyhow::anyhow!("not JSON: {err}"))?;
    if value["schema"] == crate::results::run::SCHEMA {
        value = value["fleet"].take();
    }
    serde_json::from_value(value)
        .map_err(|err| anyhow::anyhow!("neither a worker document nor a run result: {err}"))
}

/// Runs `pingfleet merge`.
pub fn merge_files(args: &MergeArgs) -> anyhow::Result<()> {
    let reports = args
        .inputs
        .iter()
        .map(|path| {
            let text = std::fs::read(path)
                .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
            fleet_document(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
        })
        .collect::<anyhow::Result<Vec<WorkerReport>>>()?;
    let merged = WorkerReport::merge(&reports)?;
    std::fs::write(&args.output, serde_json::to_string_pretty(&merged)?)
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", args.output.display()))?;
    println!(
        "merged {} documents: {} devices, notifications sent {}, delivered {}, lost {}",
        reports.len(),
        merged.devices,
        merged.counters.notifications_sent,
        merged.counters.notifications_delivered,
        merged.counters.notifications_lost
    );
    Ok(())
}
