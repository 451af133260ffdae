//! The CLI's words in French, English and Arabic, and errors told in them.

use super::*;

pub(super) fn report_error(err: &Error, lang: Lang, json: bool) {
    if json {
        let body = match err {
            Error::Validation(errors) => {
                serde_json::json!({"error": "validation", "fields": errors})
            }
            other => serde_json::json!({"error": other.to_string()}),
        };
        eprintln!("{body}");
        return;
    }
    match err {
        Error::Validation(errors) => {
            eprintln!("{}", t(lang, "invalid"));
            for e in errors {
                eprintln!("  - {}: {}", e.field, message(lang, &e.key));
            }
        }
        other => eprintln!("{}: {other}", t(lang, "error")),
    }
}

/// The few words the command itself says; form labels come from the form definitions.
pub(super) fn t(lang: Lang, key: &str) -> &'static str {
    let (fr, en, ar) = match key {
        "initialised" => (
            "Base chiffrée créée :",
            "Encrypted database created:",
            "تم إنشاء قاعدة البيانات المشفرة:",
        ),
        "case_created" => ("Cas créé", "Case created", "تم إنشاء الحالة"),
        "stage" => ("Étape", "Stage", "المرحلة"),
        "next_step" => ("Prochaine étape", "Next step", "الخطوة التالية"),
        "closure" => ("Clôture", "Closure", "الإغلاق"),
        "provisional" => (
            "provisoire : des visites attendent la synchronisation",
            "provisional: visits await their sync",
            "مؤقت: زيارات تنتظر المزامنة",
        ),
        "case_edited" => ("Cas modifié", "Case edited", "تم تعديل الحالة"),
        "referral_created" => ("Orientation créée", "Referral created", "تم إنشاء الإحالة"),
        "referral_moved" => ("Orientation", "Referral", "الإحالة"),
        "followup_created" => (
            "Visite de suivi enregistrée",
            "Follow-up visit recorded",
            "تم تسجيل زيارة المتابعة",
        ),
        "imported" => ("cas importés", "cases imported", "حالات مستوردة"),
        "cases" => ("cas", "cases", "حالات"),
        "arriving" => ("en cours d'arrivée", "arriving", "قيد الوصول"),
        "arrived_of" => ("arrivés sur", "arrived of", "وصلت من"),
        "case" => ("Cas", "Case", "حالة"),
        "created" => ("Créé le", "Created", "أنشئت في"),
        "by" => ("par", "by", "بواسطة"),
        "referrals" => ("Orientations", "Referrals", "الإحالات"),
        "followups" => ("Visites de suivi", "Follow-up visits", "زيارات المتابعة"),
        "conflicts" => ("conflits", "conflicts", "تعارضات"),
        "resolved" => ("Conflit réglé :", "Conflict settled:", "تمت تسوية التعارض:"),
        "continues" => ("suite de", "continues", "استمرار لـ"),
        "merged_into" => (
            "Fusionné (même enfant), lecture seule ; suite du dossier :",
            "Merged (same child), read-only; the record goes on in case",
            "مدمجة (نفس الطفل)، للقراءة فقط؛ يستمر الملف في الحالة",
        ),
        "merged_case" => ("Cas fusionné", "Merged case", "حالة مدمجة"),
        "reassigned" => (
            "Réassigné (appliqué à la prochaine synchronisation) :",
            "Reassigned (applied at the next sync):",
            "أعيد الإسناد (يُطبَّق عند المزامنة القادمة):",
        ),
        "not_received" => (
            " (pas encore reçu sur cet appareil)",
            " (not yet received on this device)",
            " (لم تصل بعد إلى هذا الجهاز)",
        ),
        "edits_after_merge" => (
            "Saisies faites après la fusion, à revoir :",
            "Recorded after the merge, to review:",
            "ما سُجّل بعد الدمج، للمراجعة:",
        ),
        "yes" => ("oui", "yes", "نعم"),
        "unverified" => ("non vérifié", "unverified", "غير مُتحقَّق منه"),
        "no" => ("non", "no", "لا"),
        "invalid" => (
            "Données invalides, rien n'a été enregistré :",
            "Invalid data, nothing was saved:",
            "بيانات غير صالحة، لم يتم حفظ أي شيء:",
        ),
        "error" => ("Erreur", "Error", "خطأ"),
        "enrolled" => (
            "Appareil inscrit auprès de",
            "Device enrolled with",
            "تم تسجيل الجهاز لدى",
        ),
        "synced" => ("Synchronisé", "Synced", "تمت المزامنة"),
        "refused" => (
            "Refusé par le serveur :",
            "Refused by the server:",
            "رفضه الخادم:",
        ),
        _ => ("?", "?", "?"),
    };
    match lang {
        Lang::Fr | Lang::Other(_) => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
}

pub(super) fn message(lang: Lang, key: &str) -> String {
    let text = match (lang, key) {
        (Lang::En, "required") => "required",
        (Lang::En, "unknown_field") => "unknown field",
        (Lang::En, "not_relevant") => "does not apply given the other answers",
        (Lang::En, "choice.unknown") => "not one of the choices",
        (Lang::En, "range.min") => "too small",
        (Lang::En, "range.max") => "too large",
        (Lang::En, "length.min") => "too short",
        (Lang::En, "length.max") => "too long",
        (Lang::En, "pattern") => "wrong format",
        (Lang::Fr, "required") => "obligatoire",
        (Lang::Fr, "unknown_field") => "champ inconnu",
        (Lang::Fr, "not_relevant") => "ne s'applique pas vu les autres réponses",
        (Lang::Fr, "choice.unknown") => "choix inconnu",
        (Lang::Fr, "range.min") => "trop petit",
        (Lang::Fr, "range.max") => "trop grand",
        (Lang::Fr, "length.min") => "trop court",
        (Lang::Fr, "length.max") => "trop long",
        (Lang::Fr, "pattern") => "format incorrect",
        _ => return key.to_string(),
    };
    format!("{text} ({key})")
}
