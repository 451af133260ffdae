//! The layouts of earlier protocol versions, each read and brought up one version at a time:
//! a server answers every version from `PROTOCOL_VERSION_MIN`, a device reads every server.

use super::*;

/// A version 5 request: a version 6 one without its forgery reports.
#[derive(Deserialize)]
pub(super) struct SyncRequestV5 {
    pub(super) version: u16,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    #[serde(deserialize_with = "bounded")]
    pub(super) push: Vec<CaseChanges>,
    pub(super) erasures_seen: u64,
    pub(super) report: DeviceReport,
    pub(super) removals_seen: u64,
    pub(super) forms_seen: u64,
}

impl From<SyncRequestV5> for SyncRequest {
    fn from(old: SyncRequestV5) -> Self {
        SyncRequest {
            version: old.version,
            cursor: old.cursor,
            mark: old.mark,
            push: old.push,
            erasures_seen: old.erasures_seen,
            report: old.report,
            removals_seen: old.removals_seen,
            forms_seen: old.forms_seen,
            forgeries: Vec::new(),
            settings_seen: 0,
        }
    }
}

/// A version 6 to 8 request: a version 9 one without the outcome settings it holds.
#[derive(Deserialize)]
pub(super) struct SyncRequestV8 {
    pub(super) version: u16,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    #[serde(deserialize_with = "bounded")]
    pub(super) push: Vec<CaseChanges>,
    pub(super) erasures_seen: u64,
    pub(super) report: DeviceReport,
    pub(super) removals_seen: u64,
    pub(super) forms_seen: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) forgeries: Vec<ForgeryReport>,
}

impl From<SyncRequestV8> for SyncRequest {
    fn from(old: SyncRequestV8) -> Self {
        SyncRequest {
            version: old.version,
            cursor: old.cursor,
            mark: old.mark,
            push: old.push,
            erasures_seen: old.erasures_seen,
            report: old.report,
            removals_seen: old.removals_seen,
            forms_seen: old.forms_seen,
            forgeries: old.forgeries,
            settings_seen: 0,
        }
    }
}

/// A version 4 request: a version 5 one without `forms_seen`.
#[derive(Deserialize)]
pub(super) struct SyncRequestV4 {
    pub(super) version: u16,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    #[serde(deserialize_with = "bounded")]
    pub(super) push: Vec<CaseChanges>,
    pub(super) erasures_seen: u64,
    pub(super) report: DeviceReport,
    pub(super) removals_seen: u64,
}

/// A version 3 request: a version 4 one without its report.
#[derive(Deserialize)]
pub(super) struct SyncRequestV3 {
    pub(super) version: u16,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    #[serde(deserialize_with = "bounded")]
    pub(super) push: Vec<CaseChanges>,
    pub(super) erasures_seen: u64,
}

impl From<SyncRequestV3> for SyncRequestV4 {
    fn from(old: SyncRequestV3) -> Self {
        SyncRequestV4 {
            version: old.version,
            cursor: old.cursor,
            mark: old.mark,
            push: old.push,
            erasures_seen: old.erasures_seen,
            report: DeviceReport::default(),
            removals_seen: 0,
        }
    }
}

impl From<SyncRequestV4> for SyncRequestV5 {
    fn from(old: SyncRequestV4) -> Self {
        SyncRequestV5 {
            version: old.version,
            cursor: old.cursor,
            mark: old.mark,
            push: old.push,
            erasures_seen: old.erasures_seen,
            report: old.report,
            removals_seen: old.removals_seen,
            forms_seen: 0,
        }
    }
}

/// Decodes a sync request of any version the server answers: a version 3 one gets an empty
/// report; versions 3 and 4 have seen no forms feed (and are sent none). Each older layout is
/// brought up one version at a time.
pub fn decode_request(body: &[u8]) -> Result<SyncRequest> {
    match peek_version(body)? {
        9.. => decode(body),
        6..=8 => Ok(decode::<SyncRequestV8>(body)?.into()),
        5 => Ok(decode::<SyncRequestV5>(body)?.into()),
        4 => Ok(SyncRequestV5::from(decode::<SyncRequestV4>(body)?).into()),
        _ => Ok(SyncRequestV5::from(SyncRequestV4::from(decode::<SyncRequestV3>(body)?)).into()),
    }
}

/// A version 5 response: a version 6 one without the device's own changes listed back.
#[derive(Deserialize)]
pub(super) struct SyncResponseV5 {
    pub(super) version: u16,
    #[serde(deserialize_with = "bounded")]
    pub(super) accepted: Vec<String>,
    #[serde(deserialize_with = "bounded")]
    pub(super) refused: Vec<Refusal>,
    #[serde(deserialize_with = "bounded")]
    pub(super) authors: Vec<Author>,
    #[serde(deserialize_with = "bounded")]
    pub(super) pull: Vec<PulledCase>,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    pub(super) more: bool,
    pub(super) reset: bool,
    #[serde(deserialize_with = "bounded")]
    pub(super) erased: Vec<String>,
    pub(super) erasures_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) removed: Vec<String>,
    pub(super) removals_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) forms: Vec<FormUpdate>,
    pub(super) forms_cursor: u64,
}

impl From<SyncResponseV5> for SyncResponseV6 {
    fn from(old: SyncResponseV5) -> Self {
        SyncResponseV6 {
            version: old.version,
            accepted: old.accepted,
            refused: old.refused,
            authors: old.authors,
            pull: old.pull,
            cursor: old.cursor,
            mark: old.mark,
            more: old.more,
            reset: old.reset,
            erased: old.erased,
            erasures_cursor: old.erasures_cursor,
            removed: old.removed,
            removals_cursor: old.removals_cursor,
            forms: old.forms,
            forms_cursor: old.forms_cursor,
            own: Vec::new(),
        }
    }
}

/// A version 6 response: a version 7 one without documents.
#[derive(Deserialize)]
pub(super) struct SyncResponseV6 {
    pub(super) version: u16,
    #[serde(deserialize_with = "bounded")]
    pub(super) accepted: Vec<String>,
    #[serde(deserialize_with = "bounded")]
    pub(super) refused: Vec<Refusal>,
    #[serde(deserialize_with = "bounded")]
    pub(super) authors: Vec<Author>,
    #[serde(deserialize_with = "bounded")]
    pub(super) pull: Vec<PulledCase>,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    pub(super) more: bool,
    pub(super) reset: bool,
    #[serde(deserialize_with = "bounded")]
    pub(super) erased: Vec<String>,
    pub(super) erasures_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) removed: Vec<String>,
    pub(super) removals_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) forms: Vec<FormUpdate>,
    pub(super) forms_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) own: Vec<OwnChange>,
}

impl From<SyncResponseV6> for SyncResponse {
    fn from(old: SyncResponseV6) -> Self {
        SyncResponse {
            version: old.version,
            accepted: old.accepted,
            refused: old.refused,
            authors: old.authors,
            pull: old.pull,
            cursor: old.cursor,
            mark: old.mark,
            more: old.more,
            reset: old.reset,
            erased: old.erased,
            erasures_cursor: old.erasures_cursor,
            removed: old.removed,
            removals_cursor: old.removals_cursor,
            forms: old.forms,
            forms_cursor: old.forms_cursor,
            own: old.own,
            documents: Vec::new(),
            settings: Vec::new(),
        }
    }
}

/// A version 7 or 8 response: a version 9 one without the programme's outcome settings.
#[derive(Deserialize)]
pub(super) struct SyncResponseV8 {
    pub(super) version: u16,
    #[serde(deserialize_with = "bounded")]
    pub(super) accepted: Vec<String>,
    #[serde(deserialize_with = "bounded")]
    pub(super) refused: Vec<Refusal>,
    #[serde(deserialize_with = "bounded")]
    pub(super) authors: Vec<Author>,
    #[serde(deserialize_with = "bounded")]
    pub(super) pull: Vec<PulledCase>,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    pub(super) more: bool,
    pub(super) reset: bool,
    #[serde(deserialize_with = "bounded")]
    pub(super) erased: Vec<String>,
    pub(super) erasures_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) removed: Vec<String>,
    pub(super) removals_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) forms: Vec<FormUpdate>,
    pub(super) forms_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) own: Vec<OwnChange>,
    #[serde(deserialize_with = "bounded")]
    pub(super) documents: Vec<PulledDocument>,
}

impl From<SyncResponseV8> for SyncResponse {
    fn from(old: SyncResponseV8) -> Self {
        SyncResponse {
            version: old.version,
            accepted: old.accepted,
            refused: old.refused,
            authors: old.authors,
            pull: old.pull,
            cursor: old.cursor,
            mark: old.mark,
            more: old.more,
            reset: old.reset,
            erased: old.erased,
            erasures_cursor: old.erasures_cursor,
            removed: old.removed,
            removals_cursor: old.removals_cursor,
            forms: old.forms,
            forms_cursor: old.forms_cursor,
            own: old.own,
            documents: old.documents,
            settings: Vec::new(),
        }
    }
}

/// A version 4 response: a version 5 one without its forms.
#[derive(Deserialize)]
pub(super) struct SyncResponseV4 {
    pub(super) version: u16,
    #[serde(deserialize_with = "bounded")]
    pub(super) accepted: Vec<String>,
    #[serde(deserialize_with = "bounded")]
    pub(super) refused: Vec<Refusal>,
    #[serde(deserialize_with = "bounded")]
    pub(super) authors: Vec<Author>,
    #[serde(deserialize_with = "bounded")]
    pub(super) pull: Vec<PulledCase>,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    pub(super) more: bool,
    pub(super) reset: bool,
    #[serde(deserialize_with = "bounded")]
    pub(super) erased: Vec<String>,
    pub(super) erasures_cursor: u64,
    #[serde(deserialize_with = "bounded")]
    pub(super) removed: Vec<String>,
    pub(super) removals_cursor: u64,
}

/// A version 3 response: a version 4 one without its removals.
#[derive(Deserialize)]
pub(super) struct SyncResponseV3 {
    pub(super) version: u16,
    #[serde(deserialize_with = "bounded")]
    pub(super) accepted: Vec<String>,
    #[serde(deserialize_with = "bounded")]
    pub(super) refused: Vec<Refusal>,
    #[serde(deserialize_with = "bounded")]
    pub(super) authors: Vec<Author>,
    #[serde(deserialize_with = "bounded")]
    pub(super) pull: Vec<PulledCase>,
    pub(super) cursor: u64,
    pub(super) mark: serde_bytes::ByteBuf,
    pub(super) more: bool,
    pub(super) reset: bool,
    #[serde(deserialize_with = "bounded")]
    pub(super) erased: Vec<String>,
    pub(super) erasures_cursor: u64,
}

impl From<SyncResponseV3> for SyncResponseV4 {
    fn from(old: SyncResponseV3) -> Self {
        SyncResponseV4 {
            version: old.version,
            accepted: old.accepted,
            refused: old.refused,
            authors: old.authors,
            pull: old.pull,
            cursor: old.cursor,
            mark: old.mark,
            more: old.more,
            reset: old.reset,
            erased: old.erased,
            erasures_cursor: old.erasures_cursor,
            removed: Vec::new(),
            removals_cursor: 0,
        }
    }
}

impl From<SyncResponseV4> for SyncResponseV5 {
    fn from(old: SyncResponseV4) -> Self {
        SyncResponseV5 {
            version: old.version,
            accepted: old.accepted,
            refused: old.refused,
            authors: old.authors,
            pull: old.pull,
            cursor: old.cursor,
            mark: old.mark,
            more: old.more,
            reset: old.reset,
            erased: old.erased,
            erasures_cursor: old.erasures_cursor,
            removed: old.removed,
            removals_cursor: old.removals_cursor,
            forms: Vec::new(),
            forms_cursor: 0,
        }
    }
}

/// Decodes a sync response from a server of any version this device reads: a version 3
/// server's has no removals, a version 4 server's no forms, a version 6 server's no documents.
pub fn decode_response(body: &[u8]) -> Result<SyncResponse> {
    let v6 = match peek_version(body)? {
        9.. => return decode(body),
        7 | 8 => return Ok(decode::<SyncResponseV8>(body)?.into()),
        6 => decode::<SyncResponseV6>(body)?,
        5 => decode::<SyncResponseV5>(body)?.into(),
        4 => SyncResponseV5::from(decode::<SyncResponseV4>(body)?).into(),
        _ => SyncResponseV5::from(SyncResponseV4::from(decode::<SyncResponseV3>(body)?)).into(),
    };
    Ok(v6.into())
}
