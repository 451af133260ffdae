//! The sync service: authenticates devices, decides who may read and write which case, checks
//! every pushed change, and builds pull pages. Decisions are made here, once, for every storage
//! implementation: a plan is computed from what the store holds, then applied in one write.

use std::collections::HashSet;
use std::sync::Arc;

use automerge::sync::{Message, State, SyncDoc};
use automerge::{AutoCommit, Change, ReadDoc};
use suivi_core::sync::protocol::{
    self, CaseChanges, DocSyncRequest, DocSyncResponse, EnrollRequest, EnrollResponse, Refusal,
    RefusalReason, SyncRequest, SyncResponse, PROTOCOL_VERSION,
};

use crate::auth;
use crate::storage::{
    AcceptedCase, CaseAccess, Device, Role, ServerStore, StorageError, User, Viewer,
};

/// Raw change bytes read for one pull page before compression; trimmed if the compressed page
/// would exceed `PULL_PAGE_BYTES_MAX`. Case changes compress about 7:1 together, so read
/// enough to fill a page.
pub const PULL_PAGE_RAW_BYTES_MAX: usize = 16 * protocol::PULL_PAGE_BYTES_MAX;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("missing or invalid device credential")]
    Unauthorized,
    #[error("this device was revoked")]
    Revoked,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("storage failure")]
    Storage(#[from] StorageError),
    #[error("internal failure: {0}")]
    Internal(String),
}

/// A device that presented a valid credential, with its user.
#[derive(Debug, Clone)]
pub struct AuthedDevice {
    pub device: Device,
    pub user: User,
}

impl AuthedDevice {
    fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.user.user_id.clone(),
            role: self.user.role,
            team: self.user.team.clone(),
            device_id: self.device.device_id.clone(),
        }
    }
}

/// Caseload reads: an agent reads the cases it created or was assigned; a supervisor its team's;
/// officers and admins the whole project.
pub fn may_read(user: &User, case: &CaseAccess) -> bool {
    match user.role {
        Role::Agent => case.created_by == user.user_id || case.assignees.contains(&user.user_id),
        Role::Supervisor => case.team == user.team || case.assignees.contains(&user.user_id),
        Role::Officer | Role::Admin => true,
    }
}

/// Writes follow reads, except that officers audit and do not edit case records.
pub fn may_write(user: &User, case: &CaseAccess) -> bool {
    user.role != Role::Officer && may_read(user, case)
}

pub fn may_create(user: &User) -> bool {
    matches!(user.role, Role::Agent | Role::Supervisor | Role::Admin)
}

/// What a push leads to: the changes to store, and per case, accepted or refused.
struct PushPlan {
    to_store: Vec<AcceptedCase>,
    accepted: Vec<String>,
    refused: Vec<Refusal>,
}

/// The new changes of one case, or why the case is refused.
type ChangeCheck = Result<Vec<(String, Vec<u8>)>, RefusalReason>;

pub struct SyncService {
    store: Arc<dyn ServerStore>,
}

struct DecodedChange {
    hash: String,
    actor: String,
    deps: Vec<String>,
    raw: Vec<u8>,
}

fn decode_change(raw: &[u8]) -> Option<DecodedChange> {
    let change = Change::from_bytes(raw.to_vec()).ok()?;
    Some(DecodedChange {
        hash: change.hash().to_string(),
        actor: change.actor_id().to_hex_string(),
        deps: change.deps().iter().map(ToString::to_string).collect(),
        raw: raw.to_vec(),
    })
}

impl SyncService {
    pub fn new(store: Arc<dyn ServerStore>) -> SyncService {
        SyncService { store }
    }

    pub fn store(&self) -> &Arc<dyn ServerStore> {
        &self.store
    }

    /// Checks `Authorization: Bearer <device>.<token>`. A revoked device is refused unless
    /// `allow_revoked` (the wipe confirmation is the one thing it may still say).
    pub fn authenticate(
        &self,
        header: Option<&str>,
        allow_revoked: bool,
    ) -> Result<AuthedDevice, ServiceError> {
        let (device_id, token) = header
            .and_then(auth::parse_bearer)
            .ok_or(ServiceError::Unauthorized)?;
        let device = self
            .store
            .device(device_id)?
            .ok_or(ServiceError::Unauthorized)?;
        if !auth::token_matches(token, &device.token_hash) {
            return Err(ServiceError::Unauthorized);
        }
        if device.revoked && !allow_revoked {
            return Err(ServiceError::Revoked);
        }
        let user = self
            .store
            .user(&device.user_id)?
            .ok_or(ServiceError::Unauthorized)?;
        Ok(AuthedDevice { device, user })
    }

    pub fn enroll(
        &self,
        request: &EnrollRequest,
        now: i64,
    ) -> Result<EnrollResponse, ServiceError> {
        let actor_ok = request.actor.len() >= 16
            && request.actor.len() <= 64
            && request.actor.chars().all(|c| c.is_ascii_hexdigit());
        if !actor_ok || request.device_name.is_empty() || request.device_name.len() > 100 {
            return Err(ServiceError::BadRequest(
                "invalid actor or device name".into(),
            ));
        }
        let token = auth::new_token();
        let device = Device {
            device_id: auth::new_device_id(),
            user_id: String::new(),
            actor: request.actor.to_ascii_lowercase(),
            name: request.device_name.clone(),
            token_hash: auth::sha256_hex(&token),
            revoked: false,
            wiped: false,
        };
        let code_hash = auth::sha256_hex(&auth::normalise_code(&request.code));
        let user = match self
            .store
            .redeem_enrollment_code(&code_hash, &request.user, now, &device)
        {
            Ok(Some(user)) => user,
            Ok(None) => {
                return Err(ServiceError::Forbidden(
                    "unknown, used or expired enrollment code".into(),
                ))
            }
            Err(StorageError::Conflict(_)) => {
                return Err(ServiceError::BadRequest(
                    "this actor id is already enrolled".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(EnrollResponse {
            device_id: device.device_id,
            token,
            user: user.user_id,
            role: user.role.as_str().to_string(),
        })
    }

    pub fn confirm_wipe(&self, device: &AuthedDevice, now: i64) -> Result<(), ServiceError> {
        if device.device.revoked {
            self.store.confirm_wipe(&device.device.device_id, now)?;
        }
        Ok(())
    }

    /// One sync round trip: store what the device may push, then answer with the next page of
    /// its caseload.
    pub fn sync(
        &self,
        device: &AuthedDevice,
        body: &[u8],
        now: i64,
    ) -> Result<(Vec<u8>, SyncStats), ServiceError> {
        let request: SyncRequest =
            protocol::decode(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if request.version != PROTOCOL_VERSION {
            return Err(ServiceError::BadRequest(format!(
                "unsupported protocol version {}",
                request.version
            )));
        }
        if request.push.len() > protocol::PUSH_CASES_MAX {
            return Err(ServiceError::BadRequest(format!(
                "more than {} cases in one push",
                protocol::PUSH_CASES_MAX
            )));
        }
        let PushPlan {
            to_store: accepted_cases,
            accepted,
            refused,
        } = self.plan_push(device, &request.push)?;
        let stored = if accepted_cases.is_empty() {
            0
        } else {
            self.store
                .store_changes(&device.device.device_id, &accepted_cases, now)?
        };
        for refusal in &refused {
            let subject = format!("{} {:?}", refusal.case_id, refusal.reason);
            self.store
                .audit(now, &device.device.device_id, "push.refused", &subject)?;
        }
        let (body, pulled) = self.pull_page(device, request.cursor, accepted, refused.clone())?;
        Ok((
            body,
            SyncStats {
                changes_stored: stored,
                cases_refused: refused.len(),
                changes_pulled: pulled,
            },
        ))
    }

    /// Decides, case by case, what of a push is stored: nothing for a case the device may not
    /// write, nothing not authored by the device, nothing whose history the server lacks.
    fn plan_push(
        &self,
        device: &AuthedDevice,
        push: &[CaseChanges],
    ) -> Result<PushPlan, ServiceError> {
        let ids: Vec<String> = push.iter().map(|c| c.case_id.clone()).collect();
        let access = self.store.case_access(&ids)?;
        let mut accepted_cases = Vec::new();
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        let mut seen = HashSet::new();
        for case in push {
            let refuse = |reason| Refusal {
                case_id: case.case_id.clone(),
                reason,
            };
            if !valid_case_id(&case.case_id) || !seen.insert(case.case_id.clone()) {
                refused.push(refuse(RefusalReason::Malformed));
                continue;
            }
            if case.changes.len() > protocol::PUSH_CHANGES_PER_CASE_MAX {
                refused.push(refuse(RefusalReason::TooManyChanges));
                continue;
            }
            let existing = access.get(&case.case_id);
            let Some(changes) = case
                .changes
                .iter()
                .map(|c| decode_change(c))
                .collect::<Option<Vec<_>>>()
            else {
                refused.push(refuse(RefusalReason::Malformed));
                continue;
            };
            let allowed = match existing {
                Some(a) if may_write(&device.user, a) => true,
                // An officer reads the project and writes audit notes, nothing else.
                Some(a) if device.user.role == Role::Officer && may_read(&device.user, a) => {
                    self.only_audit_notes(&case.case_id, &changes)?
                }
                Some(_) => false,
                None => may_create(&device.user),
            };
            if !allowed {
                refused.push(refuse(RefusalReason::Forbidden));
                continue;
            }
            match self.check_changes(device, &case.case_id, changes, existing.is_none())? {
                Ok(new_changes) => {
                    accepted.push(case.case_id.clone());
                    if !new_changes.is_empty() {
                        accepted_cases.push(AcceptedCase {
                            case_id: case.case_id.clone(),
                            new_case: existing
                                .is_none()
                                .then(|| (device.user.user_id.clone(), device.user.team.clone())),
                            changes: new_changes,
                        });
                    }
                }
                Err(reason) => refused.push(refuse(reason)),
            }
        }
        Ok(PushPlan {
            to_store: accepted_cases,
            accepted,
            refused,
        })
    }

    /// Whether every op of these changes adds a note under the case's `audit_notes` map: a new
    /// map there, and values inside maps made by the same change.
    fn only_audit_notes(
        &self,
        case_id: &str,
        changes: &[DecodedChange],
    ) -> Result<bool, ServiceError> {
        let mut doc = AutoCommit::new();
        let stored: Vec<Change> = self
            .store
            .case_changes(case_id)?
            .into_iter()
            .filter_map(|raw| Change::from_bytes(raw).ok())
            .collect();
        doc.apply_changes(stored)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let Ok(Some((automerge::Value::Object(_), notes))) =
            doc.get(automerge::ROOT, "audit_notes")
        else {
            return Ok(false);
        };
        let notes = notes.to_string();
        for change in changes {
            let Ok(parsed) = Change::from_bytes(change.raw.clone()) else {
                return Ok(false);
            };
            let expanded = parsed.decode();
            let actor = expanded.actor_id.to_hex_string();
            let start = expanded.start_op.get();
            let mut made: Vec<String> = Vec::new();
            for (i, op) in expanded.operations.iter().enumerate() {
                let obj = match &op.obj {
                    automerge::legacy::ObjectId::Root => "_root".to_string(),
                    automerge::legacy::ObjectId::Id(id) => {
                        format!("{}@{}", id.counter(), id.actor().to_hex_string())
                    }
                };
                let is_new_note = obj == notes
                    && matches!(
                        op.action,
                        automerge::legacy::OpType::Make(automerge::ObjType::Map)
                    )
                    && op.pred.is_empty();
                let is_note_value =
                    made.contains(&obj) && matches!(op.action, automerge::legacy::OpType::Put(_));
                if !(is_new_note || is_note_value) {
                    return Ok(false);
                }
                if is_new_note {
                    made.push(format!("{}@{actor}", start + i as u64));
                }
            }
        }
        Ok(true)
    }

    /// The changes the server does not hold yet, if every one is the device's own and its
    /// dependencies are known.
    fn check_changes(
        &self,
        device: &AuthedDevice,
        case_id: &str,
        changes: Vec<DecodedChange>,
        new_case: bool,
    ) -> Result<ChangeCheck, ServiceError> {
        let mut lookup: Vec<String> = changes.iter().map(|c| c.hash.clone()).collect();
        lookup.extend(changes.iter().flat_map(|c| c.deps.iter().cloned()));
        let mut known = if new_case {
            HashSet::new()
        } else {
            self.store.known_changes(case_id, &lookup)?
        };
        let mut fresh = Vec::new();
        for change in changes {
            if known.contains(&change.hash) {
                continue;
            }
            if change.actor != device.device.actor {
                return Ok(Err(RefusalReason::WrongActor));
            }
            if !change.deps.iter().all(|d| known.contains(d)) {
                return Ok(Err(RefusalReason::MissingDeps));
            }
            known.insert(change.hash.clone());
            fresh.push((change.hash, change.raw));
        }
        Ok(Ok(fresh))
    }

    /// The next page of the device's caseload after `cursor`, at most `PULL_PAGE_BYTES_MAX`
    /// compressed.
    fn pull_page(
        &self,
        device: &AuthedDevice,
        cursor: u64,
        accepted: Vec<String>,
        refused: Vec<Refusal>,
    ) -> Result<(Vec<u8>, usize), ServiceError> {
        let page = self
            .store
            .feed_page(&device.viewer(), cursor, PULL_PAGE_RAW_BYTES_MAX)?;
        let mut rows = page.rows;
        let mut response = SyncResponse {
            version: PROTOCOL_VERSION,
            accepted,
            refused,
            pull: Vec::new(),
            cursor: page.cursor,
            more: page.more,
        };
        loop {
            response.pull = group_by_case(&rows);
            let body =
                protocol::encode(&response).map_err(|e| ServiceError::Internal(e.to_string()))?;
            if body.len() <= protocol::PULL_PAGE_BYTES_MAX || rows.len() <= 1 {
                return Ok((body, rows.len()));
            }
            // Too big once compressed: keep a proportional share of the rows and try again.
            let keep = (rows.len() * protocol::PULL_PAGE_BYTES_MAX * 9 / 10 / body.len())
                .clamp(1, rows.len() - 1);
            rows.truncate(keep);
            response.cursor = rows.last().map(|r| r.0).unwrap_or(cursor);
            response.more = true;
        }
    }

    /// The fallback: Automerge's own sync protocol for one case, with the same checks as a push.
    pub fn doc_sync(
        &self,
        device: &AuthedDevice,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, ServiceError> {
        let request: DocSyncRequest =
            protocol::decode(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if request.version != PROTOCOL_VERSION {
            return Err(ServiceError::BadRequest(format!(
                "unsupported protocol version {}",
                request.version
            )));
        }
        if !valid_case_id(&request.case_id) {
            return Err(ServiceError::BadRequest("invalid case id".into()));
        }
        let refuse = |reason| {
            protocol::encode(&DocSyncResponse {
                version: PROTOCOL_VERSION,
                message: None,
                refused: Some(reason),
            })
            .map_err(|e| ServiceError::Internal(e.to_string()))
        };
        let access = self
            .store
            .case_access(std::slice::from_ref(&request.case_id))?;
        let existing = access.get(&request.case_id);
        let may = match existing {
            Some(a) => may_write(&device.user, a),
            None => may_create(&device.user),
        };
        if !may {
            self.store.audit(
                now,
                &device.device.device_id,
                "docsync.refused",
                &format!("{} Forbidden", request.case_id),
            )?;
            return refuse(RefusalReason::Forbidden);
        }
        let mut doc = AutoCommit::new();
        let stored: Vec<Change> = self
            .store
            .case_changes(&request.case_id)?
            .into_iter()
            .filter_map(|raw| Change::from_bytes(raw).ok())
            .collect();
        doc.apply_changes(stored)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let before = doc.get_heads();
        let mut state = State::new();
        if !request.message.is_empty() {
            let message = Message::decode(&request.message)
                .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
            let mut scratch = doc.fork();
            if scratch
                .sync()
                .receive_sync_message(&mut state, message)
                .is_err()
            {
                return refuse(RefusalReason::Malformed);
            }
            let fresh = scratch.get_changes(&before);
            if fresh
                .iter()
                .any(|c| c.actor_id().to_hex_string() != device.device.actor)
            {
                self.store.audit(
                    now,
                    &device.device.device_id,
                    "docsync.refused",
                    &format!("{} WrongActor", request.case_id),
                )?;
                return refuse(RefusalReason::WrongActor);
            }
            if !fresh.is_empty() {
                let accepted = AcceptedCase {
                    case_id: request.case_id.clone(),
                    new_case: existing
                        .is_none()
                        .then(|| (device.user.user_id.clone(), device.user.team.clone())),
                    changes: fresh
                        .iter()
                        .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
                        .collect(),
                };
                self.store
                    .store_changes(&device.device.device_id, &[accepted], now)?;
            }
            doc = scratch;
        }
        let reply = doc.sync().generate_sync_message(&mut state);
        protocol::encode(&DocSyncResponse {
            version: PROTOCOL_VERSION,
            message: reply.map(|m| serde_bytes::ByteBuf::from(m.encode())),
            refused: None,
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

/// What one sync did, for the structured log (counts only: no case data).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncStats {
    pub changes_stored: usize,
    pub cases_refused: usize,
    pub changes_pulled: usize,
}

/// Case ids are 128-bit random ids in lowercase hex.
fn valid_case_id(id: &str) -> bool {
    id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())
}

fn group_by_case(rows: &[(u64, String, Vec<u8>)]) -> Vec<CaseChanges> {
    let mut out: Vec<CaseChanges> = Vec::new();
    for (_, case_id, raw) in rows {
        match out.last_mut() {
            Some(last) if &last.case_id == case_id => {
                last.changes.push(serde_bytes::ByteBuf::from(raw.clone()))
            }
            _ => out.push(CaseChanges {
                case_id: case_id.clone(),
                changes: vec![serde_bytes::ByteBuf::from(raw.clone())],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, role: Role, team: &str) -> User {
        User {
            user_id: id.into(),
            role,
            team: team.into(),
            password_hash: None,
        }
    }

    #[test]
    fn caseload_access_rules() {
        let case = CaseAccess {
            created_by: "amina".into(),
            team: "souk-sebt".into(),
            assignees: vec!["moussa".into()],
        };
        let amina = user("amina", Role::Agent, "souk-sebt");
        let moussa = user("moussa", Role::Agent, "sikasso");
        let other = user("karim", Role::Agent, "souk-sebt");
        let sup = user("fatima", Role::Supervisor, "souk-sebt");
        let far_sup = user("ali", Role::Supervisor, "sikasso");
        let officer = user("officer", Role::Officer, "project");
        assert!(may_write(&amina, &case) && may_write(&moussa, &case) && may_write(&sup, &case));
        assert!(
            !may_read(&other, &case),
            "same team is not enough for an agent"
        );
        assert!(!may_read(&far_sup, &case));
        assert!(may_read(&officer, &case) && !may_write(&officer, &case));
        assert!(!may_create(&officer) && may_create(&amina));
    }
}
