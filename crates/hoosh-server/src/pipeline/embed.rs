//! Embeddings as pipeline work: priced on the inputs' tokens, no output.

use axum::Json;
use axum::response::{IntoResponse, Response};
use hoosh_core::executor::{Executor, Failure, Outcome};
use hoosh_core::router::{Candidate, Need};
use hoosh_core::{EmbedRequest, EmbedResponse};
use hoosh_types::openai::{Embedding, EmbeddingResponse, EmbeddingUsage, EmbeddingVector, EncodingFormat, Usage};

use super::estimate::{self, Estimate};
use super::{Endpoint, Reply, ServedBy};
use crate::state::Live;

/// An embeddings request, and the client API its vectors are answered in.
pub struct EmbedCall {
    pub call: EmbedRequest,
    pub format: EmbedFormat,
}

/// How embeddings are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedFormat {
    /// OpenAI's list of `embedding` objects, floats or base64.
    OpenAi(EncodingFormat),
    /// Ollama's `/api/embed`: `{"model", "embeddings": [[…]], …}`.
    Ollama,
    /// Ollama's older `/api/embeddings`: `{"embedding": […]}` (one input).
    OllamaLegacy,
}

impl Endpoint for EmbedCall {
    type Output = EmbedResponse;
    const NEED: Need = Need::Embeddings;

    fn route(&self) -> &'static str {
        match self.format {
            EmbedFormat::OpenAi(_) => "embeddings",
            EmbedFormat::Ollama | EmbedFormat::OllamaLegacy => "ollama.embed",
        }
    }

    fn model(&self) -> &str {
        &self.call.model
    }

    fn estimate(&self, _candidates: &[Candidate]) -> Estimate {
        Estimate { prompt: estimate::inputs(&self.call.input), ..Estimate::default() }
    }

    fn content(&self) -> serde_json::Value {
        serde_json::json!(self.call.input)
    }

    async fn execute(
        &self,
        executor: &Executor,
        candidates: &[Candidate],
    ) -> Result<Outcome<Reply<EmbedResponse>>, Failure> {
        executor.embed(candidates, &self.call).await.map(|o| o.map(Reply::Whole))
    }

    /// A provider that reports no usage (some embedding APIs do not) is
    /// charged the estimate, never nothing.
    fn usage(&self, out: &EmbedResponse, estimate: &Estimate) -> Usage {
        let reported = out.usage.prompt_tokens;
        Usage::new(if reported == 0 { estimate.prompt } else { reported }, 0)
    }

    fn respond(&self, reply: Reply<EmbedResponse>, served: &ServedBy, _live: &Live) -> Response {
        let Reply::Whole(out) = reply else {
            return crate::error::ApiError::Internal("an embeddings provider answered with a stream".into())
                .into_response();
        };
        let model = served.model.clone().unwrap_or_else(|| self.call.model.clone());
        let encoding = match self.format {
            EmbedFormat::OpenAi(e) => e,
            EmbedFormat::Ollama => {
                return Json(serde_json::json!({
                    "model": model, "embeddings": out.vectors,
                    "total_duration": 0, "load_duration": 0, "prompt_eval_count": out.usage.prompt_tokens,
                }))
                .into_response();
            }
            EmbedFormat::OllamaLegacy => {
                let first = out.vectors.into_iter().next().unwrap_or_default();
                return Json(serde_json::json!({"embedding": first})).into_response();
            }
        };
        let data = out
            .vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| Embedding {
                object: "embedding".into(),
                index: i as u32,
                embedding: match encoding {
                    EncodingFormat::Float => EmbeddingVector::Float(v),
                    EncodingFormat::Base64 => EmbeddingVector::Base64(encode_base64(&v)),
                },
            })
            .collect();
        let tokens = out.usage.prompt_tokens;
        Json(EmbeddingResponse {
            object: "list".into(),
            data,
            model,
            usage: EmbeddingUsage { prompt_tokens: tokens, total_tokens: tokens },
        })
        .into_response()
    }
}

/// Base64 of little-endian f32, as OpenAI encodes `encoding_format: "base64"`.
pub fn encode_base64(v: &[f32]) -> String {
    use base64::Engine;
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 0x3f800000 → LE bytes 00 00 80 3f
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
    }
}
