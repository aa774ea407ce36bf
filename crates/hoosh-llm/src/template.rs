//! Chat templates: OpenAI messages → the prompt text the model was trained on.
//!
//! GGUF files carry the Hugging Face Jinja template in
//! `tokenizer.chat_template`. llama.cpp's own `apply_chat_template` only
//! pattern-matches well-known templates (and, for SmolLM2, drops the default
//! system prompt), so the template is rendered here with minijinja, the way
//! `transformers` does: `trim_blocks`, `lstrip_blocks`, loop controls,
//! Python string methods (`.strip()`, `.startswith()`, ...), `raise_exception`,
//! and the variables `messages`, `tools`, `add_generation_prompt`,
//! `bos_token`, `eos_token`. A GGUF without a template gets ChatML.

use hoosh_types::openai::{ChatMessage, ContentPart, MessageContent, Role, Tool};
use minijinja::{Environment, ErrorKind, Value, context};
use serde_json::{Map, Value as Json, json};

use crate::error::LlmError;

/// ChatML, used when the GGUF has no `tokenizer.chat_template`.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template plus the special-token strings it may reference.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source` (the GGUF's template), or ChatML when `None`.
    pub fn new(source: Option<&str>, bos_token: &str, eos_token: &str) -> Result<Self, LlmError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        let source = source.unwrap_or(CHATML_TEMPLATE).to_string();
        env.add_template_owned(TEMPLATE_NAME, source)
            .map_err(|e| LlmError::Template(format!("the model's chat template does not compile: {e}")))?;
        Ok(ChatTemplate { env, bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// Renders a conversation, ending with the assistant turn opener when
    /// `add_generation_prompt` is set.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[Tool]>,
        add_generation_prompt: bool,
    ) -> Result<String, LlmError> {
        let messages = messages.iter().map(message_json).collect::<Result<Vec<_>, _>>()?;
        let tools = match tools {
            Some(t) if !t.is_empty() => {
                Value::from_serialize(serde_json::to_value(t).map_err(|e| LlmError::InvalidRequest(e.to_string()))?)
            }
            _ => Value::from(()),
        };
        let template = self.env.get_template(TEMPLATE_NAME).map_err(|e| LlmError::Template(e.to_string()))?;
        template
            .render(context! {
                messages => Value::from_serialize(&messages),
                tools => tools,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| LlmError::Template(template_error_text(&e)))
    }
}

/// `raise_exception(msg)`: how HF templates reject a conversation.
fn raise_exception(msg: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// The template's own message for `raise_exception`, else minijinja's.
fn template_error_text(e: &minijinja::Error) -> String {
    match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_string(),
        _ => e.to_string(),
    }
}

/// One message in the shape HF templates expect: `role`, `content` (always a
/// string, "" when absent, as many templates concatenate it), and when set
/// `name`, `tool_calls` (arguments as an object when they parse) and
/// `tool_call_id`.
fn message_json(m: &ChatMessage) -> Result<Json, LlmError> {
    let role = match m.role {
        // Templates predate the "developer" role; it means "system".
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut out = Map::new();
    out.insert("role".into(), json!(role));
    out.insert("content".into(), json!(content_text(m.content.as_ref())?));
    if let Some(name) = &m.name {
        out.insert("name".into(), json!(name));
    }
    if let Some(calls) = &m.tool_calls {
        let calls: Vec<Json> = calls
            .iter()
            .map(|c| {
                let args = serde_json::from_str::<Json>(&c.function.arguments)
                    .ok()
                    .filter(Json::is_object)
                    .unwrap_or_else(|| json!(c.function.arguments));
                json!({"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": args}})
            })
            .collect();
        out.insert("tool_calls".into(), Json::Array(calls));
    }
    if let Some(id) = &m.tool_call_id {
        out.insert("tool_call_id".into(), json!(id));
    }
    Ok(Json::Object(out))
}

/// Text parts joined; anything else cannot go into a text-only model.
fn content_text(content: Option<&MessageContent>) -> Result<String, LlmError> {
    match content {
        None => Ok(String::new()),
        Some(MessageContent::Text(t)) => Ok(t.clone()),
        Some(MessageContent::Parts(parts)) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    ContentPart::Text { text } => out.push_str(text),
                    ContentPart::ImageUrl { .. } => {
                        return Err(LlmError::Unsupported("image input: this local model reads text only".into()));
                    }
                    ContentPart::InputAudio { .. } => {
                        return Err(LlmError::Unsupported("audio input: this local model reads text only".into()));
                    }
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoosh_types::openai::{FunctionCall, FunctionDef, ImageUrl, ToolCall, ToolKind};

    /// SmolLM2-135M-Instruct's embedded template, verbatim.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn user(t: &str) -> ChatMessage {
        ChatMessage::text(Role::User, t)
    }

    #[test]
    fn smollm2_adds_its_default_system_prompt() {
        let t = ChatTemplate::new(Some(SMOLLM2), "<|im_start|>", "<|im_end|>").unwrap();
        let out = t.render(&[user("Hi")], None, true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn smollm2_keeps_a_given_system_prompt() {
        let t = ChatTemplate::new(Some(SMOLLM2), "", "").unwrap();
        let msgs = [
            ChatMessage::text(Role::Developer, "Be terse."),
            user("Hi"),
            ChatMessage::text(Role::Assistant, "Hello."),
            user("Bye"),
        ];
        let out = t.render(&msgs, None, false).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        );
    }

    #[test]
    fn chatml_fallback() {
        let t = ChatTemplate::new(None, "", "").unwrap();
        let out = t.render(&[user("naïve café 😀")], None, true).unwrap();
        assert_eq!(out, "<|im_start|>user\nnaïve café 😀<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn text_parts_are_joined_and_images_rejected() {
        let t = ChatTemplate::new(None, "", "").unwrap();
        let parts = ChatMessage {
            content: Some(MessageContent::Parts(vec![
                ContentPart::Text { text: "a".into() },
                ContentPart::Text { text: "b".into() },
            ])),
            ..user("")
        };
        assert_eq!(t.render(&[parts], None, false).unwrap(), "<|im_start|>user\nab<|im_end|>\n");
        let image = ChatMessage {
            content: Some(MessageContent::Parts(vec![ContentPart::ImageUrl {
                image_url: ImageUrl { url: "data:image/png;base64,AA==".into(), detail: None },
            }])),
            ..user("")
        };
        assert!(matches!(t.render(&[image], None, false), Err(LlmError::Unsupported(_))));
    }

    #[test]
    fn raise_exception_becomes_a_template_error_with_its_message() {
        let src = "{% if messages[0]['role'] != 'system' %}{{ raise_exception('first must be system') }}{% endif %}ok";
        let t = ChatTemplate::new(Some(src), "", "").unwrap();
        assert_eq!(t.render(&[user("x")], None, true), Err(LlmError::Template("first must be system".into())));
    }

    #[test]
    fn tools_bos_eos_and_python_methods_are_available() {
        let src = "{{ bos_token }}{% if tools %}{% for t in tools %}[{{ t.function.name }}:{{ t.function.parameters | tojson }}]{% endfor %}{% endif %}\
                   {% for m in messages %}{{ m.content.strip() }}{% if m.tool_calls %}{% for c in m.tool_calls %}({{ c.function.name }} {{ c.function.arguments.city }}){% endfor %}{% endif %}{% endfor %}{{ eos_token }}";
        let t = ChatTemplate::new(Some(src), "<s>", "</s>").unwrap();
        let tools = [Tool {
            kind: ToolKind::Function,
            function: FunctionDef {
                name: "weather".into(),
                description: None,
                parameters: Some(serde_json::json!({"type": "object"})),
                strict: None,
            },
        }];
        let call = ChatMessage {
            tool_calls: Some(vec![ToolCall {
                id: "c1".into(),
                kind: ToolKind::Function,
                function: FunctionCall { name: "weather".into(), arguments: r#"{"city":"Paris"}"#.into() },
            }]),
            content: None,
            ..ChatMessage::text(Role::Assistant, "")
        };
        let out = t.render(&[user("  hi  "), call], Some(&tools), false).unwrap();
        assert_eq!(out, r#"<s>[weather:{"type":"object"}]hi(weather Paris)</s>"#);
    }

    #[test]
    fn a_broken_template_is_reported_at_load() {
        assert!(matches!(ChatTemplate::new(Some("{% for %}"), "", ""), Err(LlmError::Template(_))));
    }
}
