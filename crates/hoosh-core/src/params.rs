//! The per-provider parameter policy: which optional chat parameters an
//! adapter can carry to its upstream, and what happens to the others
//! (dropped and reported in `x-hoosh-dropped-params`, or refused with 400).

use hoosh_types::openai::ChatCompletionRequest;
use serde::Deserialize;

use crate::error::{ErrorKind, ProviderError};

/// Optional parameters of a chat request that some upstreams cannot take.
/// (`model`, `messages`, `stream` and the output cap are always carried.)
pub const OPTIONAL_PARAMS: &[&str] = &[
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "metadata",
    "store",
];

/// What a provider's adapter can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSupport {
    /// Names from [`OPTIONAL_PARAMS`] the adapter cannot carry.
    pub unsupported: Vec<&'static str>,
    /// Whether unknown (vendor extension) top-level fields pass through.
    pub passes_extra: bool,
}

impl ParamSupport {
    /// Carries everything, extensions included (OpenAI-compatible upstreams).
    pub fn all() -> Self {
        ParamSupport { unsupported: Vec::new(), passes_extra: true }
    }

    pub fn without(unsupported: &[&'static str]) -> Self {
        ParamSupport { unsupported: unsupported.to_vec(), passes_extra: false }
    }

    pub fn supports(&self, name: &str) -> bool {
        !self.unsupported.contains(&name)
    }
}

/// What to do with a parameter the chosen provider cannot take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsupportedParamAction {
    /// Send the request without it and name it in `x-hoosh-dropped-params`.
    #[default]
    Drop,
    /// Refuse the request with 400 naming the parameter.
    Refuse,
}

/// The parameters an adapter must leave out of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DroppedParams(Vec<String>);

impl DroppedParams {
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|p| p == name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Comma-separated, for the response header.
    pub fn header_value(&self) -> String {
        self.0.join(",")
    }
}

/// The optional parameters a request actually sets (a default-valued `n: 1`
/// or an empty tool list counts as unset).
pub fn present_params(req: &ChatCompletionRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut mark = |name: &'static str, set: bool| {
        if set {
            out.push(name);
        }
    };
    mark("temperature", req.temperature.is_some());
    mark("top_p", req.top_p.is_some());
    mark("n", req.n.is_some_and(|n| n != 1));
    mark("stop", req.stop.as_ref().is_some_and(|s| !s.is_empty()));
    mark("seed", req.seed.is_some());
    mark("presence_penalty", req.presence_penalty.is_some());
    mark("frequency_penalty", req.frequency_penalty.is_some());
    mark("logit_bias", req.logit_bias.as_ref().is_some_and(|m| !m.is_empty()));
    mark("logprobs", req.logprobs == Some(true));
    mark("top_logprobs", req.top_logprobs.is_some());
    mark("user", req.user.is_some());
    mark("tools", req.tools.as_ref().is_some_and(|t| !t.is_empty()));
    mark("tool_choice", req.tool_choice.is_some());
    mark("parallel_tool_calls", req.parallel_tool_calls.is_some());
    mark("response_format", req.response_format.is_some());
    mark("reasoning_effort", req.reasoning_effort.is_some());
    mark("metadata", req.metadata.as_ref().is_some_and(|m| !m.is_empty()));
    mark("store", req.store.is_some());
    out
}

/// Removes the parameters named in `dropped` from a request an adapter is
/// about to send as-is (names as in [`OPTIONAL_PARAMS`], or extension keys).
pub fn strip(req: &mut ChatCompletionRequest, dropped: &DroppedParams) {
    for name in dropped.names() {
        match name.as_str() {
            "temperature" => req.temperature = None,
            "top_p" => req.top_p = None,
            "n" => req.n = None,
            "stop" => req.stop = None,
            "seed" => req.seed = None,
            "presence_penalty" => req.presence_penalty = None,
            "frequency_penalty" => req.frequency_penalty = None,
            "logit_bias" => req.logit_bias = None,
            "logprobs" => req.logprobs = None,
            "top_logprobs" => req.top_logprobs = None,
            "user" => req.user = None,
            "tools" => req.tools = None,
            "tool_choice" => req.tool_choice = None,
            "parallel_tool_calls" => req.parallel_tool_calls = None,
            "response_format" => req.response_format = None,
            "reasoning_effort" => req.reasoning_effort = None,
            "metadata" => req.metadata = None,
            "store" => req.store = None,
            extension => {
                req.extra.remove(extension);
            }
        }
    }
}

/// Decides, for one provider, which parameters of `req` are dropped, or
/// refuses the call when the action is [`UnsupportedParamAction::Refuse`].
pub fn plan(
    req: &ChatCompletionRequest,
    support: &ParamSupport,
    action: UnsupportedParamAction,
) -> Result<DroppedParams, ProviderError> {
    let mut dropped: Vec<String> =
        present_params(req).into_iter().filter(|p| !support.supports(p)).map(str::to_owned).collect();
    if !support.passes_extra {
        dropped.extend(req.extra.keys().cloned());
    }
    if action == UnsupportedParamAction::Refuse
        && let Some(first) = dropped.first()
    {
        return Err(ProviderError::new(
            ErrorKind::Unsupported,
            format!("parameter `{first}` is not supported by the provider serving this model"),
        )
        .with_param(first.clone()));
    }
    Ok(DroppedParams(dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_types::openai::{ChatMessage, Role};

    fn req() -> ChatCompletionRequest {
        ChatCompletionRequest {
            model: "m".into(),
            messages: vec![ChatMessage::text(Role::User, "hi")],
            ..Default::default()
        }
    }

    #[test]
    fn drops_only_what_is_set_and_unsupported() {
        let mut r = req();
        r.seed = Some(1);
        r.temperature = Some(0.2);
        r.n = Some(1);
        r.extra.insert("top_k".into(), 5.into());
        let support = ParamSupport::without(&["seed", "n"]);
        let plan = plan(&r, &support, UnsupportedParamAction::Drop).unwrap();
        assert_eq!(plan.names(), ["seed", "top_k"]);
        assert_eq!(plan.header_value(), "seed,top_k");
    }

    #[test]
    fn refuse_names_the_param() {
        let mut r = req();
        r.logit_bias = Some([("50256".to_string(), serde_json::json!(-100))].into_iter().collect());
        let err = plan(&r, &ParamSupport::without(&["logit_bias"]), UnsupportedParamAction::Refuse).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unsupported);
        assert_eq!(err.param.as_deref(), Some("logit_bias"));
    }

    #[test]
    fn strip_removes_exactly_the_planned_params() {
        let mut r = req();
        r.seed = Some(1);
        r.temperature = Some(0.3);
        r.extra.insert("top_k".into(), 5.into());
        let dropped = plan(&r, &ParamSupport::without(&["seed"]), UnsupportedParamAction::Drop).unwrap();
        strip(&mut r, &dropped);
        assert_eq!((r.seed, r.temperature), (None, Some(0.3)));
        assert!(r.extra.is_empty());
        // Every optional name is handled by a field, not mistaken for an extension.
        for name in OPTIONAL_PARAMS {
            let mut r = req();
            r.extra.insert((*name).to_owned(), 1.into());
            strip(&mut r, &DroppedParams(vec![(*name).to_owned()]));
            assert_eq!(r.extra.len(), 1, "{name} must map to its field");
        }
    }

    #[test]
    fn openai_compatible_carries_everything() {
        let mut r = req();
        r.extra.insert("top_k".into(), 5.into());
        r.seed = Some(3);
        assert!(plan(&r, &ParamSupport::all(), UnsupportedParamAction::Refuse).unwrap().is_empty());
    }
}
