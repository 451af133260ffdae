//! Databases made by release 6907a7b (the last before the house move of issue 26), opened by
//! today's code: nothing recorded moves, and the console's projections, which a migration may
//! extend and mark for rebuilding, rebuild to the release's rows (in the release's columns). The server's SQLite data directory, the three phones of
//! its demo and a PostgreSQL dump of the same data (`tests/fixtures/release-6907a7b/make.sh`
//! made them with that release's own binary) are read raw before today's code opens them and
//! again after it has opened, checked and served them, and every row is compared.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use suivi_core::sync::HttpTransport;
use suivi_core::Store;
use suivi_server::at_rest::{self, KeySource};
use suivi_server::service::SyncService;
use suivi_server::storage::ServerStore;

const RELEASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/release-6907a7b");
/// The key the release's demo gave its phones' stores.
const PHONE_KEY: &str = "demo key: the Android app keeps its key in the Keystore";
const PHONES: [&str; 3] = ["tecno-amina", "itel-youssef", "samsung-fatima"];

/// Every table's rows, each row as JSON text, sorted: a table compares whole, whatever its
/// order on disk.
type Rows = BTreeMap<String, Vec<String>>;

fn value_text(value: rusqlite::types::ValueRef<'_>) -> serde_json::Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => x.into(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => format!("x'{}'", hex::encode(b)).into(),
    }
}

/// Every row of an SQLCipher database, read with a plain connection (no code of ours).
fn sqlite_rows(path: &Path, key: &str) -> Rows {
    suivi_core::store::sqlcipher::initialise().unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "key", key).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut out = Rows::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let row: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (name.clone(), value_text(r.get_ref(i).unwrap())))
                    .collect();
                Ok(serde_json::Value::Object(row).to_string())
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// Every row of every table of a PostgreSQL database, as PostgreSQL writes it in JSON.
fn postgres_rows(url: &str) -> Rows {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Rows::new();
    for table in tables {
        let mut rows: Vec<String> = client
            .query(
                &format!("SELECT row_to_json(t)::text FROM public.\"{table}\" t"),
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// The tables whose rows differ, with the rows only one side holds.
fn differences(before: &Rows, after: &Rows) -> Vec<(String, Vec<String>, Vec<String>)> {
    let tables: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    tables
        .into_iter()
        .filter_map(|t| {
            let (b, a) = (
                before.get(t).cloned().unwrap_or_default(),
                after.get(t).cloned().unwrap_or_default(),
            );
            let gone: Vec<String> = b.iter().filter(|r| !a.contains(r)).cloned().collect();
            let new: Vec<String> = a.iter().filter(|r| !b.contains(r)).cloned().collect();
            (!gone.is_empty() || !new.is_empty()).then(|| (t.clone(), gone, new))
        })
        .collect()
}

/// The console's projections: derived from the stored changes, rebuilt by the server when a
/// migration marks them stale. A migration may add to them and mark them; the recorded data
/// (changes, feed, audit, cases, devices, users...) it never touches.
const PROJECTIONS: [&str; 5] = [
    "case_summaries",
    "case_indicators",
    "referral_summaries",
    "case_search_terms",
    "case_records",
];

/// Differences that are not a migration's own business: a projection marked stale or given a
/// column, and PostgreSQL's schema version, are; anything else is not.
fn recorded_differences(before: &Rows, after: &Rows) -> Vec<(String, Vec<String>, Vec<String>)> {
    differences(before, after)
        .into_iter()
        .filter(|(table, _, _)| !PROJECTIONS.contains(&table.as_str()) && table != "suivi_schema")
        .collect()
}

/// Name keys (`suivi_core::names`), which today's rules derive otherwise than the release's
/// (issue 27 evened out C/K, C/S, ou/w, dj/j): a case's search terms are compared as the case
/// having some, its duplicate key left out.
const NAME_KEY_COLUMNS: [(&str, &str); 2] =
    [("case_search_terms", "term"), ("case_summaries", "dup_key")];

/// Today's rows in the release's shape: tables it had, columns it had (a column added by a
/// migration left out, name keys left out), and no schema version (a migration's own record).
fn in_release_shape(release: &Rows, today: &Rows) -> Rows {
    let mut out = Rows::new();
    for (table, rows) in today {
        let Some(theirs) = release.get(table) else {
            continue;
        };
        if table == "suivi_schema" {
            out.insert(table.clone(), theirs.clone());
            continue;
        }
        let template: Option<serde_json::Value> =
            theirs.first().map(|r| serde_json::from_str(r).unwrap());
        let mut shaped: Vec<String> = rows
            .iter()
            .map(|row| {
                let mut value: serde_json::Value = serde_json::from_str(row).unwrap();
                if let (serde_json::Value::Object(cells), Some(serde_json::Value::Object(t))) =
                    (&mut value, &template)
                {
                    cells.retain(|k, _| {
                        t.contains_key(k) && !NAME_KEY_COLUMNS.contains(&(table.as_str(), k))
                    })
                }
                value.to_string()
            })
            .collect();
        shaped.sort();
        shaped.dedup();
        out.insert(table.clone(), shaped);
    }
    out
}

fn database_key(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    let hex = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("database-key"))
        .and_then(|l| l.trim().strip_prefix('='))
        .unwrap()
        .trim();
    format!("x'{hex}'")
}

/// A copy of the release's server: its data directory and key file side by side.
struct Site {
    _root: tempfile::TempDir,
    data: PathBuf,
    key_file: PathBuf,
}

fn server_site() -> Site {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(
        Path::new(RELEASE).join("suivi-server.db"),
        data.join(suivi_server::DATABASE_FILE),
    )
    .unwrap();
    let key_file = root.path().join("data.key");
    std::fs::copy(Path::new(RELEASE).join("server.key"), &key_file).unwrap();
    // The key file is private, as the server made it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    Site {
        _root: root,
        data,
        key_file,
    }
}

/// A copy of one of the release's phones.
fn phone(name: &str, dir: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.db"));
    std::fs::copy(Path::new(RELEASE).join(format!("{name}.db")), &path).unwrap();
    path
}

fn heads_of(store: &Store, case_id: &str) -> Vec<automerge::ChangeHash> {
    let mut heads = store.load_doc(case_id).unwrap().unwrap().heads();
    heads.sort();
    heads
}

/// What today's code must find in a release's server: every stored case passes today's rules,
/// the feed's and the audit log's chains hold, and today's projection of every case, rebuilt,
/// reads as the one the release stored (as the console lists it: on PostgreSQL the names are
/// sealed with a fresh nonce at each write, so their bytes differ). Returns how many cases.
fn check_with_todays_code(
    store: Arc<dyn ServerStore>,
    codes: suivi_server::auth::CodeKey,
) -> usize {
    let service = SyncService::new(store.clone(), codes);
    assert_eq!(service.check_stored_cases().unwrap(), Vec::new());
    let report = suivi_server::evidence::verify(store.as_ref(), Path::new("/nonexistent")).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.changes > 0 && report.audit_rows > 0, "{report:?}");
    let cases = store.case_ids().unwrap();
    let listed = |id: &String| format!("{:?}", store.listed_case(id).unwrap().unwrap());
    let before: Vec<String> = cases.iter().map(listed).collect();
    service.rebuild_summaries(&cases).unwrap();
    let after: Vec<String> = cases.iter().map(listed).collect();
    assert_eq!(before, after, "today's projections are the release's");
    cases.len()
}

/// The heads of a case as the server holds it.
fn server_heads(store: &dyn ServerStore, case_id: &str) -> Vec<automerge::ChangeHash> {
    let mut doc = automerge::AutoCommit::new();
    let changes: Vec<automerge::Change> = store
        .case_changes(case_id)
        .unwrap()
        .into_iter()
        .map(|raw| automerge::Change::from_bytes(raw).unwrap())
        .collect();
    doc.apply_changes(changes).unwrap();
    let mut heads = doc.get_heads();
    heads.sort();
    heads
}

/// The sealed column of a PostgreSQL projection left out: its bytes change at every write.
fn unsealed(mut rows: Rows) -> Rows {
    if let Some(summaries) = rows.get_mut("case_summaries") {
        for row in summaries.iter_mut() {
            let mut value: serde_json::Value = serde_json::from_str(row).unwrap();
            value.as_object_mut().unwrap().remove("shown");
            *row = value.to_string();
        }
        summaries.sort();
    }
    rows
}

/// The release's SQLite server, opened by today's `at_rest::open` (migrations, journals), its
/// cases checked and re-projected by today's code, then served to the release's three phones,
/// each opened by today's `Store::open` and synced: no row of the server's data moves, and
/// every phone keeps every case it held, at the same heads.
#[test]
fn the_releases_server_and_phones_open_and_sync_with_nothing_moved() {
    let site = server_site();
    let db = site.data.join(suivi_server::DATABASE_FILE);
    let key = database_key(&site.key_file);
    let before = sqlite_rows(&db, &key);
    assert_eq!(
        before["changes"].len(),
        10,
        "the release's demo data is there"
    );

    let opened = at_rest::open(&site.data, &KeySource::File(site.key_file.clone())).unwrap();
    assert_eq!(
        recorded_differences(&before, &sqlite_rows(&db, &key)),
        Vec::new(),
        "opening moved nothing recorded"
    );
    let cases = check_with_todays_code(opened.store.clone(), opened.codes.clone());
    let after = sqlite_rows(&db, &key);
    assert_eq!(
        differences(
            &in_release_shape(&before, &before),
            &in_release_shape(&before, &after)
        ),
        Vec::new(),
        "today's projection of each of the {cases} cases is the release's, row for row"
    );
    assert_eq!(
        after["case_records"].len(),
        cases,
        "each case's records projected for exports"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(suivi_server::spawn(
            suivi_server::state(opened.store.clone(), opened.codes.clone()),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let url = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    for name in PHONES {
        let path = phone(name, dir.path());
        let raw = sqlite_rows(&path, PHONE_KEY);
        let mut store = Store::open(&path, PHONE_KEY).unwrap();
        let opened_rows = sqlite_rows(&path, PHONE_KEY);
        // What the release stored is as it was; a migration may only add (the search keys of
        // schema 8, derived from each row's own names, and an empty drafts table).
        assert_eq!(
            differences(&raw, &in_release_shape(&raw, &opened_rows)),
            Vec::new(),
            "{name}: opening moved nothing"
        );
        assert!(
            opened_rows["cases"].iter().all(|row| {
                let cells: serde_json::Value = serde_json::from_str(row).unwrap();
                cells["name_terms"]
                    .as_str()
                    .is_some_and(|t| t.trim().len() >= 3)
            }),
            "{name}: every case's search keys filled at opening"
        );
        let held: Vec<(String, Vec<automerge::ChangeHash>)> = store
            .list_cases(&Default::default())
            .unwrap()
            .into_iter()
            .map(|row| {
                let heads = heads_of(&store, &row.case_id);
                (row.case_id, heads)
            })
            .collect();
        assert!(!held.is_empty(), "{name} held cases");
        let report = store
            .sync(&HttpTransport::new(&url).unwrap(), &mut |_| {})
            .unwrap();
        assert!(report.refused.is_empty(), "{name}: {report:?}");
        assert!(report.quarantined.is_empty(), "{name}: {report:?}");
        assert_eq!(report.cases_up, 0, "{name} had pushed everything");
        // Nothing the phone held is lost (each case still holds every change it had), and
        // every case it holds now is the server's, head for head (what the release's demo
        // stored after this phone's last sync arrives).
        for (case_id, heads) in &held {
            let mut doc = store.load_doc(case_id).unwrap().unwrap();
            for head in heads {
                assert!(
                    doc.automerge().get_change_by_hash(head).is_some(),
                    "{name}: {case_id} lost {head}"
                );
            }
        }
        for row in store.list_cases(&Default::default()).unwrap() {
            assert_eq!(
                heads_of(&store, &row.case_id),
                server_heads(opened.store.as_ref(), &row.case_id),
                "{name}: {}",
                row.case_id
            );
        }
    }
    server.handle.abort();
    // The server recorded each phone's sync on its device row; nothing else moved.
    let now = in_release_shape(&before, &sqlite_rows(&db, &key));
    for (table, gone, new) in differences(&in_release_shape(&before, &before), &now) {
        assert_eq!(table, "devices", "gone {gone:?}, new {new:?}");
        assert_eq!(gone.len(), new.len(), "no device added or lost");
    }
}

/// The release's data moved to PostgreSQL by its own `migrate-store` and dumped: loaded into a
/// new database, opened by today's `at_rest::open_postgres`, checked and re-projected: no row
/// moves.
#[test]
fn the_releases_postgres_database_opens_with_nothing_moved() {
    let db = suivi_server::testing::TestDatabase::create();
    let dump = std::fs::read_to_string(Path::new(RELEASE).join("postgres.sql")).unwrap();
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    // pg_dump's psql meta-commands (`\restrict`) are for psql: the SQL around them is loaded.
    let sql: String = dump
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    client.batch_execute(&sql).unwrap();
    drop(client);
    let before = postgres_rows(&db.url);
    assert_eq!(
        before["changes"].len(),
        10,
        "the release's demo data is there"
    );

    let site = server_site();
    let opened =
        at_rest::open_postgres(&db.url, &site.data, &KeySource::File(site.key_file.clone()))
            .unwrap();
    assert_eq!(
        recorded_differences(&before, &postgres_rows(&db.url)),
        Vec::new(),
        "opening moved nothing recorded"
    );
    let cases = check_with_todays_code(opened.store.clone(), opened.codes.clone());
    let after = postgres_rows(&db.url);
    assert_eq!(
        differences(
            &unsealed(in_release_shape(&before, &before)),
            &unsealed(in_release_shape(&before, &after))
        ),
        Vec::new(),
        "today's projection of each of the {cases} cases is the release's, row for row"
    );
    assert_eq!(after["case_records"].len(), cases);
    drop(opened);
}
