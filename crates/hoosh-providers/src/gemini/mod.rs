//! TEMPORARY placeholder, being replaced by the real adapter.

use async_trait::async_trait;
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{ChunkStream, Provider, ProviderError};
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};

use crate::adapter::AdapterConfig;

pub struct GeminiProvider {
    cfg: AdapterConfig,
    support: ParamSupport,
}

impl GeminiProvider {
    pub fn new(cfg: AdapterConfig) -> Self {
        let support = cfg.param_support();
        GeminiProvider { cfg, support }
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn family(&self) -> &'static str {
        "gemini"
    }
    fn param_support(&self) -> &ParamSupport {
        &self.support
    }
    async fn chat(&self, _req: &ChatCompletionRequest, _d: &DroppedParams) -> Result<ChatCompletionResponse, ProviderError> {
        Err(ProviderError::unsupported("not yet"))
    }
    async fn chat_stream(&self, _req: &ChatCompletionRequest, _d: &DroppedParams) -> Result<ChunkStream, ProviderError> {
        Err(ProviderError::unsupported("not yet"))
    }
    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }
}
