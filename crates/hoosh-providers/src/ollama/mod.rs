//! TEMPORARY placeholder, being replaced by the real adapter.

use async_trait::async_trait;
use hoosh_core::params::{DroppedParams, ParamSupport};
use hoosh_core::{ChunkStream, Provider, ProviderError};
use hoosh_types::openai::{ChatCompletionRequest, ChatCompletionResponse};

use crate::adapter::AdapterConfig;

pub struct OllamaProvider {
    cfg: AdapterConfig,
    support: ParamSupport,
}

impl OllamaProvider {
    pub fn new(cfg: AdapterConfig) -> Self {
        let support = cfg.param_support();
        OllamaProvider { cfg, support }
    }
}

#[async_trait]
impl Provider for OllamaProvider {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn family(&self) -> &'static str {
        "ollama"
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
