//! The Whisper network: audio encoder and text decoder, built from a
//! CTranslate2 variable set.
//!
//! Shapes are kept 2-D (`(time, d_model)`) because requests are decoded one
//! at a time; attention works on strided views of the fused projections, so
//! the only copies are the head merge after attention and the per-window
//! cross-attention K/V. Whisper scales both q and k by `d_head^-0.25`; the
//! query weights are pre-multiplied by `d_head^-0.5` at load instead.
//!
//! The decoder keeps a self-attention KV cache ([`SelfCache`]): each step
//! feeds only the new tokens. Cross-attention K/V depend only on the audio
//! and are computed once per 30 s window ([`CrossKv`]). Several tokens at
//! once (the prompt) go through candle; a single token (every sampling step)
//! goes through the plain-Rust kernels of `ops.rs` on the same weights.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::ops::layer_norm;

use crate::ct2::Ct2Model;
use crate::ops::{self, AddInPlace, GeluErf, SoftmaxLastDim, with_f16, with_f32};

type Result<T> = candle_core::Result<T>;

const LN_EPS: f32 = 1e-5;
/// Logits this close to the maximum are recomputed exactly (see
/// [`Whisper::logits`]); the f16 approximation is off by < 0.05.
const REFINE_MARGIN: f32 = 0.5;

/// Model hyper-parameters, read from tensor shapes and `*/num_heads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dims {
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_vocab: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
}

struct Linear {
    /// `(out, in)` as stored.
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn load(m: &Ct2Model, prefix: &str, dev: &Device) -> std::result::Result<Self, String> {
        let w = m.tensor(&format!("{prefix}/weight"), dev)?;
        let bias = format!("{prefix}/bias");
        let b = if m.has(&bias) { Some(m.tensor(&bias, dev)?) } else { None };
        Ok(Self { w, b })
    }

    /// Multiplies output rows `rows` (weight and bias) by `factor`.
    fn scale_rows(&mut self, rows: std::ops::Range<usize>, factor: f64) -> Result<()> {
        let scale_part = |t: &Tensor| -> Result<Tensor> {
            let n = t.dim(0)?;
            let mut parts = Vec::new();
            if rows.start > 0 {
                parts.push(t.narrow(0, 0, rows.start)?);
            }
            parts.push((t.narrow(0, rows.start, rows.len())? * factor)?);
            if rows.end < n {
                parts.push(t.narrow(0, rows.end, n - rows.end)?);
            }
            Tensor::cat(&parts, 0)
        };
        self.w = scale_part(&self.w)?;
        if let Some(b) = &self.b {
            self.b = Some(scale_part(b)?);
        }
        Ok(())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.w.t()?)?;
        if let Some(b) = &self.b {
            y.inplace_op2(b, &AddInPlace)?;
        }
        Ok(y)
    }
}

impl Linear {
    /// `W·x + b` for one vector.
    fn forward_vec(&self, x: &[f32]) -> Result<Vec<f32>> {
        with_f32(&self.w, |w| match &self.b {
            Some(b) => with_f32(b, |b| ops::gemv(w, Some(b), x)),
            None => Ok(ops::gemv(w, None, x)),
        })?
    }
}

struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl LayerNorm {
    fn forward_vec(&self, x: &[f32]) -> Result<Vec<f32>> {
        with_f32(&self.gamma, |g| with_f32(&self.beta, |b| ops::layer_norm(x, g, b, LN_EPS)))?
    }
}

impl LayerNorm {
    fn load(m: &Ct2Model, prefix: &str, dev: &Device) -> std::result::Result<Self, String> {
        Ok(Self { gamma: m.tensor(&format!("{prefix}/gamma"), dev)?, beta: m.tensor(&format!("{prefix}/beta"), dev)? })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm(x, &self.gamma, &self.beta, LN_EPS)
    }
}

struct Mlp {
    ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(m: &Ct2Model, prefix: &str, dev: &Device) -> std::result::Result<Self, String> {
        Ok(Self {
            ln: LayerNorm::load(m, &format!("{prefix}/ffn/layer_norm"), dev)?,
            fc1: Linear::load(m, &format!("{prefix}/ffn/linear_0"), dev)?,
            fc2: Linear::load(m, &format!("{prefix}/ffn/linear_1"), dev)?,
        })
    }

    /// `x + fc2(gelu(fc1(ln(x))))`.
    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(&self.ln.forward(x)?)?;
        h.inplace_op1(&GeluErf)?;
        add_residual(x, &self.fc2.forward(&h)?)
    }

    fn residual_vec(&self, x: &mut [f32]) -> Result<()> {
        let mut h = self.fc1.forward_vec(&self.ln.forward_vec(x)?)?;
        ops::gelu_vec(&mut h);
        add_assign(x, &self.fc2.forward_vec(&h)?);
        Ok(())
    }
}

/// Scaled dot-product attention over head-split views.
/// `q: (H, Tq, dh)`, `k_t: (H, dh, Tk)`, `v: (H, Tk, dh)`; returns `(Tq, H·dh)`.
fn attention(q: &Tensor, k_t: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let (h, tq, dh) = q.dims3()?;
    let mut scores = q.matmul(k_t)?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    scores.inplace_op1(&SoftmaxLastDim)?;
    let out = scores.matmul(v)?;
    out.transpose(0, 1)?.reshape((tq, h * dh))
}

/// Query rows per block in [`attention_blocked`]: a block's scores
/// (256 × 1500 floats, 1.5 MB) stay in L2 between the two matmuls and the
/// softmax, instead of a 9 MB matrix per head going through memory three
/// times.
const ATTN_BLOCK: usize = 256;

/// [`attention`] for long sequences (the encoder), one head and one block of
/// queries at a time.
fn attention_blocked(q: &Tensor, k_t: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (h, t, _) = q.dims3()?;
    let mut outs = Vec::with_capacity(h);
    for i in 0..h {
        let (qh, kh, vh) = (q.get(i)?, k_t.get(i)?, v.get(i)?);
        let mut blocks = Vec::with_capacity(t.div_ceil(ATTN_BLOCK));
        for start in (0..t).step_by(ATTN_BLOCK) {
            let scores = qh.narrow(0, start, ATTN_BLOCK.min(t - start))?.matmul(&kh)?;
            scores.inplace_op1(&SoftmaxLastDim)?;
            blocks.push(scores.matmul(&vh)?);
        }
        outs.push(Tensor::cat(&blocks, 0)?);
    }
    Tensor::cat(&outs, 1)
}

/// `x + y`, written into `x`'s storage when `x` is contiguous.
fn add_residual(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if x.is_contiguous() && y.is_contiguous() {
        x.inplace_op2(y, &AddInPlace)?;
        Ok(x.clone())
    } else {
        x + y
    }
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `(T, n·d)` fused projection → view of part `i` as `(H, T, dh)`.
fn heads(fused: &Tensor, parts: usize, i: usize, n_head: usize) -> Result<Tensor> {
    let (t, width) = fused.dims2()?;
    let d = width / parts;
    fused.reshape((t, parts, n_head, d / n_head))?.i((.., i))?.transpose(0, 1)
}

struct EncoderLayer {
    attn_ln: LayerNorm,
    qkv: Linear,
    out: Linear,
    mlp: Mlp,
}

struct DecoderLayer {
    attn_ln: LayerNorm,
    qkv: Linear,
    out: Linear,
    cross_ln: LayerNorm,
    cross_q: Linear,
    cross_kv: Linear,
    cross_out: Linear,
    mlp: Mlp,
}

/// Encoder and decoder weights, f32 on the CPU.
pub(crate) struct Whisper {
    pub dims: Dims,
    conv1_w: Tensor,
    conv1_b: Tensor,
    conv2_w: Tensor,
    conv2_b: Tensor,
    enc_pos: Tensor,
    enc_layers: Vec<EncoderLayer>,
    enc_ln: LayerNorm,
    /// Token embeddings `(n_vocab, d)`, kept in the file's f16: they are
    /// also the vocabulary projection, whose cost per decoding step is
    /// reading them (40 MB instead of 80 MB for tiny).
    tok_emb: Tensor,
    dec_pos: Tensor,
    dec_layers: Vec<DecoderLayer>,
    dec_ln: LayerNorm,
    device: Device,
}

/// Per-window cross-attention keys `(H, dh, 1500)` and values `(H, 1500, dh)`
/// for every decoder layer.
pub(crate) struct CrossKv {
    layers: Vec<(Tensor, Tensor)>,
}

/// The decoder's self-attention KV cache for one sequence: per layer, keys
/// and values of every fed token, row-major `(len, d)`.
pub(crate) struct SelfCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl SelfCache {
    /// Tokens already fed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

fn count_layers(m: &Ct2Model, prefix: &str) -> usize {
    (0..).take_while(|i| m.has(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))).count()
}

impl Whisper {
    pub(crate) fn load(m: &Ct2Model) -> std::result::Result<Self, String> {
        let dev = Device::Cpu;
        let conv1 = m.dims("encoder/conv1/weight")?.to_vec();
        let enc_pos_dims = m.dims("encoder/position_encodings/encodings")?.to_vec();
        let emb_dims = m.dims("decoder/embeddings/weight")?.to_vec();
        let dec_pos_dims = m.dims("decoder/position_encodings/encodings")?.to_vec();
        if conv1.len() != 3 || enc_pos_dims.len() != 2 || emb_dims.len() != 2 || dec_pos_dims.len() != 2 {
            return Err("unexpected tensor ranks: not a Whisper model".into());
        }
        let heads = |name: &str| -> std::result::Result<usize, String> {
            usize::try_from(m.int(name)?).ok().filter(|h| *h > 0).ok_or_else(|| format!("{name}: invalid"))
        };
        let dims = Dims {
            n_mels: conv1[1],
            n_audio_ctx: enc_pos_dims[0],
            n_audio_state: conv1[0],
            n_audio_head: heads("encoder/num_heads")?,
            n_audio_layer: count_layers(m, "encoder"),
            n_vocab: emb_dims[0],
            n_text_ctx: dec_pos_dims[0],
            n_text_state: emb_dims[1],
            n_text_head: heads("decoder/num_heads")?,
            n_text_layer: count_layers(m, "decoder"),
        };
        if !dims.n_audio_state.is_multiple_of(dims.n_audio_head) || !dims.n_text_state.is_multiple_of(dims.n_text_head)
        {
            return Err(format!("model width not divisible by the head count: {dims:?}"));
        }
        let enc_scale = ((dims.n_audio_state / dims.n_audio_head) as f64).powf(-0.5);
        let dec_scale = ((dims.n_text_state / dims.n_text_head) as f64).powf(-0.5);
        let e = |r: Result<()>| r.map_err(|e| e.to_string());

        let mut enc_layers = Vec::with_capacity(dims.n_audio_layer);
        for i in 0..dims.n_audio_layer {
            let p = format!("encoder/layer_{i}");
            let mut qkv = Linear::load(m, &format!("{p}/self_attention/linear_0"), &dev)?;
            e(qkv.scale_rows(0..dims.n_audio_state, enc_scale))?;
            enc_layers.push(EncoderLayer {
                attn_ln: LayerNorm::load(m, &format!("{p}/self_attention/layer_norm"), &dev)?,
                qkv,
                out: Linear::load(m, &format!("{p}/self_attention/linear_1"), &dev)?,
                mlp: Mlp::load(m, &p, &dev)?,
            });
        }
        let mut dec_layers = Vec::with_capacity(dims.n_text_layer);
        for i in 0..dims.n_text_layer {
            let p = format!("decoder/layer_{i}");
            let mut qkv = Linear::load(m, &format!("{p}/self_attention/linear_0"), &dev)?;
            e(qkv.scale_rows(0..dims.n_text_state, dec_scale))?;
            let mut cross_q = Linear::load(m, &format!("{p}/attention/linear_0"), &dev)?;
            e(cross_q.scale_rows(0..dims.n_text_state, dec_scale))?;
            dec_layers.push(DecoderLayer {
                attn_ln: LayerNorm::load(m, &format!("{p}/self_attention/layer_norm"), &dev)?,
                qkv,
                out: Linear::load(m, &format!("{p}/self_attention/linear_1"), &dev)?,
                cross_ln: LayerNorm::load(m, &format!("{p}/attention/layer_norm"), &dev)?,
                cross_q,
                cross_kv: Linear::load(m, &format!("{p}/attention/linear_1"), &dev)?,
                cross_out: Linear::load(m, &format!("{p}/attention/linear_2"), &dev)?,
                mlp: Mlp::load(m, &p, &dev)?,
            });
        }
        let conv_bias = |name: &str| -> std::result::Result<Tensor, String> {
            m.tensor(name, &dev)?.reshape(((), 1)).map_err(|e| e.to_string())
        };
        Ok(Self {
            conv1_w: m.tensor("encoder/conv1/weight", &dev)?,
            conv1_b: conv_bias("encoder/conv1/bias")?,
            conv2_w: m.tensor("encoder/conv2/weight", &dev)?,
            conv2_b: conv_bias("encoder/conv2/bias")?,
            enc_pos: m.tensor("encoder/position_encodings/encodings", &dev)?,
            enc_layers,
            enc_ln: LayerNorm::load(m, "encoder/layer_norm", &dev)?,
            tok_emb: m.tensor_f16("decoder/embeddings/weight", &dev)?,
            dec_pos: m.tensor("decoder/position_encodings/encodings", &dev)?,
            dec_layers,
            dec_ln: LayerNorm::load(m, "decoder/layer_norm", &dev)?,
            device: dev,
            dims,
        })
    }

    /// Encodes one window: `mel` is `(n_mels, 3000)` row-major; returns
    /// `(n_audio_ctx, d)`.
    pub(crate) fn encode(&self, mel: &[f32]) -> Result<Tensor> {
        let n_frames = mel.len() / self.dims.n_mels;
        let x = Tensor::from_slice(mel, (1, self.dims.n_mels, n_frames), &self.device)?;
        let x = x.conv1d(&self.conv1_w, 1, 1, 1, 1)?.broadcast_add(&self.conv1_b)?;
        x.inplace_op1(&GeluErf)?;
        let x = x.conv1d(&self.conv2_w, 1, 2, 1, 1)?.broadcast_add(&self.conv2_b)?;
        x.inplace_op1(&GeluErf)?;
        let x = x.squeeze(0)?.t()?.contiguous()?;
        let t = x.dim(0)?;
        let mut x = add_residual(&x, &self.enc_pos.narrow(0, 0, t)?)?;
        let h = self.dims.n_audio_head;
        for layer in &self.enc_layers {
            let qkv = layer.qkv.forward(&layer.attn_ln.forward(&x)?)?;
            let q = heads(&qkv, 3, 0, h)?;
            let k_t = heads(&qkv, 3, 1, h)?.transpose(1, 2)?;
            let v = heads(&qkv, 3, 2, h)?;
            let a = attention_blocked(&q, &k_t, &v)?;
            x = add_residual(&x, &layer.out.forward(&a)?)?;
            x = layer.mlp.residual(&x)?;
        }
        self.enc_ln.forward(&x)
    }

    /// Cross-attention K/V of every decoder layer for one encoded window.
    pub(crate) fn cross_kv(&self, enc: &Tensor) -> Result<CrossKv> {
        let h = self.dims.n_text_head;
        let layers = self
            .dec_layers
            .iter()
            .map(|layer| {
                let kv = layer.cross_kv.forward(enc)?;
                let k_t = heads(&kv, 2, 0, h)?.transpose(1, 2)?.contiguous()?;
                let v = heads(&kv, 2, 1, h)?.contiguous()?;
                Ok((k_t, v))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CrossKv { layers })
    }

    pub(crate) fn new_cache(&self) -> SelfCache {
        let cap = self.dims.n_text_ctx * self.dims.n_text_state;
        let n = self.dims.n_text_layer;
        SelfCache {
            k: (0..n).map(|_| Vec::with_capacity(cap)).collect(),
            v: (0..n).map(|_| Vec::with_capacity(cap)).collect(),
            len: 0,
        }
    }

    /// Feeds `tokens` after the cached prefix; returns the logits
    /// `(n_vocab,)` of the last one.
    pub(crate) fn decode(&self, tokens: &[u32], cache: &mut SelfCache, cross: &CrossKv) -> Result<Vec<f32>> {
        self.logits(&self.decode_hidden(tokens, cache, cross)?)
    }

    /// [`Self::decode`] up to the final layer norm: the last token's hidden state.
    fn decode_hidden(&self, tokens: &[u32], cache: &mut SelfCache, cross: &CrossKv) -> Result<Vec<f32>> {
        let n = tokens.len();
        let offset = cache.len;
        if n == 0 || offset + n > self.dims.n_text_ctx {
            candle_core::bail!("decoder context exceeded: {offset} + {n} > {}", self.dims.n_text_ctx);
        }
        if n == 1 { self.decode_one(tokens[0], cache, cross) } else { self.decode_many(tokens, cache, cross) }
    }

    /// Several tokens (the prompt) through candle.
    fn decode_many(&self, tokens: &[u32], cache: &mut SelfCache, cross: &CrossKv) -> Result<Vec<f32>> {
        let n = tokens.len();
        let offset = cache.len;
        let total = offset + n;
        let ids = Tensor::from_slice(tokens, n, &self.device)?;
        let emb = self.tok_emb.index_select(&ids, 0)?.to_dtype(DType::F32)?;
        let mut x = (emb + self.dec_pos.narrow(0, offset, n)?)?;
        let mask: Vec<f32> = (0..n)
            .flat_map(|i| (0..total).map(move |j| if j > offset + i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (n, total), &self.device)?;
        let h = self.dims.n_text_head;
        let d = self.dims.n_text_state;
        for (l, (layer, (cross_k_t, cross_v))) in self.dec_layers.iter().zip(&cross.layers).enumerate() {
            let qkv = layer.qkv.forward(&layer.attn_ln.forward(&x)?)?;
            let q = heads(&qkv, 3, 0, h)?;
            let kv_new = qkv.narrow(1, d, 2 * d)?.contiguous()?.to_vec2::<f32>()?;
            for row in &kv_new {
                cache.k[l].extend_from_slice(&row[..d]);
                cache.v[l].extend_from_slice(&row[d..]);
            }
            let k_all = Tensor::from_slice(&cache.k[l], (total, h, d / h), &self.device)?;
            let v_all = Tensor::from_slice(&cache.v[l], (total, h, d / h), &self.device)?;
            let a = attention(&q, &k_all.permute((1, 2, 0))?, &v_all.transpose(0, 1)?, Some(&mask))?;
            x = (x + layer.out.forward(&a)?)?;

            let q = layer.cross_q.forward(&layer.cross_ln.forward(&x)?)?;
            let q = q.reshape((n, h, d / h))?.transpose(0, 1)?;
            let a = attention(&q, cross_k_t, cross_v, None)?;
            x = (x + layer.cross_out.forward(&a)?)?;
            x = layer.mlp.residual(&x)?;
        }
        cache.len = total;
        self.dec_ln.forward(&x.narrow(0, n - 1, 1)?)?.flatten_all()?.to_vec1::<f32>()
    }

    /// One token through the plain-Rust kernels.
    fn decode_one(&self, token: u32, cache: &mut SelfCache, cross: &CrossKv) -> Result<Vec<f32>> {
        let d = self.dims.n_text_state;
        let h = self.dims.n_text_head;
        let pos = cache.len;
        let t = token as usize;
        if t >= self.dims.n_vocab {
            candle_core::bail!("token {token} out of range");
        }
        let mut x = with_f16(&self.tok_emb, |e| e[t * d..(t + 1) * d].iter().map(|v| v.to_f32()).collect::<Vec<_>>())?;
        with_f32(&self.dec_pos, |p| add_assign(&mut x, &p[pos * d..(pos + 1) * d]))?;
        for (l, (layer, (cross_k_t, cross_v))) in self.dec_layers.iter().zip(&cross.layers).enumerate() {
            let qkv = layer.qkv.forward_vec(&layer.attn_ln.forward_vec(&x)?)?;
            cache.k[l].extend_from_slice(&qkv[d..2 * d]);
            cache.v[l].extend_from_slice(&qkv[2 * d..]);
            let a = ops::attend_rows(&qkv[..d], &cache.k[l], &cache.v[l], h);
            add_assign(&mut x, &layer.out.forward_vec(&a)?);

            let q = layer.cross_q.forward_vec(&layer.cross_ln.forward_vec(&x)?)?;
            let a = with_f32(cross_k_t, |k| with_f32(cross_v, |v| ops::attend_heads(&q, k, v, h)))??;
            add_assign(&mut x, &layer.cross_out.forward_vec(&a)?);
            layer.mlp.residual_vec(&mut x)?;
        }
        cache.len = pos + 1;
        self.dec_ln.forward_vec(&x)
    }

    /// The vocabulary projection of one hidden state.
    ///
    /// candle's f16 matmul (f32 accumulation, AVX2) reads half the bytes of
    /// an f32 one but rounds its output to f16 (±0.008 at |logit| < 32) and
    /// its input to f16; every logit within [`REFINE_MARGIN`] of the
    /// maximum is then recomputed exactly in f32, so the greedy choice is
    /// the exact model's whenever the winner is an unsuppressed top token.
    fn logits(&self, hidden: &[f32]) -> Result<Vec<f32>> {
        let d = hidden.len();
        let x = Tensor::from_slice(hidden, (1, d), &self.device)?.to_dtype(DType::F16)?;
        let approx = x.matmul(&self.tok_emb.t()?)?.squeeze(0)?.to_dtype(DType::F32)?;
        let mut logits = approx.to_vec1::<f32>()?;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        with_f16(&self.tok_emb, |emb| {
            let mut row = vec![0.0f32; d];
            for (t, l) in logits.iter_mut().enumerate() {
                if *l >= max - REFINE_MARGIN {
                    for (r, w) in row.iter_mut().zip(&emb[t * d..(t + 1) * d]) {
                        *r = w.to_f32();
                    }
                    *l = ops::dot(&row, hidden);
                }
            }
        })?;
        Ok(logits)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::mel::MelSpectrogram;

    #[test]
    fn cached_decoding_matches_a_full_recompute() {
        let Some(root) = std::env::var_os("HOOSH_TEST_MODELS_DIR") else {
            eprintln!("skipping: HOOSH_TEST_MODELS_DIR is not set");
            return;
        };
        let dir = PathBuf::from(root).join("whisper-tiny.en");
        let model = Whisper::load(&Ct2Model::load(&dir.join("model.bin")).unwrap()).unwrap();
        let wav = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio/s2.wav");
        let pcm = hoosh_audio::decode(&std::fs::read(wav).unwrap(), None, &Default::default()).unwrap().samples;
        let mel = MelSpectrogram::new(80).compute(&pcm);
        let cross = model.cross_kv(&model.encode(&mel.window(0, pcm.len() / 160)).unwrap()).unwrap();
        // <|startoftranscript|> <|0.00|> " Please schedule a meeting with the"
        let tokens = [50257u32, 50363, 4222, 7269, 257, 3249, 351, 262];

        let mut cache = model.new_cache();
        let mut stepped = vec![model.decode_hidden(&tokens[..2], &mut cache, &cross).unwrap()];
        for t in &tokens[2..] {
            stepped.push(model.decode_hidden(&[*t], &mut cache, &cross).unwrap());
        }
        assert_eq!(cache.len(), tokens.len());
        let emb: Vec<f32> = model.tok_emb.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (k, cached) in (2..=tokens.len()).zip(&stepped) {
            let full = model.decode_hidden(&tokens[..k], &mut model.new_cache(), &cross).unwrap();
            // Exact f32 logits of both paths: the KV-cached step must match
            // the full recompute.
            let exact_cached = ops::gemv(&emb, None, cached);
            let exact_full = ops::gemv(&emb, None, &full);
            let diff = exact_full.iter().zip(&exact_cached).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-4, "prefix {k}: max |cached - full| logit = {diff}");
            // The fast projection: near-max logits exact, the rest within f16 rounding.
            let fast = model.logits(cached).unwrap();
            let max = exact_cached.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for (f, e) in fast.iter().zip(&exact_cached) {
                let tol = if *e >= max - 0.4 { 1e-5 } else { 0.05 };
                assert!((f - e).abs() <= tol, "prefix {k}: fast logit {f} vs exact {e} (max {max})");
            }
        }
        // The audio says "… meeting with the engineering team": the model agrees.
        let next = model.logits(stepped.last().unwrap()).unwrap();
        let best = next.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap();
        assert_eq!(best, 8705, "expected \" engineering\"");
    }
}
