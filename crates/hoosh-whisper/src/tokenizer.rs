//! Whisper's tokenizer: the package's `tokenizer.json` (byte-level BPE) plus
//! the special tokens, looked up by name, and the timestamp tokens
//! `<|0.00|>`…`<|30.00|>`, which `tokenizer.json` does not list: they are
//! the ids after `<|notimestamps|>`, in 0.02 s steps.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::WhisperError;

/// Seconds per timestamp token.
pub const TIME_PRECISION: f64 = 0.02;

/// Whisper's languages in token order (`<|en|>` first), with the names
/// OpenAI's API reports.
pub const LANGUAGES: [(&str, &str); 100] = [
    ("en", "english"),
    ("zh", "chinese"),
    ("de", "german"),
    ("es", "spanish"),
    ("ru", "russian"),
    ("ko", "korean"),
    ("fr", "french"),
    ("ja", "japanese"),
    ("pt", "portuguese"),
    ("tr", "turkish"),
    ("pl", "polish"),
    ("ca", "catalan"),
    ("nl", "dutch"),
    ("ar", "arabic"),
    ("sv", "swedish"),
    ("it", "italian"),
    ("id", "indonesian"),
    ("hi", "hindi"),
    ("fi", "finnish"),
    ("vi", "vietnamese"),
    ("he", "hebrew"),
    ("uk", "ukrainian"),
    ("el", "greek"),
    ("ms", "malay"),
    ("cs", "czech"),
    ("ro", "romanian"),
    ("da", "danish"),
    ("hu", "hungarian"),
    ("ta", "tamil"),
    ("no", "norwegian"),
    ("th", "thai"),
    ("ur", "urdu"),
    ("hr", "croatian"),
    ("bg", "bulgarian"),
    ("lt", "lithuanian"),
    ("la", "latin"),
    ("mi", "maori"),
    ("ml", "malayalam"),
    ("cy", "welsh"),
    ("sk", "slovak"),
    ("te", "telugu"),
    ("fa", "persian"),
    ("lv", "latvian"),
    ("bn", "bengali"),
    ("sr", "serbian"),
    ("az", "azerbaijani"),
    ("sl", "slovenian"),
    ("kn", "kannada"),
    ("et", "estonian"),
    ("mk", "macedonian"),
    ("br", "breton"),
    ("eu", "basque"),
    ("is", "icelandic"),
    ("hy", "armenian"),
    ("ne", "nepali"),
    ("mn", "mongolian"),
    ("bs", "bosnian"),
    ("kk", "kazakh"),
    ("sq", "albanian"),
    ("sw", "swahili"),
    ("gl", "galician"),
    ("mr", "marathi"),
    ("pa", "punjabi"),
    ("si", "sinhala"),
    ("km", "khmer"),
    ("sn", "shona"),
    ("yo", "yoruba"),
    ("so", "somali"),
    ("af", "afrikaans"),
    ("oc", "occitan"),
    ("ka", "georgian"),
    ("be", "belarusian"),
    ("tg", "tajik"),
    ("sd", "sindhi"),
    ("gu", "gujarati"),
    ("am", "amharic"),
    ("yi", "yiddish"),
    ("lo", "lao"),
    ("uz", "uzbek"),
    ("fo", "faroese"),
    ("ht", "haitian creole"),
    ("ps", "pashto"),
    ("tk", "turkmen"),
    ("nn", "nynorsk"),
    ("mt", "maltese"),
    ("sa", "sanskrit"),
    ("lb", "luxembourgish"),
    ("my", "myanmar"),
    ("bo", "tibetan"),
    ("tl", "tagalog"),
    ("mg", "malagasy"),
    ("as", "assamese"),
    ("tt", "tatar"),
    ("haw", "hawaiian"),
    ("ln", "lingala"),
    ("ha", "hausa"),
    ("ba", "bashkir"),
    ("jw", "javanese"),
    ("su", "sundanese"),
    ("yue", "cantonese"),
];

/// The full name of a language code (`"en"` → `"english"`).
pub fn language_name(code: &str) -> Option<&'static str> {
    LANGUAGES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// A language code from a code or a full name, case-insensitive.
pub fn language_code(code_or_name: &str) -> Option<&'static str> {
    let s = code_or_name.trim().to_ascii_lowercase();
    LANGUAGES.iter().find(|(c, n)| *c == s || *n == s).map(|(c, _)| *c)
}

pub(crate) struct WhisperTokenizer {
    inner: Tokenizer,
    pub eot: u32,
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    pub startoflm: u32,
    pub startofprev: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    /// `<|0.00|>`; every id from here on is a timestamp.
    pub timestamp_begin: u32,
    /// `(code, token id)` of the languages this vocabulary has.
    pub languages: Vec<(&'static str, u32)>,
}

impl WhisperTokenizer {
    pub(crate) fn load(path: &Path) -> Result<Self, WhisperError> {
        let inner = Tokenizer::from_file(path).map_err(|e| WhisperError::load(path, e))?;
        let id =
            |name: &str| inner.token_to_id(name).ok_or_else(|| WhisperError::load(path, format!("no {name} token")));
        let no_timestamps = id("<|notimestamps|>")?;
        let no_speech = id("<|nospeech|>").or_else(|_| id("<|nocaptions|>"))?;
        let languages = LANGUAGES
            .iter()
            .filter_map(|(code, _)| inner.token_to_id(&format!("<|{code}|>")).map(|id| (*code, id)))
            .collect();
        Ok(Self {
            eot: id("<|endoftext|>")?,
            sot: id("<|startoftranscript|>")?,
            translate: id("<|translate|>")?,
            transcribe: id("<|transcribe|>")?,
            startoflm: id("<|startoflm|>")?,
            startofprev: id("<|startofprev|>")?,
            no_speech,
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
            languages,
            inner,
        })
    }

    pub(crate) fn language_token(&self, code: &str) -> Option<u32> {
        self.languages.iter().find(|(c, _)| *c == code).map(|(_, id)| *id)
    }

    /// Text tokens without any special token.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, WhisperError> {
        let enc = self.inner.encode(text, false).map_err(|e| WhisperError::Prompt(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `tokens`, skipping special and timestamp tokens.
    pub(crate) fn decode_text(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens.iter().copied().filter(|t| *t < self.eot).collect();
        self.inner.decode(&text, false).unwrap_or_default()
    }

    pub(crate) fn is_timestamp(&self, token: u32) -> bool {
        token >= self.timestamp_begin
    }

    /// Seconds of a timestamp token (relative to its window).
    pub(crate) fn timestamp_secs(&self, token: u32) -> f64 {
        f64::from(token.saturating_sub(self.timestamp_begin)) * TIME_PRECISION
    }
}
