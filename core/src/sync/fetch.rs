//! Opening a case that is still arriving: a first sync lists its rows ahead of the cases, and
//! the case the agent opens is fetched at once (`POST /v1/cases`) rather than waited for.

use crate::error::{Error, Result};
use crate::protocol::{self, CasesRequest, SyncResponse, CONTENT_TYPE, PROTOCOL_VERSION};
use crate::store::SyncReport;
use crate::transport::{status_error, Transport};

use super::session::LockStore;

/// Fetches these cases (at most `FETCH_CASES_MAX`) and commits them with every check a pulled
/// case gets; the store is held only to read the credential and to commit, so a sync running
/// beside keeps going. Returns what was committed (cases saved, set aside).
pub fn fetch_cases(
    handle: &mut dyn LockStore,
    transport: &dyn Transport,
    case_ids: &[String],
) -> Result<SyncReport> {
    if case_ids.len() > protocol::FETCH_CASES_MAX {
        return Err(Error::InvalidInput(format!(
            "at most {} cases at a time",
            protocol::FETCH_CASES_MAX
        )));
    }
    let credentials = handle.lock_store().credentials()?;
    let body = protocol::encode(&CasesRequest {
        version: PROTOCOL_VERSION,
        case_ids: case_ids.to_vec(),
    })?;
    let reply = transport.post("/v1/cases", CONTENT_TYPE, body, Some(&credentials))?;
    if reply.status != 200 {
        return Err(status_error(&reply));
    }
    let response: SyncResponse = protocol::decode_response(&reply.body)?;
    // Only cases asked for are taken: a server sending others is not trusted with them.
    let asked = |id: &String| case_ids.contains(id);
    if !response.pull.iter().all(|c| asked(&c.case_id))
        || !response.documents.iter().all(|d| asked(&d.case_id))
    {
        return Err(Error::Protocol(
            "the server sent cases not asked for".into(),
        ));
    }
    let mut store = handle.lock_store();
    store.commit_fetched(&response)
}
