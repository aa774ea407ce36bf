//! Streaming resampling of mono audio to 16 kHz.

use rubato::{FftFixedInOut, Resampler};

use crate::AudioError;

/// Input frames per FFT chunk (rounded up by rubato to a multiple of the
/// rate ratio's denominator).
const CHUNK_IN: usize = 1024;

/// Feeds mono samples at `rate_in` and collects them at `rate_out`.
///
/// rubato's FFT resampler delays its output by a fixed number of frames;
/// that many leading output frames are dropped and the tail is flushed with
/// silence, so `finish` returns exactly `ceil(n_in · rate_out / rate_in)`
/// frames aligned with the input.
pub(crate) struct MonoResampler {
    inner: Option<FftFixedInOut<f32>>,
    pending: Vec<f32>,
    out: Vec<f32>,
    frames_in: u64,
    to_skip: usize,
    rate_in: u32,
    rate_out: u32,
}

impl MonoResampler {
    pub(crate) fn new(rate_in: u32, rate_out: u32) -> Result<Self, AudioError> {
        let inner = if rate_in == rate_out {
            None
        } else {
            let r = FftFixedInOut::new(rate_in as usize, rate_out as usize, CHUNK_IN, 1)
                .map_err(|e| AudioError::Unsupported { what: format!("sample rate {rate_in} Hz ({e})") })?;
            Some(r)
        };
        let to_skip = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self { inner, pending: Vec::new(), out: Vec::new(), frames_in: 0, to_skip, rate_in, rate_out })
    }

    /// Output frames produced so far (a lower bound of the final length).
    pub(crate) fn len_out(&self) -> usize {
        self.out.len()
    }

    pub(crate) fn push(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.frames_in += samples.len() as u64;
        let Some(r) = self.inner.as_mut() else {
            self.out.extend_from_slice(samples);
            return Ok(());
        };
        self.pending.extend_from_slice(samples);
        let need = r.input_frames_next();
        let mut start = 0;
        while self.pending.len() - start >= need {
            let chunk = &self.pending[start..start + need];
            let res = r.process(&[chunk], None).map_err(internal)?;
            Self::append(&mut self.out, &mut self.to_skip, &res[0]);
            start += need;
        }
        self.pending.drain(..start);
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        let expected = (self.frames_in * u64::from(self.rate_out)).div_ceil(u64::from(self.rate_in)) as usize;
        if let Some(r) = self.inner.as_mut() {
            if !self.pending.is_empty() {
                let res = r.process_partial(Some(&[self.pending.as_slice()]), None).map_err(internal)?;
                Self::append(&mut self.out, &mut self.to_skip, &res[0]);
            }
            // Flush the filter delay with silence until every frame is out.
            while self.out.len() < expected {
                let res = r.process_partial(None::<&[&[f32]]>, None).map_err(internal)?;
                if res[0].is_empty() {
                    break;
                }
                Self::append(&mut self.out, &mut self.to_skip, &res[0]);
            }
        }
        self.out.resize(expected, 0.0);
        Ok(self.out)
    }

    fn append(out: &mut Vec<f32>, to_skip: &mut usize, chunk: &[f32]) {
        let skip = (*to_skip).min(chunk.len());
        *to_skip -= skip;
        out.extend_from_slice(&chunk[skip..]);
    }
}

fn internal(e: rubato::ResampleError) -> AudioError {
    AudioError::Corrupt { detail: format!("resampling failed: {e}") }
}
