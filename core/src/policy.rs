//! The access policy: who may read a case, write it, create one, or only add audit notes. One
//! module, beside the case layout rules, so that the server's push, its per-document fallback
//! and its stores all decide the same way. A store never decides by role: it gets a typed
//! `ReadScope` and translates it into its query, and `ReadScope::includes` is the in-memory
//! form every translation must agree with. A case's ownership is data the policy reads, so a
//! reassignment changes it in one place.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Identifies children, refers them and records visits: reads and writes its own caseload.
    Agent,
    /// Reconciles a team's caseloads.
    Supervisor,
    /// Audits the whole project: reads everything, writes audit notes only.
    Officer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Agent, Role::Supervisor, Role::Officer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Officer => "officer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub role: Role,
    pub team: &'a str,
}

/// Who a case belongs to: its creator, the creator's team, and the users it is assigned to.
#[derive(Debug, Clone, Copy)]
pub struct Ownership<'a> {
    pub created_by: &'a str,
    pub team: &'a str,
    pub assignees: &'a [String],
}

/// The cases a subject reads, as each store translates it into its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadScope {
    /// The cases it created, and those assigned to it.
    Own,
    /// Its team's cases, and those assigned to it.
    Team,
    /// Every case of the project.
    All,
}

impl ReadScope {
    pub fn of(role: Role) -> ReadScope {
        match role {
            Role::Agent => ReadScope::Own,
            Role::Supervisor => ReadScope::Team,
            Role::Officer | Role::Admin => ReadScope::All,
        }
    }

    /// Whether a case is in this scope for `subject`.
    pub fn includes(self, subject: &Subject<'_>, case: &Ownership<'_>) -> bool {
        let assigned = case.assignees.iter().any(|a| a == subject.user_id);
        match self {
            ReadScope::Own => case.created_by == subject.user_id || assigned,
            ReadScope::Team => case.team == subject.team || assigned,
            ReadScope::All => true,
        }
    }
}

/// What a subject may write to a case it pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Any change the case rules allow.
    Write,
    /// New audit notes only (an officer).
    AuditNotesOnly,
}

pub fn may_read(subject: &Subject<'_>, case: &Ownership<'_>) -> bool {
    ReadScope::of(subject.role).includes(subject, case)
}

/// What `subject` may write to a case (`None`: the case is new to the server), or `None` when it
/// may write nothing. Writes follow reads, except that officers audit and do not edit case
/// records, and do not create cases.
pub fn write_mode(subject: &Subject<'_>, case: Option<&Ownership<'_>>) -> Option<WriteMode> {
    match case {
        Some(case) if !may_read(subject, case) => None,
        Some(_) if subject.role == Role::Officer => Some(WriteMode::AuditNotesOnly),
        Some(_) => Some(WriteMode::Write),
        None if subject.role == Role::Officer => None,
        None => Some(WriteMode::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(user_id: &'static str, role: Role, team: &'static str) -> Subject<'static> {
        Subject {
            user_id,
            role,
            team,
        }
    }

    /// Every role against a case of its own, of its team, of another team, and assigned.
    #[test]
    fn reads_and_writes_by_role_and_ownership() {
        let assigned = vec!["moussa".to_string()];
        let case = Ownership {
            created_by: "amina",
            team: "sikasso",
            assignees: &assigned,
        };
        let amina = subject("amina", Role::Agent, "sikasso");
        let karim = subject("karim", Role::Agent, "sikasso");
        let moussa = subject("moussa", Role::Agent, "souk-sebt");
        let fatima = subject("fatima", Role::Supervisor, "sikasso");
        let ali = subject("ali", Role::Supervisor, "souk-sebt");
        let omar = subject("omar", Role::Officer, "project");
        let admin = subject("root", Role::Admin, "project");
        let write = Some(WriteMode::Write);
        for (who, read, mode) in [
            (amina, true, write),
            (karim, false, None), // same team, not its case: agents read their own caseload
            (moussa, true, write), // assigned
            (fatima, true, write),
            (ali, false, None),
            (omar, true, Some(WriteMode::AuditNotesOnly)),
            (admin, true, write),
        ] {
            assert_eq!(may_read(&who, &case), read, "{} reads", who.user_id);
            assert_eq!(
                write_mode(&who, Some(&case)),
                mode,
                "{} writes",
                who.user_id
            );
        }
        // A supervisor assigned a case of another team reads it.
        let ali_assigned = vec!["ali".to_string()];
        let elsewhere = Ownership {
            assignees: &ali_assigned,
            ..case
        };
        assert!(may_read(&ali, &elsewhere));
        // New cases: everyone but an officer.
        for who in [amina, fatima, admin] {
            assert_eq!(write_mode(&who, None), write);
        }
        assert_eq!(write_mode(&omar, None), None);
    }

    #[test]
    fn roles_read_back_from_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Agent"), None);
        assert_eq!(Role::parse(""), None);
    }
}
