//! The sync wire format, shared by the client and the server. One HTTP round trip carries a
//! batch: the device's new changes for many cases up, and a page of other devices' changes
//! down. Messages are postcard-encoded and zstd-compressed as a whole, so the Automerge change
//! chunks of all documents compress together. See PROTOCOL.md.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const PROTOCOL_VERSION: u16 = 1;
pub const CONTENT_TYPE: &str = "application/x-suivi-sync";

/// Largest compressed request or response body accepted.
pub const SYNC_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest body once decompressed: a guard against compression bombs.
pub const SYNC_BODY_DECOMPRESSED_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Cases in one push.
pub const PUSH_CASES_MAX: usize = 500;
/// Changes for one case in one push.
pub const PUSH_CHANGES_PER_CASE_MAX: usize = 10_000;
/// Compressed changes in one pull page: a cut sync wastes at most this much.
pub const PULL_PAGE_BYTES_MAX: usize = 64 * 1024;
/// The zstd level: a phone's CPU is cheap next to a 2G link's bytes.
pub const ZSTD_LEVEL: i32 = 9;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseChanges {
    pub case_id: String,
    /// Raw Automerge change chunks, in causal order.
    pub changes: Vec<serde_bytes::ByteBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub version: u16,
    /// The last feed position this device committed; the server sends what follows it.
    pub cursor: u64,
    pub push: Vec<CaseChanges>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    /// The device's user may not write this case.
    Forbidden,
    /// A new change was not authored by the pushing device's actor.
    WrongActor,
    /// A change depends on changes the server does not have: run the fallback for this case.
    MissingDeps,
    /// A change chunk does not decode.
    Malformed,
    /// Too many changes for one case in one request.
    TooManyChanges,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub case_id: String,
    pub reason: RefusalReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub version: u16,
    /// Cases whose pushed changes are stored (or were already).
    pub accepted: Vec<String>,
    /// Cases refused, with why; nothing of theirs was stored.
    pub refused: Vec<Refusal>,
    /// Changes for the device's caseload that follow its cursor, in feed order.
    pub pull: Vec<CaseChanges>,
    /// The feed position this page ends at; the device stores it with the page.
    pub cursor: u64,
    /// Another page is waiting.
    pub more: bool,
}

/// Fallback for one case when device and server disagree on what the other has: Automerge's
/// own sync protocol, one message each way per round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSyncRequest {
    pub version: u16,
    pub case_id: String,
    pub message: serde_bytes::ByteBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSyncResponse {
    pub version: u16,
    pub message: Option<serde_bytes::ByteBuf>,
    pub refused: Option<RefusalReason>,
}

/// Encodes a message: postcard, then zstd over the whole batch.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    let raw = postcard::to_stdvec(message).map_err(|e| Error::Protocol(format!("encode: {e}")))?;
    zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(|e| Error::Protocol(format!("compress: {e}")))
}

/// Decodes a message, refusing oversized, truncated or malformed bodies with a typed error.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    if body.len() > SYNC_BODY_BYTES_MAX {
        return Err(Error::Protocol("body too large".into()));
    }
    let raw = zstd::bulk::decompress(body, SYNC_BODY_DECOMPRESSED_BYTES_MAX)
        .map_err(|e| Error::Protocol(format!("decompress: {e}")))?;
    postcard::from_bytes(&raw).map_err(|e| Error::Protocol(format!("decode: {e}")))
}

/// The size of a message's changes alone, zstd-compressed: the floor that bytes on the wire
/// are compared with.
pub fn compressed_changes_size(changes: &[&[u8]]) -> usize {
    let joined: Vec<u8> = changes.iter().flat_map(|c| c.iter().copied()).collect();
    zstd::bulk::compress(&joined, ZSTD_LEVEL)
        .map(|c| c.len())
        .unwrap_or(joined.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let request = SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: 42,
            push: vec![CaseChanges {
                case_id: "abc".into(),
                changes: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
            }],
        };
        let body = encode(&request).unwrap();
        assert_eq!(decode::<SyncRequest>(&body).unwrap(), request);
    }

    #[test]
    fn truncated_garbage_and_bombs_are_typed_errors() {
        let body = encode(&SyncRequest {
            version: 1,
            cursor: 1,
            push: vec![],
        })
        .unwrap();
        assert!(matches!(
            decode::<SyncRequest>(&body[..body.len() / 2]),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode::<SyncRequest>(b"not zstd at all"),
            Err(Error::Protocol(_))
        ));
        // Valid zstd, invalid postcard.
        let junk = zstd::bulk::compress(&[0xff; 64], 1).unwrap();
        assert!(matches!(
            decode::<SyncRequest>(&junk),
            Err(Error::Protocol(_))
        ));
        // 100 MB of zeros compresses to almost nothing: refused before it is inflated.
        let bomb = zstd::bulk::compress(&vec![0u8; 100 * 1024 * 1024], 1).unwrap();
        assert!(bomb.len() < SYNC_BODY_BYTES_MAX);
        assert!(matches!(
            decode::<SyncRequest>(&bomb),
            Err(Error::Protocol(_))
        ));
    }
}

/// `POST /v1/enroll` (JSON): a one-time code from an admin turns into a device credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub code: String,
    /// The user this device's store belongs to: a code issued for someone else is refused
    /// and stays unused.
    pub user: String,
    /// The device's Automerge actor id (hex): every change it pushes must carry it.
    pub actor: String,
    pub device_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: String,
    pub token: String,
    pub user: String,
    pub role: String,
}

/// The JSON body of every error response. `wipe` tells a revoked device to erase its case data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default)]
    pub wipe: bool,
}
