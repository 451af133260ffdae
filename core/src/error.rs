//! Errors of the core library. They carry ids and message keys, never case data
//! (names, villages, notes), so they are safe to log and to show in any language.

use serde::Serialize;

/// One problem found by validating a record against a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field id in the form definition.
    pub field: String,
    /// A message key such as `required` or `range.max`; the UI picks the text in its language.
    pub key: String,
}

/// Every message key a `FieldError` can carry: an app must have a text for each in every
/// language it speaks (the app's tests check theirs against this list; core's check the list
/// against its own sources).
pub const FIELD_ERROR_KEYS: [&str; 20] = [
    "required",
    "unknown_field",
    "not_relevant",
    "pattern",
    "type.text",
    "type.phone",
    "type.integer",
    "type.decimal",
    "type.date",
    "type.boolean",
    "type.choice",
    "type.choices",
    "type.geopoint",
    "range.min",
    "range.max",
    "range.geopoint",
    "length.min",
    "length.max",
    "choice.unknown",
    "choice.duplicate",
];

impl FieldError {
    pub fn new(field: impl Into<String>, key: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            key: key.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed on {} field(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("unknown form {id} version {version}")]
    UnknownForm { id: String, version: u32 },
    #[error("invalid form definition {id}: {reason}")]
    InvalidFormDefinition { id: String, reason: String },
    #[error("{kind} not found: {id}")]
    NotFound { kind: &'static str, id: String },
    /// The case is listed from the row a first sync sent ahead; its history is on its way.
    #[error("case {0} is still arriving with the sync: listed, read-only until it arrives")]
    CaseArriving(String),
    #[error("illegal referral transition {transition} from status {from}")]
    IllegalTransition { from: String, transition: String },
    #[error("the database key is wrong, or the file is not a Suivi database or is corrupt")]
    WrongKeyOrCorrupt,
    #[error(
        "the file is an unencrypted SQLite database, not a Suivi store; it was left untouched"
    )]
    PlaintextDatabase,
    #[error("the file is a database of another application; it was left untouched")]
    ForeignDatabase,
    #[error(
        "the database was written by a newer Suivi (schema {found}, this build knows {known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the store is already initialised")]
    AlreadyInitialised,
    #[error("the store is not enrolled with a sync server")]
    NotEnrolled,
    #[error("the case document is damaged: {0}")]
    Document(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the storage is full")]
    StorageFull,
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("server unreachable: {0}")]
    Offline(String),
    #[error("sync refused by the server: {0}")]
    Forbidden(String),
    #[error("this device was revoked; local case data has been wiped")]
    DeviceRevoked,
    #[error("sync protocol error: {0}")]
    Protocol(String),
    #[error("this app is too old for the sync server: update it, then sync again")]
    UpgradeRequired,
    /// The case was merged into another (the same child registered twice): it is read-only,
    /// and what is recorded about the child goes on the surviving case.
    #[error("case {case_id} was merged into case {into}: record on that case")]
    CaseMerged { case_id: String, into: String },
    /// The sync was cancelled; every page committed before stays committed.
    #[error("sync cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &err {
            rusqlite::Error::SqliteFailure(e, _) => match e.code {
                ErrorCode::DiskFull => Error::StorageFull,
                // The WAL index could not grow: no room left on the device (seen on a full
                // filesystem when the store is opened).
                _ if e.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE => Error::StorageFull,
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => Error::WrongKeyOrCorrupt,
                // The SQLite message names tables and constraints, never row values.
                _ => Error::Storage(err.to_string()),
            },
            _ => Error::Storage(err.to_string()),
        }
    }
}

impl From<automerge::AutomergeError> for Error {
    fn from(err: automerge::AutomergeError) -> Self {
        Error::Document(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key core's checks can emit is in `FIELD_ERROR_KEYS`: the sources that build field
    /// errors are read for anything shaped like a key.
    #[test]
    fn every_field_error_key_core_emits_is_listed() {
        let sources = [
            include_str!("forms/validate.rs"),
            include_str!("forms/mod.rs"),
            include_str!("case_doc/conflicts.rs"),
            include_str!("case_doc/referrals.rs"),
            include_str!("store/inputs.rs"),
        ];
        let shaped = regex::Regex::new(
            r#""((?:type|range|length|choice)\.[a-z_]+|required|unknown_field|not_relevant|pattern)""#,
        )
        .unwrap();
        let mut found = std::collections::BTreeSet::new();
        for source in sources {
            for key in shaped.captures_iter(source) {
                found.insert(key[1].to_string());
            }
        }
        let missing: Vec<&String> = found
            .iter()
            .filter(|k| !FIELD_ERROR_KEYS.contains(&k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "keys emitted but not listed: {missing:?}"
        );
        assert!(found.len() >= 18, "the scan found too little: {found:?}");
    }
}
