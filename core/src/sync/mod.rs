//! Sync: the session that pushes local changes and has each pulled page committed by the
//! store (`store::sync_state`), and enrollment. The wire protocol (`crate::protocol`, no I/O)
//! and the HTTP transport (`crate::transport`, behind a trait so tests can swap a fake network
//! in) sit a layer below the store, which uses them too; they are re-exported here under the
//! paths callers have always used.

pub mod enroll;
pub mod fetch;
mod incoming;
pub mod session;

pub use crate::store::Enrollment;
pub use crate::store::{QuarantinedCase, SyncProgress, SyncReport};
pub use enroll::enroll;
// The wire and the network, a layer below the store; still reachable by their sync paths.
pub use crate::{protocol, transport};
pub use fetch::fetch_cases;
pub use session::{SyncSession, STALLED_ROUND_TRIPS_MAX};
pub use transport::{Cancel, Credentials, HttpReply, HttpTransport, Transport, RESPONSE_BYTES_MAX};
