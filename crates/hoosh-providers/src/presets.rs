//! Presets: what `type = "groq"` (etc.) means — wire family, default base
//! URL, the env var its own SDK reads for the key, the model names it
//! usually serves, where it runs (nearby or remote), which parameters it
//! cannot take, and whether it serves OpenAI's audio endpoints.

use hoosh_core::Placement;

/// The wire family an adapter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    OpenAi,
    Anthropic,
    Ollama,
    Gemini,
}

/// How an OpenAI-compatible upstream expects its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Bearer,
    /// Azure's `api-key` header.
    AzureApiKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub kind: &'static str,
    pub family: Family,
    pub base_url: Option<&'static str>,
    /// Env var the vendor's SDK reads; used for zero-config discovery and as
    /// the default `api_key_env`.
    pub key_env: Option<&'static str>,
    /// Env var that overrides the base URL in zero-config mode.
    pub base_url_env: Option<&'static str>,
    pub models: &'static [&'static str],
    /// Where it usually runs: `Nearby` for the servers people run on their
    /// own machines (the config's `placement` overrides it).
    pub placement: Placement,
    pub auth: Auth,
    /// Parameters the upstream rejects or ignores.
    pub unsupported: &'static [&'static str],
    /// Vendor extensions (unknown fields) pass through.
    pub passes_extra: bool,
    /// Send `max_tokens` instead of `max_completion_tokens`.
    pub legacy_max_tokens: bool,
    /// Understands the `developer` role (else it becomes `system`).
    pub developer_role: bool,
    /// Headers sent by default (OpenRouter attribution).
    pub headers: &'static [(&'static str, &'static str)],
    /// Serves `/audio/transcriptions` and `/audio/translations` (OpenAI wire).
    pub transcription: bool,
    /// Serves `/audio/speech` (OpenAI wire).
    pub speech: bool,
}

const LOCAL_SERVER_UNSUPPORTED: &[&str] = &["metadata", "store", "reasoning_effort", "parallel_tool_calls"];

const fn openai_compatible(kind: &'static str) -> Preset {
    Preset {
        kind,
        family: Family::OpenAi,
        base_url: None,
        key_env: None,
        base_url_env: None,
        models: &["*"],
        placement: Placement::Remote,
        auth: Auth::Bearer,
        unsupported: &[],
        passes_extra: true,
        legacy_max_tokens: true,
        developer_role: false,
        headers: &[],
        transcription: false,
        speech: false,
    }
}

pub const PRESETS: &[Preset] = &[
    Preset {
        base_url: Some("https://api.openai.com/v1"),
        key_env: Some("OPENAI_API_KEY"),
        base_url_env: Some("OPENAI_BASE_URL"),
        models: &[
            "gpt-*",
            "o1*",
            "o3*",
            "o4*",
            "chatgpt-*",
            "text-embedding-*",
            "davinci-*",
            "babbage-*",
            "whisper-1",
            "tts-1*",
        ],
        legacy_max_tokens: false,
        developer_role: true,
        transcription: true,
        speech: true,
        ..openai_compatible("openai")
    },
    Preset {
        key_env: Some("AZURE_OPENAI_API_KEY"),
        auth: Auth::AzureApiKey,
        legacy_max_tokens: false,
        developer_role: true,
        // Whisper and TTS deployments, at the deployment URL like chat.
        transcription: true,
        speech: true,
        ..openai_compatible("azure")
    },
    Preset {
        base_url: Some("https://api.deepseek.com/v1"),
        key_env: Some("DEEPSEEK_API_KEY"),
        models: &["deepseek-*"],
        unsupported: &["n", "logit_bias", "seed", "parallel_tool_calls", "reasoning_effort", "metadata", "store"],
        ..openai_compatible("deepseek")
    },
    Preset {
        base_url: Some("https://api.groq.com/openai/v1"),
        key_env: Some("GROQ_API_KEY"),
        models: &[
            "llama*",
            "mixtral-*",
            "gemma*",
            "qwen*",
            "deepseek-r1-distill-*",
            "openai/gpt-oss-*",
            "moonshotai/*",
            "whisper-large-v3*",
            "distil-whisper-*",
        ],
        unsupported: &["n", "logprobs", "top_logprobs", "logit_bias", "metadata", "store"],
        // Whisper models.
        transcription: true,
        ..openai_compatible("groq")
    },
    Preset {
        base_url: Some("https://api.x.ai/v1"),
        key_env: Some("XAI_API_KEY"),
        models: &["grok-*"],
        unsupported: &["logit_bias", "metadata", "store"],
        ..openai_compatible("xai")
    },
    Preset {
        base_url: Some("https://openrouter.ai/api/v1"),
        key_env: Some("OPENROUTER_API_KEY"),
        models: &["*/*"],
        headers: &[("HTTP-Referer", "https://github.com/hoosh-gateway/hoosh"), ("X-Title", "hoosh")],
        ..openai_compatible("openrouter")
    },
    Preset {
        base_url: Some("https://api.mistral.ai/v1"),
        key_env: Some("MISTRAL_API_KEY"),
        models: &[
            "mistral-*",
            "codestral-*",
            "ministral-*",
            "open-mistral-*",
            "pixtral-*",
            "magistral-*",
            "devstral-*",
        ],
        unsupported: &[
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "user",
            "seed",
            "reasoning_effort",
            "metadata",
            "store",
        ],
        // Voxtral transcription on the OpenAI path.
        transcription: true,
        ..openai_compatible("mistral")
    },
    Preset {
        base_url: Some("https://api.together.xyz/v1"),
        key_env: Some("TOGETHER_API_KEY"),
        models: &["meta-llama/*", "mistralai/*", "Qwen/*", "deepseek-ai/*", "google/*"],
        unsupported: &["metadata", "store", "reasoning_effort"],
        // Whisper/Voxtral transcription and TTS models on the OpenAI paths.
        transcription: true,
        speech: true,
        ..openai_compatible("together")
    },
    Preset {
        base_url: Some("https://api.fireworks.ai/inference/v1"),
        key_env: Some("FIREWORKS_API_KEY"),
        models: &["accounts/*"],
        unsupported: &["metadata", "store", "reasoning_effort"],
        ..openai_compatible("fireworks")
    },
    Preset {
        base_url: Some("http://localhost:1234/v1"),
        placement: Placement::Nearby,
        unsupported: LOCAL_SERVER_UNSUPPORTED,
        ..openai_compatible("lmstudio")
    },
    Preset {
        base_url: Some("http://localhost:8080/v1"),
        placement: Placement::Nearby,
        unsupported: LOCAL_SERVER_UNSUPPORTED,
        // whisper.cpp and TTS backends behind the OpenAI paths.
        transcription: true,
        speech: true,
        ..openai_compatible("localai")
    },
    Preset {
        base_url: Some("http://localhost:8080/v1"),
        placement: Placement::Nearby,
        unsupported: LOCAL_SERVER_UNSUPPORTED,
        ..openai_compatible("llamacpp")
    },
    Preset {
        base_url: Some("http://localhost:8000/v1"),
        placement: Placement::Nearby,
        unsupported: &["metadata", "store", "reasoning_effort"],
        // Whisper-family models; no text-to-speech.
        transcription: true,
        ..openai_compatible("vllm")
    },
    // Unknown servers may serve audio; if one does not, its 404 fails over.
    Preset { transcription: true, speech: true, ..openai_compatible("openai-compatible") },
    Preset {
        family: Family::Anthropic,
        base_url: Some("https://api.anthropic.com"),
        key_env: Some("ANTHROPIC_API_KEY"),
        base_url_env: Some("ANTHROPIC_BASE_URL"),
        models: &["claude-*"],
        unsupported: &[
            "n",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "response_format",
            "reasoning_effort",
            "metadata",
            "store",
        ],
        passes_extra: false,
        ..openai_compatible("anthropic")
    },
    Preset {
        family: Family::Ollama,
        base_url: Some("http://localhost:11434"),
        base_url_env: Some("OLLAMA_HOST"),
        placement: Placement::Nearby,
        unsupported: &[
            "n",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "user",
            "parallel_tool_calls",
            "reasoning_effort",
            "metadata",
            "store",
        ],
        passes_extra: false,
        ..openai_compatible("ollama")
    },
    Preset {
        family: Family::Gemini,
        base_url: Some("https://generativelanguage.googleapis.com"),
        key_env: Some("GEMINI_API_KEY"),
        models: &["gemini-*", "gemma-*", "text-embedding-004", "gemini-embedding-*"],
        unsupported: &[
            "n",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "user",
            "parallel_tool_calls",
            "reasoning_effort",
            "metadata",
            "store",
        ],
        passes_extra: false,
        ..openai_compatible("gemini")
    },
];

pub fn find(kind: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.kind == kind)
}

/// Every accepted `type`, for error messages.
pub fn kinds() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.kind).collect()
}
