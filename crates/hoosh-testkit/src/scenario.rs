//! What a mock does, chosen by the requested model name.

use std::time::Duration;

/// The behaviour a model name asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// Answer normally: `echo: <last user text>`, or for streams the same
    /// text in several chunks.
    Echo,
    /// `mock-error-<status>` or `mock-error-<status>-retry-<secs>`:
    /// answer with that status, the vendor's error body, and `Retry-After`.
    Error { status: u16, retry_after: Option<u64> },
    /// `mock-flaky-<n>`: the first `n` calls get 503, later ones answer.
    Flaky { failures: u64 },
    /// `mock-slow-<ms>`: wait before the response headers.
    Slow { delay: Duration },
    /// `mock-stall-<ms>`: stream the first chunk, then stall this long.
    Stall { delay: Duration },
    /// `mock-cut`: stream two chunks, then drop the connection.
    Cut,
    /// `mock-tool`: call the first tool offered (or `get_weather`).
    Tool,
    /// `mock-agent`: one agent turn — when the last user text contains
    /// `call <Tool> <json arguments>`, call that tool with those arguments
    /// (else the first tool offered, with a city); once the conversation
    /// ends with the tool's result, answer `tool said: <its output on one line>`.
    /// What an agent CLI needs for one tool round trip that ends.
    Agent,
    /// `mock-badjson`: 200 with a body that is not JSON.
    BadJson,
    /// `mock-length`: stop because of the output cap.
    Length,
    /// `mock-empty-stream`: a 200 stream that ends with no events.
    EmptyStream,
    /// `mock-usage-<prompt>-<completion>`: answer normally but report this
    /// usage, so accounting tests know the exact numbers.
    Usage { prompt: u64, completion: u64 },
    /// `mock-bill-<prompt>` or `mock-bill-<prompt>-after-<ms>`: a vendor
    /// that bills as much as it may — `prompt` tokens for the prompt (its own
    /// count, whatever the gateway estimated) and `n ×` the output cap it
    /// received (`max_completion_tokens`, else `max_tokens`), or
    /// [`UNCAPPED_COMPLETION`] per choice when no cap reached it — answering
    /// after `ms` milliseconds.
    Bill { prompt: u64, after: Duration },
}

/// What a billing mock generates per choice when no output cap reached it.
pub const UNCAPPED_COMPLETION: u64 = 100_000;

impl Scenario {
    pub fn parse(model: &str) -> Scenario {
        let Some(rest) = model.strip_prefix("mock-") else { return Scenario::Echo };
        let num = |s: &str| s.parse::<u64>().ok();
        if let Some(spec) = rest.strip_prefix("error-") {
            let (status, retry) = match spec.split_once("-retry-") {
                Some((s, r)) => (s, num(r)),
                None => (spec, None),
            };
            if let Some(status) = num(status).and_then(|s| u16::try_from(s).ok()) {
                return Scenario::Error { status, retry_after: retry };
            }
        }
        if let Some((p, c)) = rest.strip_prefix("usage-").and_then(|s| s.split_once('-'))
            && let (Some(prompt), Some(completion)) = (num(p), num(c))
        {
            return Scenario::Usage { prompt, completion };
        }
        if let Some(spec) = rest.strip_prefix("bill-") {
            let (p, after) = match spec.split_once("-after-") {
                Some((p, ms)) => (p, num(ms)),
                None => (spec, Some(0)),
            };
            if let (Some(prompt), Some(ms)) = (num(p), after) {
                return Scenario::Bill { prompt, after: Duration::from_millis(ms) };
            }
        }
        if let Some(n) = rest.strip_prefix("flaky-").and_then(num) {
            return Scenario::Flaky { failures: n };
        }
        if let Some(ms) = rest.strip_prefix("slow-").and_then(num) {
            return Scenario::Slow { delay: Duration::from_millis(ms) };
        }
        if let Some(ms) = rest.strip_prefix("stall-").and_then(num) {
            return Scenario::Stall { delay: Duration::from_millis(ms) };
        }
        match rest {
            "cut" => Scenario::Cut,
            "tool" => Scenario::Tool,
            "agent" => Scenario::Agent,
            "badjson" => Scenario::BadJson,
            "length" => Scenario::Length,
            "empty-stream" => Scenario::EmptyStream,
            _ => Scenario::Echo,
        }
    }
}

/// Text a normal answer carries, split into stream pieces. The pieces put a
/// multi-byte character at a piece boundary on purpose.
pub fn echo_pieces(user_text: &str) -> Vec<String> {
    vec!["echo".into(), ": ".into(), user_text.to_owned(), " \u{e9}\u{1f600}".into()]
}

pub fn echo_text(user_text: &str) -> String {
    echo_pieces(user_text).concat()
}

/// Token counts the mocks report: whitespace-separated words, at least 1.
pub fn count_tokens(text: &str) -> u64 {
    (text.split_whitespace().count() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(Scenario::parse("gpt-4o"), Scenario::Echo);
        assert_eq!(Scenario::parse("mock-error-429-retry-3"), Scenario::Error { status: 429, retry_after: Some(3) });
        assert_eq!(Scenario::parse("mock-error-500"), Scenario::Error { status: 500, retry_after: None });
        assert_eq!(Scenario::parse("mock-flaky-2"), Scenario::Flaky { failures: 2 });
        assert_eq!(Scenario::parse("mock-cut"), Scenario::Cut);
        assert_eq!(Scenario::parse("mock-usage-12-34"), Scenario::Usage { prompt: 12, completion: 34 });
        assert_eq!(Scenario::parse("mock-bill-20"), Scenario::Bill { prompt: 20, after: Duration::ZERO });
        assert_eq!(
            Scenario::parse("mock-bill-7-after-250"),
            Scenario::Bill { prompt: 7, after: Duration::from_millis(250) }
        );
    }
}
