//! Enrolling a store with a one-time code, holding the store only before and after the
//! request: an app's reads and saves go on while the request is on a 2G link.

use super::session::LockStore;
use crate::error::Result;
use crate::store::Enrollment;
use crate::transport::{HttpTransport, Transport};

/// Enrolls the store behind `handle` with `server`, trusting `ca_pem` (a project's own
/// certificate authority, PEM) for this request and every sync after it.
pub fn enroll(
    handle: &mut dyn LockStore,
    server: &str,
    code: &str,
    ca_pem: Option<&str>,
) -> Result<Enrollment> {
    let transport = HttpTransport::with_root_certificate(server, ca_pem.map(str::as_bytes))?;
    let body = handle.lock_store().enrollment_request(code)?;
    let reply = transport.post("/v1/enroll", "application/json", body, None)?;
    let mut store = handle.lock_store();
    if let Some(pem) = ca_pem {
        store.set_server_ca(pem)?;
    }
    store.finish_enrollment(server, &reply)
}
