//! Changes under this phone's name that it never wrote: found in what the server lists, kept (bounded) and reported.

use super::*;

impl Store {
    /// Which of `hashes`, listed back as this phone's in one case, were never written here.
    /// The case this phone holds tells (every change it writes is saved there first); a case
    /// that left it tells by the own changes kept when it left; a case it never held, or that
    /// left before they were kept, tells nothing.
    pub(crate) fn forged_among(&self, case_id: &str, hashes: &[&str]) -> Result<Vec<String>> {
        let parsed = hashes
            .iter()
            .map(|h| {
                h.parse::<automerge::ChangeHash>()
                    .map_err(|_| Error::Protocol(format!("{h:?} is not a change hash")))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(mut doc) = self.load_doc(case_id)? {
            return Ok(parsed
                .into_iter()
                .filter(|h| doc.automerge().get_change_meta_by_hash(h).is_none())
                .map(|h| h.to_string())
                .collect());
        }
        let left: bool = self.connection_ref().query_row(
            "SELECT EXISTS (SELECT 1 FROM removed_cases WHERE case_id = ?1)",
            [case_id],
            |r| r.get(0),
        )?;
        if !left {
            return Ok(Vec::new());
        }
        let mut written = self.connection_ref().prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM removed_own_changes WHERE hash = ?1 AND case_id = ?2)",
        )?;
        let mut forged = Vec::new();
        for h in parsed {
            let hash = h.to_string();
            if !written.query_row(params![hash, case_id], |r| r.get::<_, bool>(0))? {
                forged.push(hash);
            }
        }
        Ok(forged)
    }

    /// Before a case leaves this phone, the changes it wrote there are kept (their hashes): the
    /// feed may list them back, and the phone must still tell its own from a forged one.
    pub(crate) fn remember_own_changes(
        &self,
        tx: &rusqlite::Transaction<'_>,
        case_id: &str,
    ) -> Result<()> {
        let Some(mut doc) = self.load_doc(case_id)? else {
            return Ok(());
        };
        let mine = self.actor_id()?;
        tx.execute(
            "INSERT OR IGNORE INTO removed_cases (case_id) VALUES (?1)",
            [case_id],
        )?;
        for change in doc.automerge().get_changes_meta(&[]) {
            if *change.actor == mine {
                tx.execute(
                    "INSERT OR IGNORE INTO removed_own_changes (hash, case_id) VALUES (?1, ?2)",
                    params![change.hash.to_string(), case_id],
                )?;
            }
        }
        Ok(())
    }

    /// Forgeries found and not yet reported, oldest first, at most `limit`.
    pub(crate) fn unreported_forgeries(&self, limit: usize) -> Result<Vec<ForgeryReport>> {
        let mut stmt = self.connection_ref().prepare_cached(
            "SELECT case_id, hash FROM forgeries WHERE reported = 0 ORDER BY found_at, hash LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(ForgeryReport {
                case_id: r.get(0)?,
                hash: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks forgeries as reported: a server of version 6 or later answered the request that
    /// carried them.
    pub(crate) fn forgeries_reported(&self, sent: &[ForgeryReport]) -> Result<()> {
        for report in sent {
            self.connection_ref().execute(
                "UPDATE forgeries SET reported = 1 WHERE hash = ?1",
                [&report.hash],
            )?;
        }
        Ok(())
    }

    /// Every change under this phone's name that it never wrote, found so far: (case, hash,
    /// reported to the server).
    pub fn forgeries(&self) -> Result<Vec<(String, String, bool)>> {
        let mut stmt = self.connection_ref().prepare_cached(
            "SELECT case_id, hash, reported FROM forgeries ORDER BY found_at, hash",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether a case this phone holds carries a change this phone wrote (under its actor).
    pub(crate) fn holds_own_changes(&self, case_id: &str) -> Result<bool> {
        let Some(mut doc) = self.load_doc(case_id)? else {
            return Ok(false);
        };
        let mine = self.actor_id()?;
        Ok(doc
            .automerge()
            .get_changes_meta(&[])
            .iter()
            .any(|c| *c.actor == mine))
    }
}

/// Why a case is set aside when a pulled change under this phone's name was never written here.
pub const FORGED_REASON: &str = "forged: a change under this phone's name that it never wrote";

/// Forgeries a phone keeps: a hostile server listing made-up changes at every round trip must
/// not grow the store without end (the real server ignores what is not its). Real ones are
/// rare; a phone whose list is full reports what it holds and records no more.
pub const FORGERIES_KEPT_MAX: i64 = 1_000;

/// Records a forgery found (once per change, while fewer than `FORGERIES_KEPT_MAX` are kept);
/// 1 if it was kept.
pub(crate) fn record_forgery(
    tx: &rusqlite::Transaction<'_>,
    case_id: &str,
    hash: &str,
) -> Result<usize> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO forgeries (hash, case_id, found_at)
         SELECT ?1, ?2, ?3
         WHERE (SELECT count(*) FROM forgeries) < ?4",
        params![
            hash,
            case_id,
            chrono::Utc::now().to_rfc3339(),
            FORGERIES_KEPT_MAX
        ],
    )?)
}
