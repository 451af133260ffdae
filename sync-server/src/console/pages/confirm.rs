//! The page that stands between a person and an action that wipes, moves or merges: what will
//! happen, said plainly, then a button that does it and a way back that does nothing.

use super::*;

/// An action to confirm: `effect`, one sentence per consequence; the form posts `fields` and
/// `confirmed=yes` to `action`.
pub struct Confirmation<'a> {
    pub title: &'a str,
    pub effect: &'a [String],
    /// What the person should see before deciding (a merge's two records side by side).
    pub detail: Option<Markup>,
    pub action: &'a str,
    pub fields: &'a [(&'a str, String)],
    pub confirm: &'a str,
    pub back: &'a str,
}

pub fn confirm(frame: &Frame<'_>, c: &Confirmation<'_>) -> Markup {
    let lang = frame.lang;
    page(
        frame,
        c.title,
        html! {
            h1 id="confirm-title" { (c.title) }
            section.confirm role="alertdialog" aria-labelledby="confirm-title" {
                ul.effect { @for line in c.effect { li { bdi { (line) } } } }
                @if let Some(detail) = &c.detail { (detail) }
                form.confirm method="post" action=(c.action) {
                    input type="hidden" name="csrf" value=(frame.csrf);
                    @for (name, value) in c.fields {
                        input type="hidden" name=(name) value=(value);
                    }
                    input type="hidden" name="confirmed" value="yes";
                    button.danger type="submit" { (c.confirm) }
                    " "
                    a.cancel href=(c.back) { (t(lang, T::Cancel)) }
                }
            }
        },
    )
}
