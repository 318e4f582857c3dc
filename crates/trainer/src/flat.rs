//! Matrices written flat: the serde adapter of the checkpoint's optimiser state and best
//! weights, which the checkpoint format has always held as one row-major list per layer. Read
//! back, each list is a one-row matrix until [`reshape`] gives it its layer's shape (the
//! checkpoint's model knows the shapes).

use ndarray::Array2;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes every matrix as one row-major list.
pub fn serialize<S: Serializer>(matrices: &[Array2<f64>], s: S) -> Result<S::Ok, S::Error> {
    let flat: Vec<Vec<f64>> = matrices
        .iter()
        .map(|m| m.iter().copied().collect())
        .collect();
    flat.serialize(s)
}

/// Reads every list as a one-row matrix.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Array2<f64>>, D::Error> {
    let flat = Vec::<Vec<f64>>::deserialize(d)?;
    Ok(flat
        .into_iter()
        .map(|v| {
            let n = v.len();
            Array2::from_shape_vec((1, n), v)
                .unwrap_or_else(|_| unreachable!("n values make a 1 x n matrix"))
        })
        .collect())
}

/// Gives `matrices` the `shapes`, one each; an error names the first whose number of values
/// does not match, and the number of matrices must match too.
pub fn reshape(matrices: &mut [Array2<f64>], shapes: &[(usize, usize)]) -> Result<(), String> {
    if matrices.len() != shapes.len() {
        return Err(format!(
            "{} matrices for {} layers",
            matrices.len(),
            shapes.len()
        ));
    }
    for (l, (m, &shape)) in matrices.iter_mut().zip(shapes).enumerate() {
        if m.len() != shape.0 * shape.1 {
            return Err(format!(
                "layer {l} has {} values, its weights {} ({} x {})",
                m.len(),
                shape.0 * shape.1,
                shape.0,
                shape.1
            ));
        }
        let values: Vec<f64> = m.iter().copied().collect();
        *m = Array2::from_shape_vec(shape, values).map_err(|e| format!("layer {l}: {e}"))?;
    }
    Ok(())
}
