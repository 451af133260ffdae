//! Forms published from the server: the rules a new version must keep (immutable versions,
//! a field's type kept across versions, one active version at least), the built-in forms as a
//! project's first versions, and the registry the server validates and displays records with.

use std::sync::Arc;

use suivi_core::forms::{FormDefinition, FormRegistry};
use suivi_core::policy::Role;

use crate::storage::{PublishedForm, ServerStore, StorageError};

/// Who the built-in forms are published by.
pub const BUILT_IN: &str = "built-in";
/// The forms a case document holds records of: a definition under another id has no record
/// to hold.
pub use suivi_core::forms::FORM_IDS;
/// Form versions sent to a device in one sync response; the rest follow in the next ones.
pub const FORMS_PER_RESPONSE_MAX: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("{0} is not a user of this server")]
    UnknownUser(String),
    #[error("only an admin publishes or retires forms; {0} is not one")]
    NotAdmin(String),
    #[error("the form id {0} is not one a case holds (identification, referral, followup)")]
    UnknownFormId(String),
    #[error("{id} version {version} is already published with another definition: a published version never changes; publish version {next}")]
    VersionChanged { id: String, version: u32, next: u32 },
    #[error("{id} version {version} is not newer than the published version {newest}")]
    NotNewer {
        id: String,
        version: u32,
        newest: u32,
    },
    #[error("{id} version {version}: field {field} was {was} in version {in_version} and would become {now}: a field keeps its type (give the new meaning a new field id)")]
    TypeChanged {
        id: String,
        version: u32,
        field: String,
        was: String,
        in_version: u32,
        now: String,
    },
    #[error("{id} version {version} was never published")]
    UnknownVersion { id: String, version: u32 },
    #[error(
        "{id} version {version} is the last active version of its form: publish the next one first"
    )]
    LastActive { id: String, version: u32 },
    #[error("a stored form does not load: {0}")]
    Stored(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Largest JSON definition read from a file.
pub const FORM_JSON_BYTES_MAX: u64 = 1024 * 1024;

/// Reads a form definition from a file: an XLSForm workbook (a zip, by its first bytes) or a
/// JSON definition. Either way it is checked before anything is published.
pub fn read_form_file(path: &std::path::Path) -> Result<FormDefinition, FormFileError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| FormFileError::Read(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(FORM_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FormFileError::Read(e.to_string()))?;
    if bytes.len() > FORM_FILE_BYTES_MAX {
        return Err(FormFileError::TooLarge(FORM_FILE_BYTES_MAX));
    }
    if bytes.starts_with(b"PK") {
        return suivi_core::forms::xlsform::import(&bytes).map_err(FormFileError::XlsForm);
    }
    if bytes.len() as u64 > FORM_JSON_BYTES_MAX {
        return Err(FormFileError::TooLarge(FORM_JSON_BYTES_MAX as usize));
    }
    let text = String::from_utf8(bytes).map_err(|_| FormFileError::NotUtf8)?;
    FormDefinition::from_json(&text).map_err(|e| FormFileError::Json(e.to_string()))
}

/// Largest form file read: an XLSForm workbook's own limit.
pub const FORM_FILE_BYTES_MAX: usize = suivi_core::forms::xlsform::XLSFORM_BYTES_MAX;

#[derive(Debug, thiserror::Error)]
pub enum FormFileError {
    #[error("cannot read the form file: {0}")]
    Read(String),
    #[error("the form file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the form file is neither an XLSForm workbook nor UTF-8 JSON")]
    NotUtf8,
    #[error("the JSON definition is not valid: {0}")]
    Json(String),
    #[error("the XLSForm workbook cannot be published:\n{0}")]
    XlsForm(suivi_core::forms::xlsform::XlsFormError),
}

/// What `publish` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub form: PublishedForm,
    /// False when the same definition was published already (publishing twice is harmless).
    pub new: bool,
}

fn require_admin(store: &dyn ServerStore, by: &str) -> Result<(), FormError> {
    let user = store
        .user(by)?
        .ok_or_else(|| FormError::UnknownUser(by.to_string()))?;
    if user.role != Role::Admin {
        return Err(FormError::NotAdmin(by.to_string()));
    }
    Ok(())
}

/// Checks a new version against the published ones of its form: a republication of the same
/// definition is `Ok(false)`, a new version `Ok(true)`.
pub fn check_new_version(
    form: &FormDefinition,
    published: &[FormDefinition],
) -> Result<bool, FormError> {
    if !FORM_IDS.contains(&form.id.as_str()) {
        return Err(FormError::UnknownFormId(form.id.clone()));
    }
    let mut earlier: Vec<&FormDefinition> = published.iter().filter(|p| p.id == form.id).collect();
    earlier.sort_by_key(|p| p.version);
    let newest = earlier.last().map_or(0, |p| p.version);
    if let Some(same) = earlier.iter().find(|p| p.version == form.version) {
        return if same.canonical_json() == form.canonical_json() {
            Ok(false)
        } else {
            Err(FormError::VersionChanged {
                id: form.id.clone(),
                version: form.version,
                next: newest.saturating_add(1),
            })
        };
    }
    if form.version <= newest {
        return Err(FormError::NotNewer {
            id: form.id.clone(),
            version: form.version,
            newest,
        });
    }
    let mut held = FormRegistry::builtin();
    for p in published {
        held.add(p.clone());
    }
    if let Some(change) = held.kind_change(form) {
        return Err(FormError::TypeChanged {
            id: form.id.clone(),
            version: form.version,
            field: change.field,
            was: change.was,
            in_version: change.in_version,
            now: change.now,
        });
    }
    Ok(true)
}

fn definitions(forms: &[PublishedForm]) -> Result<Vec<FormDefinition>, FormError> {
    forms
        .iter()
        .map(|f| {
            FormDefinition::from_json(&f.definition)
                .map_err(|e| FormError::Stored(format!("{} v{}: {e}", f.form_id, f.version)))
        })
        .collect()
}

/// Publishes a form version as `by` (an admin), audited. The definition was checked when it
/// was parsed; here it is checked against the versions already published.
pub fn publish(
    store: &dyn ServerStore,
    form: &FormDefinition,
    by: &str,
    now: i64,
) -> Result<Publication, FormError> {
    require_admin(store, by)?;
    // A store that never served has no built-in versions yet: a new version is checked
    // against them too.
    seed_builtin(store, now)?;
    publish_as(store, form, by, now)
}

/// Times a publication or retirement is decided again when another publisher moved the forms
/// feed between the check and the write.
const FORM_WRITE_ATTEMPTS_MAX: usize = 8;

fn publish_as(
    store: &dyn ServerStore,
    form: &FormDefinition,
    by: &str,
    now: i64,
) -> Result<Publication, FormError> {
    let mut attempt = 0;
    let (stored, new) = loop {
        // The head first: a publication after it makes the write below see a moved feed.
        let head = store.forms_head()?;
        let published = definitions(&store.forms()?)?;
        check_new_version(form, &published)?;
        match store.publish_form(
            &form.id,
            form.version,
            &form.canonical_json(),
            (by, now),
            head,
        ) {
            Err(StorageError::Moved(_)) if attempt + 1 < FORM_WRITE_ATTEMPTS_MAX => attempt += 1,
            outcome => break outcome?,
        }
    };
    // Another publisher may have won a race for this version: its definition must be ours.
    if !new && stored.definition != form.canonical_json() {
        return Err(FormError::VersionChanged {
            id: form.id.clone(),
            version: form.version,
            next: form.version.saturating_add(1),
        });
    }
    Ok(Publication { form: stored, new })
}

/// Retires a version as `by` (an admin), audited: devices stop offering it for new records
/// at their next sync. Records already written on it (on phones still offline too) stay valid.
pub fn retire(
    store: &dyn ServerStore,
    id: &str,
    version: u32,
    by: &str,
    now: i64,
) -> Result<PublishedForm, FormError> {
    require_admin(store, by)?;
    let unknown = || FormError::UnknownVersion {
        id: id.to_string(),
        version,
    };
    let mut attempt = 0;
    loop {
        let head = store.forms_head()?;
        let forms = store.forms()?;
        let target = forms
            .iter()
            .find(|f| f.form_id == id && f.version == version)
            .ok_or_else(unknown)?;
        let others_active = forms
            .iter()
            .any(|f| f.form_id == id && f.version != version && f.retired_at.is_none());
        if target.retired_at.is_none() && !others_active {
            return Err(FormError::LastActive {
                id: id.to_string(),
                version,
            });
        }
        // Two admins retiring the last two versions at once: the second sees a moved feed,
        // checks again and is refused.
        match store.retire_form(id, version, (by, now), head) {
            Err(StorageError::Moved(_)) if attempt + 1 < FORM_WRITE_ATTEMPTS_MAX => attempt += 1,
            outcome => return outcome?.ok_or_else(unknown),
        }
    }
}

/// Publishes the built-in forms a project starts with, unless they are there: run when a
/// server opens its store, by every instance (a second publication is harmless).
pub fn seed_builtin(store: &dyn ServerStore, now: i64) -> Result<(), FormError> {
    let builtin = FormRegistry::builtin();
    let published = store.forms()?;
    for form in builtin.all() {
        if !published
            .iter()
            .any(|p| p.form_id == form.id && p.version == form.version)
        {
            publish_as(store, form, BUILT_IN, now)?;
        }
    }
    Ok(())
}

/// The registry of every published version, retired ones marked, over the built-in forms
/// (which a store seeded by `seed_builtin` holds too).
pub fn registry(forms: &[PublishedForm]) -> Result<FormRegistry, FormError> {
    let mut registry = FormRegistry::builtin();
    for (form, stored) in definitions(forms)?.into_iter().zip(forms) {
        registry.add(form);
        if stored.retired_at.is_some() {
            registry.retire(&stored.form_id, stored.version);
        }
    }
    Ok(registry)
}

/// The server's registry, reloaded when the forms feed moved (another instance or the
/// `form publish` command wrote to the shared store). Reading it does no I/O, so async handlers
/// may; `refresh` reads the store and runs on blocking threads: at the start of every sync and
/// console change, and every `FORMS_REFRESH_EVERY` in the background.
pub struct FormCache {
    current: std::sync::RwLock<(u64, Arc<FormRegistry>)>,
}

/// How often a serving instance looks for forms published elsewhere.
pub const FORMS_REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl Default for FormCache {
    fn default() -> Self {
        FormCache {
            current: std::sync::RwLock::new((0, Arc::new(FormRegistry::builtin()))),
        }
    }
}

impl FormCache {
    /// The registry as last loaded.
    pub fn get(&self) -> Arc<FormRegistry> {
        match self.current.read() {
            Ok(current) => current.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// The registry as the store holds it now. A store that cannot be read keeps the last
    /// registry loaded (logged): validation then refuses what it does not know, never more.
    pub fn refresh(&self, store: &dyn ServerStore) -> Arc<FormRegistry> {
        let loaded_at = match self.current.read() {
            Ok(current) => current.0,
            Err(poisoned) => poisoned.into_inner().0,
        };
        let head = match store.forms_head() {
            Ok(head) => head,
            Err(e) => {
                tracing::error!(error = %e, "forms feed");
                return self.get();
            }
        };
        if head == loaded_at {
            return self.get();
        }
        match store
            .forms()
            .map_err(FormError::from)
            .and_then(|f| registry(&f))
        {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                let mut current = match self.current.write() {
                    Ok(current) => current,
                    Err(poisoned) => poisoned.into_inner(),
                };
                // A head that went back (a restore) is taken as it is, once.
                *current = (head, fresh.clone());
                fresh
            }
            Err(e) => {
                tracing::error!(error = %e, "published forms");
                self.get()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::prelude::*;
    use crate::storage::User;
    use crate::SqliteStore;
    use suivi_core::forms::{FieldType, REFERRAL};

    fn referral_v1() -> FormDefinition {
        FormRegistry::builtin().get(REFERRAL, 1).unwrap().clone()
    }

    fn store_with_admin() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("server.db"), None).unwrap();
        for (user_id, role) in [("nadia", Role::Admin), ("fatima", Role::Supervisor)] {
            store
                .add_user(
                    &User {
                        user_id: user_id.into(),
                        role,
                        team: "souk-sebt".into(),
                        password_hash: None,
                    },
                    0,
                )
                .unwrap();
        }
        seed_builtin(&store, 0).unwrap();
        (dir, store)
    }

    #[test]
    fn a_published_version_never_changes_and_a_field_keeps_its_type() {
        let v1 = referral_v1();
        let published = [v1.clone()];
        assert!(!check_new_version(&v1, &published).unwrap(), "same again");
        let mut changed = v1.clone();
        changed.fields.pop();
        assert!(matches!(
            check_new_version(&changed, &published),
            Err(FormError::VersionChanged { next: 2, .. })
        ));
        let mut v2 = changed.clone();
        v2.version = 2;
        assert!(check_new_version(&v2, &published).unwrap());
        let mut retyped = v1.clone();
        retyped.version = 2;
        let provider = retyped
            .fields
            .iter_mut()
            .find(|f| f.id == "provider")
            .unwrap();
        provider.field_type = FieldType::Integer;
        provider.constraints = Default::default();
        match check_new_version(&retyped, &published) {
            Err(FormError::TypeChanged {
                field, was, now, ..
            }) => {
                assert_eq!(
                    (field.as_str(), was.as_str(), now.as_str()),
                    ("provider", "text", "integer")
                );
            }
            other => panic!("expected a type change refused, got {other:?}"),
        }
        let published = [v1.clone(), v2.clone()];
        let mut v0 = v1.clone();
        v0.version = 0;
        assert!(matches!(
            check_new_version(&v0, &published),
            Err(FormError::NotNewer { newest: 2, .. })
        ));
        let mut other = v2.clone();
        other.id = "intake".into();
        assert!(matches!(
            check_new_version(&other, &published),
            Err(FormError::UnknownFormId(_))
        ));
    }

    #[test]
    fn only_an_admin_publishes_and_the_last_active_version_stays() {
        let (_dir, store) = store_with_admin();
        let mut v2 = referral_v1();
        v2.version = 2;
        assert!(matches!(
            publish(&store, &v2, "fatima", 1),
            Err(FormError::NotAdmin(_))
        ));
        assert!(matches!(
            publish(&store, &v2, "nobody", 1),
            Err(FormError::UnknownUser(_))
        ));
        assert!(matches!(
            retire(&store, REFERRAL, 1, "nadia", 1),
            Err(FormError::LastActive { .. })
        ));
        let done = publish(&store, &v2, "nadia", 1).unwrap();
        assert!(done.new);
        assert!(!publish(&store, &v2, "nadia", 2).unwrap().new);
        retire(&store, REFERRAL, 1, "nadia", 3).unwrap();
        let registry = registry(&store.forms().unwrap()).unwrap();
        assert_eq!(registry.latest(REFERRAL).unwrap().version, 2);
        assert!(registry.is_retired(REFERRAL, 1));
        assert!(
            registry.get(REFERRAL, 1).is_ok(),
            "a retired version still reads its records"
        );
        assert!(matches!(
            retire(&store, REFERRAL, 2, "nadia", 4),
            Err(FormError::LastActive { .. })
        ));
        assert!(matches!(
            retire(&store, REFERRAL, 9, "nadia", 4),
            Err(FormError::UnknownVersion { .. })
        ));
    }

    #[test]
    fn the_cache_follows_the_store() {
        let (_dir, store) = store_with_admin();
        let cache = FormCache::default();
        assert_eq!(cache.refresh(&store).latest(REFERRAL).unwrap().version, 1);
        let mut v2 = referral_v1();
        v2.version = 2;
        publish(&store, &v2, "nadia", 1).unwrap();
        assert_eq!(
            cache.get().latest(REFERRAL).unwrap().version,
            1,
            "no I/O, no news"
        );
        assert_eq!(cache.refresh(&store).latest(REFERRAL).unwrap().version, 2);
        assert_eq!(cache.get().latest(REFERRAL).unwrap().version, 2);
    }
}
