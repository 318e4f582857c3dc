//! `spikeloop analyze`: synchronisation (pulse packets) and semantisation (pathways,
//! separability) layer by layer, for a trained network and its untrained initialisation side by
//! side, on any backend.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use spikeloop_backend::{Backend, Record};
use spikeloop_data::{Dataset, Split};
use spikeloop_trainer::analysis::{self, Packet};
use spikeloop_trainer::eval::{EVAL_BATCH, encode_batch};
use spikeloop_trainer::{Model, TrainConfig};

use crate::backend::BackendArgs;

/// Arguments of `spikeloop analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The trained model (model.json of a run).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Data set split to run: train, validation or test.
    #[arg(long, default_value = "test", value_name = "SPLIT")]
    split: Split,
    /// Samples of the split to analyse (its first ones); at least 20.
    #[arg(long, default_value_t = 2000, value_name = "N", value_parser = clap::value_parser!(u64).range(20..))]
    samples: u64,
    /// Fraction of a layer's neurons that form a class's pathway (those of strongest
    /// excitatory influence on the class's output neuron), in (0, 1].
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.1,
        value_name = "FRACTION"
    )]
    pathway_fraction: f64,
    /// Directory of the report and figures [default: <model's directory>/analysis-<substrate>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Directory of the IDX files, where they are no longer where the model was trained from.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    calibration: crate::calibrate::CalibrationArgs,
}

/// Everything measured of one network.
#[derive(Serialize)]
struct NetworkReport {
    /// Accuracy on the analysed samples.
    accuracy: f64,
    /// One entry per layer (hidden layers, then the output layer).
    layers: Vec<LayerReport>,
}

/// Medians over samples of the pulse-packet measures of one population.
#[derive(Serialize, Clone, Copy)]
struct PacketSummary {
    /// Samples in which the population spiked.
    samples_with_spikes: usize,
    count: f64,
    sd: f64,
    iqr: f64,
    window50: f64,
}

#[derive(Serialize)]
struct LayerReport {
    name: String,
    size: usize,
    packets: PacketSummary,
    /// Dale networks: the excitatory and inhibitory populations separately.
    #[serde(skip_serializing_if = "Option::is_none")]
    excitatory: Option<PacketSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inhibitory: Option<PacketSummary>,
    /// The correct class's pathway neurons only (hidden layers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pathway: Option<PacketSummary>,
    separability: f64,
    linear_readout: f64,
    /// Hidden layers: mean pairwise Jaccard overlap of the class pathways, by the structural
    /// (positive weight paths) and the functional (dT_out/dt_j) measure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pathway_overlap_structural: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pathway_overlap_functional: Option<f64>,
    /// Mean fraction of a packet's spikes from the correct class's (structural) pathway, and
    /// what the pathway's share of the layer would give by chance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pathway_spike_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pathway_chance: Option<f64>,
    /// Per-sample widths of the shortest 50 % window (for the figures).
    #[serde(skip)]
    widths: Vec<f64>,
    /// Every spike time of the layer (for the histograms).
    #[serde(skip)]
    all_times: Vec<f64>,
    /// The first sample's spike times (for the raster).
    #[serde(skip)]
    first_sample: Vec<f64>,
}

#[derive(Serialize)]
struct Report {
    format: &'static str,
    model: String,
    dataset: String,
    split: Split,
    samples: usize,
    substrate: spikeloop_backend::Substrate,
    pathway_fraction: f64,
    silent_time: f64,
    untrained: NetworkReport,
    trained: NetworkReport,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    if !(args.pathway_fraction > 0.0 && args.pathway_fraction <= 1.0) {
        bail!(
            "--pathway-fraction {}: allowed more than 0 and at most 1",
            args.pathway_fraction
        );
    }
    let model = crate::infer::load_model(&args.model)?;
    let Some(provenance) = model.provenance.as_ref() else {
        bail!(
            "{} records no training configuration, so its untrained initialisation cannot be rebuilt; analyse a model.json written by `spikeloop train`",
            args.model.display()
        );
    };
    let config: &TrainConfig = &provenance.config;
    let full = crate::infer::model_split(&model, args.split, args.data_dir.as_deref())?;
    let n = full
        .len()
        .min(usize::try_from(args.samples).unwrap_or(usize::MAX));
    if n < 20 {
        bail!(
            "the {} split holds {} samples; the analysis needs at least 20",
            args.split,
            full.len()
        );
    }
    let data = full.head(n);
    let untrained = Model::initialise(config, model.n_features(), model.classes.clone())?;

    let mut backend = args.backend.build()?;
    // The report's directory before the chip is calibrated, which can take a while.
    let dir = args.out.clone().unwrap_or_else(|| {
        args.model
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("analysis-{}", backend.file_tag()))
    });
    spikeloop_files::create_dir(&dir)?;
    let applied = crate::calibrate::for_model(
        backend.as_mut(),
        &args.calibration,
        &model,
        &args.model,
        args.backend.kind() == crate::backend::BackendKind::Emulator,
        false,
    )?;
    let substrate = crate::calibrate::described(backend.substrate(), applied.as_ref());

    let dale = config.network.dale;
    let fraction = args.pathway_fraction;
    let before = analyse(backend.as_mut(), &untrained, &data, dale, fraction)?;
    let after = analyse(backend.as_mut(), &model, &data, dale, fraction)?;
    let report = Report {
        format: "spikeloop-analysis",
        model: args.model.display().to_string(),
        dataset: model.dataset.to_string(),
        split: args.split,
        samples: n,
        substrate,
        pathway_fraction: fraction,
        silent_time: analysis::SILENT_TIME,
        untrained: before,
        trained: after,
    };
    let json = serde_json::to_string_pretty(&report).context("could not encode the report")?;
    spikeloop_files::write_atomic(
        &dir.join("analysis.json"),
        json.as_bytes(),
        "write the analysis",
    )?;
    let md = markdown(&report);
    spikeloop_files::write_atomic(
        &dir.join("analysis.md"),
        md.as_bytes(),
        "write the analysis",
    )?;
    figures(&dir, &report)?;
    outln!("{md}");
    errln!(
        "wrote {} (analysis.md, analysis.json, figures as PNG and SVG)",
        dir.display()
    );
    Ok(())
}

/// Runs `model` over `data` on `backend` recording every layer, and measures it.
fn analyse(
    backend: &mut dyn Backend,
    model: &Model,
    data: &Dataset,
    dale: Option<spikeloop_trainer::Dale>,
    fraction: f64,
) -> anyhow::Result<NetworkReport> {
    let network = model.to_network();
    backend.configure(&network)?;
    let n = data.len();
    let stride = network.n_neurons();
    let mut measured = Vec::with_capacity(n * stride);
    let mut inputs = Vec::with_capacity(n * network.n_inputs);
    for start in (0..n).step_by(EVAL_BATCH) {
        let batch = encode_batch(model, data, start..(start + EVAL_BATCH).min(n))?;
        let out = backend.run(&batch, Record::AllLayers)?;
        for s in 0..batch.len() {
            inputs.extend_from_slice(batch.sample(s));
            measured.extend_from_slice(out.spikes.sample(s));
        }
    }
    let labels: Vec<usize> = data.labels.iter().map(|&l| l as usize).collect();
    let n_classes = model.n_classes();
    let offsets = network.layer_offsets();
    let sample = |s: usize, l: usize| {
        let o = s * stride + offsets[l];
        &measured[o..o + network.layers[l].size]
    };
    let last = network.layers.len() - 1;
    let correct = (0..n)
        .filter(|&s| spikeloop_trainer::loss::prediction(sample(s, last)) == Some(labels[s]))
        .count();

    // Pathways: structural from the weights, functional from each sample's own class.
    let n_hidden = last;
    let structural: Vec<Vec<Vec<usize>>> = analysis::positive_path_influence(&network)
        .iter()
        .map(|m| {
            (0..n_classes)
                .map(|c| analysis::top_fraction(&m.row(c).to_vec(), fraction))
                .collect()
        })
        .collect();
    let mut functional_sum: Vec<Vec<Vec<f64>>> = (0..n_hidden)
        .map(|l| vec![vec![0.0; network.layers[l].size]; n_classes])
        .collect();
    for s in 0..n {
        let c = labels[s];
        let sens = analysis::time_sensitivity(
            &network,
            &inputs[s * network.n_inputs..(s + 1) * network.n_inputs],
            &measured[s * stride..(s + 1) * stride],
            c,
        );
        for (l, v) in sens.iter().enumerate() {
            for (acc, x) in functional_sum[l][c].iter_mut().zip(v) {
                *acc += x;
            }
        }
    }
    let functional: Vec<Vec<Vec<usize>>> = functional_sum
        .iter()
        .map(|per_class| {
            per_class
                .iter()
                .map(|v| analysis::top_fraction(v, fraction))
                .collect()
        })
        .collect();
    let mean_overlap = |sets: &[Vec<usize>]| {
        let mut sum = 0.0;
        let mut pairs = 0;
        for a in 0..sets.len() {
            for b in a + 1..sets.len() {
                sum += analysis::jaccard(&sets[a], &sets[b]);
                pairs += 1;
            }
        }
        sum / f64::from(pairs.max(1))
    };

    let mut layers = Vec::new();
    for (l, layer) in network.layers.iter().enumerate() {
        let hidden = l < last;
        let population = |range: std::ops::Range<usize>| -> PacketSummary {
            summarise((0..n).filter_map(|s| analysis::packet(&sample(s, l)[range.clone()])))
        };
        let (excitatory, inhibitory) = match dale.filter(|_| hidden) {
            Some(d) => (
                Some(population(0..d.excitatory)),
                Some(population(d.excitatory..layer.size)),
            ),
            None => (None, None),
        };
        let packets: Vec<Packet> = (0..n)
            .filter_map(|s| analysis::packet(sample(s, l)))
            .collect();
        let vectors = analysis::time_vectors((0..n).map(|s| sample(s, l)), layer.size);
        let (pathway, spike_fraction) = if hidden {
            let sets = &structural[l];
            let mut fraction_sum = 0.0;
            let mut counted = 0;
            let mut path_packets = Vec::new();
            for s in 0..n {
                let t = sample(s, l);
                let path: Vec<f64> = sets[labels[s]].iter().map(|&j| t[j]).collect();
                let fired = t.iter().filter(|t| t.is_finite()).count();
                if fired > 0 {
                    let on_path = path.iter().filter(|t| t.is_finite()).count();
                    fraction_sum += on_path as f64 / fired as f64;
                    counted += 1;
                }
                path_packets.extend(analysis::packet(&path));
            }
            (
                Some(summarise(path_packets.into_iter())),
                Some(fraction_sum / f64::from(counted.max(1))),
            )
        } else {
            (None, None)
        };
        layers.push(LayerReport {
            name: if hidden {
                format!("hidden {}", l + 1)
            } else {
                "output".into()
            },
            size: layer.size,
            packets: summarise(packets.iter().copied()),
            excitatory,
            inhibitory,
            pathway,
            separability: analysis::separability(&vectors, &labels, n_classes),
            linear_readout: analysis::linear_readout_accuracy(&vectors, &labels, n_classes),
            pathway_overlap_structural: hidden.then(|| mean_overlap(&structural[l])),
            pathway_overlap_functional: hidden.then(|| mean_overlap(&functional[l])),
            pathway_spike_fraction: spike_fraction,
            pathway_chance: hidden.then(|| {
                structural[l]
                    .first()
                    .map_or(0.0, |p| p.len() as f64 / layer.size as f64)
            }),
            widths: packets.iter().map(|p| p.window50).collect(),
            all_times: (0..n)
                .flat_map(|s| sample(s, l).iter().copied().filter(|t| t.is_finite()))
                .collect(),
            first_sample: sample(0, l).to_vec(),
        });
    }
    Ok(NetworkReport {
        accuracy: correct as f64 / n as f64,
        layers,
    })
}

/// Medians over samples of a population's packets.
fn summarise(packets: impl Iterator<Item = Packet>) -> PacketSummary {
    let p: Vec<Packet> = packets.collect();
    let med = |f: fn(&Packet) -> f64| analysis::median(&p.iter().map(f).collect::<Vec<_>>());
    PacketSummary {
        samples_with_spikes: p.len(),
        count: med(|p| p.count as f64),
        sd: med(|p| p.sd),
        iqr: med(|p| p.iqr),
        window50: med(|p| p.window50),
    }
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Synchronisation and semantisation: {}\n\n{} {} split, first {} samples, on {}. Accuracy on them: untrained {:.2} %, trained {:.2} %. Times in tau_s; each packet figure is the median over samples. Pathways: the top {:.0} % of a layer's neurons per class.\n",
        r.model,
        r.dataset,
        r.split,
        r.samples,
        r.substrate.summary,
        100.0 * r.untrained.accuracy,
        100.0 * r.trained.accuracy,
        100.0 * r.pathway_fraction
    );
    let _ = writeln!(
        s,
        "| layer | 50 % window (untrained → trained) | SD | IQR | spikes | separability | linear read-out | pathway overlap (structural / functional) | spikes on the class's pathway (chance) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for (u, t) in r.untrained.layers.iter().zip(&r.trained.layers) {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "| {} ({}) | {:.3} → {:.3} | {:.3} → {:.3} | {:.3} → {:.3} | {:.0} → {:.0} | {:.2} → {:.2} | {:.1} % → {:.1} % | {} / {} → {} / {} | {} → {} ({}) |",
            t.name,
            t.size,
            u.packets.window50,
            t.packets.window50,
            u.packets.sd,
            t.packets.sd,
            u.packets.iqr,
            t.packets.iqr,
            u.packets.count,
            t.packets.count,
            u.separability,
            t.separability,
            100.0 * u.linear_readout,
            100.0 * t.linear_readout,
            opt(u.pathway_overlap_structural),
            opt(u.pathway_overlap_functional),
            opt(t.pathway_overlap_structural),
            opt(t.pathway_overlap_functional),
            opt(u.pathway_spike_fraction),
            opt(t.pathway_spike_fraction),
            opt(t.pathway_chance),
        );
    }
    let populations: Vec<_> = r
        .trained
        .layers
        .iter()
        .zip(&r.untrained.layers)
        .filter_map(|(t, u)| {
            Some((
                t,
                u,
                t.excitatory?,
                t.inhibitory?,
                u.excitatory?,
                u.inhibitory?,
            ))
        })
        .collect();
    if !populations.is_empty() {
        let _ = writeln!(
            s,
            "\nDale's law: 50 % window per population (untrained → trained)\n\n| layer | excitatory | inhibitory | pathway |\n|---|---|---|---|"
        );
        for (t, u, te, ti, ue, ui) in populations {
            let path = |l: &LayerReport| l.pathway.map_or(f64::NAN, |p| p.window50);
            let _ = writeln!(
                s,
                "| {} | {:.3} → {:.3} | {:.3} → {:.3} | {:.3} → {:.3} |",
                t.name,
                ue.window50,
                te.window50,
                ui.window50,
                ti.window50,
                path(u),
                path(t)
            );
        }
    }
    let _ = writeln!(
        s,
        "\nMeasures: the 50 % window is the width of the shortest interval holding half of a layer's spikes in one sample; separability is the between-class over the within-class mean squared distance of the layer's spike-time vectors (silent neurons at {} tau_s); the linear read-out is softmax regression fitted on the first half of the samples and scored on the second; structural pathways rank neurons by the summed products of positive weights along all paths to the class's output neuron, functional ones by the mean exact dT_out/dt_j over the class's samples.",
        r.silent_time
    );
    s
}

/// The founding study's public 784-4x400-10 MNIST networks (Oberste-Frielinghaus et al. 2025,
/// arXiv 2508.12975), hidden layers 1-4, as measured on them with these measures: the median
/// width of the shortest window holding half of a layer's spikes (tau_s), and separability.
const STUDY_WINDOW50: [f64; 4] = [0.14, 0.70, 0.32, 0.09];
const STUDY_SEPARABILITY: [f64; 4] = [1.0, 1.4, 2.0, 3.1];

/// The untrained and the trained network's values over depth, and a reference where given.
fn profile_series<'a>(
    untrained: &'a [f64],
    trained: &'a [f64],
    reference: Option<&'a [f64]>,
) -> Vec<spikeloop_plot::ProfileSeries<'a>> {
    let mut v = vec![
        measured("untrained", untrained),
        measured("trained", trained),
    ];
    v.extend(reference.map(study_series));
    v
}

/// Values over depth measured on a network here, drawn as a curve of its own.
fn measured<'a>(label: &'static str, values: &'a [f64]) -> spikeloop_plot::ProfileSeries<'a> {
    spikeloop_plot::ProfileSeries {
        label,
        values,
        reference: false,
    }
}

/// The founding study's values over depth, drawn as a reference.
fn study_series(values: &[f64]) -> spikeloop_plot::ProfileSeries<'_> {
    spikeloop_plot::ProfileSeries {
        label: "founding study (MNIST, 4 x 400)",
        values,
        reference: true,
    }
}

fn figures(dir: &Path, r: &Report) -> anyhow::Result<()> {
    use spikeloop_plot::{DepthProfile, DistributionPanel, Distributions, ProfilePanel};
    let labels = ("untrained", "trained");
    let names: Vec<String> = r
        .trained
        .layers
        .iter()
        .map(|l| format!("{} ({})", l.name, l.size))
        .collect();
    let panels = |x_label: &'static str, values: fn(&LayerReport) -> &[f64]| {
        r.untrained
            .layers
            .iter()
            .zip(&r.trained.layers)
            .zip(&names)
            .map(|((u, t), name)| DistributionPanel {
                caption: name,
                x_label,
                before: values(u),
                after: values(t),
                target: None,
            })
            .collect::<Vec<_>>()
    };
    let times = panels("spike time (tau_s)", |l| &l.all_times);
    let widths = panels("shortest 50 % window (tau_s)", |l| &l.widths);
    let subtitle = format!(
        "{} {}, {} samples, {}",
        r.dataset, r.split, r.samples, r.substrate.summary
    );
    // Profiles over depth, the untrained and trained network and, where the layer count
    // matches, the founding study's public networks (hidden layers only).
    let depth_names: Vec<&str> = r.trained.layers.iter().map(|l| l.name.as_str()).collect();
    let profile = |n: &NetworkReport, f: fn(&LayerReport) -> f64| -> Vec<f64> {
        n.layers.iter().map(f).collect()
    };
    let study = |values: [f64; 4]| -> Option<Vec<f64>> {
        (r.trained.layers.len() == values.len() + 1)
            .then(|| values.iter().copied().chain([f64::NAN]).collect())
    };
    let window = |l: &LayerReport| l.packets.window50;
    let separability = |l: &LayerReport| l.separability;
    let readout = |l: &LayerReport| 100.0 * l.linear_readout;
    let (window_u, window_t) = (profile(&r.untrained, window), profile(&r.trained, window));
    let (sep_u, sep_t) = (
        profile(&r.untrained, separability),
        profile(&r.trained, separability),
    );
    let (read_u, read_t) = (profile(&r.untrained, readout), profile(&r.trained, readout));
    let study_window = study(STUDY_WINDOW50);
    let study_separability = study(STUDY_SEPARABILITY);
    let window_series = profile_series(&window_u, &window_t, study_window.as_deref());
    let sep_series = profile_series(&sep_u, &sep_t, study_separability.as_deref());
    let read_series = profile_series(&read_u, &read_t, None);
    // Dale networks: the trained network's populations beside its whole layers (the whole
    // layer second, so that it keeps the trained network's colour of the other panels).
    let population = |f: fn(&LayerReport) -> Option<PacketSummary>| -> Vec<f64> {
        r.trained
            .layers
            .iter()
            .map(|l| f(l).map_or(f64::NAN, |p| p.window50))
            .collect()
    };
    let dale = r.trained.layers.iter().any(|l| l.excitatory.is_some());
    let (excitatory, inhibitory, pathway) = (
        population(|l| l.excitatory),
        population(|l| l.inhibitory),
        population(|l| l.pathway),
    );
    let mut population_series = vec![
        measured("excitatory", &excitatory),
        measured("whole layer", &window_t),
        measured("inhibitory", &inhibitory),
        measured("pathway neurons", &pathway),
    ];
    population_series.extend(study_window.as_deref().map(study_series));
    let mut depth_panels = vec![
        ProfilePanel {
            caption: "Pulse packet: median 50 % window",
            y_label: "tau_s",
            series: &window_series,
        },
        ProfilePanel {
            caption: "Separability (between / within)",
            y_label: "ratio",
            series: &sep_series,
        },
        ProfilePanel {
            caption: "Linear read-out accuracy",
            y_label: "%",
            series: &read_series,
        },
    ];
    if dale {
        depth_panels.insert(
            1,
            ProfilePanel {
                caption: "Dale's law: 50 % window per population (trained)",
                y_label: "tau_s",
                series: &population_series,
            },
        );
    }
    let raster_layers = |n: &NetworkReport| -> Vec<Vec<f64>> {
        n.layers.iter().map(|l| l.first_sample.clone()).collect()
    };
    let (ru, rt) = (raster_layers(&r.untrained), raster_layers(&r.trained));
    let layer_names: Vec<&str> = r.trained.layers.iter().map(|l| l.name.as_str()).collect();
    for ext in ["png", "svg"] {
        spikeloop_plot::write_distributions(
            &dir.join(format!("spike-times.{ext}")),
            &Distributions {
                title: "Spike times per layer",
                subtitle: &subtitle,
                labels,
                count_label: "Spikes",
                panels: &times,
            },
        )?;
        spikeloop_plot::write_distributions(
            &dir.join(format!("packet-widths.{ext}")),
            &Distributions {
                title: "Pulse packets: shortest window holding 50 % of a layer's spikes, per sample",
                subtitle: &subtitle,
                labels,
                count_label: "Samples",
                panels: &widths,
            },
        )?;
        spikeloop_plot::write_depth_profile(
            &dir.join(format!("depth.{ext}")),
            &DepthProfile {
                title: "Over depth: pulse packets, separability, read-out",
                subtitle: &subtitle,
                layers: &depth_names,
                panels: &depth_panels,
            },
        )?;
        spikeloop_plot::write_raster(
            &dir.join(format!("raster.{ext}")),
            &spikeloop_plot::Raster {
                title: "One sample through all layers",
                subtitle: &subtitle,
                layer_names: &layer_names,
                panels: &[("untrained", &ru), ("trained", &rt)],
            },
        )?;
    }
    Ok(())
}
