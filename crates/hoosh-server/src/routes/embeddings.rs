//! `POST /v1/embeddings`: floats, or base64 of little-endian f32 as OpenAI
//! encodes them for `encoding_format: "base64"`.

use axum::extract::State;
use axum::response::Response;
use hoosh_core::EmbedRequest;
use hoosh_types::openai::EmbeddingRequest;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::pipeline::embed::{EmbedCall, EmbedFormat};
use crate::state::AppState;
use crate::{pipeline, validate};

pub async fn embeddings(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    validate::embeddings(&req)?;
    let call = EmbedCall {
        call: EmbedRequest {
            model: req.model.clone(),
            input: req.input.to_vec(),
            dimensions: req.dimensions,
            user: req.user.clone(),
        },
        format: EmbedFormat::OpenAi(req.encoding_format.unwrap_or_default()),
    };
    pipeline::run(&st, &caller, call).await
}
