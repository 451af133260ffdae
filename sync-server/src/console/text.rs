//! The console's own words in French (the default), English and Arabic. Form labels come from
//! the form definitions, in the same three languages.

use suivi_core::Lang;

/// A phrase of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Title,
    SignIn,
    SignOut,
    User,
    Password,
    BadLogin,
    AgentsUsePhones,
    TooManyTries,
    Caseload,
    Search,
    SearchHint,
    Village,
    Agent,
    Risk,
    ReferralStatus,
    Any,
    OverdueOnly,
    ConflictsOnly,
    Filter,
    Name,
    Place,
    Referrals,
    FollowUps,
    Conflicts,
    Updated,
    Cases,
    Previous,
    Next,
    NoCases,
    Identification,
    History,
    Verified,
    NotVerified,
    ReceivedAt,
    DeviceTime,
    Device,
    ConcurrentValues,
    AuditNotes,
    Transitions,
    NextVisit,
    NotFound,
    Forbidden,
    SessionExpired,
    Language,
    Overdue,
    Disputed,
    Team,
    AnotherValue,
    Settle,
    InTheConsole,
    Settled,
    NotSettled,
    Agents,
    LastSync,
    AppVersion,
    Waiting,
    Never,
    Stale,
    Revoke,
    Revoked,
    Wiped,
    OldApp,
    Devices,
    RevokedNotice,
    NoDevice,
}

/// The phrase in `lang`.
pub fn t(lang: Lang, phrase: T) -> &'static str {
    let (fr, en, ar) = match phrase {
        T::Title => ("Suivi — console", "Suivi — console", "سُويفي — لوحة المتابعة"),
        T::SignIn => ("Se connecter", "Sign in", "تسجيل الدخول"),
        T::SignOut => ("Se déconnecter", "Sign out", "تسجيل الخروج"),
        T::User => ("Identifiant", "User", "اسم المستخدم"),
        T::Password => ("Mot de passe", "Password", "كلمة المرور"),
        T::BadLogin => (
            "Identifiant ou mot de passe incorrect.",
            "Wrong user or password.",
            "اسم المستخدم أو كلمة المرور غير صحيحة.",
        ),
        T::AgentsUsePhones => (
            "Les agents travaillent sur leur téléphone : la console est réservée aux superviseurs, chargés de projet et administrateurs.",
            "Agents work on their phones: the console is for supervisors, officers and admins.",
            "يعمل الأعوان على هواتفهم: اللوحة مخصصة للمشرفين ومسؤولي المشروع والمديرين.",
        ),
        T::TooManyTries => (
            "Trop d'essais manqués. Réessayez dans quelques secondes :",
            "Too many failed tries. Try again in a few seconds:",
            "محاولات فاشلة كثيرة. أعد المحاولة بعد ثوانٍ:",
        ),
        T::Caseload => ("Dossiers de l'équipe", "Team caseload", "ملفات الفريق"),
        T::Search => ("Rechercher un nom", "Search a name", "البحث عن اسم"),
        T::SearchHint => (
            "Mohamed trouve aussi Mohammed et Muhammad",
            "Mohamed also finds Mohammed and Muhammad",
            "محمد يجد أيضا Mohammed و Muhammad",
        ),
        T::Village => ("Village", "Village", "الدوار / القرية"),
        T::Agent => ("Agent", "Agent", "العون"),
        T::Risk => ("Risque", "Risk", "درجة الخطر"),
        T::ReferralStatus => ("Statut d'orientation", "Referral status", "حالة الإحالة"),
        T::Any => ("Tous", "Any", "الكل"),
        T::OverdueOnly => ("Visite en retard", "Overdue follow-up", "زيارة متأخرة"),
        T::ConflictsOnly => ("Avec conflits", "With conflicts", "بها تعارضات"),
        T::Filter => ("Filtrer", "Filter", "تصفية"),
        T::Name => ("Nom", "Name", "الاسم"),
        T::Place => ("Lieu", "Place", "المكان"),
        T::Referrals => ("Orientations", "Referrals", "الإحالات"),
        T::FollowUps => ("Visites de suivi", "Follow-up visits", "زيارات المتابعة"),
        T::Conflicts => ("Conflits", "Conflicts", "التعارضات"),
        T::Updated => ("Mis à jour", "Updated", "آخر تحديث"),
        T::Cases => ("dossiers", "cases", "ملفات"),
        T::Previous => ("Précédents", "Previous", "السابق"),
        T::Next => ("Suivants", "Next", "التالي"),
        T::NoCases => ("Aucun dossier.", "No cases.", "لا توجد ملفات."),
        T::Identification => ("Identification", "Identification", "التعريف"),
        T::History => ("Historique", "History", "السجل"),
        T::Verified => ("vérifié", "verified", "موثَّق"),
        T::NotVerified => ("non vérifié", "not verified", "غير موثَّق"),
        T::ReceivedAt => ("reçu par le serveur", "received by the server", "استلمه الخادم"),
        T::DeviceTime => ("heure du téléphone", "phone's time", "توقيت الهاتف"),
        T::Device => ("appareil", "device", "الجهاز"),
        T::ConcurrentValues => (
            "Valeurs saisies en même temps sur deux appareils",
            "Values entered at once on two devices",
            "قيم أُدخلت في الوقت نفسه على جهازين",
        ),
        T::AuditNotes => ("Notes d'audit", "Audit notes", "ملاحظات التدقيق"),
        T::Transitions => ("Étapes", "Steps", "المراحل"),
        T::NextVisit => ("Prochaine visite", "Next visit", "الزيارة القادمة"),
        T::NotFound => (
            "Ce dossier n'existe pas ou ne fait pas partie de vos dossiers.",
            "This case does not exist or is not in your caseload.",
            "هذا الملف غير موجود أو ليس ضمن ملفاتك.",
        ),
        T::Forbidden => (
            "Formulaire refusé : rechargez la page et réessayez.",
            "Form refused: reload the page and try again.",
            "رُفض النموذج: أعد تحميل الصفحة وحاول مجددا.",
        ),
        T::SessionExpired => (
            "Votre session a expiré : reconnectez-vous.",
            "Your session expired: sign in again.",
            "انتهت الجلسة: سجّل الدخول من جديد.",
        ),
        T::Language => ("Langue", "Language", "اللغة"),
        T::Overdue => ("en retard", "overdue", "متأخرة"),
        T::Disputed => ("contesté", "disputed", "متنازع عليه"),
        T::Team => ("Équipe", "Team", "الفريق"),
        T::AnotherValue => ("Une autre valeur :", "Another value:", "قيمة أخرى:"),
        T::Settle => ("Régler le conflit", "Settle the conflict", "تسوية التعارض"),
        T::InTheConsole => ("fait dans la console", "made in the console", "أُنجز في لوحة المتابعة"),
        T::Agents => ("Agents et appareils", "Agents and devices", "الأعوان والأجهزة"),
        T::Devices => ("Appareils", "Devices", "الأجهزة"),
        T::LastSync => ("Dernière synchronisation", "Last sync", "آخر مزامنة"),
        T::AppVersion => ("Version de l'application", "App version", "إصدار التطبيق"),
        T::Waiting => ("Dossiers en attente sur l'appareil", "Cases waiting on the device", "ملفات تنتظر على الجهاز"),
        T::Never => ("jamais", "never", "أبدا"),
        T::Stale => ("plus de 7 jours sans synchronisation", "no sync for over 7 days", "أكثر من 7 أيام دون مزامنة"),
        T::Revoke => ("Révoquer", "Revoke", "إلغاء"),
        T::Revoked => ("révoqué", "revoked", "ملغى"),
        T::Wiped => ("effacé", "wiped", "تم مسحه"),
        T::OldApp => ("ancienne application (ne le dit pas)", "old app (does not say)", "تطبيق قديم (لا يذكر)"),
        T::NoDevice => (
            "Cet appareil n'existe pas, est déjà révoqué, ou n'est pas de votre équipe.",
            "This device does not exist, is already revoked, or is not your team's.",
            "هذا الجهاز غير موجود، أو أُلغي من قبل، أو ليس من فريقك.",
        ),
        T::RevokedNotice => (
            "Appareil révoqué : il effacera ses dossiers à sa prochaine connexion.",
            "Device revoked: it erases its cases the next time it connects.",
            "تم إلغاء الجهاز: سيمسح ملفاته عند اتصاله القادم.",
        ),
        T::NotSettled => (
            "Cette valeur ne convient pas à ce champ, ou le conflit est déjà réglé.",
            "That value does not fit the field, or the conflict is already settled.",
            "هذه القيمة لا تناسب الحقل، أو تمت تسوية التعارض من قبل.",
        ),
        T::Settled => (
            "Conflit réglé : les téléphones le verront à leur prochaine synchronisation.",
            "Conflict settled: phones see it at their next sync.",
            "تمت تسوية التعارض: ستراه الهواتف عند المزامنة القادمة.",
        ),
    };
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
}

pub fn tag(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "fr",
        Lang::En => "en",
        Lang::Ar => "ar",
    }
}

pub fn dir(lang: Lang) -> &'static str {
    if lang == Lang::Ar {
        "rtl"
    } else {
        "ltr"
    }
}
