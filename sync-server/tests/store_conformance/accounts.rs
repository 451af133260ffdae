//! Users, devices, enrollment codes, quotas and device statuses.

use crate::*;

pub fn users_and_devices(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    assert_eq!(
        store.user("fatima").unwrap().unwrap().role,
        Role::Supervisor
    );
    assert!(store.user("nobody").unwrap().is_none());
    let amina = store.device("dev-amina").unwrap().unwrap();
    assert_eq!((amina.user_id.as_str(), amina.revoked), ("amina", false));
    assert_eq!(store.devices().unwrap().len(), 2);
    assert!(store.revoke_device("dev-amina", NOW).unwrap());
    assert!(store.device("dev-amina").unwrap().unwrap().revoked);
    store.confirm_wipe("dev-amina", NOW).unwrap();
    assert!(store.device("dev-amina").unwrap().unwrap().wiped);
    assert!(!store.device("dev-karim").unwrap().unwrap().revoked);
}

pub fn enrollment_codes_are_single_use_per_user_and_expire(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    store.add_enrollment_code("c1", "amina", NOW + 60).unwrap();
    // A code issued for someone else stays unused.
    let other = store
        .redeem_enrollment_code("c1", "karim", NOW, &device("d1", "karim"))
        .unwrap();
    assert!(other.is_none());
    let used = store
        .redeem_enrollment_code("c1", "amina", NOW, &device("d1", "amina"))
        .unwrap();
    assert_eq!(used.unwrap().user_id, "amina");
    let again = store
        .redeem_enrollment_code("c1", "amina", NOW, &device("d2", "amina"))
        .unwrap();
    assert!(again.is_none(), "a code enrolls one device");
    store.add_enrollment_code("c2", "amina", NOW + 60).unwrap();
    let late = store
        .redeem_enrollment_code("c2", "amina", NOW + 61, &device("d3", "amina"))
        .unwrap();
    assert!(late.is_none(), "an expired code enrolls nothing");
    assert!(store.device("d3").unwrap().is_none());
    // An actor id already enrolled is a conflict, and the code stays usable.
    store.add_enrollment_code("c3", "amina", NOW + 60).unwrap();
    let mut twin = device("d4", "amina");
    twin.actor = store.device("d1").unwrap().unwrap().actor;
    assert!(matches!(
        store.redeem_enrollment_code("c3", "amina", NOW, &twin),
        Err(StorageError::Conflict(_))
    ));
    assert!(store
        .redeem_enrollment_code("c3", "amina", NOW, &device("d5", "amina"))
        .unwrap()
        .is_some());
}

pub fn a_code_redeemed_from_many_threads_at_once_enrolls_one_device(s: Subject) {
    let store = s.store.clone();
    team(store.as_ref());
    store
        .add_enrollment_code("race", "amina", NOW + 60)
        .unwrap();
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                scope.spawn(move || {
                    store
                        .redeem_enrollment_code(
                            "race",
                            "amina",
                            NOW,
                            &device(&format!("r{i}"), "amina"),
                        )
                        .unwrap()
                        .is_some() as usize
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
}

pub fn quotas_override_and_clear(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    assert!(store.device_quota("dev-amina").unwrap().is_none());
    let quota = Quota {
        new_cases_per_day: 3,
        bytes_per_day: 1000,
    };
    store
        .set_device_quota("dev-amina", Some(quota), NOW)
        .unwrap();
    assert_eq!(store.device_quota("dev-amina").unwrap(), Some(quota));
    assert!(store.device_quota("dev-karim").unwrap().is_none());
    store.set_device_quota("dev-amina", None, NOW).unwrap();
    assert!(store.device_quota("dev-amina").unwrap().is_none());
    // Usage is per UTC day.
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(1), Some("amina"), 1, 10)],
            None,
            NOW,
        )
        .unwrap();
    let day = NOW.div_euclid(86_400);
    assert_eq!(store.device_usage("dev-amina", day).unwrap().new_cases, 1);
    assert_eq!(
        store.device_usage("dev-amina", day + 1).unwrap(),
        Usage::default()
    );
}

/// What a device said at its last sync, newest time kept; console devices are not listed.
pub fn device_statuses_record_each_sync(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    store
        .record_device_sync("dev-amina", NOW, Some("suivi-android 1.4.0"), Some(3))
        .unwrap();
    store
        .record_device_sync("dev-amina", NOW - 10, None, None)
        .unwrap();
    store
        .console_device("fatima", "ab".repeat(16).as_str(), NOW)
        .unwrap();
    let statuses = store.device_statuses().unwrap();
    assert_eq!(statuses.len(), 2, "console devices are left out");
    let amina = statuses
        .iter()
        .find(|d| d.device.device_id == "dev-amina")
        .unwrap();
    assert_eq!(amina.last_sync_at, Some(NOW), "the time never moves back");
    assert_eq!(
        (amina.app_version.clone(), amina.waiting_cases),
        (None, None)
    );
    assert_eq!((amina.role, amina.team.as_str()), (Role::Agent, "sikasso"));
    let karim = statuses
        .iter()
        .find(|d| d.device.device_id == "dev-karim")
        .unwrap();
    assert_eq!(karim.last_sync_at, None);
    // The console device: registered once, the same on the next call, no usable token.
    let console = store
        .console_device("fatima", &"cd".repeat(16), NOW)
        .unwrap();
    assert_eq!(console.actor, "ab".repeat(16));
    assert_eq!(console.device_id, "console-fatima");
    // Its binding is in the chained audit log, once.
    let bindings: Vec<(String, String)> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.action == suivi_server::storage::CONSOLE_DEVICE_ACTION)
        .map(|r| (r.actor, r.subject))
        .collect();
    assert_eq!(
        bindings,
        [(
            "fatima".to_string(),
            suivi_server::storage::device_binding_subject("console-fatima", &"ab".repeat(16))
        )]
    );
}
