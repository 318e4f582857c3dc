//! `spikeloop plan`: how a network larger than one chip is split into parts that each fit the
//! chosen substrate (the emulated chip by default, or a device), and what it costs in hardware
//! time. Needs no data files: the network's shape follows from the configuration alone.

use anyhow::Context;
use clap::Args;
use spikeloop_backend::{PartitionRules, Plan};
use spikeloop_trainer::Model;

use crate::backend::BackendArgs;

/// Arguments of `spikeloop plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    network: crate::train::NetworkArgs,
    #[command(flatten)]
    backend: BackendArgs,
    /// Samples per batch: every part runs a whole batch before the next is configured, so
    /// reconfiguration is paid once per part and batch [default: the training default].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_size: Option<u64>,
    /// Hardware time to write one part's configuration, in microseconds [default: 2000, an
    /// estimate from the synapse array's size and a 1 Gbit/s link].
    #[arg(long, allow_negative_numbers = true, value_name = "US")]
    reconfigure_us: Option<f64>,
    /// Most neuron circuits merged into one logical neuron [default: what the substrate
    /// announces; 64 on the emulated chip].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_merged: Option<u64>,
}

/// Runs `spikeloop plan`.
pub fn run(args: PlanArgs) -> anyhow::Result<()> {
    // The substrate itself (its geometry), not the partitioned view of it.
    let mut substrate = args.backend.clone();
    substrate.partitioned = false;
    let backend = substrate.build()?;
    let capabilities = backend.capabilities().clone();
    drop(backend);
    let Some(mut geometry) = capabilities.geometry else {
        anyhow::bail!(
            "the {} backend has no chip geometry to plan for; plan against the emulated chip (the default) or a device (--device PATH)",
            capabilities.name
        );
    };
    let mut rules = PartitionRules::BRAINSCALES2;
    if let Some(us) = args.reconfigure_us {
        if !(us.is_finite() && (0.0..=1e9).contains(&us)) {
            anyhow::bail!("--reconfigure-us {us}: allowed 0 to 1e9 microseconds");
        }
        rules.reconfigure_us = us;
    }
    if let Some(m) = args.max_merged {
        geometry.max_merged = usize::try_from(m).context("--max-merged is too large")?;
    }
    let mut config = args.network.config(&capabilities)?;
    if let Some(b) = args.batch_size {
        config.training.batch_size = usize::try_from(b).context("--batch-size is too large")?;
    }
    config.validate()?;
    let n_classes = config.dataset.n_classes();
    let model = Model::initialise(
        &config,
        config.dataset.n_features(&config.data),
        (0..n_classes).map(|c| c.to_string()).collect(),
    )?;
    let network = model.to_network();
    let shape = network.shape();
    let plan = Plan::new(geometry, rules, network.n_inputs, &shape)?;
    plan.check(&shape)
        .map_err(|e| anyhow::anyhow!("internal error: the plan does not fit: {e:?}"))?;
    let sizes: Vec<String> = shape.iter().map(|(s, _)| s.to_string()).collect();
    let repeat = config.encoding.repeat.max(1);
    let fed = if repeat > 1 {
        format!(" (each fed {repeat} times)")
    } else {
        String::new()
    };
    let per_circuit = geometry.sources_per_circuit();
    outln!(
        "{}: {} inputs{fed} and {} bias spike(s) -> {} on {}",
        config.dataset,
        network.n_inputs,
        shape.first().map_or(0, |l| l.1),
        sizes.join("-"),
        capabilities.name
    );
    outln!(
        "chip: {} halves of {} neuron circuits and {} synapse rows; {} signed sources per circuit, up to {} circuits merged into one neuron",
        geometry.halves,
        geometry.neurons_per_half,
        geometry.rows_per_half,
        per_circuit,
        geometry.max_merged
    );
    out!("{}", plan.table());
    let runs = plan.runs_per_sample();
    let batch = config.training.batch_size;
    match (
        capabilities.tau_s_us,
        capabilities.sample_window,
        capabilities.batch_overhead_us,
    ) {
        (Some(tau), Some(window), overhead) => {
            let window_us = tau * window;
            let overhead_us = overhead.unwrap_or(0.0);
            let per_batch = plan.hardware_time_us(batch, window_us, overhead_us);
            let per_sample = per_batch / batch as f64;
            let reconfigure = if runs > 1 { rules.reconfigure_us } else { 0.0 };
            outln!(
                "{runs} part(s): {runs} run(s) per sample; hardware time per sample in batches of {batch}: {runs} x {window_us:.0} us window + {runs} x ({reconfigure:.0} us reconfiguration + {overhead_us:.0} us run overhead) / {batch} = {per_sample:.0} us ({:.0} samples/s; 50,000 samples in {:.1} s)",
                1e6 / per_sample,
                50_000.0 * per_sample * 1e-6
            );
        }
        _ => outln!(
            "{runs} part(s): {runs} run(s) per sample; the {} backend states no hardware time",
            capabilities.name
        ),
    }
    Ok(())
}
