//! What a result was measured on: a backend's complete self-description.
//!
//! Every artefact a run leaves (model, checkpoint, configuration, reports, figures) records the
//! [`Substrate`] it ran on, so that a reader can tell exactly what produced a number and a run
//! is resumed only on the substrate it started on. A backend describes itself
//! ([`crate::Backend::substrate`]): its kind, a one-line summary for headers and figures, and
//! every setting that can change its results, flattened to `section.key = value` pairs that can
//! be compared one by one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Capabilities;

/// A complete description of a substrate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Substrate {
    /// What kind of substrate: `ideal`, `emulator`, `device`, ...
    pub kind: String,
    /// One line for headers and figures, e.g. `emulator chip 1, run seed 1, noise default`.
    pub summary: String,
    /// Every setting that can change a result, by flattened name (`noise.jitter_sd`), with its
    /// value as written in the substrate's own configuration format.
    pub settings: BTreeMap<String, String>,
}

/// One setting in which two substrates differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The setting's flattened name (`kind` for the kind of substrate).
    pub key: String,
    /// Its value in the first substrate (`None`: absent there).
    pub before: Option<String>,
    /// Its value in the second substrate.
    pub after: Option<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".into());
        write!(
            f,
            "{} was {}, now {}",
            self.key,
            show(&self.before),
            show(&self.after)
        )
    }
}

impl Substrate {
    /// A substrate with no settings yet.
    pub fn new(kind: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            summary: summary.into(),
            settings: BTreeMap::new(),
        }
    }

    /// The description a backend gives when it offers nothing more: its capabilities, under
    /// `capabilities.`.
    pub fn from_capabilities(capabilities: &Capabilities) -> Self {
        Self::new(capabilities.name.clone(), capabilities.name.clone())
            .with_settings("capabilities", capabilities)
    }

    /// Adds one setting.
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.settings.insert(key.into(), value.to_string());
        self
    }

    /// Adds every field of `value` (any serialisable configuration), flattened below `prefix`
    /// (`prefix.section.key`; no prefix for an empty one). Lists are flattened by index.
    pub fn with_settings(mut self, prefix: &str, value: &impl Serialize) -> Self {
        match serde_json::to_value(value) {
            Ok(v) => flatten(prefix, &v, &mut self.settings),
            Err(e) => {
                self.settings
                    .insert(prefix.to_string(), format!("(not describable: {e})"));
            }
        }
        self
    }

    /// The settings in which `other` differs from `self`, the kind first, then by name.
    pub fn differences(&self, other: &Substrate) -> Vec<Difference> {
        let mut out = Vec::new();
        if self.kind != other.kind {
            out.push(Difference {
                key: "kind".into(),
                before: Some(self.kind.clone()),
                after: Some(other.kind.clone()),
            });
        }
        let keys: std::collections::BTreeSet<&String> =
            self.settings.keys().chain(other.settings.keys()).collect();
        for key in keys {
            let (before, after) = (self.settings.get(key), other.settings.get(key));
            if before != after {
                out.push(Difference {
                    key: key.clone(),
                    before: before.cloned(),
                    after: after.cloned(),
                });
            }
        }
        out
    }

    /// Why a result recorded on this substrate cannot be continued or reused on `now`: `None`
    /// when the two are the same substrate, else both summaries and every differing setting
    /// (the first ten).
    pub fn mismatch(&self, now: &Substrate) -> Option<String> {
        let differences = self.differences(now);
        if differences.is_empty() {
            return None;
        }
        if self.kind != now.kind {
            // Settings of different kinds of substrate have nothing to compare.
            return Some(format!(
                "it ran on {} (backend kind {}), this is {} (backend kind {})",
                self.summary, self.kind, now.summary, now.kind
            ));
        }
        let mut named: Vec<String> = differences
            .iter()
            .take(10)
            .map(ToString::to_string)
            .collect();
        if differences.len() > 10 {
            named.push(format!("and {} more", differences.len() - 10));
        }
        Some(format!(
            "it ran on {}, this is {}: {}",
            self.summary,
            now.summary,
            named.join("; ")
        ))
    }

    /// A short fingerprint of the kind and every setting (16 hex digits, CRC-64/XZ), for names
    /// that must identify a configuration without listing it.
    pub fn fingerprint(&self) -> String {
        let crc = crc::Crc::<u64>::new(&crc::CRC_64_XZ);
        let mut digest = crc.digest();
        digest.update(self.kind.as_bytes());
        for (k, v) in &self.settings {
            digest.update(&[0]);
            digest.update(k.as_bytes());
            digest.update(&[0]);
            digest.update(v.as_bytes());
        }
        format!("{:016x}", digest.finalize())
    }
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
            if items.is_empty() {
                out.insert(prefix.to_string(), "[]".into());
            }
        }
        serde_json::Value::Null => {
            out.insert(prefix.to_string(), "none".into());
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Noise {
        jitter: f64,
        on: bool,
        rows: Vec<u32>,
        extra: Option<u32>,
    }

    #[test]
    fn settings_flatten_and_differences_name_each_key() {
        let a = Substrate::new("emulator", "chip 1").with_settings(
            "noise",
            &Noise {
                jitter: 0.5,
                on: true,
                rows: vec![1, 2],
                extra: None,
            },
        );
        assert_eq!(a.settings["noise.jitter"], "0.5");
        assert_eq!(a.settings["noise.on"], "true");
        assert_eq!(a.settings["noise.rows.1"], "2");
        assert_eq!(a.settings["noise.extra"], "none");
        let b = a.clone().with("noise.jitter", 0.0).with("pace", true);
        let d = b.differences(&a);
        assert_eq!(
            d.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "noise.jitter was 0, now 0.5",
                "pace was true, now (not set)"
            ]
        );
        assert!(a.differences(&a).is_empty());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let c = Substrate::new("device", "chip 1");
        assert_eq!(c.differences(&Substrate::new("ideal", "x"))[0].key, "kind");
    }
}
