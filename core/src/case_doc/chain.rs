//! A case's referral chain read from its history: identification, each referral (or transfer
//! to the next provider), each status move, each visit. What an officer audits end to end; the
//! console draws it, and the CLI and the app can too.

use std::collections::HashMap;

use super::*;

/// One step of the chain, read from what a change wrote (never from the label a phone gave it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ChainStep {
    Identified,
    Referred {
        referral_id: String,
        service: String,
        provider: String,
        /// The referral this one transfers (the child sent on to the next provider).
        previous_referral: Option<String>,
    },
    Moved {
        referral_id: String,
        /// The referral's service and provider as the chain last read them (empty if the
        /// history holds the move but not the referral, as a truncated one would).
        service: String,
        provider: String,
        from: String,
        to: String,
    },
    Visited {
        followup_id: String,
        date: String,
        services: Vec<String>,
    },
}

/// A step and the history entry (an index into the history given) that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub step: ChainStep,
    pub entry: usize,
}

/// A JSON value as text: strings without quotes, null as nothing.
pub fn plain(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// The chain of a case's history, in the order its changes were made.
pub fn referral_chain(history: &[HistoryEntry]) -> Vec<ChainLink> {
    // A move names its referral by id: what it was (service, provider) comes from the step
    // that created it, earlier in the history.
    let mut referrals: HashMap<String, (String, String)> = HashMap::new();
    let mut links = Vec::new();
    for (entry, e) in history.iter().enumerate() {
        let new_value = |path: &str| {
            e.changes
                .iter()
                .find(|c| c.path == path)
                .and_then(|c| c.new.as_ref())
                .map(plain)
        };
        let mut push = |step| links.push(ChainLink { step, entry });
        if e.changes
            .iter()
            .any(|c| c.path == "case_id" && c.old.is_none())
        {
            push(ChainStep::Identified);
        }
        for c in &e.changes {
            let parts: Vec<&str> = c.path.split('.').collect();
            match parts[..] {
                ["referrals", id, "status"] => match (&c.old, &c.new) {
                    (None, Some(_)) => {
                        let service =
                            new_value(&format!("referrals.{id}.service_type")).unwrap_or_default();
                        let provider =
                            new_value(&format!("referrals.{id}.provider")).unwrap_or_default();
                        referrals.insert(id.to_string(), (service.clone(), provider.clone()));
                        push(ChainStep::Referred {
                            referral_id: id.to_string(),
                            service,
                            provider,
                            previous_referral: new_value(&format!(
                                "referrals.{id}.previous_referral"
                            ))
                            .filter(|p| !p.is_empty()),
                        });
                    }
                    (Some(from), Some(to)) => {
                        let (service, provider) = referrals.get(id).cloned().unwrap_or_default();
                        push(ChainStep::Moved {
                            referral_id: id.to_string(),
                            service,
                            provider,
                            from: plain(from),
                            to: plain(to),
                        });
                    }
                    _ => {}
                },
                ["followups", id, "visit_date"] if c.old.is_none() => {
                    let services = e
                        .changes
                        .iter()
                        .find(|c| c.path == format!("followups.{id}.services_received"))
                        .and_then(|c| c.new.as_ref())
                        .map(|v| match v {
                            Json::Array(items) => items
                                .iter()
                                .filter_map(Json::as_str)
                                .map(str::to_string)
                                .collect(),
                            // A multiple choice reads, in history, as its ids between spaces.
                            other => plain(other)
                                .split_whitespace()
                                .map(str::to_string)
                                .collect(),
                        })
                        .unwrap_or_default();
                    push(ChainStep::Visited {
                        followup_id: id.to_string(),
                        date: plain(c.new.as_ref().unwrap_or(&Json::Null)),
                        services,
                    });
                }
                _ => {}
            }
        }
    }
    links
}
