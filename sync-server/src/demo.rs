//! The main job's demo: a real server on loopback, two agents and a supervisor enrolled, cases
//! recorded offline on both agents (including the same field of the same child edited on two
//! devices), synced, then the merged caseload and the conflict that was kept; last, a form
//! version published from the server reaching a phone at its next sync.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use suivi_core::sync::{HttpTransport, SyncReport};
use suivi_core::{CaseFilter, Record, Store};

use crate::auth::CodeKey;
use crate::storage::{Role, ServerStore};
use crate::{admin, state};

const KEY: &str = "demo key: the Android app keeps its key in the Keystore";

fn record(value: serde_json::Value) -> Result<Record, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn child(first: &str, last: &str, village: &str, sector: &str) -> Result<Record, String> {
    record(json!({
        "child_first_name": first, "child_last_name": last, "sex": "female", "dob_known": false,
        "estimated_age": 12, "province": "Settat", "commune": "Souk Sebt Oulad Nemma", "village": village,
        "school_status": "dropped_out", "school_level": "primary", "works": true, "work_sector": sector,
        "hazardous_conditions": ["heavy_loads", "sharp_tools"], "hours_per_week": 35,
        "risk_level": "high", "consent_to_share": true,
        "notes": "Travaille dans un atelier d'artisanat avec son oncle."
    }))
}

fn line(name: &str, report: &SyncReport) {
    println!(
        "  {name:<8} up {} cases / {} B, down {} cases / {} B, {} round trip(s), {} conflict(s), {} refused",
        report.cases_up,
        report.bytes_up,
        report.cases_down,
        report.bytes_down,
        report.round_trips,
        report.conflicts,
        report.refused.len()
    );
}

pub async fn run(
    store: Arc<dyn ServerStore>,
    codes: CodeKey,
    data: PathBuf,
    listen: SocketAddr,
) -> Result<(), String> {
    let server = crate::spawn(state(store.clone(), codes.clone()), listen).await?;
    let url = format!("http://{}", server.addr);
    println!(
        "suivi-server listening on {url} (data in {})",
        data.display()
    );
    let devices_dir = data
        .join("demo-devices")
        .join(chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string());
    let result =
        tokio::task::spawn_blocking(move || drive(store.as_ref(), &codes, &url, &devices_dir))
            .await
            .map_err(|e| e.to_string())?;
    server.handle.abort();
    result
}

fn enroll(
    store: &dyn ServerStore,
    codes: &CodeKey,
    url: &str,
    dir: &std::path::Path,
    user: &str,
    device: &str,
) -> Result<Store, String> {
    let mut local = Store::create(&dir.join(format!("{device}.db")), KEY, user, device)
        .map_err(|e| e.to_string())?;
    let code = admin::enrollment_code(store, codes, user)?;
    let transport = HttpTransport::new(url).map_err(|e| e.to_string())?;
    let enrolled = local
        .enroll(&transport, url, &code)
        .map_err(|e| e.to_string())?;
    println!(
        "  {user:<8} enrolled {device} as {} ({})",
        enrolled.device_id,
        enrolled.role.as_str()
    );
    Ok(local)
}

fn sync(name: &str, device: &mut Store, url: &str) -> Result<SyncReport, String> {
    let transport = HttpTransport::new(url).map_err(|e| e.to_string())?;
    let report = device
        .sync(&transport, &mut |_| {})
        .map_err(|e| e.to_string())?;
    line(name, &report);
    Ok(report)
}

fn drive(
    store: &dyn ServerStore,
    codes: &CodeKey,
    url: &str,
    dir: &std::path::Path,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    println!("\n1. Accounts and enrollment");
    for (user, role) in [
        ("amina", Role::Agent),
        ("youssef", Role::Agent),
        ("fatima", Role::Supervisor),
    ] {
        // Users persist in ./data across runs; a second run reuses them.
        let _ = admin::add_user(store, user, role, "souk-sebt", None);
    }
    let mut amina = enroll(store, codes, url, dir, "amina", "tecno-amina")?;
    let mut youssef = enroll(store, codes, url, dir, "youssef", "itel-youssef")?;
    let mut fatima = enroll(store, codes, url, dir, "fatima", "samsung-fatima")?;

    println!("\n2. Offline: Amina records two children, a referral and a visit; Youssef one child");
    let err = |e: suivi_core::Error| e.to_string();
    let khadija = amina
        .create_case(&child("Khadija", "Benali", "Douar Ouled Ali", "crafts")?)
        .map_err(err)?;
    let referral = amina
        .refer(
            &khadija,
            &record(json!({"service_type": "school_or_bridging_class", "provider": "Classe passerelle Souk Sebt",
                "reason": "Déscolarisée depuis deux ans", "urgency": "priority", "consent": true}))?,
        )
        .map_err(err)?;
    amina
        .transition_referral(
            &referral,
            suivi_core::Transition::Send,
            Some("fiche remise"),
            None,
        )
        .map_err(err)?;
    amina
        .add_followup(
            &khadija,
            &record(json!({"visit_date": "2026-11-02", "visit_type": "home", "attends_school": "no",
                "still_working": true, "hazardous_work_seen": true, "risk_level_now": "high", "next_visit_due": "2026-11-30"}))?,
        )
        .map_err(err)?;
    amina
        .create_case(&child(
            "Salma",
            "El Idrissi",
            "Souk Sebt centre",
            "domestic_work",
        )?)
        .map_err(err)?;
    youssef
        .create_case(&child(
            "Hamza",
            "Ait Lahcen",
            "Douar Lahrarta",
            "agriculture",
        )?)
        .map_err(err)?;

    println!("\n3. Back in coverage: sync");
    sync("amina", &mut amina, url)?;
    sync("youssef", &mut youssef, url)?;
    // The supervisor hands Khadija's case to Youssef as well.
    admin::assign(store, &khadija, "youssef")?;
    sync("youssef", &mut youssef, url)?;

    println!("\n4. Offline again: both agents change Khadija's village (the same field of the same child)");
    amina
        .edit_case(
            &khadija,
            &record(json!({"village": "Douar Ouled Ali Centre"}))?,
        )
        .map_err(err)?;
    youssef
        .edit_case(&khadija, &record(json!({"village": "Ouled Ali"}))?)
        .map_err(err)?;
    youssef
        .add_followup(
            &khadija,
            &record(json!({"visit_date": "2026-11-20", "visit_type": "school", "attends_school": "irregular",
                "still_working": false, "risk_level_now": "medium", "next_visit_due": "2026-12-20"}))?,
        )
        .map_err(err)?;
    sync("amina", &mut amina, url)?;
    sync("youssef", &mut youssef, url)?;
    sync("amina", &mut amina, url)?;
    sync("fatima", &mut fatima, url)?;

    println!("\n5. The supervisor's merged caseload (team souk-sebt)");
    for case in fatima.list_cases(&CaseFilter::default()).map_err(err)? {
        println!(
            "  {}  {:<10} {:<12} {:<24} risk {:<8} referrals {} visits {}{}",
            &case.case_id[..8],
            case.first_name,
            case.last_name,
            case.village.as_deref().unwrap_or("-"),
            case.risk_level.as_deref().unwrap_or("-"),
            case.referral_count,
            case.followup_count,
            if case.conflict_count > 0 {
                "  CONFLICT"
            } else {
                ""
            }
        );
    }
    println!("\n6. The conflict that was kept (nothing lost; a supervisor decides)");
    let detail = fatima.case(&khadija).map_err(err)?;
    for conflict in &detail.conflicts {
        let values: Vec<String> = conflict.values.iter().map(|v| v.to_string()).collect();
        println!(
            "  case {} {}: {}",
            &khadija[..8],
            conflict.path,
            values.join("  |  ")
        );
    }
    let amina_view = amina.case(&khadija).map_err(err)?;
    let same = amina_view.identification == detail.identification
        && amina_view.followups.len() == detail.followups.len();
    println!("  amina's and fatima's devices agree on the case: {same}");
    if detail.conflicts.is_empty() || !same {
        return Err("the demo expected a kept conflict and converged devices".into());
    }

    println!("\n7. A new form version, published from the server, reaches the phones");
    let _ = admin::add_user(store, "nadia", Role::Admin, "souk-sebt", None);
    let v2 = identification_v2()?;
    let published =
        crate::forms::publish(store, &v2, "nadia", admin::now()).map_err(|e| e.to_string())?;
    println!(
        "  nadia (admin) publishes identification v{}: a new required question, household size{}",
        v2.version,
        if published.new {
            ""
        } else {
            " (published by an earlier run)"
        }
    );
    let report = sync("amina", &mut amina, url)?;
    let holds = amina
        .forms()
        .map_err(err)?
        .latest(suivi_core::forms::IDENTIFICATION)
        .map_err(err)?
        .version;
    println!(
        "  amina's phone received {} form version(s) at this sync and records new children with identification v{holds}",
        report.forms_received
    );
    let mut hamid = child("Hamid", "Ouali", "Douar Lahrarta", "agriculture")?;
    hamid.insert("household_size".into(), json!(7));
    let new_case = amina.create_case(&hamid).map_err(err)?;
    let new_version = amina.case(&new_case).map_err(err)?.identification_form;
    let old_version = amina.case(&khadija).map_err(err)?.identification_form;
    println!(
        "  a new child is recorded with identification v{new_version}; Khadija's record keeps v{old_version}"
    );
    sync("amina", &mut amina, url)?;
    if new_version != v2.version || old_version != 1 {
        return Err(
            "the demo expected new records on the new version and old ones on theirs".into(),
        );
    }

    println!("\nDevice databases (encrypted) are in {}", dir.display());
    Ok(())
}

/// The demo's identification version 2: version 1 and a required household size.
fn identification_v2() -> Result<suivi_core::forms::FormDefinition, String> {
    let forms = suivi_core::FormRegistry::builtin();
    let mut form = forms
        .get(suivi_core::forms::IDENTIFICATION, 1)
        .map_err(|e| e.to_string())?
        .clone();
    form.version = 2;
    let mut household = form
        .field("estimated_age")
        .ok_or("the built-in identification form has an age")?
        .clone();
    household.id = "household_size".into();
    household.label.fr = "Personnes dans le ménage".into();
    household.label.en = "People in the household".into();
    household.label.ar = "عدد أفراد الأسرة".into();
    household.relevant = None;
    household.required = true;
    household.constraints.range = Some(suivi_core::forms::Bounds {
        min: Some(json!(1)),
        max: Some(json!(40)),
    });
    form.fields.push(household);
    Ok(form)
}
