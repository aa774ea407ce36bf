//! CPU kernels in plain (safe, auto-vectorized) Rust where candle's are slow
//! for Whisper's shapes:
//! - in-place softmax and GELU as candle custom ops (candle calls libm's
//!   scalar `expf`/`erff` per element; these use a polynomial `exp` that
//!   vectorizes), used by the encoder;
//! - matrix-vector products, layer norm and attention over one query, used
//!   by the decoder's single-token step, which would otherwise be ~40 tiny
//!   candle matmuls per step, each paying thread-pool and allocation costs.

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Storage, Tensor};
use rayon::prelude::*;

/// `e^x` to ~1e-7 relative error for `x` in [-87, 88] (clamped outside).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E;
    // Round to nearest with the 1.5·2^23 trick (no SSE4.1 `round` needed).
    let i = (t + 12_582_912.0) - 12_582_912.0;
    let f = t - i;
    // 2^f on [-0.5, 0.5]: Taylor series of e^(f·ln2) to degree 6.
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5
                + f * (0.055_504_11 + f * (0.009_618_129 + f * (0.001_333_355_8 + f * 0.000_154_035_3)))));
    let bits = ((i as i32 + 127) << 23) as u32;
    p * f32::from_bits(bits)
}

/// `erf(x)` to 1.5e-7 (Abramowitz & Stegun 7.1.26).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * fast_exp(-a * a);
    if x < 0.0 { -y } else { y }
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Softmax of one row, in place (8 lanes so max, exp and sum vectorize).
fn softmax_row(row: &mut [f32]) {
    let (chunks, rest) = row.as_chunks::<8>();
    let mut lanes = [f32::NEG_INFINITY; 8];
    for c in chunks {
        for i in 0..8 {
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
        }
    }
    let max = lanes.iter().chain(rest).copied().fold(f32::NEG_INFINITY, f32::max);
    let (chunks, rest) = row.as_chunks_mut::<8>();
    let mut sums = [0.0f32; 8];
    for c in chunks.iter_mut() {
        for i in 0..8 {
            c[i] = fast_exp(c[i] - max);
            sums[i] += c[i];
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for v in rest.iter_mut() {
        *v = fast_exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

fn contiguous_f32<'a>(storage: &'a mut CpuStorage, layout: &Layout) -> candle_core::Result<&'a mut [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("in-place op on a non-contiguous tensor");
    };
    match storage {
        CpuStorage::F32(v) => Ok(&mut v[start..end]),
        _ => candle_core::bail!("in-place op on a non-f32 tensor"),
    }
}

#[inline(never)]
fn softmax_rows(rows: &mut [f32], cols: usize) {
    rows.chunks_mut(cols).for_each(softmax_row);
}

#[inline(never)]
fn gelu_slice(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = gelu(*v));
}

/// Softmax over the last dimension, in place.
pub(crate) struct SoftmaxLastDim;

impl InplaceOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "whisper-softmax"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let cols = layout.dims().last().copied().unwrap_or(1).max(1);
        let data = contiguous_f32(storage, layout)?;
        let rows_per_task = (16_384 / cols).max(1);
        data.par_chunks_mut(cols * rows_per_task).for_each(|rows| softmax_rows(rows, cols));
        Ok(())
    }
}

/// Exact (erf) GELU, in place.
pub(crate) struct GeluErf;

impl InplaceOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "whisper-gelu"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let data = contiguous_f32(storage, layout)?;
        data.par_chunks_mut(16_384).for_each(gelu_slice);
        Ok(())
    }
}

fn contiguous_f32_ref<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("in-place op with a non-contiguous operand");
    };
    match storage {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => candle_core::bail!("in-place op with a non-f32 operand"),
    }
}

/// `a += b` in place, where `b` has `a`'s shape or is one row broadcast to
/// every row of `a` (a bias). Replaces candle's allocating element-wise add,
/// whose worker pool spins after every op and competes with the matmuls.
pub(crate) struct AddInPlace;

impl InplaceOp2 for AddInPlace {
    fn name(&self) -> &'static str {
        "whisper-add"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let b = contiguous_f32_ref(s2, l2)?;
        let a = contiguous_f32(s1, l1)?;
        if b.is_empty() || a.len() % b.len() != 0 {
            candle_core::bail!("add: {} elements do not repeat {}", a.len(), b.len());
        }
        if a.len() == b.len() {
            let chunk = 16_384;
            a.par_chunks_mut(chunk).zip(b.par_chunks(chunk)).for_each(|(a, b)| add_slices(a, b));
        } else {
            let rows_per_task = (16_384 / b.len()).max(1);
            a.par_chunks_mut(b.len() * rows_per_task)
                .for_each(|rows| rows.chunks_mut(b.len()).for_each(|r| add_slices(r, b)));
        }
        Ok(())
    }
}

#[inline(never)]
fn add_slices(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Runs `f` on the f32 data of a contiguous CPU tensor without copying.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor");
    };
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(f(&v[start..end])),
        _ => candle_core::bail!("expected an f32 CPU tensor"),
    }
}

/// Sum of products, in 16 independent lanes so it vectorizes.
/// Runs `f` on the f16 data of a contiguous CPU tensor without copying.
pub(crate) fn with_f16<R>(t: &Tensor, f: impl FnOnce(&[half::f16]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor");
    };
    match &*storage {
        Storage::Cpu(CpuStorage::F16(v)) => Ok(f(&v[start..end])),
        _ => candle_core::bail!("expected an f16 CPU tensor"),
    }
}

/// Sum of products, in 16 independent lanes so it vectorizes.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ac, ar) = a[..n].as_chunks::<16>();
    let (bc, br) = b[..n].as_chunks::<16>();
    let mut acc = [0.0f32; 16];
    for (x, y) in ac.iter().zip(bc) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = 0.0;
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    let mut half = [0.0f32; 8];
    for i in 0..8 {
        half[i] = acc[i] + acc[i + 8];
    }
    s + half.iter().sum::<f32>()
}

#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Below this many weights a matrix-vector product runs on the calling
/// thread: waking pool threads costs more than it saves, and much more when
/// the host is busy.
const PAR_GEMV_MIN: usize = 4 << 20;

/// `y = W·x (+ b)` for `W` stored `(out, in)` row-major; large ones (the
/// vocabulary projection) are split over the current rayon pool.
pub(crate) fn gemv(w: &[f32], b: Option<&[f32]>, x: &[f32]) -> Vec<f32> {
    let n_in = x.len();
    let n_out = w.len() / n_in.max(1);
    let mut y = vec![0.0f32; n_out];
    if w.len() < PAR_GEMV_MIN {
        gemv_rows(w, b, x, 0, &mut y);
        return y;
    }
    let chunk = (n_out / (4 * rayon::current_num_threads().max(1))).clamp(32, 4096);
    y.par_chunks_mut(chunk).enumerate().for_each(|(c, ys)| gemv_rows(w, b, x, c * chunk, ys));
    y
}

#[inline(never)]
fn gemv_rows(w: &[f32], b: Option<&[f32]>, x: &[f32], first: usize, ys: &mut [f32]) {
    let n_in = x.len();
    for (i, yv) in ys.iter_mut().enumerate() {
        let row = first + i;
        *yv = dot(&w[row * n_in..(row + 1) * n_in], x) + b.map_or(0.0, |b| b[row]);
    }
}

pub(crate) fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32) -> Vec<f32> {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    x.iter().zip(gamma).zip(beta).map(|((v, g), b)| (v - mean) * inv * g + b).collect()
}

pub(crate) fn gelu_vec(x: &mut [f32]) {
    gelu_slice(x);
}

/// One query against keys/values stored row-major `(T, d)` (`d = H·dh`,
/// head `h` at columns `h·dh..`); `q` is pre-scaled. Returns `(d,)`.
pub(crate) fn attend_rows(q: &[f32], k: &[f32], v: &[f32], n_head: usize) -> Vec<f32> {
    let d = q.len();
    let dh = d / n_head;
    let t = k.len() / d;
    let mut out = vec![0.0f32; d];
    out.chunks_mut(dh).enumerate().for_each(|(h, o)| attend_rows_head(q, k, v, h, t, o));
    out
}

#[inline(never)]
fn attend_rows_head(q: &[f32], k: &[f32], v: &[f32], h: usize, t: usize, o: &mut [f32]) {
    let (d, dh) = (q.len(), o.len());
    let qh = &q[h * dh..(h + 1) * dh];
    let mut p: Vec<f32> = (0..t).map(|i| dot(qh, &k[i * d + h * dh..i * d + (h + 1) * dh])).collect();
    softmax_row(&mut p);
    for (i, pi) in p.iter().enumerate() {
        axpy(o, *pi, &v[i * d + h * dh..i * d + (h + 1) * dh]);
    }
}

/// One query against per-head transposed keys `(H, dh, T)` and values
/// `(H, T, dh)` (the cross-attention layout). Returns `(H·dh,)`.
pub(crate) fn attend_heads(q: &[f32], k_t: &[f32], v: &[f32], n_head: usize) -> Vec<f32> {
    let d = q.len();
    let dh = d / n_head;
    let t = k_t.len() / d;
    let mut out = vec![0.0f32; d];
    out.chunks_mut(dh).enumerate().for_each(|(h, o)| {
        attend_cross_head(
            &q[h * dh..(h + 1) * dh],
            &k_t[h * dh * t..(h + 1) * dh * t],
            &v[h * t * dh..(h + 1) * t * dh],
            o,
        );
    });
    out
}

#[inline(never)]
fn attend_cross_head(qh: &[f32], kh: &[f32], vh: &[f32], o: &mut [f32]) {
    let dh = o.len();
    let t = kh.len() / dh;
    let mut p = vec![0.0f32; t];
    for (j, qj) in qh.iter().enumerate() {
        axpy(&mut p, *qj, &kh[j * t..(j + 1) * t]);
    }
    softmax_row(&mut p);
    for (i, pi) in p.iter().enumerate() {
        axpy(o, *pi, &vh[i * dh..(i + 1) * dh]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_gelu_are_accurate() {
        for i in -8000..=800 {
            let x = i as f32 / 100.0;
            let (a, b) = (fast_exp(x), x.exp());
            // x·log2(e) carries an absolute rounding error of ~|x|·6e-8.
            let tol = 2e-7 + x.abs() * 1.2e-7;
            assert!((a - b).abs() <= tol * b.max(1e-30), "exp({x}): {a} vs {b}");
        }
        assert_eq!(fast_exp(f32::NEG_INFINITY).min(1e-37), fast_exp(f32::NEG_INFINITY));
        // GELU reference values (torch.nn.functional.gelu).
        for (x, want) in [(-3.0f32, -0.004_049_7), (-1.0, -0.158_655_25), (0.5, 0.345_731_13), (2.0, 1.954_499_7)] {
            assert!((gelu(x) - want).abs() < 2e-6, "gelu({x}) = {}", gelu(x));
        }
    }

    #[test]
    fn kernels_match_candle() {
        let dev = candle_core::Device::Cpu;
        let s = Tensor::randn(0f32, 3.0, (3, 5, 37), &dev).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&s).unwrap();
        let got = s.copy().unwrap();
        got.inplace_op1(&SoftmaxLastDim).unwrap();
        let diff = (want - &got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");

        let want = s.gelu_erf().unwrap();
        let got = s.copy().unwrap();
        got.inplace_op1(&GeluErf).unwrap();
        let diff = (want - &got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");

        let bias = Tensor::randn(0f32, 1.0, 37, &dev).unwrap();
        let want = s.broadcast_add(&bias).unwrap();
        let got = s.copy().unwrap();
        got.inplace_op2(&bias, &AddInPlace).unwrap();
        let diff = (want - &got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0);
        let want = (&s + &got).unwrap();
        got.inplace_op2(&s, &AddInPlace).unwrap();
        let diff = (want - &got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0);

        let w = Tensor::randn(0f32, 1.0, (70, 40), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 40), &dev).unwrap();
        let want = x.matmul(&w.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = with_f32(&w, |w| with_f32(&x, |x| gemv(w, None, x)).unwrap()).unwrap();
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
