//! The `suivi` command runs the agent flow end to end, as the README shows it.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::process::Command;

use serde_json::Value as Json;

struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        Device {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> (i32, Json, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_suivi"))
            .args(["--json"])
            .args(args)
            .env("SUIVI_DB", self.dir.path().join("agent.db"))
            .env("SUIVI_KEY", "une clé secrète")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let json = serde_json::from_str(&stdout).unwrap_or(Json::Null);
        (
            out.status.code().unwrap_or(-1),
            json,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    fn ok(&self, args: &[&str]) -> Json {
        let (code, json, err) = self.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        json
    }
}

#[test]
fn agent_flow_through_the_command() {
    let device = Device::new();
    device.ok(&["init", "--user", "amina", "--device", "tecno-01"]);
    let set = |pairs: &[&str]| {
        pairs
            .iter()
            .flat_map(|p| ["--set".to_string(), p.to_string()])
            .collect::<Vec<_>>()
    };
    let child = set(&[
        "child_first_name=Aïcha",
        "child_last_name=Traoré",
        "sex=female",
        "dob_known=non",
        "estimated_age=12",
        "province=Sikasso",
        "commune=Kignan",
        "village=Fès",
        "school_status=dropped_out",
        "works=oui",
        "work_sector=artisanal_gold_mining",
        "hazardous_conditions=mercury,underground_work",
        "risk_level=high",
        "consent_to_share=oui",
    ]);
    let mut args = vec!["case", "new"];
    args.extend(child.iter().map(String::as_str));
    let case_id = device.ok(&args)["case_id"].as_str().unwrap().to_string();
    let short = &case_id[..8];

    let refer = set(&[
        "service_type=health",
        "provider=CSCOM Kignan",
        "reason=Blessure",
        "urgency=urgent",
        "consent=oui",
    ]);
    let mut args = vec!["refer", short];
    args.extend(refer.iter().map(String::as_str));
    let referral = device.ok(&args)["referral_id"]
        .as_str()
        .unwrap()
        .to_string();
    device.ok(&[
        "referral",
        &referral[..8],
        "send",
        "--note",
        "remis à l'infirmier",
    ]);
    device.ok(&["referral", &referral[..8], "accept"]);
    // An illegal move: exit code 2, typed error on stderr.
    let (code, _, err) = device.run(&["referral", &referral[..8], "complete"]);
    assert_eq!(code, 2);
    assert!(err.contains("illegal referral transition"), "{err}");

    let visit = set(&[
        "visit_date=2026-11-02",
        "visit_type=home",
        "attends_school=yes",
        "still_working=non",
        "risk_level_now=medium",
    ]);
    let mut args = vec!["followup", short];
    args.extend(visit.iter().map(String::as_str));
    device.ok(&args);

    let history = device.ok(&["history", short]);
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "case.create",
            "referral.create",
            "referral.send",
            "referral.accept",
            "followup.create"
        ]
    );

    let found = device.ok(&["case", "search", "traore"]);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["risk_level"], "medium");
    let shown = device.ok(&["case", "show", short]);
    assert_eq!(shown["referrals"][0]["status"], "accepted");

    // Invalid input: every problem listed, exit code 2, nothing saved.
    let (code, _, err) = device.run(&["case", "new", "--set", "sex=robot"]);
    assert_eq!(code, 2);
    let body: Json = serde_json::from_str(err.trim()).unwrap();
    assert!(body["fields"].as_array().unwrap().len() > 5, "{body}");
    assert_eq!(device.ok(&["case", "list"]).as_array().unwrap().len(), 1);

    // Export then import into a second device.
    let export_path = device.dir.path().join("export.json");
    device.ok(&["export", "--out", export_path.to_str().unwrap()]);
    let other = Device::new();
    other.ok(&["init", "--user", "moussa", "--device", "itel-02"]);
    let imported = other.ok(&["import", export_path.to_str().unwrap()]);
    assert_eq!(imported["imported"].as_array().unwrap().len(), 1);
}

#[test]
fn a_wrong_key_is_refused_with_its_own_exit_code() {
    let device = Device::new();
    device.ok(&["init", "--user", "amina", "--device", "tecno-01"]);
    let out = Command::new(env!("CARGO_BIN_EXE_suivi"))
        .args(["case", "list"])
        .env("SUIVI_DB", device.dir.path().join("agent.db"))
        .env("SUIVI_KEY", "pas la bonne")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
}
