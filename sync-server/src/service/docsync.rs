//! The per-document fallback (docsync): one case's whole history exchanged with a device.

use super::*;

impl SyncService {
    /// The fallback: Automerge's own sync protocol for one case, with the same checks as a push.
    pub fn doc_sync(
        &self,
        device: &AuthedDevice,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, ServiceError> {
        check_version(body)?;
        let request: DocSyncRequest =
            protocol::decode(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if !valid_case_id(&request.case_id) {
            return Err(ServiceError::BadRequest("invalid case id".into()));
        }
        let case_id = request.case_id.as_str();
        let forms = self.refresh_forms();
        let refuse = |reason, detail: &str| {
            protocol::encode(&DocSyncResponse {
                version: PROTOCOL_VERSION,
                message: None,
                refused: Some(Refusal::new(case_id, reason, detail)),
            })
            .map_err(|e| ServiceError::Internal(e.to_string()))
        };
        if self.store.is_erased(case_id)? {
            if !self.erasure_proven(case_id)? {
                return refuse(RefusalReason::Quarantined, "");
            }
            return refuse(RefusalReason::Erased, "");
        }
        let access = self
            .store
            .case_access(std::slice::from_ref(&request.case_id))?;
        let existing = access.get(case_id);
        // The same decision as a push: an officer's fallback carries audit notes only, and a
        // former owner's phone may still hand over what it recorded.
        let handover =
            existing.is_some() && self.store.in_handover(case_id, &device.user.user_id, now)?;
        let mode = self
            .write_mode(&device.user, existing)
            .or(handover.then_some(WriteMode::Write));
        let Some(mode) = mode else {
            self.audit_refusal(
                device,
                "docsync.refused",
                &format!("{case_id} forbidden"),
                now,
            )?;
            return refuse(RefusalReason::Forbidden, "");
        };
        if existing.is_some() && self.store.is_quarantined(case_id)? {
            return refuse(RefusalReason::Quarantined, "");
        }
        let stored = self.stored_changes(case_id)?;
        let stored_hashes: HashSet<ChangeHash> = stored.iter().map(Change::hash).collect();
        let mut doc = AutoCommit::new();
        doc.apply_changes(stored.clone())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut state = State::new();
        if !request.message.is_empty() {
            let Ok(Ok(message)) = std::panic::catch_unwind(|| Message::decode(&request.message))
            else {
                return Err(ServiceError::BadRequest(
                    "sync message does not decode".into(),
                ));
            };
            // Plain change chunks only, each checked like a pushed one: a whole document (a
            // version 2 message) could hold compressed columns of any size.
            let mut incoming = Vec::new();
            for chunk in message.changes.iter() {
                match check::parse_change(chunk) {
                    Ok(c) if !stored_hashes.contains(&c.hash()) => incoming.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        let (reason, detail) = refusal_of(&e);
                        return refuse(reason, &detail);
                    }
                }
            }
            if incoming
                .iter()
                .any(|c| c.actor_id().to_hex_string() != device.device.actor)
            {
                self.audit_refusal(
                    device,
                    "docsync.refused",
                    &format!("{case_id} wrong_actor"),
                    now,
                )?;
                return refuse(RefusalReason::WrongActor, "");
            }
            if !incoming.is_empty() {
                let Some(ordered) = causal_order(incoming, &stored_hashes) else {
                    return refuse(RefusalReason::MissingDeps, "");
                };
                let raw: Vec<(String, Vec<u8>)> = ordered
                    .iter()
                    .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
                    .collect();
                // The stored changes were read once, above, and serve the reply too.
                let change_count = (stored.len() + ordered.len()) as u64;
                let team = existing.map_or(device.user.team.as_str(), |a| a.team.as_str());
                let (checked, reassigned) = match self.validate(
                    device,
                    (case_id, team, now),
                    stored.clone(),
                    mode,
                    ordered.clone(),
                    &mut OpsBudget::new(forms.clone()),
                )? {
                    Ok(checked) => checked,
                    Err((reason, detail)) => return refuse(reason, &detail),
                };
                doc.apply_changes(ordered)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                let accepted = AcceptedCase {
                    case_id: case_id.to_string(),
                    new_case: existing
                        .is_none()
                        .then(|| (device.user.user_id.clone(), device.user.team.clone())),
                    changes: raw,
                    summary: summary::summarize(checked, change_count, &forms),
                };
                let mut allowance =
                    Allowance::today(self.store.as_ref(), &device.device.device_id, now)?;
                if let Err((reason, detail)) = allowance.take(&accepted) {
                    return refuse(reason, &detail);
                }
                self.store
                    .store_changes(&device.device.device_id, &[accepted], None, now)?;
                let raced = self.refresh_summaries_of(&[case_id.to_string()])?;
                let moves = reassigned.map(|to| (case_id.to_string(), to));
                self.apply_reassignments(&device.user, moves.into_iter().collect(), &raced, now)?;
            }
            // The message's own bookkeeping (heads, have, need) without its changes, which
            // were applied above.
            let mut bookkeeping = message;
            bookkeeping.changes = automerge::sync::ChunkList::empty();
            let synced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                doc.sync().receive_sync_message(&mut state, bookkeeping)
            }));
            if !matches!(synced, Ok(Ok(()))) {
                return refuse(RefusalReason::Malformed, "sync message");
            }
            state.their_capabilities = None;
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
