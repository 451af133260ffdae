//! Shared fixtures for the core integration tests.
#![allow(dead_code)]

use serde_json::json;
use suivi_core::{Record, Store};

pub const KEY: &str = "correct horse battery staple";

pub fn record(value: serde_json::Value) -> Record {
    serde_json::from_value(value).expect("a JSON object")
}

pub fn child(first: &str, last: &str, village: &str) -> Record {
    record(json!({
        "child_first_name": first, "child_last_name": last, "sex": "female",
        "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
        "village": village, "school_status": "dropped_out", "school_level": "primary",
        "works": true, "work_sector": "artisanal_gold_mining",
        "hazardous_conditions": ["mercury", "underground_work"], "hours_per_week": 30,
        "risk_level": "high", "consent_to_share": true,
        "notes": "Travaille au site d'orpaillage avec son oncle."
    }))
}

pub fn referral(provider: &str) -> Record {
    record(json!({
        "service_type": "school_or_bridging_class", "provider": provider,
        "reason": "Déscolarisée, travaille sur un site minier", "urgency": "priority", "consent": true
    }))
}

pub fn visit(date: &str, due: &str, risk: &str) -> Record {
    record(json!({
        "visit_date": date, "visit_type": "home", "attends_school": "yes",
        "still_working": false, "risk_level_now": risk, "next_visit_due": due
    }))
}

pub fn new_store(dir: &tempfile::TempDir) -> Store {
    Store::create(&dir.path().join("suivi.db"), KEY, "amina", "phone-1").expect("create store")
}
