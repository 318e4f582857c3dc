//! Tests of spikeloop-data against values taken from numpy 2.4 running the reference generators.

mod images;
mod mt19937;
mod names;
mod yin_yang;
