//! Test support shared by this crate's tests and the end-to-end tests: a PostgreSQL database of
//! its own for each test, on the loopback cluster `tests/postgres.sh` starts.

use std::sync::OnceLock;

/// The cluster's URL: `SUIVI_TEST_POSTGRES`, or the cluster `tests/postgres.sh` starts (once per
/// test process). Panics with the reason when there is none: a test that needs PostgreSQL
/// fails, it never passes without it.
pub fn postgres_cluster() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("SUIVI_TEST_POSTGRES") {
            if !url.is_empty() {
                return url;
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/postgres.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .output()
            .unwrap_or_else(|e| panic!("running {script}: {e}"));
        assert!(
            out.status.success(),
            "{script} could not start the test cluster: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// A database made for one test and dropped after it.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let cluster = postgres_cluster();
        let name = format!("suivi_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(cluster, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test cluster: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        let base = cluster
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(cluster);
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(postgres_cluster(), postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
