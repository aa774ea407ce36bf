//! Hugging Face repos: `hf:owner/repo/path/file.gguf` fetches one file;
//! `hf:owner/repo` picks the model's files from the repo listing (one GGUF,
//! a sentence-transformers set, or a CTranslate2 Whisper set).
//!
//! Every pull is pinned to one commit: the revision asked for (`main` when
//! none) is resolved to its commit sha first (`/api/models/{repo}/revision/{rev}`),
//! then the listing (`/api/models/{repo}/tree/{sha}?recursive=true`) and
//! every download (`/{repo}/resolve/{sha}/{file}`) name that sha, so a push
//! to the repo mid-pull cannot mix two versions. The listing gives each
//! file's size and, for LFS files (every weight file), its sha256, which the
//! download must match. Names from the listing are checked by
//! [`crate::repo_path`] before anything is fetched.

use reqwest::Url;
use reqwest::header::{HeaderMap, LINK};
use serde::Deserialize;

use crate::download::{get, get_json, parse_json};
use crate::error::PullError;
use crate::manifest::ModelKind;
use crate::repo_path::{check_fetched, check_listed};

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

/// The hub pages a large tree listing (`Link: <…>; rel="next"`); a listing
/// of more pages than this is refused rather than followed forever.
const MAX_LISTING_PAGES: usize = 100;

/// `owner/repo`, an optional file path inside it, and the revision asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HfSpec {
    pub(crate) repo: String,
    pub(crate) file: Option<String>,
    /// A branch, tag or commit sha; `main` when absent.
    pub(crate) revision: Option<String>,
}

impl HfSpec {
    /// Parses what follows `hf:`. Owner and repo are plain names; a named
    /// file must pass [`check_fetched`].
    pub(crate) fn parse(s: &str) -> Result<HfSpec, PullError> {
        let invalid = |detail: String| PullError::Invalid { what: format!("hf:{s}"), detail };
        let mut parts = s.splitn(3, '/');
        let (Some(owner), Some(name)) = (parts.next(), parts.next()) else {
            return Err(invalid("expected hf:owner/repo[/file]".into()));
        };
        for part in [owner, name] {
            let plain = !part.is_empty()
                && part.len() <= 96
                && part != "."
                && part != ".."
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !plain {
                return Err(invalid(format!(
                    "`{part}` is not a repo owner or name (letters, digits, `.`, `_`, `-`): expected hf:owner/repo[/file]"
                )));
            }
        }
        let file = parts.next().filter(|f| !f.is_empty()).map(str::to_owned);
        if let Some(f) = &file {
            check_fetched(f).map_err(|why| invalid(format!("file `{f}` is not accepted: {why}")))?;
        }
        Ok(HfSpec { repo: format!("{owner}/{name}"), file, revision: None })
    }

    /// `hf:owner/repo[/file]@sha`, the manifest's source: it names the commit.
    pub(crate) fn source(&self, commit: &str) -> String {
        match &self.file {
            Some(f) => format!("hf:{}/{f}@{commit}", self.repo),
            None => format!("hf:{}@{commit}", self.repo),
        }
    }
}

/// One file to fetch: its path in the repo and what the listing promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HfFile {
    pub(crate) path: String,
    pub(crate) size: u64,
    /// Lowercase hex sha256 of an LFS file; `None` for a plain git file
    /// (whose listed `oid` is a git blob sha1: only its size is checked).
    pub(crate) sha256: Option<String>,
}

/// What to fetch from a repo, at which commit, and what the manifest's `main` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HfPlan {
    pub(crate) commit: String,
    pub(crate) files: Vec<HfFile>,
    pub(crate) main: String,
}

impl HfPlan {
    /// `{endpoint}/{owner}/{repo}/resolve/{commit}/{path}`, each part a
    /// percent-encoded path segment.
    pub(crate) fn file_url(&self, endpoint: &str, repo: &str, path: &str) -> Result<Url, PullError> {
        url_with(endpoint, repo.split('/').chain(["resolve", self.commit.as_str()]).chain(path.split('/')))
    }
}

#[derive(Deserialize)]
struct RevisionInfo {
    sha: Option<String>,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    /// The sha256 of the file's content.
    oid: String,
    size: u64,
}

/// Resolves the revision, lists the repo at that commit and decides what to
/// download. `kind` narrows the choice when given.
pub(crate) async fn plan(
    client: &reqwest::Client,
    endpoint: &str,
    token: Option<&str>,
    spec: &HfSpec,
    kind: Option<ModelKind>,
) -> Result<HfPlan, PullError> {
    let commit = resolve_commit(client, endpoint, token, spec).await?;
    let listing = list_tree(client, endpoint, token, &spec.repo, &commit).await?;
    let hostile = |path: &str, why: String| PullError::HfRepo {
        repo: spec.repo.clone(),
        detail: format!("the listing at {commit} names `{}` ({why}); refusing the whole pull", path.escape_debug()),
    };
    for e in &listing {
        check_listed(&e.path).map_err(|why| hostile(&e.path, why))?;
    }
    let files: Vec<&TreeEntry> = listing.iter().filter(|e| e.kind == "file").collect();
    let (wanted, main) = match &spec.file {
        Some(file) => {
            let base = file.rsplit('/').next().unwrap_or(file).to_owned();
            (vec![file.clone()], base)
        }
        None => {
            let names: Vec<String> = files.iter().map(|e| e.path.clone()).collect();
            choose(&spec.repo, &names, kind)?
        }
    };
    let mut out = Vec::with_capacity(wanted.len());
    for path in wanted {
        check_fetched(&path).map_err(|why| hostile(&path, why))?;
        let Some(entry) = files.iter().find(|e| e.path == path) else {
            return Err(PullError::HfRepo { repo: spec.repo.clone(), detail: format!("no file `{path}` at {commit}") });
        };
        out.push(expected(entry).map_err(|why| hostile(&path, why))?);
    }
    Ok(HfPlan { commit, files: out, main })
}

/// What the listing promises for one file.
fn expected(entry: &TreeEntry) -> Result<HfFile, String> {
    let sha256 = match &entry.lfs {
        Some(lfs) => {
            if !is_hex(&lfs.oid, 64) {
                return Err(format!("its LFS oid `{}` is not a sha256", lfs.oid.escape_debug()));
            }
            if lfs.size != entry.size {
                return Err(format!("its LFS size {} differs from its size {}", lfs.size, entry.size));
            }
            Some(lfs.oid.to_ascii_lowercase())
        }
        None => None,
    };
    Ok(HfFile { path: entry.path.clone(), size: entry.size, sha256 })
}

/// The commit sha a pull uses: the revision itself when it is one, else
/// what the hub says the branch or tag points at now.
async fn resolve_commit(
    client: &reqwest::Client,
    endpoint: &str,
    token: Option<&str>,
    spec: &HfSpec,
) -> Result<String, PullError> {
    let revision = spec.revision.as_deref().unwrap_or("main");
    if is_hex(revision, 40) {
        return Ok(revision.to_ascii_lowercase());
    }
    let url =
        url_with(endpoint, ["api", "models"].into_iter().chain(spec.repo.split('/')).chain(["revision", revision]))?;
    let info: RevisionInfo = get_json(client, url.as_str(), "application/json", token).await?;
    match info.sha {
        Some(sha) if is_hex(&sha, 40) => Ok(sha.to_ascii_lowercase()),
        other => Err(PullError::HfRepo {
            repo: spec.repo.clone(),
            detail: format!(
                "revision `{revision}` resolved to {:?}, not a commit sha; pass --revision <40-hex sha>",
                other.unwrap_or_default()
            ),
        }),
    }
}

/// Every entry of the repo at `commit`, following the hub's pagination
/// (same origin only: the bearer token goes with each page).
async fn list_tree(
    client: &reqwest::Client,
    endpoint: &str,
    token: Option<&str>,
    repo: &str,
    commit: &str,
) -> Result<Vec<TreeEntry>, PullError> {
    let mut url = url_with(endpoint, ["api", "models"].into_iter().chain(repo.split('/')).chain(["tree", commit]))?;
    url.query_pairs_mut().append_pair("recursive", "true");
    let mut out = Vec::new();
    for _ in 0..MAX_LISTING_PAGES {
        let resp = get(client, url.as_str(), Some("application/json"), token).await?;
        let next =
            next_page(&url, resp.headers()).map_err(|detail| PullError::HfRepo { repo: repo.to_owned(), detail })?;
        let page: Vec<TreeEntry> = parse_json(resp, url.as_str()).await?;
        out.extend(page);
        match next {
            Some(next) => url = next,
            None => return Ok(out),
        }
    }
    Err(PullError::HfRepo {
        repo: repo.to_owned(),
        detail: format!("the file listing runs past {MAX_LISTING_PAGES} pages; refusing it"),
    })
}

/// The `rel="next"` target of a `Link` header, resolved against `current`;
/// an error when it points at another origin.
fn next_page(current: &Url, headers: &HeaderMap) -> Result<Option<Url>, String> {
    for value in headers.get_all(LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let mut parts = link.split(';');
            let target = parts.next().unwrap_or("").trim();
            let is_next = parts.any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            let Some(target) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else { continue };
            if !is_next {
                continue;
            }
            let next = current.join(target).map_err(|e| format!("bad next-page link `{target}`: {e}"))?;
            if next.origin() != current.origin() {
                return Err(format!(
                    "the listing's next page is on another host ({}); refusing to send the token there",
                    next.origin().ascii_serialization()
                ));
            }
            return Ok(Some(next));
        }
    }
    Ok(None)
}

/// `endpoint` with `segments` appended, each percent-encoded.
fn url_with<'a>(endpoint: &str, segments: impl IntoIterator<Item = &'a str>) -> Result<Url, PullError> {
    let bad = |detail: String| PullError::Invalid { what: format!("Hugging Face endpoint `{endpoint}`"), detail };
    let mut url = Url::parse(endpoint).map_err(|e| bad(e.to_string()))?;
    url.path_segments_mut().map_err(|()| bad("not an http(s) URL".into()))?.pop_if_empty().extend(segments);
    Ok(url)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The pure part of [`plan`]: picks files from a repo listing.
/// `(files, main)`.
fn choose(repo: &str, names: &[String], kind: Option<ModelKind>) -> Result<(Vec<String>, String), PullError> {
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
        return Ok((vec![file.clone()], main));
    }
    if want(ModelKind::Embedding) && has("model.safetensors") && has("config.json") {
        return Ok((subset(SENTENCE_TRANSFORMERS), ".".into()));
    }
    if want(ModelKind::Speech) && has("model.bin") && has("config.json") {
        return Ok((subset(CT2_WHISPER), ".".into()));
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
    use reqwest::header::HeaderValue;

    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_specs() {
        assert_eq!(HfSpec::parse("a/b").unwrap(), HfSpec { repo: "a/b".into(), file: None, revision: None });
        let s = HfSpec::parse("a/b/dir/x.gguf").unwrap();
        assert_eq!(s.file.as_deref(), Some("dir/x.gguf"));
        assert_eq!(s.source("0123"), "hf:a/b/dir/x.gguf@0123");
        assert!(HfSpec::parse("justone").is_err());
    }

    #[test]
    fn a_spec_cannot_smuggle_a_path_into_the_url_or_the_store() {
        for bad in ["../b", "a/..", "a/b/../../x.gguf", "a/b//x.gguf", "a/b/x\\..\\y.gguf", "a%2f/b", "a/b/.git/config"]
        {
            let err = HfSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn urls_are_built_from_encoded_segments() {
        let plan = HfPlan { commit: "c".repeat(40), files: Vec::new(), main: ".".into() };
        let url = plan.file_url("http://hub.test/mirror/", "a/b", "1_Pooling/config.json").unwrap();
        assert_eq!(
            url.as_str(),
            format!("http://hub.test/mirror/a/b/resolve/{}/1_Pooling/config.json", "c".repeat(40))
        );
        let url = url_with("https://hub.test", ["api", "models", "a", "b", "revision", "refs/pr/1"]).unwrap();
        assert_eq!(url.as_str(), "https://hub.test/api/models/a/b/revision/refs%2Fpr%2F1");
    }

    #[test]
    fn pagination_follows_next_on_the_same_origin_only() {
        let current = Url::parse("https://hub.test/api/models/a/b/tree/c?recursive=true").unwrap();
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(LINK, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(next_page(&current, &HeaderMap::new()).unwrap(), None);
        let next = next_page(&current, &headers(r#"</api/models/a/b/tree/c?cursor=x>; rel="next""#)).unwrap();
        assert_eq!(next.unwrap().as_str(), "https://hub.test/api/models/a/b/tree/c?cursor=x");
        let prev_only = headers(r#"<https://hub.test/p>; rel="prev""#);
        assert_eq!(next_page(&current, &prev_only).unwrap(), None);
        let elsewhere = headers(r#"<https://evil.test/steal>; rel="next""#);
        assert!(next_page(&current, &elsewhere).unwrap_err().contains("another host"));
        let downgraded = headers(r#"<http://hub.test/api>; rel="next""#);
        assert!(next_page(&current, &downgraded).is_err(), "https to http is another origin");
    }

    #[test]
    fn picks_preferred_quant() {
        let n = names(&["README.md", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-f16.gguf"]);
        assert_eq!(choose("a/b", &n, None).unwrap().0, vec!["m-Q4_K_M.gguf"]);
        let n = names(&["m-f16.gguf", "m-f32.gguf"]);
        assert!(choose("a/b", &n, None).unwrap_err().to_string().contains("name one"));
    }

    #[test]
    fn picks_sentence_transformers_files() {
        let n = names(&["config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json", "README.md"]);
        let (files, main) = choose("a/b", &n, None).unwrap();
        assert_eq!(files, vec!["config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"]);
        assert_eq!(main, ".");
    }
}
