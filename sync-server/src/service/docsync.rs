//! The per-document fallback (docsync): one case's whole history exchanged with a device.

use super::*;

impl SyncService {
    /// The fallback: Automerge's own sync protocol for one case, through the same admission as
    /// a push (decided again if the case was written meanwhile).
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
        self.admitting(|| self.doc_sync_once(device, &request, now))
    }

    fn doc_sync_once(
        &self,
        device: &AuthedDevice,
        request: &DocSyncRequest,
        now: i64,
    ) -> Result<Vec<u8>, ServiceError> {
        let case_id = request.case_id.as_str();
        let refuse = |reason, detail: &str| {
            protocol::encode(&DocSyncResponse {
                version: PROTOCOL_VERSION,
                message: None,
                refused: Some(Refusal::new(case_id, reason, detail)),
            })
            .map_err(|e| ServiceError::Internal(e.to_string()))
        };
        let access = self
            .store
            .case_access(std::slice::from_ref(&request.case_id))?;
        let existing = access.get(case_id);
        // The same gate as a push: an officer's fallback carries audit notes only, and a
        // former owner's phone may still hand over what it recorded.
        let mut facts = self.case_facts(&device.user, case_id, existing, &[], None, now)?;
        let mode = match decision::gate(&device.user, &facts) {
            Ok(mode) => mode,
            Err((reason, detail)) => {
                if reason == RefusalReason::Forbidden {
                    self.audit_refusal(
                        device,
                        "docsync.refused",
                        &format!("{case_id} forbidden"),
                        now,
                    )?;
                }
                return refuse(reason, &detail);
            }
        };
        // Read once: the stored history serves the admission and the reply.
        let stored = self.stored_changes(case_id)?;
        let stored_hashes: HashSet<ChangeHash> = stored.iter().map(Change::hash).collect();
        facts.known = stored.iter().map(|c| c.hash().to_string()).collect();
        facts.stored = stored.clone();
        let mut doc = AutoCommit::new();
        doc.apply_changes(stored)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut state = State::new();
        if !request.message.is_empty() {
            let Ok(Ok(message)) = std::panic::catch_unwind(|| Message::decode(&request.message))
            else {
                return Err(ServiceError::BadRequest(
                    "sync message does not decode".into(),
                ));
            };
            // Plain change chunks only, each parsed under the bounds a pushed one is: a whole
            // document (a version 2 message) could hold compressed columns of any size.
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
            if !incoming.is_empty() {
                // A sync message carries changes in any order; admission takes them in the
                // order they apply.
                let Some(ordered) = causal_order(incoming, &stored_hashes) else {
                    return refuse(RefusalReason::MissingDeps, "");
                };
                let mut budget = self.budget();
                self.read_agents(&mut budget, &device.user.team)?;
                if let Some(existing) = existing {
                    self.read_agents(&mut budget, &existing.team)?;
                }
                let allowance =
                    Allowance::today(self.store.as_ref(), &device.device.device_id, now)?;
                let decided = decision::admit(
                    device,
                    case_id,
                    facts,
                    mode,
                    ordered.clone(),
                    &mut budget,
                    now,
                )
                .and_then(|checked| match checked {
                    Some(checked) => {
                        let mut allowance = allowance;
                        allowance.take(&checked.case).map(|()| Some(checked))
                    }
                    None => Ok(None),
                });
                let checked = match decided {
                    Ok(checked) => checked,
                    Err((reason, detail)) => {
                        if reason == RefusalReason::WrongActor {
                            self.audit_refusal(
                                device,
                                "docsync.refused",
                                &format!("{case_id} wrong_actor"),
                                now,
                            )?;
                        }
                        return refuse(reason, &detail);
                    }
                };
                if let Some(checked) = checked {
                    let mut admitted = Admitted::default();
                    if decision::writes_in_handover(&device.user, existing) {
                        admitted
                            .removals
                            .push((device.user.user_id.clone(), case_id.to_string()));
                    }
                    admitted.add(checked);
                    self.write_admitted(device, &admitted, None, now)?;
                }
                doc.apply_changes(ordered)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
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
