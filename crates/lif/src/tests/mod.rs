//! Tests of the whole crate, one module per topic. Tolerances are written next to each check;
//! property tests use fixed case counts and the default deterministic proptest configuration.

mod agreement;
mod brute;
mod dense;
mod edge_cases;
mod gradients;
mod lambert;
mod layer;
mod params;
mod support;
mod volley;
