//! Suivi for Kotlin/Android: thin uniffi adapters over `suivi-core`. No logic lives here: each
//! call takes a connection, calls core, and maps the result into records Kotlin can read.
//!
//! Two connections: reads (lists, search, a case, its history) go through a read-only one and
//! never wait for a save or a sync; saves and syncs share the writer, which a sync holds only
//! while it decides or commits a page, never while it waits on the network. Every call is
//! blocking: from Kotlin, run it on `Dispatchers.IO`, never on the main thread.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use suivi_core::forms::{record_as_text, Lang, FOLLOWUP, IDENTIFICATION, REFERRAL};
use suivi_core::store::date_input;
use suivi_core::sync::{session, Cancel};
use suivi_core::{Error as CoreError, Store, Transition};
mod error;
mod forms;
mod records;
mod store;
mod sync;
pub use error::*;
pub use forms::*;
pub use records::*;
pub use store::*;
pub use sync::*;

uniffi::setup_scaffolding!();
