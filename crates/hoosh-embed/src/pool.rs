//! Sentence pooling: masked mean over tokens, then L2 normalization.
//!
//! This is the `Pooling(mean) -> Normalize` tail of a sentence-transformers
//! pipeline. Padding positions carry hidden states too, so the attention mask
//! is applied here as well as inside attention; otherwise a text's vector
//! would depend on what it was batched with.

use candle_core::{D, DType, Tensor};

/// Smallest norm we divide by, as `torch.nn.functional.normalize` does.
const MIN_NORM: f64 = 1e-12;

/// Mean of `hidden` `(batch, seq, dim)` over the positions where `mask`
/// `(batch, seq)` is 1, giving `(batch, dim)`.
pub(crate) fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    // A row always holds at least [CLS] and [SEP]; the clamp only guards
    // against a division by zero on a malformed all-padding row.
    let counts = mask.sum(1)?.maximum(1.0)?;
    summed.broadcast_div(&counts)
}

/// Scales every row of `x` `(batch, dim)` to unit Euclidean length.
pub(crate) fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norms = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(MIN_NORM, f64::MAX)?;
    x.broadcast_div(&norms)
}

/// Mean pooling followed by normalization, returned as plain rows.
pub(crate) fn pool_and_normalize(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    let pooled = mean_pool(hidden, mask)?;
    l2_normalize(&pooled)?.to_dtype(DType::F32)?.to_vec2::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mean_pool_ignores_masked_positions() -> candle_core::Result<()> {
        // One row: two real tokens and one padding token with a huge value.
        let hidden = Tensor::new(&[[[1.0f32, 2.0], [3.0, 4.0], [1000.0, -1000.0]]], &Device::Cpu)?;
        let mask = Tensor::new(&[[1u32, 1, 0]], &Device::Cpu)?;
        let pooled = mean_pool(&hidden, &mask)?.to_vec2::<f32>()?;
        assert_eq!(pooled, vec![vec![2.0, 3.0]]);
        Ok(())
    }

    #[test]
    fn l2_normalize_gives_unit_rows() -> candle_core::Result<()> {
        let x = Tensor::new(&[[3.0f32, 4.0], [0.0, -2.0]], &Device::Cpu)?;
        let rows = l2_normalize(&x)?.to_vec2::<f32>()?;
        assert_eq!(rows, vec![vec![0.6, 0.8], vec![0.0, -1.0]]);
        Ok(())
    }

    #[test]
    fn zero_vector_stays_finite() -> candle_core::Result<()> {
        let x = Tensor::new(&[[0.0f32, 0.0]], &Device::Cpu)?;
        let rows = l2_normalize(&x)?.to_vec2::<f32>()?;
        assert!(rows[0].iter().all(|v| v.is_finite()));
        Ok(())
    }
}
