//! `POST /v1/embeddings`: floats, or base64 of little-endian f32 as OpenAI
//! encodes them for `encoding_format: "base64"`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hoosh_core::EmbedRequest;
use hoosh_core::router::Need;
use hoosh_governance::Scope;
use hoosh_types::openai::{
    Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector, EncodingFormat, Usage,
};

use super::served_by;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::metering::{self, Ask, Media, Metered, Served};
use crate::state::AppState;
use crate::validate;

pub fn encode_base64(v: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub async fn embeddings(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Inference)?;
    validate::embeddings(&req)?;
    let live = st.live();
    let candidates = live.router.candidates(&req.model, Need::Embeddings)?;
    let call = EmbedRequest {
        model: req.model.clone(),
        input: req.input.to_vec(),
        dimensions: req.dimensions,
        user: req.user.clone(),
    };
    let prompt = metering::estimate_inputs(&call.input);
    let meter = Metered::admit(
        &st,
        &live,
        &caller,
        Ask {
            route: "embeddings",
            model: &req.model,
            candidates: &candidates,
            prompt_estimate: prompt,
            output_cap: 0,
            media: Media::default(),
        },
    )?;
    meter.audit_content(&caller, || serde_json::json!(call.input));
    let mut headers = meter.headers();
    let out = match live.executor.embed(&candidates, &call).await {
        Ok(out) => out,
        Err(f) => return Err(meter.fail(f)),
    };
    headers.extend(served_by(&out));
    let usage = Usage::new(out.value.usage.prompt_tokens, 0);
    if let Some(cost) = meter.settle(Some(Served { entry: &out.entry, model: &out.model, usage }), 200) {
        headers.insert("x-hoosh-cost-usd", cost);
    }
    let format = req.encoding_format.unwrap_or_default();
    let data = out
        .value
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| Embedding {
            object: "embedding".into(),
            index: i as u32,
            embedding: match format {
                EncodingFormat::Float => EmbeddingVector::Float(v.clone()),
                EncodingFormat::Base64 => EmbeddingVector::Base64(encode_base64(v)),
            },
        })
        .collect();
    let usage = out.value.usage;
    let body = EmbeddingResponse {
        object: "list".into(),
        data,
        model: out.model.clone(),
        usage: EmbeddingUsage { prompt_tokens: usage.prompt_tokens, total_tokens: usage.prompt_tokens },
    };
    Ok((headers, Json(body)).into_response())
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
