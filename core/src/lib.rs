//! Suivi core: child case forms as versioned data, one Automerge document per case, an
//! encrypted SQLite store with projections for lists and search, and the sync client.
//!
//! Layers, bottom up: `forms` (definitions and validation) → `case_doc` (the Automerge
//! document of one case) → `store` (SQLCipher persistence and projections) → `sync` (protocol
//! and client). The `suivi` device command (feature `cli`) sits on top.

pub mod case_doc;
pub mod clock;
pub mod error;
pub mod forms;
pub mod names;
pub mod outcome;
pub mod policy;
pub mod protocol;
pub mod referral;
pub mod store;
pub mod sync;
pub mod transport;
pub mod words;

pub use case_doc::{CaseDoc, ChangeContext};
pub use error::{Error, FieldError, Result, FIELD_ERROR_KEYS};
pub use forms::{FormRegistry, Lang, Record};
pub use referral::{ReferralStatus, Transition};
pub use store::{CaseFilter, Identity, Store, Todo, TodoFilter};
