//! What core says to people, in French, English and Arabic: referral statuses, yes and no,
//! dates and times in the project's time zone (never sub-seconds), and the phrases a case's
//! history is told with (`case_doc::story`). The console, the `suivi` command and the app show
//! the same words.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};
use crate::forms::Lang;
use crate::referral::ReferralStatus;

/// The phrases, each in the three languages (fr, en, ar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W {
    Yes,
    No,
    ChildIdentified,
    IdentificationEdited,
    FormMoved,
    ReferralCreated,
    Referral,
    TransferredTo,
    FollowUp,
    AuditNote,
    Reassigned,
    MergedInto,
    MergedHere,
    MergeUndone,
    ConflictSettled,
    Changed,
    Status,
    Agent,
    Disputed,
    Cleared,
    Unknown,
}

pub fn w(lang: Lang, word: W) -> &'static str {
    let (fr, en, ar) = match word {
        W::Yes => ("oui", "yes", "نعم"),
        W::No => ("non", "no", "لا"),
        W::ChildIdentified => ("Enfant identifié", "Child identified", "تم تحديد الطفل"),
        W::IdentificationEdited => (
            "Identification modifiée",
            "Identification edited",
            "تم تعديل بيانات التعريف",
        ),
        W::FormMoved => (
            "Fiche passée à la version",
            "Record moved to form version",
            "نُقل السجل إلى نسخة الاستمارة",
        ),
        W::ReferralCreated => (
            "Orientation préparée vers",
            "Referral drafted to",
            "إحالة مُعدّة إلى",
        ),
        W::Referral => ("Orientation vers", "Referral to", "إحالة إلى"),
        W::TransferredTo => ("Transférée vers", "Transferred to", "حُوّلت إلى"),
        W::FollowUp => (
            "Visite de suivi du",
            "Follow-up visit of",
            "زيارة متابعة بتاريخ",
        ),
        W::AuditNote => ("Note d'audit", "Audit note", "ملاحظة تدقيق"),
        W::Reassigned => ("Confié à", "Given to", "أُسند إلى"),
        W::MergedInto => (
            "Fusionné dans le dossier",
            "Merged into the record",
            "دُمج في السجل",
        ),
        W::MergeUndone => (
            "Fusion annulée : dossier séparé de",
            "Merge undone: record separated from",
            "أُلغي الدمج: فُصل السجل عن",
        ),
        W::MergedHere => (
            "Dossier fusionné ici",
            "Record merged into this one",
            "دُمج سجل هنا",
        ),
        W::ConflictSettled => ("Conflit réglé", "Conflict settled", "حُسم التعارض"),
        W::Changed => ("Modification", "Change", "تعديل"),
        W::Status => ("Statut", "Status", "الحالة"),
        W::Agent => ("Agent", "Agent", "العون"),
        W::Disputed => ("contesté", "disputed", "متنازع عليه"),
        W::Cleared => ("effacé", "cleared", "مُحي"),
        W::Unknown => ("inconnu", "unknown", "غير معروف"),
    };
    match lang {
        Lang::Fr | Lang::Other(_) => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
}

/// Between a label and its value: French sets a space before the colon.
pub fn colon(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr | Lang::Other(_) => " : ",
        Lang::En | Lang::Ar => ": ",
    }
}

/// Quoted words (a note) with the reader's quotation marks.
pub fn quoted(lang: Lang, text: &str) -> String {
    match lang {
        Lang::Fr | Lang::Other(_) => format!("« {text} »"),
        Lang::En => format!("“{text}”"),
        Lang::Ar => format!("«{text}»"),
    }
}

/// "From → to" in the reading direction: right to left in Arabic, so the arrow points left.
pub fn arrow(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr | Lang::En | Lang::Other(_) => "→",
        Lang::Ar => "←",
    }
}

pub fn yes_no(lang: Lang, value: bool) -> &'static str {
    w(lang, if value { W::Yes } else { W::No })
}

impl ReferralStatus {
    /// The status as the reader says it.
    pub fn label(self, lang: Lang) -> &'static str {
        let (fr, en, ar) = match self {
            ReferralStatus::Draft => ("brouillon", "draft", "مسودة"),
            ReferralStatus::Sent => ("envoyée", "sent", "مُرسلة"),
            ReferralStatus::Accepted => ("acceptée", "accepted", "مقبولة"),
            ReferralStatus::Declined => ("refusée", "declined", "مرفوضة"),
            ReferralStatus::InService => ("en cours de service", "in service", "قيد الخدمة"),
            ReferralStatus::Completed => ("terminée", "completed", "مكتملة"),
            ReferralStatus::Closed => ("clôturée", "closed", "مغلقة"),
            ReferralStatus::Transferred => ("transférée", "transferred", "مُحوَّلة"),
        };
        match lang {
            Lang::Fr | Lang::Other(_) => fr,
            Lang::En => en,
            Lang::Ar => ar,
        }
    }
}

impl crate::referral::Transition {
    /// The move as a button says it.
    pub fn label(self, lang: Lang) -> &'static str {
        use crate::referral::Transition as T;
        let (fr, en, ar) = match self {
            T::Send => ("Envoyer", "Send", "إرسال"),
            T::Accept => ("Accepter", "Accept", "قبول"),
            T::Decline => ("Refuser", "Decline", "رفض"),
            T::Start => ("Commencer le service", "Start the service", "بدء الخدمة"),
            T::Complete => ("Terminer", "Complete", "إتمام"),
            T::Close => ("Clôturer", "Close", "إغلاق"),
            T::Transfer => (
                "Transférer vers un autre prestataire",
                "Transfer to another provider",
                "تحويل إلى مقدّم خدمة آخر",
            ),
        };
        match lang {
            Lang::Fr | Lang::Other(_) => fr,
            Lang::En => en,
            Lang::Ar => ar,
        }
    }
}

/// A status as stored (a code), as the reader says it; "disputed" (two at once) too, and an
/// unknown code as it is.
pub fn status_label(lang: Lang, code: &str) -> String {
    match ReferralStatus::parse(code) {
        Ok(status) => status.label(lang).to_string(),
        Err(_) if code == "disputed" => w(lang, W::Disputed).to_string(),
        Err(_) => code.to_string(),
    }
}

const MONTHS: [(&str, &str, &str); 12] = [
    ("janvier", "January", "يناير"),
    ("février", "February", "فبراير"),
    ("mars", "March", "مارس"),
    ("avril", "April", "أبريل"),
    ("mai", "May", "مايو"),
    ("juin", "June", "يونيو"),
    ("juillet", "July", "يوليو"),
    ("août", "August", "أغسطس"),
    ("septembre", "September", "سبتمبر"),
    ("octobre", "October", "أكتوبر"),
    ("novembre", "November", "نوفمبر"),
    ("décembre", "December", "ديسمبر"),
];

/// A day as the reader writes it: "2 mars 2026", "2 March 2026", "2 مارس 2026".
pub fn date(lang: Lang, day: NaiveDate) -> String {
    let (fr, en, ar) = MONTHS[day.month0() as usize];
    let month = match lang {
        Lang::Fr | Lang::Other(_) => fr,
        Lang::En => en,
        Lang::Ar => ar,
    };
    format!("{} {month} {}", day.day(), day.year())
}

/// A stored date (`2026-03-02`) as the reader writes it; anything else as it is.
pub fn date_text(lang: Lang, text: &str) -> String {
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) => date(lang, day),
        Err(_) => text.to_string(),
    }
}

/// The project's time zone (a server setting; a phone uses its own): times are shown in it, to
/// the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone(Tz::UTC)
    }
}

impl Zone {
    /// An IANA zone name: `Africa/Casablanca`, `Africa/Bamako`, `UTC`.
    pub fn parse(name: &str) -> Result<Zone> {
        name.parse::<Tz>()
            .map(Zone)
            .map_err(|_| Error::InvalidInput(format!("unknown time zone {name}")))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// A moment on this zone's clock, with its offset (for a file a spreadsheet reads).
    pub fn local(self, at: DateTime<Utc>) -> DateTime<chrono::FixedOffset> {
        at.with_timezone(&self.0).fixed_offset()
    }

    /// When a day begins in this zone (unix seconds): what "from this day" means to the reader.
    pub fn start_of(self, day: NaiveDate) -> i64 {
        use chrono::TimeZone;
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        self.0
            .from_local_datetime(&midnight)
            .earliest()
            // A day that begins in a clock change's gap begins an hour in.
            .or_else(|| {
                self.0
                    .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map_or_else(|| midnight.and_utc().timestamp(), |t| t.timestamp())
    }

    /// The day a moment falls on in this zone.
    pub fn day_of(self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.0).date_naive()
    }

    /// The day a moment falls on in this zone, as the reader writes it: "2 mai 2026".
    pub fn day(self, lang: Lang, at: DateTime<Utc>) -> String {
        date(lang, self.day_of(at))
    }

    /// A stored moment (RFC 3339, a device's clock) as the reader writes it in this zone; a
    /// date as a date; anything else as it is.
    pub fn time_text(self, lang: Lang, text: &str) -> String {
        match DateTime::parse_from_rfc3339(text) {
            Ok(at) => self.date_time(lang, at.with_timezone(&Utc)),
            Err(_) => date_text(lang, text),
        }
    }

    /// A moment as the reader writes it, in this zone, to the minute: "2 mars 2026 à 14:05".
    pub fn date_time(self, lang: Lang, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.0);
        let day = date(lang, local.date_naive());
        let time = local.format("%H:%M");
        match lang {
            Lang::Fr | Lang::Other(_) => format!("{day} à {time}"),
            Lang::En => format!("{day}, {time}"),
            Lang::Ar => format!("{day}، {time}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn a_day_begins_at_the_zones_midnight() {
        let day = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        let casablanca = Zone::parse("Africa/Casablanca").unwrap();
        let utc = Zone::default();
        assert_eq!(utc.start_of(day), 1_777_852_800);
        // Casablanca is an hour ahead of UTC outside Ramadan: its day begins an hour earlier.
        assert_eq!(casablanca.start_of(day), 1_777_852_800 - 3600);
    }

    #[test]
    fn dates_and_times_read_in_the_readers_language_and_zone() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(date(Lang::Fr, day), "2 mars 2026");
        assert_eq!(date(Lang::En, day), "2 March 2026");
        assert_eq!(date(Lang::Ar, day), "2 مارس 2026");
        assert_eq!(date_text(Lang::Fr, "2026-08-15"), "15 août 2026");
        assert_eq!(date_text(Lang::Fr, "not a date"), "not a date");
        // 13:05:59.123456789 UTC: no seconds shown, the zone's hour.
        let at = DateTime::from_timestamp(1_772_456_759, 123_456_789).unwrap();
        assert_eq!(
            Zone::default().date_time(Lang::En, at),
            "2 March 2026, 13:05"
        );
        let bamako = Zone::parse("Africa/Bamako").unwrap();
        assert_eq!(bamako.date_time(Lang::Fr, at), "2 mars 2026 à 13:05");
        // Morocco keeps UTC+1 but UTC+0 in Ramadan (2 March 2026 fell in it): the zone knows.
        let casablanca = Zone::parse("Africa/Casablanca").unwrap();
        assert_eq!(casablanca.date_time(Lang::Fr, at), "2 mars 2026 à 13:05");
        let may = DateTime::from_timestamp(1_777_727_159, 0).unwrap();
        assert_eq!(casablanca.date_time(Lang::Fr, may), "2 mai 2026 à 14:05");
        assert_eq!(casablanca.date_time(Lang::Ar, may), "2 مايو 2026، 14:05");
        assert!(Zone::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn statuses_and_booleans_are_words() {
        assert_eq!(status_label(Lang::Fr, "declined"), "refusée");
        assert_eq!(status_label(Lang::Ar, "sent"), "مُرسلة");
        assert_eq!(status_label(Lang::En, "disputed"), "disputed");
        assert_eq!(status_label(Lang::Fr, "mystery"), "mystery");
        assert_eq!(yes_no(Lang::Fr, true), "oui");
        assert_eq!(yes_no(Lang::Ar, false), "لا");
    }
}
