//! Reader for CTranslate2 (faster-whisper) model directories: `model.bin`
//! (binary format v6) into named f32 tensors, plus `config.json`.
//!
//! `model.bin` layout (little endian): `u32` version, string spec name,
//! `u32` spec revision, `u32` variable count, then per variable: string name,
//! `u8` rank, `rank × u32` dims, `u8` dtype (0 f32, 1 i8, 2 i16, 3 i32,
//! 4 f16, 5 bf16), `u32` byte count, data; then `u32` alias count and
//! `(alias, target)` string pairs. Strings are a `u16` length (counting a
//! trailing NUL) followed by the bytes.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::WhisperError;

/// One variable as stored: raw bytes plus shape and dtype.
pub(crate) struct RawVar {
    pub dims: Vec<usize>,
    pub dtype: u8,
    pub data: Vec<u8>,
}

/// All variables of a `model.bin`, by CT2 name (aliases resolved).
pub(crate) struct Ct2Model {
    pub spec: String,
    vars: HashMap<String, RawVar>,
    aliases: HashMap<String, String>,
}

/// CT2's `config.json` for Whisper (`lang_ids` and `alignment_heads` are
/// not used: languages come from the tokenizer, and word timestamps are not
/// implemented).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Ct2Config {
    #[serde(default)]
    pub suppress_ids: Vec<u32>,
    #[serde(default)]
    pub suppress_ids_begin: Vec<u32>,
}

impl Ct2Config {
    pub(crate) fn load(path: &Path) -> Result<Self, WhisperError> {
        let text = std::fs::read_to_string(path).map_err(|e| WhisperError::load(path, e))?;
        serde_json::from_str(&text).map_err(|e| WhisperError::load(path, e))
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| format!("truncated at byte {} (wanted {n} more)", self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let bytes = self.take(n)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("non-UTF-8 name before byte {}", self.pos))
    }
}

fn dtype_size(dtype: u8) -> Option<usize> {
    match dtype {
        0 | 3 => Some(4),
        1 => Some(1),
        2 | 4 | 5 => Some(2),
        _ => None,
    }
}

impl Ct2Model {
    pub(crate) fn load(path: &Path) -> Result<Self, WhisperError> {
        let bytes = std::fs::read(path).map_err(|e| WhisperError::load(path, e))?;
        Self::parse(&bytes).map_err(|e| WhisperError::load(path, e))
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let version = r.u32()?;
        if !(5..=6).contains(&version) {
            return Err(format!("unsupported CTranslate2 model version {version} (expected 6)"));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let n_vars = r.u32()? as usize;
        let mut vars = HashMap::with_capacity(n_vars);
        for _ in 0..n_vars {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let dims = (0..rank).map(|_| r.u32().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
            let dtype = r.u8()?;
            let nbytes = r.u32()? as usize;
            let size = dtype_size(dtype).ok_or_else(|| format!("{name}: unknown dtype {dtype}"))?;
            if dims.iter().product::<usize>() * size != nbytes {
                return Err(format!("{name}: {nbytes} bytes do not match shape {dims:?}"));
            }
            let data = r.take(nbytes)?.to_vec();
            vars.insert(name, RawVar { dims, dtype, data });
        }
        let mut aliases = HashMap::new();
        if r.pos < bytes.len() {
            let n_aliases = r.u32()?;
            for _ in 0..n_aliases {
                let alias = r.string()?;
                let target = r.string()?;
                aliases.insert(alias, target);
            }
        }
        Ok(Self { spec, vars, aliases })
    }

    fn raw(&self, name: &str) -> Result<&RawVar, String> {
        let key = self.aliases.get(name).map_or(name, String::as_str);
        self.vars.get(key).ok_or_else(|| format!("missing variable {name}"))
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.raw(name).is_ok()
    }

    /// A variable as an f32 tensor (f16/bf16 widened).
    pub(crate) fn tensor(&self, name: &str, device: &Device) -> Result<Tensor, String> {
        let v = self.raw(name)?;
        let dtype = match v.dtype {
            0 => DType::F32,
            4 => DType::F16,
            5 => DType::BF16,
            d => return Err(format!("{name}: dtype {d} is not a float")),
        };
        let t = Tensor::from_raw_buffer(&v.data, dtype, &v.dims, device).map_err(|e| format!("{name}: {e}"))?;
        t.to_dtype(DType::F32).map_err(|e| format!("{name}: {e}"))
    }

    /// A variable as an f16 tensor (exact when stored as f16).
    pub(crate) fn tensor_f16(&self, name: &str, device: &Device) -> Result<Tensor, String> {
        let v = self.raw(name)?;
        if v.dtype == 4 {
            return Tensor::from_raw_buffer(&v.data, DType::F16, &v.dims, device).map_err(|e| format!("{name}: {e}"));
        }
        self.tensor(name, device)?.to_dtype(DType::F16).map_err(|e| format!("{name}: {e}"))
    }

    /// A scalar integer variable such as `encoder/num_heads`.
    pub(crate) fn int(&self, name: &str) -> Result<i64, String> {
        let v = self.raw(name)?;
        let d = &v.data;
        Ok(match (v.dtype, d.len()) {
            (1, 1) => i64::from(d[0] as i8),
            (2, 2) => i64::from(i16::from_le_bytes([d[0], d[1]])),
            (3, 4) => i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])),
            _ => return Err(format!("{name}: not an integer scalar")),
        })
    }

    pub(crate) fn dims(&self, name: &str) -> Result<&[usize], String> {
        Ok(&self.raw(name)?.dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    #[test]
    fn parses_variables_and_aliases() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        string(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[0x00, 0x3c, 0x00, 0xc0]); // f16 1.0, -2.0
        string(&mut b, "heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&6i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "alias");
        string(&mut b, "w");
        let m = Ct2Model::parse(&b).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.int("heads").unwrap(), 6);
        let t = m.tensor("alias", &Device::Cpu).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![1.0, -2.0]]);
        assert!(Ct2Model::parse(&b[..b.len() - 9]).is_err());
    }
}
