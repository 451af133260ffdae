//! Numbered SQL migrations, each applied in one transaction and tracked with
//! `PRAGMA user_version`. A shipped migration is never edited: add the next one.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Marks our files so a database of another application is recognised and left alone.
pub const APPLICATION_ID: i64 = 0x5355_4956; // "SUIV"

pub const MIGRATIONS: [&str; 11] = [
    include_str!("migrations/001_cases.sql"),
    include_str!("migrations/002_sync.sql"),
    include_str!("migrations/003_pending.sql"),
    include_str!("migrations/004_trust.sql"),
    include_str!("migrations/005_edits.sql"),
    include_str!("migrations/006_forms.sql"),
    include_str!("migrations/007_forgeries.sql"),
    include_str!("migrations/008_search.sql"),
    include_str!("migrations/009_drafts.sql"),
    include_str!("migrations/010_arriving.sql"),
    include_str!("migrations/011_outcomes.sql"),
];

pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the schema up to `target` (normally `LATEST_VERSION`; tests stop earlier to build an
/// old database).
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let current = user_version(conn)?;
    if current > LATEST_VERSION {
        return Err(Error::SchemaTooNew {
            found: current,
            known: LATEST_VERSION,
        });
    }
    for version in current + 1..=target {
        let sql = MIGRATIONS[(version - 1) as usize];
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        if version == 1 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        tx.commit()?;
    }
    Ok(())
}
