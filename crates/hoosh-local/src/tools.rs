//! Tool calling for in-process models, so a local model can be the back
//! end of an agent (Claude Code, Codex, an Ollama client) whatever API the
//! request came through.
//!
//! The tools go into the prompt through the model's own chat template. A
//! template that ignores them (renders the same with and without) gets
//! Hermes-style instructions in the system message instead: the tools as
//! JSON inside `<tools>…</tools>`, and each call to be written as
//! `<tool_call>{"name": …, "arguments": {…}}</tool_call>` — the convention
//! Hermes/Qwen/SmolLM-family templates use. The answer is read back the same
//! way: `<tool_call>` blocks become structured calls, the rest stays text.
//!
//! When the caller requires a call (`tool_choice: "required"` or a named
//! function), the prompt is prefilled with `<tool_call>` and the rest of the
//! answer is constrained to one JSON object, so even a small model answers
//! with a call that parses.

use hoosh_llm::LlmError;
use hoosh_types::openai::{
    ChatCompletionRequest, ChatMessage, FunctionCall, MessageContent, Role, Tool, ToolCall, ToolChoice, ToolChoiceMode,
    ToolKind,
};
use serde_json::Value;

pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";

/// How a request's tools are put to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The call is required: `Some("")` for any function, `Some(name)` for one.
    pub forced: Option<String>,
}

/// `None` when the request offers no tools or turned them off.
pub fn plan(req: &ChatCompletionRequest) -> Option<Plan> {
    req.tools.as_ref().filter(|t| !t.is_empty())?;
    let tools = req.tools.as_deref().unwrap_or_default();
    let forced = match &req.tool_choice {
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => return None,
        // With one tool on offer, "required" names it.
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) if tools.len() == 1 => Some(tools[0].function.name.clone()),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => Some(String::new()),
        Some(ToolChoice::Named(n)) => Some(n.function.name.clone()),
        _ => None,
    };
    Some(Plan { forced })
}

/// The prompt for a request with tools. `render` is the model's chat
/// template (messages, tools, generation prompt).
pub fn prompt(
    req: &ChatCompletionRequest,
    plan: &Plan,
    render: impl Fn(&[ChatMessage], Option<&[Tool]>) -> Result<String, LlmError>,
) -> Result<String, LlmError> {
    let tools = req.tools.as_deref().unwrap_or_default();
    let with = render(&req.messages, Some(tools))?;
    let mut prompt = if with == render(&req.messages, None)? {
        render(&with_instructions(&req.messages, tools), None)?
    } else {
        with
    };
    match plan.forced.as_deref() {
        None => {}
        Some("") => {
            prompt.push_str(OPEN);
            prompt.push('\n');
        }
        // The call is named: the model writes only its arguments.
        Some(name) => {
            prompt.push_str(OPEN);
            prompt.push_str(&format!("\n{{\"name\": {}, \"arguments\": ", Value::String(name.to_owned())));
        }
    }
    Ok(prompt)
}

/// `messages` with the tool instructions added to (or as) the system message.
fn with_instructions(messages: &[ChatMessage], tools: &[Tool]) -> Vec<ChatMessage> {
    let listed: Vec<String> = tools.iter().map(|t| serde_json::to_string(&t.function).unwrap_or_default()).collect();
    let instructions = format!(
        "You can call functions. Their signatures are inside <tools></tools>:\n<tools>\n{}\n</tools>\n\
         To call one, answer with a JSON object holding its name and arguments inside <tool_call></tool_call> \
         tags, one block per call, for example:\n<tool_call>\n{{\"name\": \"{example}\", \"arguments\": {{}}}}\n</tool_call>",
        listed.join("\n"),
        example = tools.first().map_or("name", |t| t.function.name.as_str()),
    );
    let mut out = messages.to_vec();
    match out.first_mut() {
        Some(first) if first.role == Role::System => {
            let text = format!("{}\n\n{instructions}", first.text_content());
            first.content = Some(MessageContent::Text(text));
        }
        _ => out.insert(0, ChatMessage::text(Role::System, instructions)),
    }
    out
}

fn new_call_id() -> String {
    format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
}

/// One call from the JSON inside a `<tool_call>` block; `forced` names the
/// function when the caller required one and the model left the name out.
fn call_from(body: &str, forced: Option<&str>) -> Option<ToolCall> {
    let v: Value = serde_json::from_str(body.trim()).ok()?;
    let named = v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
    let (name, arguments) = match (named, forced.filter(|f| !f.is_empty())) {
        (Some(n), _) => (n.to_owned(), v.get("arguments").or_else(|| v.get("parameters")).cloned()),
        // A required named call whose JSON is the arguments themselves.
        (None, Some(f)) => (f.to_owned(), Some(v.get("arguments").cloned().unwrap_or(v))),
        (None, None) => return None,
    };
    let arguments = match arguments {
        Some(Value::String(s)) => s,
        Some(a) => a.to_string(),
        None => "{}".into(),
    };
    Some(ToolCall { id: new_call_id(), kind: ToolKind::Function, function: FunctionCall { name, arguments } })
}

/// A whole answer → (text, calls). A block that does not parse stays text.
pub fn split(text: &str, plan: &Plan) -> (String, Vec<ToolCall>) {
    match plan.forced.as_deref() {
        None => {}
        // The prompt ended with the opening tag: the answer is the call.
        Some("") => {
            let body = text.split(CLOSE).next().unwrap_or(text);
            if let Some(call) = call_from(body, None) {
                return (String::new(), vec![call]);
            }
            return (text.to_owned(), Vec::new());
        }
        // The prompt ended inside the call, before its arguments: the
        // answer starts with them.
        Some(name) => {
            let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
            return match values.next() {
                Some(Ok(arguments @ Value::Object(_))) => {
                    let function = FunctionCall { name: name.to_owned(), arguments: arguments.to_string() };
                    (String::new(), vec![ToolCall { id: new_call_id(), kind: ToolKind::Function, function }])
                }
                _ => (text.to_owned(), Vec::new()),
            };
        }
    }
    let mut splitter = Splitter::default();
    let mut pieces = splitter.push(text, plan);
    pieces.extend(splitter.finish());
    let mut out = (String::new(), Vec::new());
    for p in pieces {
        match p {
            Piece::Text(t) => out.0.push_str(&t),
            Piece::Call(c) => out.1.push(c),
        }
    }
    out
}

/// What a stream of model text is, once tool call blocks are taken out.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Call(ToolCall),
}

/// Splits streamed text into text and calls. Text that could be the start
/// of `<tool_call>` is held back until it is clearly not; a block is held
/// whole until its closing tag.
#[derive(Debug, Default)]
pub struct Splitter {
    held: String,
    inside: bool,
}

impl Splitter {
    pub fn push(&mut self, text: &str, plan: &Plan) -> Vec<Piece> {
        self.held.push_str(text);
        let mut out = Vec::new();
        loop {
            if self.inside {
                let Some(end) = self.held.find(CLOSE) else { return out };
                let body: String = self.held.drain(..end + CLOSE.len()).collect();
                let body = &body[..body.len() - CLOSE.len()];
                match call_from(body, plan.forced.as_deref()) {
                    Some(call) => out.push(Piece::Call(call)),
                    None => out.push(Piece::Text(format!("{OPEN}{body}{CLOSE}"))),
                }
                self.inside = false;
                continue;
            }
            if let Some(start) = self.held.find(OPEN) {
                if start > 0 {
                    out.push(Piece::Text(self.held[..start].to_owned()));
                }
                self.held.drain(..start + OPEN.len());
                self.inside = true;
                continue;
            }
            // Keep back the longest tail that could still become `<tool_call>`.
            let keep = (1..OPEN.len())
                .rev()
                .find(|&n| {
                    self.held.len() >= n
                        && self.held.is_char_boundary(self.held.len() - n)
                        && OPEN.starts_with(&self.held[self.held.len() - n..])
                })
                .unwrap_or(0);
            let emit = self.held.len() - keep;
            if emit > 0 {
                out.push(Piece::Text(self.held.drain(..emit).collect()));
            }
            return out;
        }
    }

    /// What is left at the end: held text, or an unterminated block as text.
    pub fn finish(&mut self) -> Vec<Piece> {
        let held = std::mem::take(&mut self.held);
        match (self.inside, held.is_empty()) {
            (true, _) => vec![Piece::Text(format!("{OPEN}{held}"))],
            (false, false) => vec![Piece::Text(held)],
            (false, true) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use hoosh_types::openai::FunctionDef;
    use serde_json::json;

    use super::*;

    fn free() -> Plan {
        Plan { forced: None }
    }

    #[test]
    fn hermes_blocks_become_calls_and_the_rest_stays_text() {
        let (text, calls) = split(
            "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\
             <tool_call>{\"name\": \"get_time\", \"arguments\": \"{}\"}</tool_call>",
            &free(),
        );
        assert_eq!(text, "Let me check.\n");
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].function.name.as_str(), calls[0].function.arguments.as_str()),
            ("get_weather", "{\"city\":\"Paris\"}")
        );
        assert_eq!(calls[1].function.arguments, "{}");
        assert!(calls[0].id.starts_with("call_") && calls[0].id != calls[1].id);
    }

    #[test]
    fn a_block_that_does_not_parse_or_does_not_end_stays_text() {
        assert_eq!(
            split("<tool_call>not json</tool_call>", &free()),
            ("<tool_call>not json</tool_call>".into(), vec![])
        );
        assert_eq!(split("a <tool_call>{\"name\":", &free()), ("a <tool_call>{\"name\":".into(), vec![]));
        assert_eq!(split("1 < 2 and <tool", &free()).0, "1 < 2 and <tool");
    }

    /// The same answer streamed in every possible two-piece split, tags and
    /// multi-byte characters cut anywhere, gives the same text and calls.
    #[test]
    fn streaming_splits_anywhere_give_the_whole_answer() {
        let whole = "héllo <tool_call>{\"name\": \"f\", \"arguments\": {\"x\": \"é\"}}</tool_call> bye";
        for cut in (0..=whole.len()).filter(|&i| whole.is_char_boundary(i)) {
            let mut s = Splitter::default();
            let mut pieces = s.push(&whole[..cut], &free());
            pieces.extend(s.push(&whole[cut..], &free()));
            pieces.extend(s.finish());
            let text: String =
                pieces.iter().filter_map(|p| if let Piece::Text(t) = p { Some(t.as_str()) } else { None }).collect();
            let calls: Vec<&ToolCall> =
                pieces.iter().filter_map(|p| if let Piece::Call(c) = p { Some(c) } else { None }).collect();
            assert_eq!(text, "héllo  bye", "cut at {cut}");
            assert_eq!(calls.len(), 1, "cut at {cut}");
            assert_eq!(calls[0].function.arguments, "{\"x\":\"é\"}");
        }
    }

    #[test]
    fn a_required_named_call_is_its_arguments() {
        let plan = Plan { forced: Some("get_weather".into()) };
        let (text, calls) = split("{\"city\": \"Oslo\"}}\n</tool_call>", &plan);
        assert!(text.is_empty());
        let f = &calls[0].function;
        assert_eq!((f.name.as_str(), f.arguments.as_str()), ("get_weather", "{\"city\":\"Oslo\"}"));
        // Cut before the object closed (the output cap): no call, the text kept.
        assert_eq!(split("{\"city\": \"Os", &plan), ("{\"city\": \"Os".into(), vec![]));
        // Any function: the model names it.
        let any = Plan { forced: Some(String::new()) };
        let (_, calls) = split("{\"name\": \"get_time\", \"arguments\": {}}</tool_call>", &any);
        assert_eq!(calls[0].function.name, "get_time");
    }

    #[test]
    fn a_template_without_tools_gets_the_instructions_in_its_system_message() {
        let req = ChatCompletionRequest {
            messages: vec![ChatMessage::text(Role::System, "Be brief."), ChatMessage::text(Role::User, "hi")],
            tools: Some(vec![Tool {
                kind: ToolKind::Function,
                function: FunctionDef {
                    name: "f".into(),
                    description: None,
                    parameters: Some(json!({"type": "object"})),
                    strict: None,
                },
            }]),
            ..Default::default()
        };
        // A template that ignores tools: system and user text, then the answer prompt.
        let render = |m: &[ChatMessage], _t: Option<&[Tool]>| -> Result<String, LlmError> {
            Ok(m.iter().map(|m| m.text_content()).collect::<Vec<_>>().join("|") + "|>")
        };
        let p = prompt(&req, &Plan { forced: Some(String::new()) }, render).unwrap();
        assert!(p.starts_with("Be brief.\n\nYou can call functions."), "{p}");
        assert!(p.contains("{\"name\":\"f\""), "{p}");
        assert!(p.ends_with("|hi|><tool_call>\n"), "{p}");
        let named = prompt(&req, &Plan { forced: Some("f".into()) }, render).unwrap();
        assert!(named.ends_with("|hi|><tool_call>\n{\"name\": \"f\", \"arguments\": "), "{named}");
    }
}
