//! Administration: users, enrollment codes, revocation, case assignment. Used by the
//! `suivi-server` subcommands (on the same database as a running server) and by tests.

use crate::auth;
use crate::storage::{Quota, Role, ServerStore, StorageError, User};

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn add_user(
    store: &dyn ServerStore,
    user_id: &str,
    role: Role,
    team: &str,
    password: Option<&str>,
) -> Result<(), String> {
    if !suivi_core::case_doc::valid_user_id(user_id) {
        return Err("user ids are 1-64 letters, digits, '-', '_' or '.'".into());
    }
    if let Some(password) = password {
        password_rule(user_id, role, password)?;
    }
    let password_hash = password.map(auth::hash_password).transpose()?;
    store
        .add_user(
            &User {
                user_id: user_id.to_string(),
                role,
                team: team.to_string(),
                password_hash,
            },
            now(),
        )
        .map_err(|e| e.to_string())?;
    store
        .audit(now(), "admin", "user.add", user_id)
        .map_err(|e| e.to_string())
}

/// The shortest console password accepted: a supervisor's password guards a team's children.
pub const PASSWORD_CHARS_MIN: usize = 12;

/// The one rule for a console password, applied by every path that sets one (`user add` and
/// `user password`): agents have none (they work on their enrolled phones), and a password has
/// at least `PASSWORD_CHARS_MIN` characters.
pub fn password_rule(user_id: &str, role: Role, password: &str) -> Result<(), String> {
    if role == Role::Agent {
        return Err(format!(
            "{user_id} is an agent: agents work on their phones and have no console password"
        ));
    }
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(format!(
            "a console password has at least {PASSWORD_CHARS_MIN} characters"
        ));
    }
    Ok(())
}

/// Sets a console password. Agents have none: they work on their enrolled phones.
pub fn set_password(store: &dyn ServerStore, user_id: &str, password: &str) -> Result<(), String> {
    let user = store
        .user(user_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user {user_id}"))?;
    password_rule(user_id, user.role, password)?;
    let hash = auth::hash_password(password)?;
    store
        .set_password(user_id, Some(&hash), now())
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Issues a one-time enrollment code for a user's new device; only its hash is stored.
pub fn enrollment_code(
    store: &dyn ServerStore,
    codes: &auth::CodeKey,
    user_id: &str,
) -> Result<String, String> {
    if store.user(user_id).map_err(|e| e.to_string())?.is_none() {
        return Err(format!("no user {user_id}"));
    }
    let code = auth::new_enrollment_code();
    store
        .add_enrollment_code(
            &codes.code_hash(&code),
            user_id,
            now() + auth::ENROLLMENT_CODE_TTL_SECS,
        )
        .map_err(|e| e.to_string())?;
    Ok(code)
}

/// A device's quotas in force: its override, or the defaults.
pub fn quota(store: &dyn ServerStore, device_id: &str) -> Result<Quota, String> {
    if store
        .device(device_id)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("no device {device_id}"));
    }
    Ok(store
        .device_quota(device_id)
        .map_err(|e| e.to_string())?
        .unwrap_or(crate::service::DEFAULT_QUOTA))
}

/// Revokes a device. With a journal (the server's data directory has one beside it), the
/// revocation is journalled first, so that a restore from an older backup cannot bring the
/// device back. `false`: no such active device.
pub fn revoke(
    store: &dyn ServerStore,
    journal: Option<&std::path::Path>,
    device_id: &str,
) -> Result<bool, String> {
    let active = store
        .device(device_id)
        .map_err(|e| e.to_string())?
        .is_some_and(|d| !d.revoked);
    if !active {
        return Ok(false);
    }
    let now = now();
    if let Some(journal) = journal {
        crate::journal::append(journal, device_id, now).map_err(|e| format!("revocation {e}"))?;
    }
    store
        .revoke_device(device_id, now)
        .map_err(|e| e.to_string())
}

/// The revocation journal of a data directory: beside it, `<data>.revocations`.
pub fn revocation_journal(data_dir: &std::path::Path) -> std::path::PathBuf {
    crate::journal::path_beside(data_dir, "revocations")
}

/// Re-applies every journalled revocation of a device the database knows as active (after a
/// restore from an older backup): how many were applied again.
pub fn replay_revocations(
    store: &dyn ServerStore,
    journal: &std::path::Path,
) -> Result<usize, String> {
    let mut applied = 0;
    for (device_id, at) in crate::journal::entries(journal).map_err(|e| e.to_string())? {
        let active = store
            .device(&device_id)
            .map_err(|e| e.to_string())?
            .is_some_and(|d| !d.revoked);
        if active
            && store
                .revoke_device(&device_id, at)
                .map_err(|e| e.to_string())?
        {
            applied += 1;
        }
    }
    Ok(applied)
}

pub fn assign(store: &dyn ServerStore, case_id: &str, user_id: &str) -> Result<(), String> {
    store
        .assign_case(case_id, user_id, now())
        .map_err(|e| match e {
            StorageError::NotFound(what) => format!("not found: {what}"),
            other => other.to_string(),
        })
}

/// Records that an officer or admin reviewed a phone's forgery report (`case forgery-reviewed`):
/// `verify` then lists it as a note, no longer as a finding. The report must exist; the case
/// stays set aside (repairing it is not built).
pub fn review_forgery(
    store: &dyn ServerStore,
    case_id: &str,
    hash: &str,
    by: &str,
) -> Result<(), String> {
    let user = store
        .user(by)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user {by}"))?;
    if !matches!(user.role, Role::Admin | Role::Officer) {
        return Err(format!("{by} is not an officer or admin"));
    }
    let subject = format!("{case_id} {hash}");
    let reported = store
        .audit_row_exists(crate::evidence::FORGERY_REPORTED, &subject)
        .map_err(|e| e.to_string())?;
    if !reported {
        return Err(format!("no phone reported change {hash} of case {case_id}"));
    }
    store
        .audit(now(), by, crate::evidence::FORGERY_REVIEWED, &subject)
        .map_err(|e| e.to_string())
}
