//! Hugging Face repos: `hf:owner/repo/path/file.gguf` fetches one file;
//! `hf:owner/repo` asks the hub API for the file list and picks the model's
//! files (one GGUF, a sentence-transformers set, or a CTranslate2 Whisper set).

use serde::Deserialize;

use crate::download::get_json;
use crate::error::PullError;
use crate::manifest::ModelKind;

/// Files a sentence-transformers model needs (those the repo has are fetched).
const SENTENCE_TRANSFORMERS: &[&str] = &[
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
];

/// Files a CTranslate2 (faster-whisper) model needs.
const CT2_WHISPER: &[&str] =
    &["model.bin", "config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json"];

/// When a repo offers several GGUF quantizations, the first of these found wins.
const PREFERRED_QUANTS: &[&str] = &["q4_k_m", "q4_0", "q8_0"];

/// `owner/repo` and an optional file path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HfSpec {
    pub(crate) repo: String,
    pub(crate) file: Option<String>,
}

impl HfSpec {
    /// Parses what follows `hf:`.
    pub(crate) fn parse(s: &str) -> Result<HfSpec, PullError> {
        let mut parts = s.splitn(3, '/');
        let (Some(owner), Some(name)) = (parts.next(), parts.next()) else {
            return Err(PullError::Invalid { what: format!("hf:{s}"), detail: "expected hf:owner/repo[/file]".into() });
        };
        if owner.is_empty() || name.is_empty() {
            return Err(PullError::Invalid { what: format!("hf:{s}"), detail: "expected hf:owner/repo[/file]".into() });
        }
        let file = parts.next().filter(|f| !f.is_empty()).map(str::to_owned);
        Ok(HfSpec { repo: format!("{owner}/{name}"), file })
    }

    /// `hf:owner/repo[/file]`, the manifest's source.
    pub(crate) fn source(&self) -> String {
        match &self.file {
            Some(f) => format!("hf:{}/{f}", self.repo),
            None => format!("hf:{}", self.repo),
        }
    }

    pub(crate) fn file_url(&self, endpoint: &str, file: &str) -> String {
        format!("{}/{}/resolve/main/{file}", endpoint.trim_end_matches('/'), self.repo)
    }
}

/// Which files to fetch from a repo, and what the manifest's `main` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HfPlan {
    pub(crate) files: Vec<String>,
    pub(crate) main: String,
}

#[derive(Deserialize)]
struct RepoInfo {
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
}

/// Decides what to download for `spec`, asking the hub for the file list
/// when no file was named. `kind` narrows the choice when given.
pub(crate) async fn plan(
    client: &reqwest::Client,
    endpoint: &str,
    token: Option<&str>,
    spec: &HfSpec,
    kind: Option<ModelKind>,
) -> Result<HfPlan, PullError> {
    if let Some(file) = &spec.file {
        let base = file.rsplit('/').next().unwrap_or(file).to_owned();
        return Ok(HfPlan { files: vec![file.clone()], main: base });
    }
    let url = format!("{}/api/models/{}", endpoint.trim_end_matches('/'), spec.repo);
    let info: RepoInfo = get_json(client, &url, "application/json", token).await?;
    let names: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    choose(&spec.repo, &names, kind)
}

/// The pure part of [`plan`]: picks files from a repo listing.
fn choose(repo: &str, names: &[String], kind: Option<ModelKind>) -> Result<HfPlan, PullError> {
    let has = |f: &str| names.iter().any(|n| n == f);
    let subset =
        |wanted: &[&str]| -> Vec<String> { wanted.iter().filter(|f| has(f)).map(|f| (*f).to_owned()).collect() };
    let ggufs: Vec<&String> = names.iter().filter(|n| n.to_ascii_lowercase().ends_with(".gguf")).collect();
    let want = |k: ModelKind| kind.is_none_or(|wanted| wanted == k);
    if want(ModelKind::Llm) && !ggufs.is_empty() {
        let chosen = if let [only] = ggufs.as_slice() {
            Some(*only)
        } else {
            PREFERRED_QUANTS.iter().find_map(|q| ggufs.iter().find(|n| n.to_ascii_lowercase().contains(q)).copied())
        };
        let Some(file) = chosen else {
            let list: Vec<&str> = ggufs.iter().map(|s| s.as_str()).collect();
            return Err(PullError::HfRepo {
                repo: repo.to_owned(),
                detail: format!("several GGUF files ({}); name one: hf:{repo}/FILE", list.join(", ")),
            });
        };
        let main = file.rsplit('/').next().unwrap_or(file).to_owned();
        return Ok(HfPlan { files: vec![file.clone()], main });
    }
    if want(ModelKind::Embedding) && has("model.safetensors") && has("config.json") {
        return Ok(HfPlan { files: subset(SENTENCE_TRANSFORMERS), main: ".".into() });
    }
    if want(ModelKind::Speech) && has("model.bin") && has("config.json") {
        return Ok(HfPlan { files: subset(CT2_WHISPER), main: ".".into() });
    }
    Err(PullError::HfRepo {
        repo: repo.to_owned(),
        detail: "found no GGUF file, sentence-transformers model or CTranslate2 Whisper model; \
                 name a file with hf:owner/repo/FILE"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_specs() {
        assert_eq!(HfSpec::parse("a/b").unwrap(), HfSpec { repo: "a/b".into(), file: None });
        let s = HfSpec::parse("a/b/dir/x.gguf").unwrap();
        assert_eq!(s.file.as_deref(), Some("dir/x.gguf"));
        assert_eq!(s.source(), "hf:a/b/dir/x.gguf");
        assert!(HfSpec::parse("justone").is_err());
    }

    #[test]
    fn picks_preferred_quant() {
        let n = names(&["README.md", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-f16.gguf"]);
        assert_eq!(choose("a/b", &n, None).unwrap().files, vec!["m-Q4_K_M.gguf"]);
        let n = names(&["m-f16.gguf", "m-f32.gguf"]);
        assert!(choose("a/b", &n, None).unwrap_err().to_string().contains("name one"));
    }

    #[test]
    fn picks_sentence_transformers_files() {
        let n = names(&["config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json", "README.md"]);
        let plan = choose("a/b", &n, None).unwrap();
        assert_eq!(plan.files, vec!["config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"]);
        assert_eq!(plan.main, ".");
    }
}
