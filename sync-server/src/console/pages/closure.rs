//! A case's outcome and closure on its page: the stage the rules derived and why, the next
//! step, the closure's steps with who took them, and a supervisor's decision.

use super::*;
use suivi_core::case_doc::{Closure, ClosureStatus};
use suivi_core::outcome::{self, Outcome};

/// What the closure section shows and offers.
pub struct ClosureView<'a> {
    pub case_id: &'a str,
    pub outcome: &'a Outcome,
    pub closure: &'a Closure,
    /// The reader may decide a proposal, and reopen a closed case (a supervisor or an admin;
    /// the server checks the team).
    pub decides: bool,
    /// The child has reached the programme's age limit (today, on the project's clock).
    pub aged_out: bool,
}

pub fn closure_section(frame: &Frame<'_>, v: &ClosureView<'_>) -> Markup {
    let lang = frame.lang;
    let o = v.outcome;
    let c = v.closure;
    let action = format!("/console/cases/{}/closure", urlencode(v.case_id));
    html! {
        section.closure id="closure" {
            h2 { (t(lang, T::OutcomeAndClosure)) }
            dl.record {
                dt { (t(lang, T::Stage)) }
                dd {
                    (o.stage.label(lang))
                    @if let Some((classification, _)) = o.classification {
                        " · " strong { (classification.label(lang)) }
                    }
                    @if o.provisional { " " span.meta { "(" (t(lang, T::ProvisionalOutcome)) ")" } }
                }
                @if !c.disputed && !c.is_closed() && c.status != ClosureStatus::Proposed {
                    dt { (t(lang, T::NextStep)) }
                    dd { (outcome::next_step(o.stage, v.aged_out, lang)) }
                }
                dt { (t(lang, T::Closure)) }
                dd {
                    (outcome::closure_label(lang, c.code()))
                    @if let (Some(reason), false) = (&c.reason, c.status == ClosureStatus::Open) {
                        " — " (outcome::closure_reason_label(lang, reason))
                    }
                }
            }
            @if !c.steps.is_empty() {
                ol.closure-steps {
                    @for step in &c.steps {
                        li {
                            (frame.zone.time_text(lang, &step.at)) " · "
                            (outcome::closure_step_label(lang, &step.step)) " · "
                            bdi { (step.actor) }
                            @if let Some(reason) = &step.reason {
                                " · " (outcome::closure_reason_label(lang, reason))
                            }
                            @if let Some(note) = &step.note { " : " bdi { (note) } }
                        }
                    }
                }
            }
            @if v.decides && !c.disputed && c.status == ClosureStatus::Proposed {
                form.closure method="post" action=(action) {
                    input type="hidden" name="csrf" value=(frame.csrf);
                    label { (t(lang, T::ClosureNote)) " " textarea name="note" rows="2" maxlength="2000" {} }
                    button.danger type="submit" name="decision" value="approve" { (t(lang, T::ApproveClosure)) }
                    " "
                    button type="submit" name="decision" value="return" { (t(lang, T::ReturnClosure)) }
                }
            }
            @if v.decides && c.is_closed() {
                form.closure method="post" action=(action) {
                    input type="hidden" name="csrf" value=(frame.csrf);
                    input type="hidden" name="decision" value="reopen";
                    label { (t(lang, T::ClosureNote)) " " textarea name="note" rows="2" maxlength="2000" {} }
                    button type="submit" { (t(lang, T::ReopenCase)) }
                }
            }
        }
    }
}
