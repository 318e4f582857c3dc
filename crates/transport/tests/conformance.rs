//! The conformance suite against the virtual device in process (it must pass every check) and
//! against deliberately broken devices (it must fail, naming what is wrong).

use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};
use spikeloop_transport::conformance::fault::{Fault, FaultConfig, FaultyLink};
use spikeloop_transport::conformance::{self, LINE_PROBES, Report};
use spikeloop_transport::convert::hello;
use spikeloop_transport::device::{Defects, DeviceConfig, Hangup, VirtualDevice, serve};
use spikeloop_transport::link::memory_link;
use spikeloop_transport::{Message, encode_message};

fn chip() -> EmulatorBackend {
    EmulatorBackend::new(EmulatorConfig::default()).expect("emulator")
}

async fn suite_against(config: DeviceConfig) -> Report {
    let (host_end, mut device_end) = memory_link();
    let mut device = VirtualDevice::new(chip(), config).expect("device");
    let server = tokio::spawn(async move {
        let _ = serve(&mut device, &mut device_end, Hangup::Stop).await;
    });
    let report = conformance::run(host_end, 1_000_000).await;
    server.await.expect("device task");
    report
}

#[tokio::test]
async fn the_virtual_device_passes_every_check() {
    let report = suite_against(DeviceConfig::default()).await;
    eprintln!("{report}");
    assert!(report.all_passed(), "{report}");
    assert!(report.checks.len() >= 14, "{report}");
    // Nothing failed, so the line is not probed.
    assert_eq!(report.line, None);
    // Small device frames change nothing about conformance.
    let report = suite_against(DeviceConfig {
        max_frame_size: 256,
        ..DeviceConfig::default()
    })
    .await;
    assert!(report.all_passed(), "{report}");
}

#[tokio::test]
async fn a_device_without_a_replay_cache_fails_with_a_clear_report() {
    let report = suite_against(DeviceConfig {
        replay_cache_len: 0,
        ..DeviceConfig::default()
    })
    .await;
    eprintln!("{report}");
    assert!(!report.all_passed());
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0].name, "duplicate request ids");
    assert!(
        failed[0].detail.contains("ran it again"),
        "{}",
        failed[0].detail
    );
    let text = report.to_string();
    assert!(text.contains("FAIL duplicate request ids"), "{text}");
    assert!(
        text.ends_with(&format!("{} passed, 1 failed", report.passed())),
        "{text}"
    );
}

/// The suite against a device with `defects`: exactly the check `name` fails, and its detail
/// says `why`.
async fn fails_only(defects: Defects, name: &str, why: &str) {
    fails_exactly(defects, &[(name, why)]).await;
}

/// The suite against a device with `defects`: exactly the checks named in `expected` fail, each
/// with a detail that says its `why`.
async fn fails_exactly(defects: Defects, expected: &[(&str, &str)]) {
    let report = suite_against(DeviceConfig {
        defects,
        ..DeviceConfig::default()
    })
    .await;
    eprintln!("{report}");
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), expected.len(), "{report}");
    for (check, (name, why)) in failed.iter().zip(expected) {
        assert_eq!(check.name, *name, "{report}");
        assert!(check.detail.contains(why), "{}", check.detail);
    }
    // The line is clean, and the report says the failures are the device's.
    let line = report.line.expect("a failed check probes the line");
    assert!(line.clean(), "{report}");
    assert_eq!((line.requests, line.intact), (LINE_PROBES, LINE_PROBES));
    assert!(
        report
            .to_string()
            .contains("the line is clean, so the failures above are the device's"),
        "{report}"
    );
}

#[tokio::test]
async fn a_device_that_answers_hello_from_its_cache_fails_the_session_check() {
    let defects = Defects {
        replay_hello: true,
        ..Defects::default()
    };
    fails_only(defects, "sessions", "answered from the replay cache").await;
}

#[tokio::test]
async fn a_device_that_keeps_its_cache_across_sessions_fails_the_session_check() {
    let defects = Defects {
        keep_cache_on_hello: true,
        ..Defects::default()
    };
    fails_only(defects, "sessions", "the cache was not cleared by Hello").await;
}

#[tokio::test]
async fn a_device_whose_refused_runs_still_run_fails() {
    let defects = Defects {
        run_before_page_check: true,
        ..Defects::default()
    };
    fails_only(
        defects,
        "refused runs change nothing",
        "a refused run still ran",
    )
    .await;
}

#[tokio::test]
async fn a_device_whose_errors_outgrow_small_frames_fails() {
    let defects = Defects {
        unbounded_errors: true,
        ..Defects::default()
    };
    fails_only(defects, "errors in the smallest frames", "256-byte frames").await;
}

#[tokio::test]
async fn a_device_that_checks_the_fit_only_at_commit_fails() {
    let defects = Defects {
        fit_checked_at_commit: true,
        ..Defects::default()
    };
    fails_only(
        defects,
        "errors in the smallest frames",
        "refused at ConfigureBegin",
    )
    .await;
}

#[tokio::test]
async fn a_device_with_free_form_error_fields_fails() {
    let defects = Defects {
        legacy_error_fields: true,
        ..Defects::default()
    };
    fails_exactly(
        defects,
        &[
            ("out-of-range values", "expected \"input_codes\""),
            ("sample window", "expected \"input_codes[0]\""),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_device_that_leaves_the_window_to_its_substrate_fails() {
    let defects = Defects {
        window_unchecked: true,
        ..Defects::default()
    };
    fails_only(defects, "sample window", "the end of the window").await;
}

#[tokio::test]
async fn a_device_that_drops_damaged_frames_silently_fails() {
    let defects = Defects {
        silent_on_damage: true,
        ..Defects::default()
    };
    fails_only(defects, "bad CRC", "was not answered with FRAME_DAMAGED").await;
}

#[tokio::test]
async fn a_device_that_counts_damaged_frames_as_received_fails() {
    let defects = Defects {
        count_damaged_as_received: true,
        ..Defects::default()
    };
    fails_only(defects, "bad CRC", "frames_received went from").await;
}

#[tokio::test]
async fn a_device_that_takes_an_update_for_a_new_network_fails() {
    let defects = Defects {
        update_drops_network: true,
        ..Defects::default()
    };
    fails_only(defects, "weight update", "another output layer size").await;
}

#[tokio::test]
async fn a_device_that_writes_codes_before_checking_them_all_fails() {
    let defects = Defects {
        codes_written_partially: true,
        ..Defects::default()
    };
    fails_only(
        defects,
        "parameter codes",
        "of the same request was written",
    )
    .await;
}

/// A correct device behind a line that damages frames: checks fail, and the report puts the
/// blame where it belongs, on the line, instead of leaving it with the device.
#[tokio::test(start_paused = true)]
async fn failures_on_a_damaging_line_are_reported_as_the_lines() {
    let mut failing = 0;
    for seed in 1..=3 {
        let (host_end, mut device_end) = memory_link();
        let mut device = VirtualDevice::new(chip(), DeviceConfig::default()).expect("device");
        let server = tokio::spawn(async move {
            let _ = serve(&mut device, &mut device_end, Hangup::Stop).await;
        });
        let link = FaultyLink::wrap(
            host_end,
            FaultConfig {
                rate: 0.05,
                seed,
                kinds: Fault::DAMAGING.to_vec(),
                ..FaultConfig::default()
            },
        );
        let report = conformance::run(link, 1_000_000).await;
        server.abort();
        eprintln!("{report}");
        if report.all_passed() {
            continue;
        }
        failing += 1;
        let line = report.line.expect("a failed check probes the line");
        assert!(!line.clean(), "{report}");
        assert!(line.requests <= LINE_PROBES, "{report}");
        let text = report.to_string();
        assert!(
            text.contains("the failures above may be the line's"),
            "{text}"
        );
    }
    // At 5 % of the frames damaged, a run of the suite without a damaged frame is rare.
    assert!(
        failing >= 2,
        "only {failing} of 3 runs through the damaging line failed a check"
    );
}

/// Nothing at the other end: the handshake fails after its Hellos, the suite stops there, and
/// the report knows that not one byte came back (so it is no verdict on a device).
#[tokio::test(start_paused = true)]
async fn a_silent_line_is_reported_as_unanswered() {
    let (host_end, _silent_end) = memory_link();
    let report = conformance::run(host_end, 115_200).await;
    eprintln!("{report}");
    assert_eq!(report.checks.len(), 1, "{report}");
    assert_eq!(report.checks[0].name, "handshake");
    assert!(
        report.checks[0].detail.contains("after 3 Hellos"),
        "{report}"
    );
    assert!(report.unanswered(), "{report}");
    assert_eq!(report.line, None);
    // A device that answers is never reported as silent, even when it fails checks.
    let report = suite_against(DeviceConfig {
        replay_cache_len: 0,
        ..DeviceConfig::default()
    })
    .await;
    assert!(!report.all_passed() && !report.unanswered(), "{report}");
}

/// An earlier host's Hellos still in the device's input (it was stopped while that host came
/// and went): their answers reach the suite first, and are skipped as the host engine skips
/// them, instead of failing the handshake over a nonce this run never sent.
#[tokio::test]
async fn answers_an_earlier_host_left_on_the_line_are_skipped() {
    use tokio::io::AsyncWriteExt;
    let (mut host_end, mut device_end) = memory_link();
    for id in [1, 2] {
        let old = Message::Hello(hello("an earlier host", 256, 0xDEAD_BEEF + u64::from(id)));
        let wire = encode_message(id, &old, usize::MAX).expect("encode");
        host_end.write_all(&wire).await.expect("write");
    }
    let mut device = VirtualDevice::new(chip(), DeviceConfig::default()).expect("device");
    let server = tokio::spawn(async move {
        let _ = serve(&mut device, &mut device_end, Hangup::Stop).await;
    });
    let report = conformance::run(host_end, 1_000_000).await;
    server.await.expect("device task");
    eprintln!("{report}");
    assert!(report.all_passed(), "{report}");
    assert!(
        report.checks[0]
            .detail
            .contains("(2 answers an earlier host left on the line skipped)"),
        "{report}"
    );
}
