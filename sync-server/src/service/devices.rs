//! Devices: authentication, enrollment, wipe confirmation, and the forgeries a phone reports.

use super::*;

impl SyncService {
    /// A phone's witness: changes the feed holds under its name that it never wrote. Each one
    /// that is really stored in that case under this device is recorded for the officer (an
    /// audit row `verify` reports) and its case set aside, so it spreads no further; anything
    /// else in a report is not a change of this device and is left out. At most
    /// `FORGERY_REPORTS_PER_REQUEST_MAX` are read per request.
    pub(super) fn record_forgeries(
        &self,
        device: &AuthedDevice,
        reports: &[protocol::ForgeryReport],
        now: i64,
    ) -> Result<(), ServiceError> {
        let device_id = &device.device.device_id;
        for report in reports.iter().take(FORGERY_REPORTS_PER_REQUEST_MAX) {
            let hash_ok = report.hash.len() == 64
                && report
                    .hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !valid_case_id(&report.case_id) || !hash_ok {
                continue;
            }
            let subject = format!("{} {}", report.case_id, report.hash);
            // Known already: nothing more to do (an indexed lookup, before any other read).
            if self
                .store
                .audit_row_exists(crate::evidence::FORGERY_REPORTED, &subject)?
            {
                continue;
            }
            // Who pushed each of the case's changes (hashes and devices, no payloads).
            let under_this_device = self
                .store
                .change_origins(&report.case_id)?
                .iter()
                .any(|o| o.hash == report.hash && o.device_id == *device_id);
            if !under_this_device {
                continue;
            }
            self.store
                .audit(now, device_id, crate::evidence::FORGERY_REPORTED, &subject)?;
            self.store.quarantine_case(
                &report.case_id,
                "a phone reported a change under its name that it never wrote",
                now,
            )?;
            tracing::error!(device = %device_id, case = %report.case_id, "forgery reported by a phone");
        }
        Ok(())
    }

    /// Checks `Authorization: Bearer <device>.<token>`. A revoked device is refused unless
    /// `allow_revoked` (the wipe confirmation is the one thing it may still say).
    pub fn authenticate(
        &self,
        header: Option<&str>,
        allow_revoked: bool,
    ) -> Result<AuthedDevice, ServiceError> {
        let (device_id, token) = header
            .and_then(auth::parse_bearer)
            .ok_or(ServiceError::Unauthorized)?;
        let device = self
            .store
            .device(device_id)?
            .ok_or(ServiceError::Unauthorized)?;
        if !auth::token_matches(token, &device.token_hash) {
            return Err(ServiceError::Unauthorized);
        }
        if device.revoked && !allow_revoked {
            return Err(ServiceError::Revoked);
        }
        let user = self
            .store
            .user(&device.user_id)?
            .ok_or(ServiceError::Unauthorized)?;
        Ok(AuthedDevice { device, user })
    }

    pub fn enroll(
        &self,
        request: &EnrollRequest,
        now: i64,
    ) -> Result<EnrollResponse, ServiceError> {
        let actor_ok = request.actor.len() >= 16
            && request.actor.len() <= 64
            && request.actor.chars().all(|c| c.is_ascii_hexdigit());
        if !actor_ok || request.device_name.is_empty() || request.device_name.len() > 100 {
            return Err(ServiceError::BadRequest(
                "invalid actor or device name".into(),
            ));
        }
        let token = auth::new_token();
        let device = Device {
            device_id: auth::new_device_id(),
            user_id: String::new(),
            actor: request.actor.to_ascii_lowercase(),
            name: request.device_name.clone(),
            token_hash: auth::sha256_hex(&token),
            revoked: false,
            wiped: false,
        };
        let code = auth::normalise_code(&request.code);
        // Codes issued before they were keyed were stored as a plain SHA-256; they expire within
        // ENROLLMENT_CODE_TTL_SECS of the upgrade, and the two forms cannot collide.
        let redeemed = match self.store.redeem_enrollment_code(
            &self.codes.code_hash(&code),
            &request.user,
            now,
            &device,
        ) {
            Ok(None) => self.store.redeem_enrollment_code(
                &auth::sha256_hex(&code),
                &request.user,
                now,
                &device,
            ),
            other => other,
        };
        let user = match redeemed {
            Ok(Some(user)) => user,
            Ok(None) => {
                return Err(ServiceError::Forbidden(
                    "unknown, used or expired enrollment code".into(),
                ))
            }
            Err(StorageError::Conflict(_)) => {
                return Err(ServiceError::BadRequest(
                    "this actor id is already enrolled".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(EnrollResponse {
            device_id: device.device_id,
            token,
            user: user.user_id,
            role: user.role.as_str().to_string(),
        })
    }

    pub fn confirm_wipe(&self, device: &AuthedDevice, now: i64) -> Result<(), ServiceError> {
        if device.device.revoked {
            self.store.confirm_wipe(&device.device.device_id, now)?;
        }
        Ok(())
    }
}
