//! Checks on file paths that come from outside (a Hugging Face listing, a
//! `hf:owner/repo/FILE` spec) before they are joined to the store directory
//! or put in a URL.
//!
//! Two levels:
//! - [`check_listed`]: what any path in a repo listing must be. A git tree
//!   cannot hold `..`, an absolute path or an empty component, so a listing
//!   that does is hostile (or broken), and the whole pull is refused.
//! - [`check_fetched`]: what a file hoosh writes must be: the above, plus a
//!   plain charset (`A-Z a-z 0-9 . _ + -`) per component, no hidden
//!   component, bounded lengths, and not the manifest's name.

use crate::manifest::MANIFEST_FILE;

/// Longest accepted path and component (bytes), and deepest nesting.
const MAX_PATH: usize = 1024;
const MAX_COMPONENT: usize = 255;
const MAX_DEPTH: usize = 16;

/// Refuses what a git tree cannot contain: empty, absolute, `.`/`..`/empty
/// components, backslashes, control characters, absurd length.
pub(crate) fn check_listed(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(format!("length {} is outside 1..={MAX_PATH}", path.len()));
    }
    if path.starts_with('/') {
        return Err("it is absolute".into());
    }
    if path.contains('\\') {
        return Err("it contains a backslash".into());
    }
    if path.chars().any(char::is_control) {
        return Err("it contains a control character".into());
    }
    if path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err("it has an empty, `.` or `..` component".into());
    }
    Ok(())
}

/// [`check_listed`], plus what hoosh is willing to write under a model
/// directory.
pub(crate) fn check_fetched(path: &str) -> Result<(), String> {
    check_listed(path)?;
    let components: Vec<&str> = path.split('/').collect();
    if components.len() > MAX_DEPTH {
        return Err(format!("it is nested deeper than {MAX_DEPTH} directories"));
    }
    for c in &components {
        if c.len() > MAX_COMPONENT {
            return Err(format!("a component is longer than {MAX_COMPONENT} bytes"));
        }
        if c.starts_with('.') {
            return Err("it has a hidden (dot) component".into());
        }
        if let Some(bad) = c.chars().find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '+' | '-'))) {
            return Err(format!("it contains {bad:?}; only A-Z a-z 0-9 . _ + - and / are accepted"));
        }
    }
    if path == MANIFEST_FILE {
        return Err(format!("{MANIFEST_FILE} is the name of hoosh's own manifest"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_hugging_face_names_pass() {
        for ok in [
            "model.safetensors",
            "1_Pooling/config.json",
            "Meta-Llama-3-8B-Instruct.Q4_K_M.gguf",
            "model-00001-of-00004.safetensors",
            "onnx/model_quantized.onnx",
            "ggml+extra.bin",
        ] {
            check_fetched(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn what_a_hostile_listing_might_send_is_refused() {
        let deep = "a/".repeat(MAX_DEPTH) + "x";
        let long = "x".repeat(MAX_COMPONENT + 1);
        for bad in [
            "",
            "../../etc/x",
            "a/../../b",
            "..",
            "/etc/passwd",
            "a\\..\\..\\b",
            "C:\\x",
            "a//b",
            "./a",
            "a/./b",
            "a/",
            "x\0y",
            "x\ny",
        ] {
            assert!(check_listed(bad).is_err(), "{bad:?}");
            assert!(check_fetched(bad).is_err(), "{bad:?}");
        }
        for bad in [".git/config", "a/.hidden", "a b.gguf", "x%2e%2e", "é.gguf", "a:b", MANIFEST_FILE, &deep, &long] {
            assert!(check_fetched(bad).is_err(), "{bad:?}");
        }
        // Harmless in a listing (not fetched): a README with a space.
        assert!(check_listed("Model Card.md").is_ok());
    }
}
