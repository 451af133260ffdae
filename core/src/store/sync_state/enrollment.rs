//! Enrollment: the request a phone sends with its code, the answer kept (server, device, token, role), and what the app reads of it.

use super::*;

impl Store {
    /// Enrolls this device with a one-time code from an admin. The credential is kept in the
    /// encrypted store; the store's user must be the user the code was issued for.
    pub fn enroll(
        &mut self,
        transport: &dyn Transport,
        server: &str,
        code: &str,
    ) -> Result<Enrollment> {
        let body = self.enrollment_request(code)?;
        let reply = transport.post("/v1/enroll", "application/json", body, None)?;
        self.finish_enrollment(server, &reply)
    }

    /// The body of `POST /v1/enroll` for this device. Split from `finish_enrollment` so an app
    /// holds the store only before and after the request, never during it.
    pub fn enrollment_request(&self, code: &str) -> Result<Vec<u8>> {
        let request = EnrollRequest {
            code: code.trim().to_string(),
            user: self.identity().user.clone(),
            actor: self.identity().actor.clone(),
            device_name: self.identity().device.clone(),
        };
        serde_json::to_vec(&request).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Keeps the credential the server's reply to `enrollment_request` carries.
    pub fn finish_enrollment(&mut self, server: &str, reply: &HttpReply) -> Result<Enrollment> {
        if reply.status != 200 {
            return Err(status_error(reply));
        }
        let enrolled: EnrollResponse = json_reply(reply)?;
        // A role this app does not know (a newer server's) would leave the phone guessing what
        // it may do: it asks for an update instead of enrolling.
        let role = Role::parse(&enrolled.role).ok_or(Error::UpgradeRequired)?;
        if enrolled.user != self.identity().user {
            return Err(Error::InvalidInput(format!(
                "this store belongs to {} but the code was issued for {}",
                self.identity().user,
                enrolled.user
            )));
        }
        let tx = self.connection_ref().unchecked_transaction()?;
        for (k, v) in [
            (META_SERVER, server),
            (META_DEVICE_ID, enrolled.device_id.as_str()),
            (META_TOKEN, enrolled.token.as_str()),
            (crate::store::META_ROLE, role.as_str()),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [k, v],
            )?;
        }
        tx.commit()?;
        Ok(Enrollment {
            server: server.to_string(),
            device_id: enrolled.device_id,
            user: enrolled.user,
            role,
        })
    }

    /// Creates a store at `path` for `user` and enrolls it, trusting `ca_pem` (a project's own
    /// certificate authority) for the enrollment request itself and every sync after it. If
    /// anything fails the new files are removed, so the app can simply try again; an existing
    /// store is never touched (`AlreadyInitialised`: reset it explicitly first).
    pub fn create_enrolled(
        path: &std::path::Path,
        key: &str,
        user: &str,
        device: &str,
        server: &str,
        code: &str,
        ca_pem: Option<&str>,
    ) -> Result<(Store, Enrollment)> {
        if path.exists() {
            return Err(Error::AlreadyInitialised);
        }
        let transport = crate::transport::HttpTransport::with_root_certificate(
            server,
            ca_pem.map(str::as_bytes),
        )?;
        let attempt = Store::create(path, key, user, device).and_then(|mut store| {
            if let Some(pem) = ca_pem {
                store.set_server_ca(pem)?;
            }
            let enrolled = store.enroll(&transport, server, code)?;
            Ok((store, enrolled))
        });
        if attempt.is_err() {
            Store::remove_files(path)?;
        }
        attempt
    }

    /// This device's enrollment, if it has a credential (`None` before enrolling or once a
    /// revocation's wipe was confirmed).
    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        let (Some(server), Some(device_id), Some(_)) = (
            self.meta(META_SERVER)?,
            self.meta(META_DEVICE_ID)?,
            self.meta(META_TOKEN)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Enrollment {
            server,
            device_id,
            user: self.identity().user.clone(),
            role: self.role()?,
        }))
    }

    /// The role the server enrolled this phone with. A phone enrolled before the role was kept
    /// (or holding one this version cannot read) acts as an agent's, the least it may do: the
    /// server decides what it accepts anyway, and a supervisor re-enrolls to reassign.
    pub fn role(&self) -> Result<Role> {
        Ok(self
            .meta(crate::store::META_ROLE)?
            .as_deref()
            .and_then(Role::parse)
            .unwrap_or(Role::Agent))
    }

    pub fn server_url(&self) -> Result<String> {
        self.meta(META_SERVER)?.ok_or(Error::NotEnrolled)
    }

    /// Trusts a project's own certificate authority (PEM) for this device's server; kept in
    /// the encrypted store.
    pub fn set_server_ca(&self, pem: &str) -> Result<()> {
        crate::transport::HttpTransport::with_root_certificate(
            "https://check",
            Some(pem.as_bytes()),
        )?;
        self.set_meta(META_SERVER_CA, pem)
    }

    /// The transport to this device's server, trusting its CA if one was set.
    pub fn transport(&self) -> Result<crate::transport::HttpTransport> {
        let ca = self.meta(META_SERVER_CA)?;
        crate::transport::HttpTransport::with_root_certificate(
            &self.server_url()?,
            ca.as_deref().map(str::as_bytes),
        )
    }

    pub fn credentials(&self) -> Result<Credentials> {
        match (self.meta(META_DEVICE_ID)?, self.meta(META_TOKEN)?) {
            (Some(device_id), Some(token)) => Ok(Credentials { device_id, token }),
            _ => Err(Error::NotEnrolled),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Enrollment {
    pub server: String,
    pub device_id: String,
    pub user: String,
    pub role: Role,
}

pub(crate) fn json_reply<T: for<'de> serde::Deserialize<'de>>(reply: &HttpReply) -> Result<T> {
    serde_json::from_slice(&reply.body).map_err(|e| Error::Protocol(format!("bad reply: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
mod tests {
    use super::*;

    fn reply(role: &str) -> HttpReply {
        HttpReply {
            status: 200,
            body: serde_json::json!({
                "device_id": "dev-1", "token": "secret", "user": "fatima", "role": role
            })
            .to_string()
            .into_bytes(),
        }
    }

    /// The role is kept typed: a supervisor's phone may reassign, a phone whose role was never
    /// kept (enrolled by an older release) acts as an agent's, and a role this version cannot
    /// read asks for an update instead of enrolling.
    #[test]
    fn the_enrolled_role_decides_what_the_phone_offers() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create(&dir.path().join("s.db"), "k", "fatima", "p").unwrap();
        assert!(matches!(
            store.finish_enrollment("https://x", &reply("auditor")),
            Err(Error::UpgradeRequired)
        ));
        assert_eq!(store.enrollment().unwrap(), None, "nothing kept");

        let enrolled = store
            .finish_enrollment("https://x", &reply("supervisor"))
            .unwrap();
        assert_eq!(enrolled.role, Role::Supervisor);
        assert_eq!(store.enrollment().unwrap().unwrap().role, Role::Supervisor);
        store.require_reassigner().unwrap();

        // As a phone enrolled before the role was kept reads.
        store
            .connection_ref()
            .execute("DELETE FROM meta WHERE key = ?1", [crate::store::META_ROLE])
            .unwrap();
        assert_eq!(store.role().unwrap(), Role::Agent);
        assert!(matches!(
            store.require_reassigner(),
            Err(Error::Forbidden(_))
        ));
    }
}
