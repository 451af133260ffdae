//! Sync: the wire protocol (no I/O), the HTTP transport (behind a trait so tests can swap a
//! fake network in), and the client loop that pushes local changes and commits pulled pages.

pub mod client;
pub mod protocol;
pub mod session;
pub mod transport;

pub use client::{Enrollment, SyncProgress, SyncReport};
pub use session::{SyncSession, STALLED_ROUND_TRIPS_MAX};
pub use transport::{Cancel, Credentials, HttpReply, HttpTransport, Transport, RESPONSE_BYTES_MAX};
