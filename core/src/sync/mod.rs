//! Sync: the wire protocol (no I/O), the HTTP transport (behind a trait so tests can swap a
//! fake network in), and the session that pushes local changes and has each pulled page
//! committed by the store (`store::sync_state`).

pub mod enroll;
pub mod protocol;
pub mod report;
pub mod session;
pub mod transport;

pub use crate::store::Enrollment;
pub use enroll::enroll;
pub use report::{QuarantinedCase, SyncProgress, SyncReport};
pub use session::{SyncSession, STALLED_ROUND_TRIPS_MAX};
pub use transport::{Cancel, Credentials, HttpReply, HttpTransport, Transport, RESPONSE_BYTES_MAX};
