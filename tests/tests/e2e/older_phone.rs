//! A phone of the previous protocol (version 6) beside a current one, against one server. The
//! previous response layout is copied here (not a whole previous build: CI has two cores), and
//! the older phone's sync is driven by hand as that build did it: push what it wrote, pull
//! pages in the layout it reads, apply them. Both phones converge on the server's history.

use std::collections::BTreeMap;

use serde::Deserialize;
use suivi_core::forms::FormRegistry;
use suivi_core::sync::protocol::{
    self, Author, CaseChanges, FormUpdate, OwnChange, PulledCase, Refusal, SyncRequest,
    CONTENT_TYPE,
};
use suivi_core::sync::{Credentials, HttpTransport, Transport};
use suivi_core::{CaseDoc, ChangeContext};
use suivi_server::storage::Role;
use suivi_tests::{child, record, visit, TestServer};

/// Protocol version 6's response, as that build decoded it: the types it holds are unchanged
/// since; version 7 appended `documents`.
#[derive(Deserialize)]
#[allow(dead_code)] // Decoded whole, as the previous build did; the test reads a few fields.
struct SyncResponseV6 {
    version: u16,
    accepted: Vec<String>,
    refused: Vec<Refusal>,
    authors: Vec<Author>,
    pull: Vec<PulledCase>,
    cursor: u64,
    mark: serde_bytes::ByteBuf,
    more: bool,
    reset: bool,
    erased: Vec<String>,
    erasures_cursor: u64,
    removed: Vec<String>,
    removals_cursor: u64,
    forms: Vec<FormUpdate>,
    forms_cursor: u64,
    own: Vec<OwnChange>,
}

/// The older phone: its credential and actor, and the cases it holds as documents.
struct OlderPhone {
    transport: HttpTransport,
    credentials: Credentials,
    actor: automerge::ActorId,
    user: String,
    cursor: u64,
    mark: serde_bytes::ByteBuf,
    cases: BTreeMap<String, CaseDoc>,
}

impl OlderPhone {
    fn enrolled(server: &TestServer, user: &str) -> OlderPhone {
        // Enrolled as any phone is (enrollment has not changed); synced by hand after.
        let device = server.device(user);
        OlderPhone {
            transport: HttpTransport::new(&server.url()).unwrap(),
            credentials: device.store.credentials().unwrap(),
            actor: automerge::ActorId::from(hex::decode(&device.store.identity().actor).unwrap()),
            user: user.into(),
            cursor: 0,
            mark: Default::default(),
            cases: BTreeMap::new(),
        }
    }

    /// One sync as the version 6 build ran it: every case it holds pushed, pages pulled until
    /// none is left.
    fn sync(&mut self) {
        let mut push: Vec<CaseChanges> = self
            .cases
            .iter_mut()
            .map(|(id, doc)| suivi_tests::case_changes(id, doc.changes_since(&[])))
            .collect();
        loop {
            let request = SyncRequest {
                version: 6,
                cursor: self.cursor,
                mark: self.mark.clone(),
                ..SyncRequest::pushing(0, std::mem::take(&mut push))
            };
            let reply = self
                .transport
                .post(
                    "/v1/sync",
                    CONTENT_TYPE,
                    protocol::encode(&request).unwrap(),
                    Some(&self.credentials),
                )
                .unwrap();
            assert_eq!(
                reply.status,
                200,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(protocol::peek_version(&reply.body).unwrap(), 6);
            let page: SyncResponseV6 = protocol::decode(&reply.body).unwrap();
            assert!(page.refused.is_empty(), "{:?}", page.refused);
            for case in page.pull {
                let raw: Vec<Vec<u8>> = case.changes.iter().map(|c| c.data.to_vec()).collect();
                self.cases
                    .entry(case.case_id.clone())
                    .or_insert_with(|| CaseDoc::empty(self.actor.clone()))
                    .apply_changes(&raw)
                    .unwrap();
            }
            self.cursor = page.cursor;
            self.mark = page.mark;
            if !page.more {
                return;
            }
        }
    }

    fn edit(&mut self, case: &str, patch: serde_json::Value) {
        let ctx = ChangeContext::now(self.user.clone());
        self.cases
            .get_mut(case)
            .unwrap()
            .edit_identification(&FormRegistry::builtin(), &record(patch), &ctx)
            .unwrap();
    }
}

#[test]
fn a_phone_of_the_previous_protocol_and_a_current_one_converge() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let mut amina = server.device("amina");
    for i in 0..30 {
        let case = amina.store.create_case(&child(i)).unwrap();
        amina.store.add_followup(&case, &visit(i)).unwrap();
    }
    amina.sync().unwrap();
    let cases = amina.case_ids();

    // The older phone's first sync: every case, as changes in the layout it reads.
    let mut fatima = OlderPhone::enrolled(&server, "fatima");
    fatima.sync();
    assert_eq!(fatima.cases.keys().cloned().collect::<Vec<_>>(), cases);

    // Both write offline, then sync in turn.
    fatima.edit(&cases[0], serde_json::json!({"village": "Kadiolo"}));
    amina
        .store
        .edit_case(&cases[1], &record(serde_json::json!({"village": "Zégoua"})))
        .unwrap();
    amina.store.add_followup(&cases[0], &visit(40)).unwrap();
    fatima.sync();
    amina.sync().unwrap();
    fatima.sync();
    for case in &cases {
        let mut older = fatima.cases.get_mut(case).unwrap().heads();
        older.sort();
        assert_eq!(older, amina.case_heads(case), "{case}");
        assert_eq!(older, server.case_heads(case), "{case}");
    }
    assert_eq!(
        amina.store.case(&cases[0]).unwrap().identification["village"],
        "Kadiolo"
    );
    // A current phone enrolled now gets the same cases as documents.
    let mut nadia = {
        server.add_user("nadia", Role::Supervisor, "sikasso");
        server.device("nadia")
    };
    assert!(nadia.sync().unwrap().documents_down > 0);
    for case in &cases {
        assert_eq!(nadia.case_heads(case), amina.case_heads(case));
    }
}
