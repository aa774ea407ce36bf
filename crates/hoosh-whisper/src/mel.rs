//! Whisper's log-mel spectrogram: 25 ms Hann windows every 10 ms (n_fft 400,
//! hop 160 at 16 kHz), power spectrum → Slaney mel filterbank (computed here,
//! as librosa does) → `log10`, floored at 8 below the maximum, then
//! `(x + 4) / 4`.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

pub(crate) const SAMPLE_RATE: usize = 16_000;
pub(crate) const N_FFT: usize = 400;
pub(crate) const HOP: usize = 160;
/// Frames in one 30 s window.
pub(crate) const N_FRAMES: usize = 3000;
/// Samples in one 30 s window.
pub(crate) const N_SAMPLES: usize = N_FRAMES * HOP;
const N_BINS: usize = N_FFT / 2 + 1;

/// One triangular filter: its first FFT bin and the non-zero weights.
struct Filter {
    start: usize,
    weights: Vec<f32>,
}

/// The filterbank and FFT plan, built once per model.
pub(crate) struct MelSpectrogram {
    n_mels: usize,
    filters: Vec<Filter>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

/// A log-mel spectrogram stored mel-major: `data[m * n_frames + t]`.
pub(crate) struct Mel {
    pub n_mels: usize,
    pub n_frames: usize,
    pub data: Vec<f32>,
}

impl Mel {
    /// Frames `start..start + len` (`len <= N_FRAMES`) as an
    /// `(n_mels, N_FRAMES)` row-major buffer, zero-padded after `len` as
    /// openai-whisper's `pad_or_trim` does.
    pub(crate) fn window(&self, start: usize, len: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.n_mels * N_FRAMES];
        let end = (start + len.min(N_FRAMES)).min(self.n_frames);
        if start < end {
            for m in 0..self.n_mels {
                let src = &self.data[m * self.n_frames + start..m * self.n_frames + end];
                out[m * N_FRAMES..m * N_FRAMES + src.len()].copy_from_slice(src);
            }
        }
        out
    }
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz { min_log_mel + (f / min_log_hz).ln() / logstep } else { f / f_sp }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel { min_log_hz * ((m - min_log_mel) * logstep).exp() } else { m * f_sp }
}

/// librosa's `filters.mel(sr=16000, n_fft=400, n_mels, htk=False,
/// norm="slaney")` as dense rows of `N_BINS` weights.
pub(crate) fn mel_filterbank(n_mels: usize) -> Vec<Vec<f64>> {
    let fft_freqs: Vec<f64> = (0..N_BINS).map(|i| i as f64 * SAMPLE_RATE as f64 / N_FFT as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE as f64 / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    (0..n_mels)
        .map(|i| {
            let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
            fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
                    let upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
                    lower.min(upper).max(0.0) * enorm
                })
                .collect()
        })
        .collect()
}

impl MelSpectrogram {
    pub(crate) fn new(n_mels: usize) -> Self {
        let filters = mel_filterbank(n_mels)
            .into_iter()
            .map(|row| {
                let start = row.iter().position(|w| *w > 0.0).unwrap_or(0);
                let end = row.iter().rposition(|w| *w > 0.0).map_or(start, |e| e + 1);
                Filter { start, weights: row[start..end].iter().map(|w| *w as f32).collect() }
            })
            .collect();
        // Periodic Hann window, as torch.hann_window(400).
        let window = (0..N_FFT)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        Self { n_mels, filters, window, fft }
    }

    /// The spectrogram of `samples` followed by 30 s of silence (as Whisper
    /// pads), so every window start up to the end of the audio has a full
    /// 3000 frames. Frame `t` is centred on sample `t · HOP`, with reflect
    /// padding at both ends.
    pub(crate) fn compute(&self, samples: &[f32]) -> Mel {
        let total = samples.len() + N_SAMPLES;
        let n_frames = total / HOP;
        let half = N_FFT / 2;
        // Reflect-padded signal: [reflect(half) | samples | zeros | reflect(half)].
        let mut padded = vec![0.0f32; total + 2 * half];
        padded[half..half + samples.len()].copy_from_slice(samples);
        for i in 0..half {
            padded[half - 1 - i] = sample_at(samples, total, i + 1);
            padded[half + total + i] = sample_at(samples, total, total.saturating_sub(2 + i));
        }

        let mut data = vec![0.0f32; self.n_mels * n_frames];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; N_BINS];
        let silent_from = (half + samples.len() + half).div_ceil(HOP);
        let mut silent_column: Option<Vec<f32>> = None;
        for t in 0..n_frames {
            if t >= silent_from {
                // The trailing padding is pure zeros: every frame is the same.
                let col = silent_column.get_or_insert_with(|| vec![1e-10f32.log10(); self.n_mels]);
                for (m, v) in col.iter().enumerate() {
                    data[m * n_frames + t] = *v;
                }
                continue;
            }
            let frame = &padded[t * HOP..t * HOP + N_FFT];
            for ((x, s), w) in input.iter_mut().zip(frame).zip(&self.window) {
                *x = s * w;
            }
            if self.fft.process_with_scratch(&mut input, &mut spectrum, &mut scratch).is_err() {
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, f) in self.filters.iter().enumerate() {
                let e: f32 = f.weights.iter().zip(&power[f.start..]).map(|(w, p)| w * p).sum();
                data[m * n_frames + t] = e.max(1e-10).log10();
            }
        }
        let max = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut data {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        Mel { n_mels: self.n_mels, n_frames, data }
    }
}

/// Sample `i` of `samples` zero-extended to `total` samples.
fn sample_at(samples: &[f32], total: usize, i: usize) -> f32 {
    if i < total { samples.get(i).copied().unwrap_or(0.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_filters_have_unit_area_and_known_edges() {
        let fb = mel_filterbank(80);
        assert_eq!(fb.len(), 80);
        // Slaney normalisation makes each triangle's area 1 (in Hz): with
        // 40 Hz bins the wide upper filters sum to about 1/40 (sampling a
        // triangle a dozen bins wide is only accurate to a few percent).
        let mut total = 0.0;
        for row in &fb[40..80] {
            let area = row.iter().sum::<f64>() * 40.0;
            assert!((area - 1.0).abs() < 0.1, "area {area}");
            total += area;
        }
        assert!((total / 40.0 - 1.0).abs() < 0.02, "mean area {}", total / 40.0);
        // Known values of openai-whisper's mel_filters.npz (mel_80).
        assert!((fb[0][1] - 0.024_862_593).abs() < 1e-6, "{}", fb[0][1]);
        assert!(fb[0][0].abs() < 1e-12);
        assert!(fb[79].iter().take(150).all(|w| *w == 0.0));
    }

    #[test]
    fn a_pure_tone_peaks_in_the_right_mel_bin() {
        let mel = MelSpectrogram::new(80);
        let centers: Vec<f64> = {
            let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(8000.0));
            (1..=80).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / 81.0)).collect()
        };
        for hz in [440.0f64, 1000.0, 3000.0] {
            let samples: Vec<f32> = (0..16_000)
                .map(|i| (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / 16_000.0).sin()) as f32)
                .collect();
            let m = mel.compute(&samples);
            let t = 50;
            let col: Vec<f32> = (0..80).map(|b| m.data[b * m.n_frames + t]).collect();
            let peak = col.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap();
            let nearest = centers
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - hz).abs().total_cmp(&(b.1 - hz).abs()))
                .map(|(i, _)| i)
                .unwrap();
            assert!(peak.abs_diff(nearest) <= 1, "{hz} Hz peaked in bin {peak}, expected ~{nearest}");
            // Normalised range: max is (log10(max)+4)/4, floor is 2 below it.
            let max = m.data.iter().copied().fold(f32::MIN, f32::max);
            let min = m.data.iter().copied().fold(f32::MAX, f32::min);
            assert!((max - min - 2.0).abs() < 1e-5);
        }
    }

    #[test]
    fn frame_count_includes_thirty_seconds_of_padding() {
        let m = MelSpectrogram::new(80).compute(&vec![0.0; 16_000]);
        assert_eq!(m.n_frames, 100 + N_FRAMES);
        let w = m.window(0, 100);
        assert_eq!(w.len(), 80 * N_FRAMES);
        assert_eq!(w[100], 0.0);
    }
}
