//! Rendering a [`Transcript`] in the OpenAI `response_format`s: `json`,
//! `text`, `srt`, `vtt` and `verbose_json`.

use serde_json::{Value, json};

use crate::tokenizer::language_name;
use crate::transcript::Transcript;

/// OpenAI's `response_format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    /// Parses the form field (`"json"`, `"text"`, `"srt"`, `"vtt"`,
    /// `"verbose_json"`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            _ => return None,
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json | Self::VerboseJson => "application/json",
            Self::Text => "text/plain; charset=utf-8",
            Self::Srt => "application/x-subrip",
            Self::Vtt => "text/vtt; charset=utf-8",
        }
    }

    /// The response body.
    pub fn render(self, t: &Transcript) -> String {
        match self {
            Self::Json => json!({ "text": t.text }).to_string(),
            Self::Text => to_text(t),
            Self::Srt => to_srt(t),
            Self::Vtt => to_vtt(t),
            Self::VerboseJson => to_verbose_json(t).to_string(),
        }
    }
}

/// The plain text with a trailing newline, as OpenAI returns it.
pub fn to_text(t: &Transcript) -> String {
    format!("{}\n", t.text)
}

/// SubRip: numbered cues from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
pub fn to_srt(t: &Transcript) -> String {
    let mut out = String::new();
    for (i, s) in t.segments.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(s.start, ','),
            timestamp(s.end, ','),
            s.text.trim()
        ));
    }
    out
}

/// WebVTT: a `WEBVTT` header, then `HH:MM:SS.mmm --> HH:MM:SS.mmm` cues.
pub fn to_vtt(t: &Transcript) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for s in &t.segments {
        out.push_str(&format!("{} --> {}\n{}\n\n", timestamp(s.start, '.'), timestamp(s.end, '.'), s.text.trim()));
    }
    out
}

/// OpenAI's `verbose_json` object.
pub fn to_verbose_json(t: &Transcript) -> Value {
    let mut v = json!({
        "task": t.task,
        "language": language_name(&t.language).unwrap_or(&t.language),
        "duration": (t.duration_secs * 100.0).round() / 100.0,
        "text": t.text,
        "segments": t.segments,
    });
    if let (Some(words), Some(obj)) = (&t.words, v.as_object_mut()) {
        obj.insert("words".into(), json!(words));
    }
    v
}

/// `HH:MM:SS<sep>mmm`, rounded to the millisecond.
fn timestamp(secs: f64, sep: char) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{Segment, Task, Word};

    fn seg(id: usize, start: f64, end: f64, text: &str) -> Segment {
        Segment {
            id,
            seek: 0,
            start,
            end,
            text: text.into(),
            tokens: vec![50363, 440, 50414],
            temperature: 0.0,
            avg_logprob: -0.25,
            compression_ratio: 1.1,
            no_speech_prob: 0.01,
        }
    }

    fn transcript() -> Transcript {
        Transcript {
            task: Task::Transcribe,
            text: "Hello there. General Kenobi.".into(),
            language: "en".into(),
            duration_secs: 3725.4321,
            segments: vec![seg(0, 0.0, 1.5, " Hello there."), seg(1, 3723.004, 3725.4, " General Kenobi.")],
            words: None,
        }
    }

    #[test]
    fn srt_numbers_cues_and_uses_commas() {
        let srt = to_srt(&transcript());
        assert_eq!(
            srt,
            "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:02:03,004 --> 01:02:05,400\nGeneral Kenobi.\n\n"
        );
    }

    #[test]
    fn vtt_has_header_and_dots() {
        let vtt = to_vtt(&transcript());
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n"));
        assert!(vtt.contains("01:02:03.004 --> 01:02:05.400\nGeneral Kenobi.\n"));
    }

    #[test]
    fn verbose_json_has_openai_shape() {
        let mut t = transcript();
        let v = to_verbose_json(&t);
        assert_eq!(v["task"], "transcribe");
        assert_eq!(v["language"], "english");
        assert_eq!(v["duration"], 3725.43);
        assert_eq!(v["text"], "Hello there. General Kenobi.");
        let s = &v["segments"][1];
        for key in [
            "id",
            "seek",
            "start",
            "end",
            "text",
            "tokens",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(!s[key].is_null(), "missing {key}");
        }
        assert!(v.get("words").is_none());
        t.words = Some(vec![Word { word: "Hello".into(), start: 0.0, end: 0.4 }]);
        assert_eq!(to_verbose_json(&t)["words"][0]["word"], "Hello");
    }

    #[test]
    fn formats_parse_and_render() {
        assert_eq!(ResponseFormat::parse("verbose_json"), Some(ResponseFormat::VerboseJson));
        assert_eq!(ResponseFormat::parse("xml"), None);
        assert_eq!(ResponseFormat::Text.render(&transcript()), "Hello there. General Kenobi.\n");
        assert_eq!(ResponseFormat::Json.render(&transcript()), r#"{"text":"Hello there. General Kenobi."}"#);
    }
}
