//! Checkpoints of both chains' heads, journalled outside the database, and the journal read back.

use super::*;

/// How often the serving server journals the chains' heads (when they moved).
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The checkpoint journal beside a data directory: `<data>.checkpoints`.
pub fn journal_path(data_dir: &Path) -> PathBuf {
    journal::path_beside(data_dir, "checkpoints")
}

/// Where both chains stood at a time, as journalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub at: i64,
    pub heads: ChainHeads,
}

impl Checkpoint {
    /// `<at> feed <seq> <mark> audit <id> <mark>`, marks in hex.
    pub(super) fn line(&self) -> String {
        format!(
            "{} feed {} {} audit {} {}",
            self.at,
            self.heads.feed_seq,
            hex::encode(&self.heads.feed_mark),
            self.heads.audit_id,
            hex::encode(&self.heads.audit_mark)
        )
    }

    pub(super) fn parse(line: &str) -> Option<Checkpoint> {
        let parts: Vec<&str> = line.split(' ').collect();
        let [at, "feed", feed_seq, feed_mark, "audit", audit_id, audit_mark] = parts[..] else {
            return None;
        };
        Some(Checkpoint {
            at: at.parse().ok()?,
            heads: ChainHeads {
                feed_seq: feed_seq.parse().ok()?,
                feed_mark: hex::decode(feed_mark).ok()?,
                audit_id: audit_id.parse().ok()?,
                audit_mark: hex::decode(audit_mark).ok()?,
            },
        })
    }
}

/// Every checkpoint of a journal, oldest first (none if it does not exist), and the numbers of
/// the lines that could not be read. A torn last line (a crash while appending) is skipped
/// without complaint: that checkpoint was never complete.
pub fn read_journal(path: &Path) -> Result<(Vec<Checkpoint>, Vec<usize>), JournalError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(JournalError {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut checkpoints = Vec::with_capacity(lines.len());
    let mut unreadable = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match Checkpoint::parse(line) {
            Some(c) => checkpoints.push(c),
            None if i + 1 == lines.len() && !complete => {}
            None => unreadable.push(i + 1),
        }
    }
    Ok((checkpoints, unreadable))
}

/// The serving server's checkpoint journal, and the checkpoints written so far (kept in memory
/// for the console's per-case verification).
pub struct Checkpointer {
    pub(super) path: PathBuf,
    pub(super) written: Mutex<Vec<Checkpoint>>,
}

impl Checkpointer {
    /// Opens the journal at `path` (made at the first checkpoint).
    pub fn open(path: &Path) -> Result<Checkpointer, JournalError> {
        let (written, _) = read_journal(path)?;
        Ok(Checkpointer {
            path: path.to_path_buf(),
            written: Mutex::new(written),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Journals where both chains stand now, if they moved since the last checkpoint; waits
    /// until the line is on disk. Returns the checkpoint written.
    pub fn checkpoint(
        &self,
        store: &dyn ServerStore,
        now: i64,
    ) -> Result<Option<Checkpoint>, EvidenceError> {
        let heads = store.chain_heads()?;
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = written.last() {
            if last.heads == heads {
                return Ok(None);
            }
            if heads.feed_seq < last.heads.feed_seq || heads.audit_id < last.heads.audit_id {
                // Journalled anyway: `verify` says what went missing.
                tracing::error!(
                    feed = heads.feed_seq,
                    audit = heads.audit_id,
                    was_feed = last.heads.feed_seq,
                    was_audit = last.heads.audit_id,
                    "the feed or the audit log is shorter than at the last checkpoint: rows deleted, or a restore"
                );
            }
        }
        let checkpoint = Checkpoint { at: now, heads };
        journal::append_line(&self.path, &checkpoint.line())?;
        written.push(checkpoint.clone());
        Ok(Some(checkpoint))
    }

    /// The checkpoints written so far, oldest first.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The last checkpoint before feed row `first`, and the first at or after row `last`.
    pub(super) fn around(&self, first: u64, last: u64) -> (Option<Checkpoint>, Option<Checkpoint>) {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let before = written
            .iter()
            .filter(|c| c.heads.feed_seq < first)
            .max_by_key(|c| c.heads.feed_seq)
            .cloned();
        let after = written
            .iter()
            .filter(|c| c.heads.feed_seq >= last)
            .min_by_key(|c| c.heads.feed_seq)
            .cloned();
        (before, after)
    }
}
