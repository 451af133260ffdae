//! The console in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver) by fantoccini, against a real server that devices sync to. Set
//! SUIVI_SCREENSHOTS to a directory to keep screenshots of the main pages (docs/ holds them).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value as Json};
use suivi_tests::{child, TestServer};

use crate::console::{
    a_conflict_made_on_two_phones, same_child_twice, two_teams, HOSTILE_FIRST, HOSTILE_LAST,
    PASSWORD,
};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium session, its chromedriver, and a runtime to drive it from a test.
struct Browser {
    client: Option<Client>,
    driver: Child,
    runtime: tokio::runtime::Runtime,
    base: String,
    _profile: tempfile::TempDir,
    /// Where downloads land.
    downloads: tempfile::TempDir,
}

impl Browser {
    fn open(server: &TestServer) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver (.ci/setup installs them)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // As root, Chromium needs --no-sandbox; the background-networking flags keep it from
        // calling out of this closed machine.
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,860", "--lang=fr",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let client = runtime
            .block_on(async {
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
            })
            .expect("a Chromium session");
        Browser {
            client: Some(client),
            driver,
            runtime,
            base: server.url(),
            _profile: profile,
            downloads,
        }
    }

    /// Clicks a download link and waits for the file to be whole: its bytes.
    fn download(&self, css: &str, name_starts: &str) -> Vec<u8> {
        self.runtime
            .block_on(async { self.client().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        let started = Instant::now();
        loop {
            // Whole: no partial download left, and the file named as asked, not empty.
            let names: Vec<std::path::PathBuf> = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            let partial = names
                .iter()
                .any(|p| p.to_string_lossy().ends_with(".crdownload"));
            let done = names.iter().find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(name_starts)
            });
            if let (false, Some(path)) = (partial, done) {
                let bytes = std::fs::read(path).unwrap();
                if !bytes.is_empty() {
                    return bytes;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{css}: nothing downloaded"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(self.client().goto(&url)).unwrap();
    }

    fn path(&self) -> String {
        let url = self.runtime.block_on(self.client().current_url()).unwrap();
        url.path().to_string()
    }

    fn text(&self, css: &str) -> String {
        self.runtime
            .block_on(async { self.client().find(Locator::Css(css)).await?.text().await })
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    fn texts(&self, css: &str) -> Vec<String> {
        self.runtime.block_on(async {
            let mut out = Vec::new();
            for e in self.client().find_all(Locator::Css(css)).await.unwrap() {
                out.push(e.text().await.unwrap());
            }
            out
        })
    }

    fn script(&self, js: &str) -> Json {
        self.runtime
            .block_on(self.client().execute(js, vec![]))
            .unwrap()
    }

    /// Clicks a link or a submit button and waits for the next page to have loaded: a
    /// marker set on this page must be gone (every click here navigates).
    fn click(&self, css: &str) {
        self.script("window.__suivi_previous_page = true; return 0");
        self.runtime
            .block_on(async { self.client().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        let started = Instant::now();
        loop {
            let loaded = self.runtime.block_on(self.client().execute(
                "return window.__suivi_previous_page === undefined && document.readyState === 'complete'",
                vec![],
            ));
            if matches!(loaded, Ok(Json::Bool(true))) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{css}: no page loaded"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn fill(&self, css: &str, text: &str) {
        self.runtime
            .block_on(async {
                let field = self.client().find(Locator::Css(css)).await?;
                field.clear().await?;
                field.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("{css}: {e}"));
    }

    fn sign_in(&self, user: &str, password: &str) {
        self.goto("/console/login");
        self.fill("input[name=user]", user);
        self.fill("input[name=password]", password);
        self.click("form.login button");
    }

    /// The window's width in CSS pixels (a phone's is 390).
    fn set_width(&self, width: u32) {
        self.runtime
            .block_on(self.client().set_window_size(width, 860))
            .unwrap();
    }

    /// Keeps a screenshot of the page when SUIVI_SCREENSHOTS names a directory.
    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SUIVI_SCREENSHOTS") else {
            return;
        };
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Two agents' phones record children (one with a hostile name) and sync.
fn synced_caseload(server: &TestServer) -> (String, String) {
    let mut amina = server.device("amina");
    let mut karim = server.device("karim");
    let mut hostile = child(1);
    hostile.insert("child_first_name".into(), json!(HOSTILE_FIRST));
    hostile.insert("child_last_name".into(), json!(HOSTILE_LAST));
    let hostile_case = amina.store.create_case(&hostile).unwrap();
    let mut mohamed = child(2);
    mohamed.insert("child_first_name".into(), json!("Mohamed"));
    mohamed.insert("child_last_name".into(), json!("El-Idrissi"));
    mohamed.insert("village".into(), json!("Aït Ourir"));
    let mohamed_case = karim.store.create_case(&mohamed).unwrap();
    karim
        .store
        .refer(&mohamed_case, &suivi_tests::referral(1))
        .unwrap();
    karim
        .store
        .add_followup(&mohamed_case, &suivi_tests::visit(3))
        .unwrap();
    for n in 3..9 {
        amina.store.create_case(&child(n)).unwrap();
    }
    amina.sync().unwrap();
    karim.sync().unwrap();
    (hostile_case, mohamed_case)
}

#[test]
fn a_supervisor_reads_the_caseload_and_a_case_with_phone_data_inert() {
    let server = two_teams();
    let (hostile_case, mohamed_case) = synced_caseload(&server);
    let browser = Browser::open(&server);
    browser.goto("/console/login");
    browser.sign_in("fatima", PASSWORD);
    assert_eq!(browser.path(), "/console/cases");
    assert_eq!(browser.text("p.count"), "8 dossiers");
    browser.screenshot("console-caseload");

    // The hostile name is the link's text, letter for letter; nothing it holds became markup
    // or ran.
    let names = browser.texts("table.cases a.case");
    let expected = format!("{HOSTILE_FIRST} {HOSTILE_LAST}");
    assert!(names.contains(&expected), "{names:?}");
    assert_eq!(
        browser.script("return document.querySelectorAll('main img, main script').length"),
        json!(0)
    );
    assert_eq!(
        browser.script("return typeof window.__pwned"),
        json!("undefined")
    );
    browser.goto(&format!("/console/cases/{hostile_case}"));
    assert_eq!(browser.text("h1"), expected);
    assert_eq!(
        browser.script("return document.querySelectorAll('img, script').length"),
        json!(0)
    );
    assert_eq!(
        browser.script("return typeof window.__pwned"),
        json!("undefined")
    );

    // Search across spellings, then the case page with its verified history.
    browser.goto("/console/cases");
    browser.fill("input[name=q]", "muhammad");
    browser.click("form.filters button");
    assert_eq!(
        browser.texts("table.cases a.case"),
        vec!["Mohamed El-Idrissi"]
    );
    browser.click("table.cases a.case");
    assert_eq!(browser.path(), format!("/console/cases/{mohamed_case}"));
    let history = browser.text("section.history");
    assert!(history.contains("✔ vérifié: karim"), "{history}");
    assert!(browser.text("main").contains("Orientations (1)"));
    browser.screenshot("console-case");

    // Arabic, right to left.
    browser.click("nav.langs a[lang=ar]");
    assert_eq!(
        browser.script("return document.documentElement.dir"),
        json!("rtl")
    );
    assert_eq!(browser.path(), format!("/console/cases/{mohamed_case}"));
    browser.goto("/console/cases");
    assert_eq!(browser.text("h1"), "ملفات الفريق");
    browser.screenshot("console-caseload-ar");
}

/// At 390 px, in French and in Arabic, every page fits the screen (nothing scrolls sideways),
/// lists are cards whose name, place, risk, next visit and last sync are on screen, and the
/// chart's labels stand clear of its bars on the reading side.
#[test]
fn the_console_fits_a_phone_in_french_and_arabic() {
    let server = two_teams();
    let (_, mohamed_case) = synced_caseload(&server);
    let browser = Browser::open(&server);
    browser.goto("/console/login");
    browser.sign_in("fatima", PASSWORD);
    browser.set_width(390);
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1";
    // Every cell with one of these labels and something in it lies within the screen.
    let on_screen = |labels: &[&str]| -> Json {
        browser.script(&format!(
            "const labels = {};
             const cells = [...document.querySelectorAll('table.cases td')]
                 .filter(td => labels.includes(td.dataset.label) && td.textContent.trim() !== '');
             if (cells.length === 0) return 'no cell labelled ' + labels;
             const out = cells.filter(td => {{
                 const r = td.getBoundingClientRect();
                 return r.left < -1 || r.right > window.innerWidth + 1 || r.width === 0;
             }});
             return out.length === 0 ? true : out.map(td => td.dataset.label).join(',');",
            serde_json::to_string(labels).unwrap()
        ))
    };
    for (lang, labels, last_sync) in [
        (
            "fr",
            ["Lieu", "Risque", "Prochaine visite"],
            ["Dernier contact", "Dernière synchronisation"],
        ),
        (
            "ar",
            ["المكان", "درجة الخطر", "الزيارة القادمة"],
            ["آخر اتصال", "آخر مزامنة"],
        ),
    ] {
        browser.goto(&format!("/console/lang/{lang}?back=/console/cases"));
        for path in [
            "/console/cases".to_string(),
            "/console/cases?sort=due".into(),
            format!("/console/cases/{mohamed_case}"),
            "/console/agents".into(),
            "/console/duplicates".into(),
            "/console/referrals".into(),
            "/console/indicators?by=commune".into(),
        ] {
            browser.goto(&path);
            assert_eq!(
                browser.script(fits),
                json!(true),
                "{lang} {path} fits 390 px"
            );
        }
        browser.goto("/console/cases");
        assert_eq!(
            on_screen(&labels),
            json!(true),
            "{lang}: the caseload's cards"
        );
        assert_eq!(
            browser.script(
                "return getComputedStyle(document.querySelector('table.cases tr')).display"
            ),
            json!("block"),
            "rows are cards"
        );
        browser.script("document.querySelector('p.count').scrollIntoView(); return 0");
        browser.screenshot(&format!("console-phone-caseload-{lang}"));
        browser.goto("/console/agents");
        assert_eq!(
            on_screen(&last_sync),
            json!(true),
            "{lang}: last contact and sync"
        );
        browser.goto("/console/indicators?by=commune");
        assert_eq!(
            browser.script(
                "const svg = document.querySelector('svg.chart');
                 const label = svg.querySelector('text').getBBox();
                 const bar = svg.querySelector('rect').getBBox();
                 return label.x + label.width <= bar.x + 0.5 || label.x >= bar.x + bar.width - 0.5"
            ),
            json!(true),
            "{lang}: the first label stands clear of its bar"
        );
    }
    browser.set_width(1280);
}

/// The supervisor's flows in Chromium, at 1280 px in French and at 390 px in Arabic: the
/// worklist sorted by the visit due and narrowed to an agent chosen from the team's, a village
/// typed by its beginning; a merge undone from the merged-away record, confirmed first.
#[test]
fn a_supervisor_triages_and_undoes_a_merge_in_the_browser_at_both_widths() {
    let server = two_teams();
    let mut amina = server.device("amina");
    let mut karim = server.device("karim");
    let (kept, merged) = crate::console::same_child_twice(&mut amina, &mut karim);
    // A visit due long ago for one more child of Amina's: the most overdue.
    let late = amina.store.create_case(&child(5)).unwrap();
    let mut visit = suivi_tests::visit(1);
    visit.insert("next_visit_due".into(), json!("2026-01-05"));
    amina.store.add_followup(&late, &visit).unwrap();
    amina.sync().unwrap();
    karim.sync().unwrap();
    let service = suivi_server::SyncService::new(server.store.clone(), server.codes.clone());
    use suivi_server::storage::prelude::*;
    let fatima = server.store.user("fatima").unwrap().unwrap();
    service
        .merge_cases(&fatima, &kept, &merged, chrono::Utc::now().timestamp())
        .unwrap();
    let browser = Browser::open(&server);
    browser.sign_in("fatima", PASSWORD);
    let choose = |select: &str, value: &str| {
        browser.script(&format!(
            "document.querySelector('select[name={select}]').value = '{value}'; return 0"
        ));
    };
    for (lang, width, undone) in [("fr", 1280, "Fusion annulée"), ("ar", 390, "أُلغي الدمج")]
    {
        browser.set_width(width);
        browser.goto(&format!("/console/lang/{lang}?back=/console/cases"));
        // The most overdue first.
        choose("sort", "due");
        browser.click("form.filters button");
        let first = browser
            .script("return document.querySelector('table.cases a.case').getAttribute('href')");
        assert_eq!(first, json!(format!("/console/cases/{late}")), "{lang}");
        // An agent chosen from the team's, a village by its beginning.
        choose("agent", "karim");
        browser.fill("input[name=village]", "kad");
        browser.click("form.filters button");
        let shown = browser.script(
            "return [...document.querySelectorAll('table.cases a.case')].map(a => a.getAttribute('href'))",
        );
        assert_eq!(shown, json!([format!("/console/cases/{merged}")]), "{lang}");
        assert_eq!(
            browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
            json!(true),
            "{lang} at {width} px"
        );
        if lang == "fr" {
            // The undo, from the merged-away record, after its confirmation.
            browser.goto(&format!("/console/cases/{merged}"));
            browser.click("form.unmerge button");
            assert!(browser
                .text("ul.effect")
                .contains("Rien de ce qui a été enregistré"));
            browser.click("form.confirm button");
            assert_eq!(browser.path(), format!("/console/cases/{merged}"));
            assert!(browser.text("p.notice").contains(undone));
        } else {
            // Merged again, undone again, in Arabic on a phone.
            service
                .merge_cases(&fatima, &kept, &merged, chrono::Utc::now().timestamp())
                .unwrap();
            browser.goto(&format!("/console/cases/{merged}"));
            browser.click("form.unmerge button");
            browser.click("form.confirm button");
            assert!(browser.text("p.notice").contains(undone), "{lang}");
            assert_eq!(
                browser
                    .script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
                json!(true)
            );
        }
    }
    browser.set_width(1280);
}

/// An officer on a phone, in Arabic: the filtered list's Excel export downloads from its link
/// (a workbook, right to left), and the access log is filtered through its form by a child's
/// name and a kind of action, its rows in words.
#[test]
fn an_officer_exports_and_reads_the_access_log_on_a_phone_in_arabic() {
    let server = crate::audit::two_teams_and_an_officer();
    crate::audit::a_small_project(&server);
    let browser = Browser::open(&server);
    browser.sign_in("odile", PASSWORD);
    browser.set_width(390);
    browser.goto("/console/lang/ar?back=/console/cases%3Fstatus%3Dtransferred");
    assert_eq!(browser.path(), "/console/cases");
    let bytes = browser.download(
        "a[href='/console/export/cases.xlsx?status=transferred']",
        "suivi-cases-",
    );
    assert!(bytes.starts_with(b"PK"), "a workbook");
    let sheet = {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
            &mut xml,
        )
        .unwrap();
        xml
    };
    assert!(sheet.contains("rightToLeft=\"1\""));
    assert_eq!(
        sheet.matches("<row ").count(),
        2,
        "the header and the one case listed"
    );

    // The access log, through its form: the child's first name, views and searches.
    browser.goto("/console/access-log");
    let first_name = suivi_tests::FIRST_NAMES[2];
    browser.fill("input[name=case]", first_name);
    browser.script("document.querySelector('select[name=action]').value = 'viewed'; return 0");
    browser.click("form.filters button");
    let rows = browser.texts("table.access-log tbody tr");
    assert!(!rows.is_empty(), "the child's views found by her name");
    assert!(
        rows.iter().all(|r| r.contains("اطلع") || r.contains("بحث")),
        "views and searches only, in words: {rows:?}"
    );
    assert!(
        browser.text("main").contains(&format!("{first_name} ")),
        "the child named"
    );
    assert_eq!(
        browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
        json!(true)
    );
    browser.set_width(1280);
}

#[test]
fn an_agent_cannot_sign_in_and_another_teams_case_stays_closed() {
    let server = two_teams();
    let (_, mohamed_case) = synced_caseload(&server);
    // An agent with a password anyway (an old database, a hand edit).
    let hash = suivi_server::auth::hash_password(PASSWORD).unwrap();
    suivi_server::storage::SignInStore::set_password(
        server.store.as_ref(),
        "amina",
        Some(&hash),
        0,
    )
    .unwrap();
    let browser = Browser::open(&server);
    browser.sign_in("amina", PASSWORD);
    assert_eq!(browser.path(), "/console/login");
    assert!(browser
        .text("p.error")
        .contains("Les agents travaillent sur leur téléphone"));
    browser.goto("/console/cases");
    assert_eq!(browser.path(), "/console/login", "no session");

    // Ali supervises Souk Sebt: a Sikasso case opened by its URL is "not found".
    browser.sign_in("ali", PASSWORD);
    assert_eq!(browser.path(), "/console/cases");
    assert_eq!(browser.text("p.count"), "0 dossiers");
    browser.goto(&format!("/console/cases/{mohamed_case}"));
    assert_eq!(browser.text("h1"), "Introuvable");
    assert!(!browser.text("main").contains("Mohamed"));
    // The way back is to his own list.
    browser.click("a.back");
    assert_eq!(browser.path(), "/console/cases");
}

#[test]
fn a_form_posted_without_its_csrf_token_is_refused() {
    let server = two_teams();
    let browser = Browser::open(&server);
    browser.sign_in("fatima", PASSWORD);
    assert_eq!(browser.path(), "/console/cases");
    // The sign-out form, its token taken out, as a forged cross-site form would be.
    browser.script("document.querySelector('form.logout input[name=csrf]').remove(); return 0");
    browser.click("form.logout button");
    assert_eq!(browser.text("h1"), "Action refusée");
    assert!(browser.text("p.error").contains("rechargez la page"));
    browser.goto("/console/cases");
    assert_eq!(browser.path(), "/console/cases", "still signed in");
    browser.click("form.logout button");
    assert_eq!(
        browser.path(),
        "/console/login",
        "signed out with the token"
    );
    browser.goto("/console/cases");
    assert_eq!(browser.path(), "/console/login");
}

#[test]
fn a_supervisor_settles_the_conflict_two_phones_made_and_both_phones_lose_it() {
    let server = two_teams();
    let (mut amina, mut fatima_phone, case_id) = a_conflict_made_on_two_phones(&server);
    let browser = Browser::open(&server);
    browser.sign_in("fatima", PASSWORD);
    // The conflicts queue, then the case.
    browser.click("header a[href='/console/cases?conflicts=1']");
    assert_eq!(browser.text("p.count"), "1 dossiers");
    browser.click("table.cases a.case");
    assert_eq!(browser.path(), format!("/console/cases/{case_id}"));
    let conflict = browser.text("section.conflict-box");
    assert!(
        conflict.contains("Kaniko") && conflict.contains("Kafiné"),
        "{conflict}"
    );
    assert!(conflict.contains("✔ vérifié: amina") && conflict.contains("✔ vérifié: fatima"));
    browser.screenshot("console-conflict");
    // "Another value" left empty, for a village the form requires: refused, told on this page,
    // the conflict still there to settle.
    browser.script("document.querySelector('form.resolve input[value=other]').click(); return 0");
    browser.click("form.resolve button");
    assert_eq!(browser.path(), format!("/console/cases/{case_id}/resolve"));
    assert!(
        browser
            .text("main > p.error[role=alert]")
            .contains("ne convient pas à ce champ"),
        "the refusal in words, at the top of the case page"
    );
    assert!(browser.text("section.conflict-box").contains("Kafiné"));
    // Keep Amina's value.
    browser.script(
        "for (const l of document.querySelectorAll('form.resolve label.choice')) \
         { if (l.textContent.includes('Kaniko')) { l.querySelector('input').click(); } } return 0",
    );
    browser.click("form.resolve button");
    assert!(browser.text("p.notice").contains("Conflit réglé"));
    assert_eq!(
        browser.script("return document.querySelectorAll('form.resolve').length"),
        json!(0)
    );
    assert!(browser
        .text("section.history")
        .contains("fait dans la console"));

    for device in [&mut amina, &mut fatima_phone] {
        device.sync().unwrap();
        let detail = device.store.case(&case_id).unwrap();
        assert!(detail.conflicts.is_empty(), "gone on the phone");
        assert_eq!(detail.identification["village"], json!("Kaniko"));
    }
    browser.goto("/console/cases?conflicts=1");
    assert_eq!(browser.text("p.count"), "0 dossiers");
    // Both phones on the agents page, with the time they just synced.
    browser.click("header a[href='/console/agents']");
    assert_eq!(browser.texts("table.devices tbody tr").len(), 2);
    browser.screenshot("console-agents");
}

#[test]
fn a_supervisor_reassigns_a_case_and_it_moves_between_two_agents_phones() {
    let server = two_teams();
    let mut amina = server.device("amina");
    let mut karim = server.device("karim");
    let case_id = amina.store.create_case(&child(9)).unwrap();
    amina.sync().unwrap();
    karim.sync().unwrap();
    // Recorded offline on Amina's phone before she hears of the move.
    amina
        .store
        .add_followup(&case_id, &suivi_tests::visit(2))
        .unwrap();
    let browser = Browser::open(&server);
    browser.sign_in("fatima", PASSWORD);
    browser.goto(&format!("/console/cases/{case_id}"));
    browser.script("document.querySelector('form.reassign select').value = 'karim'; return 0");
    browser.click("form.reassign button");
    assert_eq!(browser.path(), format!("/console/cases/{case_id}"));
    assert!(browser.text("p.meta").contains("Agent karim"));
    karim.sync().unwrap();
    assert_eq!(karim.case_ids(), vec![case_id.clone()], "on Karim's phone");
    let report = amina.sync().unwrap();
    assert_eq!(report.removed, 1);
    assert!(amina.case_ids().is_empty(), "gone from Amina's phone");
    karim.sync().unwrap();
    assert_eq!(
        karim.store.case(&case_id).unwrap().followups.len(),
        1,
        "her visit arrived"
    );
}

#[test]
fn a_supervisor_merges_two_records_of_one_child_and_the_phones_follow() {
    let server = two_teams();
    let mut amina = server.device("amina");
    let mut karim = server.device("karim");
    let (kept, merged) = same_child_twice(&mut amina, &mut karim);
    amina.sync().unwrap();
    karim.sync().unwrap();
    let browser = Browser::open(&server);
    browser.sign_in("fatima", PASSWORD);
    browser.goto("/console/duplicates");
    browser.screenshot("console-duplicates");
    // Keep Amina's record: the merge form whose survivor is hers.
    browser.click(&format!(
        "form.merge:has(input[name=survivor][value='{kept}']) button"
    ));
    // The two records side by side and what the merge does, before anything is merged.
    assert_eq!(browser.path(), "/console/duplicates/merge");
    let effect = browser.texts("ul.effect li");
    assert!(effect[0].starts_with("Dossier gardé"), "{effect:?}");
    browser.screenshot("console-merge-confirm");
    browser.click("form.confirm button");
    assert_eq!(browser.path(), format!("/console/cases/{kept}"));
    assert!(browser.text("p.notice").contains("Fusionné"));
    let merged_section = browser.text(&format!("#merged-{merged}"));
    assert!(
        merged_section.contains("Visites de suivi (1)"),
        "{merged_section}"
    );
    browser.script(&format!(
        "document.getElementById('merged-{merged}').scrollIntoView(); return 0"
    ));
    browser.screenshot("console-merged");
    browser.click(&format!("#merged-{merged} h2 a"));
    assert_eq!(browser.path(), format!("/console/cases/{merged}"));
    assert!(browser.text("p.merged-into").contains(&kept));
    browser.goto("/console/duplicates");
    assert!(browser.text("main").contains("Aucun doublon possible"));
    // Both phones: the merged-away record read-only and leading to the survivor.
    for phone in [&mut amina, &mut karim] {
        phone.sync().unwrap();
        let away = phone.store.case(&merged).unwrap();
        assert_eq!(away.merged_into.as_deref(), Some(kept.as_str()));
        assert!(phone.case_ids().contains(&kept));
        assert!(matches!(
            phone.store.add_followup(&merged, &suivi_tests::visit(3)),
            Err(suivi_core::Error::CaseMerged { .. })
        ));
    }
}

/// An officer in Chromium: opens a referral chain and sees each step's verified author and both
/// times, writes an audit note and finds no way to change a field, downloads the caseload as
/// CSV, reads the indicators, finds their own views in the access log, and sees a history
/// rewritten in the database shown as not verified.
#[test]
fn an_officer_audits_a_chain_exports_and_reads_the_access_log() {
    use crate::audit::{
        a_small_project, csv_rows, forged_replacement, two_teams_and_an_officer, Editor,
    };
    use suivi_server::storage::prelude::*;

    let server = two_teams_and_an_officer();
    let (transferred, _, _, served) = a_small_project(&server);
    server.checkpoint();
    let browser = Browser::open(&server);
    browser.sign_in("odile", PASSWORD);
    assert_eq!(browser.path(), "/console/cases");

    // The chain, step by step, each verified.
    browser.goto(&format!("/console/cases/{transferred}"));
    let steps = browser.texts("section.chain li.step");
    assert_eq!(steps.len(), 6, "{steps:?}");
    for step in &steps {
        assert!(step.contains("vérifié: amina"), "{step}");
        assert!(step.contains("reçu par le serveur") && step.contains("heure du téléphone"));
    }
    assert!(
        steps[4].starts_with("Transféré vers ONG Enfance"),
        "{}",
        steps[4]
    );
    assert!(browser.text("p.evidence").starts_with("✔ Vérifié"));
    browser.script("document.getElementById('chain').scrollIntoView(); return 0");
    browser.screenshot("console-chain");

    // Nothing to change a field with; an audit note goes in.
    assert_eq!(
        browser.script(
            "return document.querySelectorAll('form.resolve input, form.reassign, form.merge').length"
        ),
        json!(0)
    );
    browser.fill("form.note textarea", "Chaîne vérifiée avec ONG Enfance.");
    browser.click("form.note button");
    assert!(browser.text("section.notes").contains("odile"));
    assert!(browser
        .text("section.notes")
        .contains("Chaîne vérifiée avec ONG Enfance."));

    // The caseload as CSV, the whole project for an officer.
    browser.goto("/console/cases");
    let bytes = browser.download("a[href='/console/export/cases.csv']", "suivi-cases-");
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(header[0], "Dossier");
    assert_eq!(rows.len(), 4, "three of Amina's, one of Moussa's");
    assert!(rows.iter().any(|r| r[0] == served));

    // The indicators, with their chart.
    browser.goto("/console/indicators?by=commune");
    assert_eq!(
        browser.script("return document.querySelectorAll('svg.chart rect.bar-identified').length"),
        json!(3),
        "two communes and the legend"
    );
    browser.screenshot("console-indicators");

    // The access log holds Odile's own views and export.
    browser.goto("/console/access-log");
    browser.fill("input[name=user]", "odile");
    browser.click("form.filters button");
    let rows = browser.texts("table.access-log tbody tr");
    let child = format!(
        "{} {}",
        suivi_tests::FIRST_NAMES[2],
        suivi_tests::LAST_NAMES[0]
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("a consulté un dossier") && r.contains(&child)),
        "{rows:?}"
    );
    assert!(rows
        .iter()
        .any(|r| r.contains("a exporté") && r.contains("dossiers · CSV")));
    assert!(rows.iter().all(|r| r.contains("odile")), "{rows:?}");
    browser.screenshot("console-access-log");

    // Someone rewrites the served child's last change in the database, hash and marks too.
    let mut db = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
    let mut stored = server.store.case_stored_changes(&served).unwrap();
    let last = stored.pop().unwrap();
    let actor = db.query(&format!(
        "SELECT actor FROM devices WHERE device_id = '{}'",
        last.origin_device
    ))[0][0]
        .clone()
        .unwrap();
    let before: Vec<Vec<u8>> = stored.into_iter().map(|c| c.data).collect();
    // child(4) was recorded at low risk: the forger makes it critical.
    let (hash, bytes) = forged_replacement(&before, &actor, "critical");
    let blob = db.blob(&bytes);
    Editor::execute(
        &mut db,
        &format!(
            "UPDATE changes SET hash = '{hash}', data = {blob} WHERE id = {}",
            last.id
        ),
    );
    db.rechain_feed();
    browser.goto(&format!("/console/cases/{served}"));
    let verdict = browser.text("div.evidence-failed");
    assert!(verdict.starts_with("✘ NON vérifié"), "{verdict}");
    assert!(verdict.contains("is not the one checkpointed"), "{verdict}");
}

/// A project seeded with children at every stage, recorded on two agents' phones: what a test
/// counts itself from the records the phones hold, written from the rules' text
/// (ARCHITECTURE.md, "Outcomes"), not from `suivi_core::outcome`.
struct Counted {
    withdrawn: u64,
    prevented: u64,
    exited: u64,
    relapsed: u64,
    closed: u64,
    by_sex: std::collections::BTreeMap<String, (u64, u64)>,
}

fn count_independently(details: &[suivi_core::store::CaseDetail]) -> Counted {
    let mut c = Counted {
        withdrawn: 0,
        prevented: 0,
        exited: 0,
        relapsed: 0,
        closed: 0,
        by_sex: Default::default(),
    };
    for d in details {
        let works = d.identification["works"] == json!(true);
        let mut visits: Vec<(chrono::NaiveDate, bool, bool)> = d
            .followups
            .iter()
            .map(|f| {
                let day = chrono::NaiveDate::parse_from_str(
                    f.fields["visit_date"].as_str().unwrap(),
                    "%Y-%m-%d",
                )
                .unwrap();
                (
                    day,
                    f.fields["still_working"] == json!(true),
                    f.fields["attends_school"] == json!("yes"),
                )
            })
            .collect();
        visits.sort();
        // Exited: two consecutive visits out of work and at school, 30 days apart at least;
        // relapsed: found working after that.
        let (mut exited, mut relapsed, mut ever_working) = (false, false, works);
        for i in 0..visits.len() {
            let (day, working, school) = visits[i];
            if working {
                ever_working = true;
                if exited {
                    exited = false;
                    relapsed = true;
                }
            } else if school && i > 0 {
                let (before, was_working, was_school) = visits[i - 1];
                if !was_working && was_school && (day - before).num_days() >= 30 {
                    exited = true;
                }
            }
        }
        let served = d
            .referrals
            .iter()
            .any(|r| ["accepted", "in_service", "completed"].contains(&r.status.as_str()));
        let withdrawn = ever_working && exited;
        let prevented = !ever_working && served;
        c.withdrawn += u64::from(withdrawn);
        c.prevented += u64::from(prevented);
        c.exited += u64::from(exited);
        c.relapsed += u64::from(relapsed && !exited);
        c.closed += u64::from(d.closure.is_closed());
        let sex = d.identification["sex"].as_str().unwrap().to_string();
        let e = c.by_sex.entry(sex).or_default();
        e.0 += u64::from(withdrawn);
        e.1 += u64::from(prevented);
    }
    c
}

/// The officer's programme report, printed by Chromium: the figures in the PDF's text (Debian's
/// pdftotext) equal what the test counted from the phones' records, and the CSV's breakdown by
/// sex too; the console's header and filters are not printed.
#[test]
fn the_programme_report_prints_to_pdf_with_the_figures_counted_from_the_records() {
    let server = two_teams();
    server.add_user("odile", suivi_server::storage::Role::Officer, "");
    suivi_server::admin::set_password(server.store.as_ref(), "odile", PASSWORD).unwrap();
    let mut phones = [server.device("amina"), server.device("karim")];
    let visit = |date: &str, working: bool, school: &str| {
        let mut v = suivi_tests::record(json!({
            "visit_date": date, "visit_type": "home", "attends_school": school,
            "still_working": working, "risk_level_now": "low", "next_visit_due": "2026-12-20"
        }));
        if working {
            v.insert("hazardous_work_seen".into(), json!(true));
        }
        v
    };
    let mut ids = Vec::new();
    for n in 0..12 {
        let phone = &mut phones[n % 2];
        let mut ident = child(n);
        if n % 6 == 2 {
            // At risk, not working.
            ident.insert("works".into(), json!(false));
            ident.remove("work_sector");
            ident.remove("hazardous_conditions");
            ident.remove("hours_per_week");
        }
        let id = phone.store.create_case(&ident).unwrap();
        let s = &mut phone.store;
        match n % 6 {
            0 => {
                s.add_followup(&id, &visit("2026-09-01", false, "yes"))
                    .unwrap();
                s.add_followup(&id, &visit("2026-10-11", false, "yes"))
                    .unwrap();
            }
            1 => {
                s.add_followup(&id, &visit("2026-10-01", false, "no"))
                    .unwrap();
            }
            2 => {
                let r = s.refer(&id, &suivi_tests::referral(0)).unwrap();
                s.transition_referral(&r, suivi_core::Transition::Send, None, None)
                    .unwrap();
                s.transition_referral(&r, suivi_core::Transition::Accept, None, None)
                    .unwrap();
            }
            3 => {
                s.add_followup(&id, &visit("2026-08-01", false, "yes"))
                    .unwrap();
                s.add_followup(&id, &visit("2026-09-05", false, "yes"))
                    .unwrap();
                s.add_followup(&id, &visit("2026-11-02", true, "no"))
                    .unwrap();
            }
            5 => {
                // Out of two visits ten days apart: not yet exited. Visits recorded out of
                // their date order, as two phones would.
                s.add_followup(&id, &visit("2026-10-20", false, "yes"))
                    .unwrap();
                s.add_followup(&id, &visit("2026-10-10", false, "yes"))
                    .unwrap();
            }
            _ => {}
        }
        if n % 6 == 0 {
            let reason = if n == 0 {
                "exited_stable"
            } else {
                "moved_away"
            };
            s.propose_closure(&id, reason, None).unwrap();
        }
        ids.push(id);
    }
    for phone in &mut phones {
        phone.sync().unwrap();
    }
    let mut fatima = server.device("fatima");
    fatima.sync().unwrap();
    for id in ids.iter().step_by(6) {
        fatima.store.decide_closure(id, true, None).unwrap();
    }
    fatima.sync().unwrap();
    let details: Vec<_> = ids
        .iter()
        .map(|id| fatima.store.case(id).unwrap())
        .collect();
    let counted = count_independently(&details);
    assert_eq!(
        (
            counted.withdrawn,
            counted.prevented,
            counted.exited,
            counted.relapsed,
            counted.closed
        ),
        (2, 2, 2, 2, 2),
        "the seeded project: each scenario twice"
    );

    let browser = Browser::open(&server);
    browser.sign_in("odile", PASSWORD);
    browser.goto("/console/report?from=2026-01&to=2026-12");
    assert_eq!(browser.text("article.report h1"), "Rapport du programme");
    let pdf = browser
        .runtime
        .block_on(
            browser
                .client()
                .print(fantoccini::wd::PrintConfiguration::default()),
        )
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout", file.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils; .ci/setup installs it)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let figure = |label: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label} is not in the printed report:\n{text}"));
        line.trim_start()[label.len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{label}: {line}"))
    };
    assert_eq!(figure("Enfants identifiés"), 12, "{text}");
    assert_eq!(figure("Retirés du travail"), counted.withdrawn);
    assert_eq!(figure("Prévenus"), counted.prevented);
    assert_eq!(figure("Sortis (deux visites)"), counted.exited);
    assert_eq!(figure("Retournés au travail"), counted.relapsed);
    assert_eq!(figure("Dossiers clôturés"), counted.closed);
    assert!(
        text.contains("sorti du travail, situation stable") && text.contains("parti de la zone")
    );
    assert!(
        text.contains("version 1 : sorti du travail après 2 visites"),
        "the rules it counted with"
    );
    assert!(
        !text.contains("Se déconnecter"),
        "the console's header is not printed"
    );

    // The breakdown by sex, as the CSV gives it, against the same count.
    browser.goto("/console/indicators?by=sex");
    let csv = String::from_utf8(browser.download("a[download]", "suivi-indicators-sex")).unwrap();
    let header: Vec<&str> = csv
        .lines()
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for (sex, label) in [("female", "Fille"), ("male", "Garçon")] {
        let row: Vec<&str> = csv
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{csv}"))
            .split(',')
            .collect();
        let (withdrawn, prevented) = counted.by_sex.get(sex).copied().unwrap_or_default();
        assert_eq!(
            row[col("Retirés du travail")],
            withdrawn.to_string(),
            "{sex}: {csv}"
        );
        assert_eq!(row[col("Prévenus")], prevented.to_string(), "{sex}: {csv}");
    }
}
