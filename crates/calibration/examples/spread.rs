//! Calibrates emulated chips (every circuit, default noise) and prints, per chip and
//! parameter, the spread across circuits before and after, the failed circuits, and the wall
//! clock and hardware time: `cargo run --release -p spikeloop-calibration --example spread --
//! [first chip seed] [chips]`.

use spikeloop_calibration::{Options, Targets, calibrate};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let first = args.first().copied().unwrap_or(1);
    let chips = args.get(1).copied().unwrap_or(10);
    println!(
        "chip  parameter      SD before     SD after  ratio  5-95 % after           failed  wall s  hardware s"
    );
    let mut worst = 0.0f64;
    for seed in first..first + chips {
        let mut chip = EmulatorBackend::new(EmulatorConfig {
            chip_seed: seed,
            ..EmulatorConfig::default()
        })?;
        let cal = calibrate(&mut chip, &Targets::default(), &Options::default())?;
        for p in &cal.parameters {
            let ratio = p.after.sd / p.before.sd;
            worst = worst.max(ratio);
            // The gain's unit shortened to fit the column (mV/us per weight step).
            let unit = p.parameter.unit().split(' ').next().unwrap_or_default();
            println!(
                "{seed:>4}  {:<13}  {:>6.3} {unit:<5}  {:>5.3} {unit:<5}  {ratio:>5.3}  {:>6.2}..{:<6.2} {unit:<5}  {:>6}  {:>6.2}  {:>10.1}",
                p.parameter.name(),
                p.before.sd,
                p.after.sd,
                p.after.p5,
                p.after.p95,
                p.failed.len(),
                cal.wall_time.as_secs_f64(),
                cal.hardware_time_us * 1e-6
            );
        }
    }
    println!("largest ratio of calibrated to uncalibrated SD: {worst:.3}");
    Ok(())
}
