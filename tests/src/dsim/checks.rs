//! The quiet end and the invariants: nothing acknowledged lost, every phone converged to the server, every caseload as the policy grants it.

use super::*;

impl World {
    /// Whether a restore took the server back to before something happened to `case`: what
    /// was acknowledged since its backup comes back only from phones that still hold it.
    pub(super) fn rolled_back(&self, case: &str) -> bool {
        self.events.get(case).is_some_and(|steps| {
            steps.iter().any(|at| {
                self.restores
                    .iter()
                    .any(|(taken, restored)| taken <= at && at < restored)
            })
        })
    }

    /// The quiet end, then the invariants.
    pub(super) fn check(&mut self) -> Result<(), String> {
        self.faulty.set(false);
        self.deliver_delayed(true)?;
        for round in 0..6 {
            for phone in 0..self.phones.len() {
                self.sync(phone, &format!("quiet round {round}"))?;
            }
        }
        let service = self.service()?;
        let forms = service.forms();
        // 1. Nothing acknowledged is lost.
        let mut refused: BTreeSet<(usize, String)> = BTreeSet::new();
        for phone in 0..self.phones.len() {
            let store = self.store_of(phone)?;
            for r in store.refused_cases().map_err(|e| e.to_string())? {
                refused.insert((phone, r.case_id));
            }
            if store.unsynced_case_count().map_err(|e| e.to_string())? > 0
                && refused.iter().all(|(p, _)| *p != phone)
            {
                return Err(format!(
                    "phone {phone} still holds unsynced cases after the quiet end"
                ));
            }
        }
        let mut on_server: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (case, record, phone, _) in self.recorded.clone() {
            if self.erased.contains(&case) {
                continue;
            }
            // Refused by the server and shown so on a phone that still holds it, unsynced (a
            // restore from a backup older than the case: its other holders cannot push the
            // author's changes for it, and the author's phones may have removed it).
            if refused.iter().any(|(_, c)| *c == case) {
                self.tally.borrow_mut().records_refused += 1;
                continue;
            }
            self.tally.borrow_mut().records_checked += 1;
            if !on_server.contains_key(&case) {
                let held = service
                    .store()
                    .case_changes(&case)
                    .map(|c| c.len())
                    .unwrap_or(0);
                let document = match held {
                    0 => None,
                    _ => service.case_document(&case).map_err(|e| e.to_string())?,
                };
                let ids = match document {
                    Some(doc) => {
                        let mut ids = BTreeSet::from([case.clone()]);
                        let held = service
                            .store()
                            .case_changes(&case)
                            .map(|c| c.len())
                            .unwrap_or(0);
                        let read =
                            |e: Error| format!("case {case} on the server ({held} changes): {e}");
                        ids.extend(
                            doc.referrals(&forms)
                                .map_err(read)?
                                .into_iter()
                                .map(|r| r.id),
                        );
                        ids.extend(
                            doc.followups(&forms)
                                .map_err(read)?
                                .into_iter()
                                .map(|f| f.id),
                        );
                        ids
                    }
                    None => BTreeSet::new(),
                };
                on_server.insert(case.clone(), ids);
            }
            if !on_server[&case].contains(&record) {
                // The server was restored from a backup after this was recorded: what it
                // acknowledged since the backup comes back only from the phones that still
                // hold it, and a phone removes a case reassigned away once it is acknowledged.
                if self.rolled_back(&case) {
                    self.tally.borrow_mut().lost_to_restores += 1;
                    continue;
                }
                self.tally.borrow_mut().lost += 1;
                return Err(format!(
                    "record {record} of case {case}, recorded on phone {phone}, is not on the server"
                ));
            }
        }
        // 2 and 3. Every phone holds what the policy grants, as the server holds it.
        let ids = service.store().case_ids().map_err(|e| e.to_string())?;
        let access = service
            .store()
            .case_access(&ids)
            .map_err(|e| e.to_string())?;
        for phone in 0..self.phones.len() {
            let user = self.phones[phone].user.clone();
            let granted: BTreeSet<String> = ids
                .iter()
                .filter(|id| {
                    access.get(*id).is_some_and(|a| {
                        ReadScope::of(user.role).includes(&user.subject(), &a.ownership())
                    })
                })
                .cloned()
                .collect();
            let held: BTreeSet<String> = self.held_cases(phone)?.into_iter().collect();
            let refused_here: BTreeSet<String> = refused
                .iter()
                .filter(|(p, _)| *p == phone)
                .map(|(_, c)| c.clone())
                .collect();
            // A case the server refused stays on the phone, set aside with its reason.
            let mut extra: Vec<_> = held
                .difference(&granted)
                .filter(|c| !refused_here.contains(*c))
                .collect();
            let mut missing: Vec<_> = granted.difference(&held).collect();
            let undone = |case: &String| self.rolled_back(case);
            let gaps = missing
                .iter()
                .chain(extra.iter())
                .filter(|c| undone(c))
                .count() as u64;
            self.tally.borrow_mut().caseload_gaps_after_restores += gaps;
            missing.retain(|c| !undone(c));
            extra.retain(|c| !undone(c));
            if !extra.is_empty() || !missing.is_empty() {
                let owners: Vec<String> = extra
                    .iter()
                    .chain(missing.iter())
                    .map(|c| match access.get(*c) {
                        Some(a) => format!(
                            "{c}: {} of {}, assigned {:?}",
                            a.created_by, a.team, a.assignees
                        ),
                        None => format!("{c}: not on the server"),
                    })
                    .collect();
                return Err(format!(
                    "phone {phone} ({}) holds {extra:?} beyond its caseload and lacks {missing:?} ({})",
                    user.user_id,
                    owners.join("; ")
                ));
            }
            for case in held.intersection(&granted) {
                let mut server_doc = service
                    .case_document(case)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("case {case} does not load on the server"))?;
                let store = self.store_of(phone)?;
                let mut doc = store
                    .load_doc(case)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("case {case} does not load on phone {phone}"))?;
                let (mut here, mut there) = (doc.heads(), server_doc.heads());
                here.sort();
                there.sort();
                if here != there && !refused_here.contains(case) && !self.rolled_back(case) {
                    return Err(format!(
                        "phone {phone} and the server hold case {case} differently"
                    ));
                }
            }
        }
        Ok(())
    }
}
