//! The referral status machine. A referral moves draft → sent → accepted | declined →
//! in_service → completed, or is closed; "transfer" hands the child to another provider and
//! starts the next link of the referral chain. Anything else is an `IllegalTransition`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    Draft,
    Sent,
    Accepted,
    Declined,
    InService,
    Completed,
    Closed,
    Transferred,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    Send,
    Accept,
    Decline,
    Start,
    Complete,
    Close,
    Transfer,
}

pub const ALL_STATUSES: [ReferralStatus; 8] = [
    ReferralStatus::Draft,
    ReferralStatus::Sent,
    ReferralStatus::Accepted,
    ReferralStatus::Declined,
    ReferralStatus::InService,
    ReferralStatus::Completed,
    ReferralStatus::Closed,
    ReferralStatus::Transferred,
];

pub const ALL_TRANSITIONS: [Transition; 7] = [
    Transition::Send,
    Transition::Accept,
    Transition::Decline,
    Transition::Start,
    Transition::Complete,
    Transition::Close,
    Transition::Transfer,
];

impl ReferralStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Draft => "draft",
            ReferralStatus::Sent => "sent",
            ReferralStatus::Accepted => "accepted",
            ReferralStatus::Declined => "declined",
            ReferralStatus::InService => "in_service",
            ReferralStatus::Completed => "completed",
            ReferralStatus::Closed => "closed",
            ReferralStatus::Transferred => "transferred",
        }
    }

    pub fn parse(text: &str) -> Result<ReferralStatus> {
        ALL_STATUSES
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| Error::InvalidInput(format!("unknown referral status {text}")))
    }

    /// Terminal statuses end this link of the chain; nothing follows them.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ReferralStatus::Completed | ReferralStatus::Closed | ReferralStatus::Transferred
        )
    }

    /// The moves this status allows, in the order a screen offers them: what the person does
    /// next (send, accept, ...), then transfer, then close.
    pub fn moves(self) -> Vec<Transition> {
        ALL_TRANSITIONS
            .into_iter()
            .filter(|t| self.apply(*t).is_ok())
            .collect()
    }

    /// The status a transition leads to, or `IllegalTransition`.
    pub fn apply(self, transition: Transition) -> Result<ReferralStatus> {
        use ReferralStatus as S;
        use Transition as T;
        let next = match (self, transition) {
            (S::Draft, T::Send) => S::Sent,
            (S::Sent, T::Accept) => S::Accepted,
            (S::Sent, T::Decline) => S::Declined,
            (S::Accepted, T::Start) => S::InService,
            (S::InService, T::Complete) => S::Completed,
            (S::Sent | S::Accepted | S::Declined | S::InService, T::Transfer) => S::Transferred,
            (s, T::Close) if !s.is_terminal() => S::Closed,
            (from, transition) => {
                return Err(Error::IllegalTransition {
                    from: from.as_str().to_string(),
                    transition: transition.as_str().to_string(),
                })
            }
        };
        Ok(next)
    }
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Send => "send",
            Transition::Accept => "accept",
            Transition::Decline => "decline",
            Transition::Start => "start",
            Transition::Complete => "complete",
            Transition::Close => "close",
            Transition::Transfer => "transfer",
        }
    }

    pub fn parse(text: &str) -> Result<Transition> {
        ALL_TRANSITIONS
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| Error::InvalidInput(format!("unknown referral transition {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_reaches_completed() {
        let mut status = ReferralStatus::Draft;
        for t in [
            Transition::Send,
            Transition::Accept,
            Transition::Start,
            Transition::Complete,
        ] {
            status = status.apply(t).unwrap();
        }
        assert_eq!(status, ReferralStatus::Completed);
    }

    #[test]
    fn the_moves_offered_are_exactly_those_the_status_allows() {
        assert_eq!(
            ReferralStatus::Draft.moves(),
            vec![Transition::Send, Transition::Close]
        );
        assert_eq!(
            ReferralStatus::Sent.moves(),
            vec![
                Transition::Accept,
                Transition::Decline,
                Transition::Close,
                Transition::Transfer
            ]
        );
        assert_eq!(
            ReferralStatus::Declined.moves(),
            vec![Transition::Close, Transition::Transfer]
        );
        for s in ALL_STATUSES {
            for t in ALL_TRANSITIONS {
                assert_eq!(s.moves().contains(&t), s.apply(t).is_ok(), "{s:?} {t:?}");
            }
            assert_eq!(s.moves().is_empty(), s.is_terminal(), "{s:?}");
        }
    }

    #[test]
    fn any_open_referral_can_be_closed_and_a_finished_one_cannot() {
        for s in ALL_STATUSES {
            let closed = s.apply(Transition::Close);
            if s.is_terminal() {
                assert!(closed.is_err(), "{s:?}");
            } else {
                assert_eq!(closed.unwrap(), ReferralStatus::Closed, "{s:?}");
            }
        }
        assert!(!ReferralStatus::Draft.is_terminal());
        assert!(ReferralStatus::Completed.is_terminal());
    }

    #[test]
    fn illegal_transitions_are_typed_errors() {
        for (from, t) in [
            (ReferralStatus::Draft, Transition::Accept),
            (ReferralStatus::Completed, Transition::Close),
            (ReferralStatus::Declined, Transition::Start),
            (ReferralStatus::Draft, Transition::Transfer),
            (ReferralStatus::Transferred, Transition::Send),
        ] {
            match from.apply(t) {
                Err(Error::IllegalTransition {
                    from: f,
                    transition,
                }) => {
                    assert_eq!(f, from.as_str());
                    assert_eq!(transition, t.as_str());
                }
                other => panic!("{from:?} {t:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_status_and_transition_round_trips_its_name() {
        for s in ALL_STATUSES {
            assert_eq!(ReferralStatus::parse(s.as_str()).unwrap(), s);
        }
        for t in ALL_TRANSITIONS {
            assert_eq!(Transition::parse(t.as_str()).unwrap(), t);
        }
        assert!(Transition::parse("teleport").is_err());
    }

    #[test]
    fn terminal_statuses_accept_nothing() {
        for s in ALL_STATUSES.into_iter().filter(|s| s.is_terminal()) {
            for t in ALL_TRANSITIONS {
                assert!(s.apply(t).is_err(), "{s:?} {t:?}");
            }
        }
    }
}
