//! A matrix in a file as a list of rows: the serde adapter for every weight matrix that
//! spikeloop writes (`model.json`, a network), so that files stay readable (`[[w00, w01], [w10,
//! w11]]`) and independent of the array library's own serialised form.

use ndarray::Array2;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `matrix` as a list of its rows.
pub fn serialize<S: Serializer>(matrix: &Array2<f64>, s: S) -> Result<S::Ok, S::Error> {
    let rows: Vec<Vec<f64>> = matrix.rows().into_iter().map(|r| r.to_vec()).collect();
    rows.serialize(s)
}

/// Reads a list of equally long rows (an empty list is a `0 x 0` matrix).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Array2<f64>, D::Error> {
    let rows = Vec::<Vec<f64>>::deserialize(d)?;
    from_rows(rows).map_err(D::Error::custom)
}

/// The matrix of `rows`, or a message naming the first row of another length.
pub fn from_rows(rows: Vec<Vec<f64>>) -> Result<Array2<f64>, String> {
    let n_cols = rows.first().map_or(0, Vec::len);
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != n_cols) {
        return Err(format!(
            "row {i} has {} values, row 0 has {n_cols}: every row must be as long",
            r.len()
        ));
    }
    let n_rows = rows.len();
    Array2::from_shape_vec((n_rows, n_cols), rows.into_iter().flatten().collect())
        .map_err(|e| e.to_string())
}
