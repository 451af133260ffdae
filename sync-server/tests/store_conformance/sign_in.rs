//! Console sessions and failed-login counts.

use crate::*;

/// Console sessions and login throttling live in the store, so every instance sees them.
pub fn sessions_and_login_failures(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    let session = ConsoleSession {
        token_hash: "t1".into(),
        user_id: "fatima".into(),
        csrf_token: "c1".into(),
        created_at: NOW,
        last_seen: NOW,
    };
    store.add_session(&session).unwrap();
    assert_eq!(store.session("t1").unwrap(), Some(session.clone()));
    assert!(store.session("t2").unwrap().is_none());
    store.touch_session("t1", NOW + 100).unwrap();
    store.touch_session("t1", NOW + 50).unwrap();
    assert_eq!(store.session("t1").unwrap().unwrap().last_seen, NOW + 100);
    // Idle since before NOW + 101: ended.
    store.end_expired_sessions(NOW + 101, NOW - 1).unwrap();
    assert!(store.session("t1").unwrap().is_none());
    store.add_session(&session).unwrap();
    store.end_expired_sessions(NOW - 1, NOW + 1).unwrap();
    assert!(store.session("t1").unwrap().is_none(), "absolute expiry");
    store.add_session(&session).unwrap();
    store.end_session("t1").unwrap();
    assert!(store.session("t1").unwrap().is_none());
    // A new password ends every session of the user, with an audit row.
    store.add_session(&session).unwrap();
    assert!(store
        .set_password("fatima", Some("argon2-hash"), NOW)
        .unwrap());
    assert!(store.session("t1").unwrap().is_none());
    assert_eq!(
        store
            .user("fatima")
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("argon2-hash")
    );
    assert!(!store.set_password("nobody", Some("x"), NOW).unwrap());
    assert!(store
        .audit_log(0, 100)
        .unwrap()
        .iter()
        .any(|r| r.action == "user.password" && r.subject == "fatima"));

    assert_eq!(
        store.login_failures("user:fatima").unwrap(),
        LoginFailures::default()
    );
    for i in 1..=3 {
        let f = store
            .record_login_failure("user:fatima", NOW + i, NOW - 100)
            .unwrap();
        assert_eq!(
            f,
            LoginFailures {
                count: i as u32,
                last_at: NOW + i
            }
        );
    }
    assert_eq!(store.login_failures("user:fatima").unwrap().count, 3);
    assert_eq!(store.login_failures("ip:127.0.0.1").unwrap().count, 0);
    // Failures decay: one after the count's last failure was forgotten starts again at one.
    assert_eq!(
        store
            .record_login_failure("user:fatima", NOW + 1000, NOW + 4)
            .unwrap(),
        LoginFailures {
            count: 1,
            last_at: NOW + 1000
        }
    );
    assert_eq!(
        store
            .record_login_failure("user:fatima", NOW + 1001, NOW + 4)
            .unwrap()
            .count,
        2
    );
    store.clear_login_failures("user:fatima").unwrap();
    assert_eq!(store.login_failures("user:fatima").unwrap().count, 0);
}
