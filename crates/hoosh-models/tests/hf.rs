//! Hugging Face pulls against a hub that lies: file names that climb out of
//! the store, content that does not match the listed sha256, bodies longer
//! than listed, a revision that moves. Each must fail the pull, leave
//! nothing installed and nothing written outside the store; and a good pull
//! asks for exactly one commit throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::*;
use hoosh_models::{ModelStore, PullError, PullOptions, Sources, pull_with};

const WEIGHTS: &[u8] = b"GGUF\x03\0\0\0 honest weights";

struct Hub {
    tmp: TempDir,
    store: ModelStore,
    hf: MockHf,
    sources: Sources,
}

async fn hub(repos: Vec<(&str, HfRepo)>) -> Hub {
    let tmp = TempDir::new("hf-adversarial");
    let store = ModelStore::new(tmp.path().join("store"));
    let hf = MockHf::start_repos(repos.into_iter().map(|(n, r)| (n.to_owned(), r)).collect::<HashMap<_, _>>()).await;
    let sources = sources("http://unused.invalid", &hf.server.url(), Vec::new());
    Hub { tmp, store, hf, sources }
}

impl Hub {
    async fn pull(&self, spec: &str, options: &PullOptions) -> Result<hoosh_models::Installed, PullError> {
        pull_with(&self.store, &self.sources, spec, options, &|_| {}).await
    }

    /// Nothing in the store (no model, no staging directory), and nothing
    /// beside it: the only entry of the scratch directory is the store.
    fn assert_nothing_written(&self) {
        let left = entries(self.store.root());
        assert!(left.is_empty(), "store should be empty, has {left:?}");
        let beside = entries(self.tmp.path());
        assert!(beside.iter().all(|e| e == "store"), "written outside the store: {beside:?}");
    }

    fn downloads(&self) -> Vec<String> {
        self.hf.paths().into_iter().filter(|p| p.contains("/resolve/")).collect()
    }
}

fn repo_of(files: Vec<HfFile>) -> HfRepo {
    HfRepo::new("acme/evil", files)
}

#[tokio::test]
async fn names_that_leave_the_store_are_refused_before_any_download() {
    for name in [
        "../../etc/x.gguf",
        "../../../../../../tmp/pwned.gguf",
        "/etc/x.gguf",
        "sub/../../x.gguf",
        "a\\..\\..\\x.gguf",
        "a//x.gguf",
        "./x.gguf",
    ] {
        let h = hub(vec![("acme/evil", repo_of(vec![HfFile::new(name, WEIGHTS)]))]).await;
        let err = h.pull("hf:acme/evil", &PullOptions::default()).await.unwrap_err();
        assert!(matches!(err, PullError::HfRepo { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains("refusing the whole pull"), "{name}: {err}");
        assert!(h.downloads().is_empty(), "{name}: fetched {:?}", h.downloads());
        h.assert_nothing_written();
    }
}

/// A hostile name the model does not even need still condemns the
/// listing: a real git tree cannot contain it.
#[tokio::test]
async fn one_hostile_entry_anywhere_in_the_listing_refuses_the_pull() {
    let files = vec![HfFile::new("model.gguf", WEIGHTS), HfFile::new("../../etc/passwd", b"root:x:0:0")];
    let h = hub(vec![("acme/evil", repo_of(files))]).await;
    let err = h.pull("hf:acme/evil", &PullOptions::default()).await.unwrap_err();
    // The first bad entry named is the directory `..` the hub lists before the file.
    assert!(err.to_string().contains("`..`") && err.to_string().contains("refusing the whole pull"), "{err}");
    assert!(h.downloads().is_empty());
    h.assert_nothing_written();
}

/// Names a git tree may hold but hoosh will not write (hidden files, odd
/// characters) are refused when they would be fetched.
#[tokio::test]
async fn a_chosen_file_outside_the_safe_charset_is_refused() {
    for (name, whole_repo) in
        [("weights .gguf", true), (".hidden.gguf", true), ("weights .gguf", false), ("hoosh-model.json", false)]
    {
        let h = hub(vec![("acme/evil", repo_of(vec![HfFile::new(name, WEIGHTS)]))]).await;
        // Picked from the listing, or named by the user.
        let spec = if whole_repo { "hf:acme/evil".to_owned() } else { format!("hf:acme/evil/{name}") };
        let err = h.pull(&spec, &PullOptions::default()).await.unwrap_err().to_string();
        let why = if whole_repo { "refusing the whole pull" } else { "is not accepted" };
        assert!(err.contains(why), "{spec}: {err}");
        assert!(h.downloads().is_empty(), "{spec}");
        h.assert_nothing_written();
    }
}

#[tokio::test]
async fn content_that_differs_from_the_listed_sha256_fails_and_leaves_no_file() {
    let mut file = HfFile::new("model.gguf", WEIGHTS);
    // The listing (or a CDN in the middle) disagrees with the bytes served.
    file.listed_sha256 = Some(sha256_hex(b"what the publisher uploaded"));
    let h = hub(vec![("acme/evil", repo_of(vec![file]))]).await;
    let err = h.pull("hf:acme/evil", &PullOptions::default()).await.unwrap_err();
    match &err {
        PullError::HfHashMismatch { file, expected, actual, .. } => {
            assert_eq!(file, "model.gguf");
            assert_eq!(expected, &sha256_hex(b"what the publisher uploaded"));
            assert_eq!(actual, &sha256_hex(WEIGHTS));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("nothing was installed"), "{err}");
    assert_eq!(h.downloads().len(), 1, "the check is on the downloaded bytes");
    h.assert_nothing_written();
}

/// The same, for one file of a multi-file model: the files fetched before
/// it go too.
#[tokio::test]
async fn a_bad_file_in_a_set_discards_the_whole_set() {
    let mut weights = HfFile::new("model.safetensors", b"tampered weights");
    weights.listed_sha256 = Some(sha256_hex(b"real weights"));
    let files = vec![HfFile::new("config.json", b"{}"), weights, HfFile::new("tokenizer.json", b"{}")];
    let h = hub(vec![("acme/evil", repo_of(files))]).await;
    let err = h.pull("hf:acme/evil", &PullOptions::default()).await.unwrap_err();
    assert!(matches!(err, PullError::HfHashMismatch { ref file, .. } if file == "model.safetensors"), "{err:?}");
    h.assert_nothing_written();
}

/// A server that keeps sending past the listed size is cut off at that
/// size: it cannot fill the disk, even before the hash is checked.
#[tokio::test]
async fn a_body_longer_than_listed_is_cut_off() {
    let mut file = HfFile::new("model.gguf", &[b'G'; 64 * 1024]);
    file.listed_size = Some(16);
    let h = hub(vec![("acme/evil", repo_of(vec![file]))]).await;
    let err = h.pull("hf:acme/evil", &PullOptions::default()).await.unwrap_err();
    assert!(matches!(err, PullError::TooLarge { limit: 16, .. }), "{err:?}");
    h.assert_nothing_written();
}

#[tokio::test]
async fn a_listing_that_is_not_sha256_is_refused() {
    let mut file = HfFile::new("model.gguf", WEIGHTS);
    file.listed_sha256 = Some("../../etc".into());
    let h = hub(vec![("acme/evil", repo_of(vec![file]))]).await;
    let err = h.pull("hf:acme/evil", &PullOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("not a sha256"), "{err}");
    assert!(h.downloads().is_empty());
    h.assert_nothing_written();
}

/// Every request after the revision lookup names the one commit, so a push
/// mid-pull cannot mix versions; the listing is followed across pages; the
/// manifest records the commit.
#[tokio::test]
async fn a_pull_is_pinned_to_one_commit_from_listing_to_last_byte() {
    let mut repo = HfRepo::new(
        "acme/mini-embed",
        vec![
            HfFile::new("README.md", b"# card"),
            HfFile::new("config.json", b"{}"),
            HfFile::new("model.safetensors", b"weights"),
            HfFile::new("tokenizer.json", b"{\"t\":1}"),
            HfFile::new("1_Pooling/config.json", b"{\"pool\":1}"),
        ],
    );
    repo.page_size = 2;
    let commit = repo.commit.clone();
    let h = hub(vec![("acme/mini-embed", repo)]).await;

    let m = h.pull("hf:acme/mini-embed", &PullOptions::default()).await.unwrap();
    assert_eq!(m.source, format!("hf:acme/mini-embed@{commit}"));
    let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["1_Pooling/config.json", "config.json", "model.safetensors", "tokenizer.json"]);
    h.store.verify(&m).unwrap();

    let paths = h.hf.paths();
    assert_eq!(paths[0], "/api/models/acme/mini-embed/revision/main", "{paths:?}");
    let trees: Vec<&String> = paths.iter().filter(|p| p.contains("/tree/")).collect();
    assert_eq!(trees.len(), 3, "six entries (a directory among them), two a page: {paths:?}");
    for p in &paths[1..] {
        assert!(p.contains(&format!("/{commit}")), "not pinned: {p}");
        assert!(!p.contains("/main"), "{p}");
    }
    assert_eq!(h.downloads().len(), 4);
}

#[tokio::test]
async fn a_given_revision_is_resolved_once_or_used_as_is() {
    let repo = HfRepo::new("acme/tiny", vec![HfFile::new("tiny.gguf", WEIGHTS)]);
    let commit = repo.commit.clone();
    let h = hub(vec![("acme/tiny", repo)]).await;

    // A tag: looked up, then the commit it names is used.
    let tag = PullOptions { revision: Some("v1".into()), ..PullOptions::default() };
    let m = h.pull("hf:acme/tiny", &tag).await.unwrap();
    assert_eq!(m.source, format!("hf:acme/tiny@{commit}"));
    assert_eq!(h.hf.paths()[0], "/api/models/acme/tiny/revision/v1");

    // A commit sha: no lookup at all.
    let before = h.hf.paths().len();
    let pinned =
        PullOptions { revision: Some(commit.to_uppercase()), id: Some("tiny2".into()), ..PullOptions::default() };
    let m = h.pull("hf:acme/tiny/tiny.gguf", &pinned).await.unwrap();
    assert_eq!(m.source, format!("hf:acme/tiny/tiny.gguf@{commit}"));
    let after: Vec<String> = h.hf.paths().split_off(before);
    assert!(after.iter().all(|p| !p.contains("/revision/")), "{after:?}");
    assert!(after.iter().any(|p| p == &format!("/acme/tiny/resolve/{commit}/tiny.gguf")), "{after:?}");

    // An unknown branch is the hub's 404, not a pull of `main`.
    let other = PullOptions { revision: Some("feature/x".into()), ..PullOptions::default() };
    let err = h.pull("hf:acme/tiny", &other).await.unwrap_err();
    assert!(
        matches!(err, PullError::HttpStatus { status: 404, ref url, .. } if url.ends_with("revision/feature%2Fx")),
        "{err:?}"
    );

    // --revision means nothing to a local path or a catalog model.
    let err = h.pull(h.tmp.path().to_str().unwrap(), &tag).await.unwrap_err();
    assert!(err.to_string().contains("hf:owner/repo models only"), "{err}");
}

#[tokio::test]
async fn a_named_file_must_be_in_the_listing_at_that_commit() {
    let h = hub(vec![("acme/tiny", HfRepo::new("acme/tiny", vec![HfFile::new("tiny.gguf", WEIGHTS)]))]).await;
    let err = h.pull("hf:acme/tiny/other.gguf", &PullOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("no file `other.gguf`"), "{err}");
    assert!(h.downloads().is_empty());
    h.assert_nothing_written();
}

#[test]
fn sources_never_print_the_hub_token() {
    let mut s = sources("http://a.invalid", "http://b.invalid", Vec::new());
    s.hf_token = Some("hf_SECRETtokenvalue".into());
    let shown = format!("{s:?}");
    assert!(!shown.contains("SECRET") && shown.contains("[redacted]"), "{shown}");
}
