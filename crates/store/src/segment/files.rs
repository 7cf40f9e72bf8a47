//! Segment files in the store's directory: names, listing, creation.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub(super) fn segment_path(root: &Path, id: u32) -> PathBuf {
    root.join(format!("{id:08}.seg"))
}

/// Ids of the segment files under `root`, in order.
pub(super) fn segment_ids(root: &Path) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if stem.len() == 8
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = stem.parse()
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Creates segment `id` and makes its directory entry durable.
pub(super) fn create_segment(root: &Path, id: u32) -> Result<File, (PathBuf, std::io::Error)> {
    let path = segment_path(root, id);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| (path, e))?;
    File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| (root.to_path_buf(), e))?;
    Ok(file)
}

/// The entries of `dir`, sorted; an absent directory is an error naming it.
pub(super) fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io(dir, e))?;
    paths.sort();
    Ok(paths)
}
