//! Parameter validation, kernel selection and error messages.

use crate::{Kernel, NeuronParams};

#[test]
fn reference_values() {
    let p = NeuronParams::REFERENCE;
    assert_eq!(
        (p.tau_m, p.tau_s, p.g_leak, p.e_leak, p.threshold),
        (1.0, 1.0, 1.0, 0.0, 1.0)
    );
    assert_eq!(p.kernel(), Kernel::Equal);
    assert_eq!(p.c_m(), 1.0);
    assert!(p.validate().is_ok());
    assert_eq!(NeuronParams::default(), p);
}

#[test]
fn kernel_selection_is_exact() {
    let with = |tau_m: f64, tau_s: f64| NeuronParams {
        tau_m,
        tau_s,
        ..NeuronParams::REFERENCE
    };
    assert_eq!(with(6.0, 6.0).kernel(), Kernel::Equal);
    assert_eq!(with(2.0, 1.0).kernel(), Kernel::Double);
    assert_eq!(with(0.3, 0.15).kernel(), Kernel::Double);
    assert_eq!(with(1.0 + f64::EPSILON, 1.0).kernel(), Kernel::General);
    assert_eq!(with(2.0, 1.0 + f64::EPSILON).kernel(), Kernel::General);
    assert_eq!(with(0.5, 1.0).kernel(), Kernel::General);
    assert_eq!(with(3.0, 1.0).kernel(), Kernel::General);
    assert_eq!(
        NeuronParams {
            g_leak: 0.5,
            tau_m: 2.0,
            ..NeuronParams::REFERENCE
        }
        .c_m(),
        1.0
    );
}

#[test]
fn validation_names_field_value_and_range() {
    let base = NeuronParams::REFERENCE;
    let cases = [
        (NeuronParams { tau_m: 0.0, ..base }, "tau_m", "> 0"),
        (
            NeuronParams {
                tau_s: -1.0,
                ..base
            },
            "tau_s",
            "> 0",
        ),
        (
            NeuronParams {
                tau_s: f64::INFINITY,
                ..base
            },
            "tau_s",
            "finite",
        ),
        (
            NeuronParams {
                g_leak: f64::NAN,
                ..base
            },
            "g_leak",
            "> 0",
        ),
        (
            NeuronParams {
                e_leak: f64::NEG_INFINITY,
                ..base
            },
            "e_leak",
            "finite",
        ),
        (
            NeuronParams {
                threshold: 0.0,
                ..base
            },
            "threshold",
            "above e_leak = 0",
        ),
        (
            NeuronParams {
                threshold: -0.5,
                e_leak: 0.2,
                ..base
            },
            "threshold",
            "above e_leak = 0.2",
        ),
    ];
    for (params, field, allowed) in cases {
        let err = params.validate().expect_err(field);
        assert_eq!(err.field(), field);
        let msg = err.to_string();
        assert!(msg.contains(field) && msg.contains(allowed), "{msg}");
        if err.value().is_nan() {
            assert!(msg.contains("NaN"), "{msg}");
        } else {
            assert!(msg.contains(&err.value().to_string()), "{msg}");
        }
        assert!(!err.allowed().is_empty());
    }
    let err = NeuronParams {
        tau_m: -2.5,
        ..base
    }
    .validate()
    .expect_err("tau_m");
    assert_eq!(
        err.to_string(),
        "invalid neuron parameter `tau_m` = -2.5: must be a finite number > 0"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.source().is_none());
}
