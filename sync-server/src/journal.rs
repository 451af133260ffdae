//! Decisions a restore from a backup must not undo: erasures (a family withdrew consent) and
//! device revocations (a phone lost or stolen). Each is appended, and synced to disk, to a
//! journal beside the data directory before it is applied to the database; opening the store
//! re-applies both journals, so a database restored from a backup older than the decision gets
//! it again. Journals hold ids and times only, no names.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A journal beside the data directory: `<data>.<kind>`.
pub fn path_beside(data_dir: &Path, kind: &str) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "suivi-server".into());
    name.push(".");
    name.push(kind);
    data_dir.with_file_name(name)
}

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Appends `id at` and waits until it is on disk.
pub fn append(journal: &Path, id: &str, at: i64) -> Result<(), JournalError> {
    append_line(journal, &format!("{id} {at}"))
}

/// Appends one line and waits until it is on disk.
pub fn append_line(journal: &Path, line: &str) -> Result<(), JournalError> {
    let error = |source| JournalError {
        path: journal.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(journal)
        .map_err(error)?;
    // A line torn by a crash is left alone, and this one starts on a line of its own.
    let torn = {
        use std::io::{Read, Seek, SeekFrom};
        let len = file.metadata().map_err(error)?.len();
        let mut last = [0u8; 1];
        len > 0
            && file
                .seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map(|()| last[0] != b'\n')
                .map_err(error)?
    };
    if torn {
        writeln!(file).map_err(error)?;
    }
    writeln!(file, "{line}")
        .and_then(|()| file.sync_all())
        .map_err(error)
}

/// Every `(id, at)` of a journal, oldest first; none if it does not exist. A torn last line
/// (a crash while appending) is skipped: its decision was never applied either.
pub fn entries(journal: &Path) -> Result<Vec<(String, i64)>, JournalError> {
    let text = match std::fs::read_to_string(journal) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(JournalError {
                path: journal.to_path_buf(),
                source,
            })
        }
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let id = parts.next()?;
            let at = parts.next()?.parse().ok()?;
            Some((id.to_string(), at))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = path_beside(&dir.path().join("data"), "revocations");
        assert_eq!(journal, dir.path().join("data.revocations"));
        assert!(entries(&journal).unwrap().is_empty());
        append(&journal, "dev-1", 10).unwrap();
        append(&journal, "dev-2", 20).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        file.write_all(b"dev-3").unwrap();
        assert_eq!(
            entries(&journal).unwrap(),
            vec![("dev-1".to_string(), 10), ("dev-2".to_string(), 20)]
        );
        // The next entry starts a line of its own: the torn one stays unreadable, alone.
        append(&journal, "dev-4", 40).unwrap();
        assert_eq!(
            entries(&journal).unwrap(),
            vec![
                ("dev-1".to_string(), 10),
                ("dev-2".to_string(), 20),
                ("dev-4".to_string(), 40)
            ]
        );
    }
}
