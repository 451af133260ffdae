//! Slowing password guessing down without letting anyone keep a user out.
//!
//! Three counts, each kept in the store so every instance sees them, each forgotten
//! `FAILURE_MEMORY_SECS` after its last failure:
//! - the pair (account, address): the growing delay a guesser at one account from one address
//!   meets (up to `DELAY_MAX_SECS`). It is the address's own: another address never waits for it.
//! - the address (any account): the same delay for one address spraying many accounts.
//! - the account: a budget of `ACCOUNT_BUDGET` failed checks per memory window, spent only by
//!   addresses already failing at this account. Once spent, an address that has failed at the
//!   account waits until its own failures are forgotten, while an address that has not failed
//!   there (the real user at her office) is always checked at once.
//!
//! So whatever an attacker does from other addresses, a correct password from an address that
//! has not been failing gets in; a guesser with many addresses gets one check per address per
//! window once the budget is spent. The decision is a pure function of the three counts.

use crate::storage::LoginFailures;

/// Failed logins in a row that cost nothing; each one after doubles the wait, up to the cap.
pub const FREE_FAILURES: u32 = 3;
pub const DELAY_MAX_SECS: i64 = 60;
/// A count is forgotten this long after its last failure: an office behind one address is not
/// slowed for the rest of the day by a few typos.
pub const FAILURE_MEMORY_SECS: i64 = 15 * 60;
/// Failed checks an account takes, per memory window, from addresses already failing at it.
pub const ACCOUNT_BUDGET: u32 = 20;

/// The keys a try is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// The account: `user:<id>`.
    pub account: String,
    /// The address: `ip:<address>` (IPv6 by its /64).
    pub address: String,
    /// The pair: `pair:<id>|ip:<address>` (a user id holds no `|`).
    pub pair: String,
}

impl Keys {
    /// The keys of a try. `user_id` must be a valid user id (`valid_user_id`): checked before,
    /// so that no name can be made to read as another key (`fatima@ip:…` as a pair's).
    pub fn new(user_id: &str, address: &str) -> Keys {
        Keys {
            account: format!("user:{user_id}"),
            address: address.to_string(),
            pair: format!("pair:{user_id}|{address}"),
        }
    }
}

/// The three counts before a try.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub account: LoginFailures,
    pub address: LoginFailures,
    pub pair: LoginFailures,
}

/// What a try gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The password is checked.
    Check,
    /// Not checked: try again in this many seconds.
    Wait(i64),
}

/// A count as it stands at `now`: forgotten once its last failure is old enough.
pub fn current(failures: LoginFailures, now: i64) -> LoginFailures {
    if failures.last_at < now - FAILURE_MEMORY_SECS {
        LoginFailures::default()
    } else {
        failures
    }
}

/// How long a key must still wait before its next login try.
pub fn login_wait(failures: LoginFailures, now: i64) -> i64 {
    let failures = current(failures, now);
    if failures.count < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures.count - FREE_FAILURES).min(6);
    let delay = (1i64 << doublings).min(DELAY_MAX_SECS);
    // Times are whole seconds and the failure may have come at the end of its second: the wait
    // counts from the next one, so it is never shorter than the delay (a one-second delay
    // read from the same second's start let a try at the next second's start through at once).
    (failures.last_at + 1 + delay - now).max(0)
}

/// Whether a try is checked, from the counts before it.
pub fn decide(counts: Counts, now: i64) -> Decision {
    let wait = login_wait(counts.pair, now).max(login_wait(counts.address, now));
    if wait > 0 {
        return Decision::Wait(wait);
    }
    let pair = current(counts.pair, now);
    if pair.count > 0 && current(counts.account, now).count >= ACCOUNT_BUDGET {
        // This address has failed here and the account's budget is spent: it waits for its
        // own failures to be forgotten, which nothing another address does can put off.
        return Decision::Wait((pair.last_at + FAILURE_MEMORY_SECS - now).max(1));
    }
    Decision::Check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(count: u32, last_at: i64) -> LoginFailures {
        LoginFailures { count, last_at }
    }

    #[test]
    fn the_growing_delay_is_capped_and_forgotten() {
        assert_eq!(login_wait(at(FREE_FAILURES - 1, 1000), 1000), 0);
        assert_eq!(login_wait(at(FREE_FAILURES, 1000), 1000), 2);
        assert_eq!(
            login_wait(at(FREE_FAILURES, 1000), 1001),
            1,
            "a failure late in second 1000 is a whole second old only at 1002"
        );
        assert_eq!(login_wait(at(FREE_FAILURES + 3, 1000), 1000), 9);
        assert_eq!(login_wait(at(1_000, 1000), 1000), DELAY_MAX_SECS + 1);
        assert_eq!(login_wait(at(1_000, 1000), 1001 + DELAY_MAX_SECS), 0);
        assert_eq!(
            current(at(50, 1000), 1000 + FAILURE_MEMORY_SECS + 1),
            LoginFailures::default()
        );
        assert_eq!(current(at(50, 1000), 1000 + FAILURE_MEMORY_SECS).count, 50);
    }

    #[test]
    fn a_clean_address_is_checked_whatever_the_account_has_seen() {
        let now = 10_000;
        let spent = Counts {
            account: at(10_000, now),
            address: LoginFailures::default(),
            pair: LoginFailures::default(),
        };
        assert_eq!(decide(spent, now), Decision::Check);
    }

    #[test]
    fn a_failing_address_waits_for_its_own_failures_once_the_budget_is_spent() {
        let now = 10_000;
        let typo = Counts {
            account: at(ACCOUNT_BUDGET, now),
            address: at(1, now - 60),
            pair: at(1, now - 60),
        };
        assert_eq!(
            decide(typo, now),
            Decision::Wait(FAILURE_MEMORY_SECS - 60),
            "bounded by its own last failure, not the attacker's"
        );
        // Within the budget, the same address is checked.
        let within = Counts {
            account: at(ACCOUNT_BUDGET - 1, now),
            ..typo
        };
        assert_eq!(decide(within, now), Decision::Check);
        // Once its own failures are forgotten, it is clean again.
        assert_eq!(
            decide(typo, now - 60 + FAILURE_MEMORY_SECS + 1),
            Decision::Check
        );
    }

    #[test]
    fn the_pair_and_the_address_each_slow_a_guesser() {
        let now = 10_000;
        let pair = Counts {
            pair: at(FREE_FAILURES + 2, now),
            ..Counts::default()
        };
        assert_eq!(decide(pair, now), Decision::Wait(5));
        let address = Counts {
            address: at(FREE_FAILURES, now),
            ..Counts::default()
        };
        assert_eq!(decide(address, now), Decision::Wait(2));
    }
}
