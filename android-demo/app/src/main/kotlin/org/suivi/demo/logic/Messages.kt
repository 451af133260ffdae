package org.suivi.demo.logic

/**
 * The phone's language. The app's own words are in French, English or Arabic (right to left);
 * a form's labels are in any language the form carries (`bm`, Bambara, written in an XLSForm's
 * `label::bm` column), and the app's words for such a language are French ([app]).
 */
class Lang private constructor(val tag: String, val rightToLeft: Boolean) {
    /** The language the app's own words are in: French for a language only forms carry. */
    val app: Lang get() = APP.firstOrNull { it.tag == tag } ?: FR

    override fun equals(other: Any?): Boolean = other is Lang && other.tag == tag
    override fun hashCode(): Int = tag.hashCode()
    override fun toString(): String = tag

    companion object {
        val FR = Lang("fr", false)
        val EN = Lang("en", false)
        val AR = Lang("ar", true)
        private val APP = listOf(FR, EN, AR)

        /** The app's own three languages. */
        fun values(): List<Lang> = APP

        /**
         * From a locale tag such as "ar-MA", "en_GB" or "bm-ML": one of the app's languages, or
         * a two- or three-letter language forms may carry; anything else is French.
         */
        fun from(tag: String?): Lang {
            val primary = tag?.lowercase()?.split('-', '_', '.', '@')?.firstOrNull().orEmpty()
            APP.firstOrNull { it.tag == primary }?.let { return it }
            return if (primary.length in 2..3 && primary.all { it in 'a'..'z' }) Lang(primary, false) else FR
        }
    }
}

/** Texts for the message keys core returns (core never sends a sentence in one language). */
object Messages {
    private val texts: Map<String, Triple<String, String, String>> = mapOf(
        "required" to Triple("Obligatoire", "Required", "إجباري"),
        "closure.next_step" to Triple("Prochaine étape", "Next step", "الخطوة التالية"),
        "closure.propose" to Triple("Proposer la clôture", "Propose closure", "اقتراح الإغلاق"),
        "closure.approve" to Triple("Approuver la clôture", "Approve the closure", "الموافقة على الإغلاق"),
        "closure.return" to Triple("Renvoyer à l'agent", "Return to the agent", "إعادة إلى المرشد"),
        "closure.reopen" to Triple("Rouvrir le dossier", "Reopen the case", "إعادة فتح الملف"),
        "closure.note" to Triple("Note", "Note", "ملاحظة"),
        "unknown_field" to Triple("Champ inconnu", "Unknown field", "حقل غير معروف"),
        "not_relevant" to Triple("Ne s'applique pas", "Does not apply", "لا ينطبق"),
        "choice.unknown" to Triple("Choix inconnu", "Not one of the choices", "اختيار غير معروف"),
        "range.min" to Triple("Trop petit", "Too small", "صغير جدا"),
        "range.max" to Triple("Trop grand", "Too large", "كبير جدا"),
        "length.min" to Triple("Trop court", "Too short", "قصير جدا"),
        "length.max" to Triple("Trop long", "Too long", "طويل جدا"),
        "pattern" to Triple("Format incorrect", "Wrong format", "صيغة غير صحيحة"),
        "type.integer" to Triple("Nombre entier attendu", "A whole number", "عدد صحيح"),
        "type.date" to Triple("Date attendue (AAAA-MM-JJ)", "A date (YYYY-MM-DD)", "تاريخ (YYYY-MM-DD)"),
        "type.boolean" to Triple("Oui ou non", "Yes or no", "نعم أو لا"),
        "type.text" to Triple("Texte attendu", "Text expected", "نص مطلوب"),
        "type.phone" to Triple(
            "Numéro de téléphone attendu (chiffres, + au début permis)",
            "A phone number (digits, a leading + allowed)",
            "رقم هاتف (أرقام، ويجوز + في البداية)",
        ),
        "type.decimal" to Triple("Nombre attendu (ex. 12,5)", "A number (e.g. 12.5)", "عدد (مثلا 12,5)"),
        "type.geopoint" to Triple(
            "Position attendue : latitude et longitude",
            "A position: latitude and longitude",
            "موقع: خط العرض وخط الطول",
        ),
        "range.geopoint" to Triple(
            "Position hors du globe (latitude -90 à 90, longitude -180 à 180)",
            "Position off the globe (latitude -90 to 90, longitude -180 to 180)",
            "موقع خارج الكرة الأرضية (العرض من -90 إلى 90، الطول من -180 إلى 180)",
        ),
        "type.choice" to Triple("Choisissez une réponse de la liste", "Pick one answer from the list", "اختر إجابة من القائمة"),
        "type.choices" to Triple("Choisissez des réponses de la liste", "Pick answers from the list", "اختر إجابات من القائمة"),
        "choice.duplicate" to Triple("Une réponse est cochée deux fois", "An answer is ticked twice", "إجابة محددة مرتين"),
        "range.min.bound" to Triple("Trop petit : {b} au moins", "Too small: {b} at least", "صغير جدا: {b} على الأقل"),
        "range.max.bound" to Triple("Trop grand : {b} au plus", "Too large: {b} at most", "كبير جدا: {b} على الأكثر"),
        "length.min.bound" to Triple("Trop court : {b} caractères au moins", "Too short: {b} characters at least", "قصير جدا: {b} حرفا على الأقل"),
        "length.max.bound" to Triple("Trop long : {b} caractères au plus", "Too long: {b} characters at most", "طويل جدا: {b} حرفا على الأكثر"),
        "offline" to Triple("Hors connexion : rien n'est perdu", "Offline: nothing is lost", "غير متصل: لم يضع شيء"),
        "upgrade_required" to Triple("Mettez l'application à jour pour synchroniser", "Update the app to sync", "حدّث التطبيق للمزامنة"),
        "wrong_key" to Triple("Clé incorrecte", "Wrong key", "مفتاح غير صحيح"),
        "forbidden" to Triple("Refusé par le serveur", "Refused by the server", "رفضه الخادم"),
        "revoked" to Triple(
            "Ce téléphone a été révoqué : ses dossiers ont été effacés. Inscrivez-le à nouveau.",
            "This phone was revoked: its cases were erased. Enroll it again.",
            "تم إلغاء هذا الهاتف: مُسحت ملفاته. سجّله من جديد.",
        ),
        "not_enrolled" to Triple("Ce téléphone n'est pas inscrit", "This phone is not enrolled", "هذا الهاتف غير مسجّل"),
        "illegal_transition" to Triple(
            "Ce changement de statut n'est pas permis",
            "This status change is not allowed",
            "تغيير الحالة هذا غير مسموح",
        ),
        "case_arriving" to Triple(
            "Ce dossier arrive avec la synchronisation : sa ligne est affichée, il s'ouvrira quand il sera arrivé",
            "This case is arriving with the sync: its row is shown, it opens once it has arrived",
            "هذا الملف يصل مع المزامنة: يظهر سطره، وسيفتح عند وصوله",
        ),
        "arriving" to Triple("en cours d'arrivée", "arriving", "قيد الوصول"),
        "sync.of_caseload" to Triple("dossiers arrivés sur", "cases arrived of", "ملفات وصلت من"),
        "case_merged" to Triple(
            "Même enfant qu'un autre dossier : celui-ci est en lecture seule, saisissez dans le dossier fusionné",
            "The same child as another case: this one is read-only, record on the merged case",
            "نفس الطفل في حالة أخرى: هذه للقراءة فقط، سجّل في الحالة المدمجة",
        ),
        "storage_full" to Triple(
            "Mémoire du téléphone pleine : rien n'a été enregistré",
            "Phone storage full: nothing was saved",
            "ذاكرة الهاتف ممتلئة: لم يُحفظ شيء",
        ),
        "cancelled" to Triple("Synchronisation annulée", "Sync cancelled", "أُلغيت المزامنة"),
        "invalid_input" to Triple("Saisie non valable", "Invalid input", "إدخال غير صالح"),
        "internal" to Triple(
            "Erreur interne : elle a été signalée, rien n'est perdu",
            "Internal error: it was reported, nothing is lost",
            "خطأ داخلي: تم الإبلاغ عنه، لم يضع شيء",
        ),
        "key_lost" to Triple(
            "La clé de la base de données est perdue (téléphone réinitialisé ou transféré).",
            "The database key is lost (phone reset or transferred).",
            "مفتاح قاعدة البيانات مفقود (هاتف أُعيد ضبطه أو نُقل).",
        ),
        "key_busy" to Triple(
            "Le coffre de clés du téléphone n'a pas répondu. Réessayez : rien n'est perdu.",
            "The phone's key store did not answer. Try again: nothing is lost.",
            "لم يستجب مخزن مفاتيح الهاتف. حاول مجددا: لم يضع شيء.",
        ),
        "reset.type" to Triple(
            "Pour confirmer, tapez {word}",
            "To confirm, type {word}",
            "للتأكيد، اكتب {word}",
        ),
        "reset.word" to Triple("EFFACER", "ERASE", "مسح"),
        "lock.title" to Triple("Code de l'application", "App PIN", "رمز التطبيق"),
        "lock.wrong" to Triple("Code incorrect", "Wrong PIN", "رمز غير صحيح"),
        "lock.wait" to Triple("Trop d'essais : réessayez dans {n} s", "Too many tries: try again in {n} s", "محاولات كثيرة: أعد المحاولة بعد {n} ث"),
        "lock.choose" to Triple("Choisissez un code de 4 à 8 chiffres", "Choose a PIN of 4 to 8 digits", "اختر رمزا من 4 إلى 8 أرقام"),
        "lock.again" to Triple("Tapez le même code une seconde fois", "Type the same PIN again", "اكتب الرمز نفسه مرة ثانية"),
        "lock.differ" to Triple("Les deux codes diffèrent", "The two PINs differ", "الرمزان مختلفان"),
        "todo.attention" to Triple("{n} dossier(s) à revoir après la synchronisation", "{n} case(s) to look at after the sync", "{n} حالة تحتاج إلى مراجعة بعد المزامنة"),
        "reset.loses" to Triple(
            "Réinitialiser efface {n} dossier(s) avec des modifications non synchronisées.",
            "Resetting erases {n} case(s) with unsynced changes.",
            "إعادة الضبط تمسح {n} ملف(ات) بتعديلات غير متزامنة.",
        ),
        "reset.nothing_lost" to Triple(
            "Tout était synchronisé : rien ne sera perdu.",
            "Everything was synced: nothing will be lost.",
            "كل شيء كان متزامنا: لن يضيع شيء.",
        ),
        "reset.unknown" to Triple(
            "Le nombre de modifications non synchronisées est inconnu : elles seront perdues.",
            "How many unsynced changes there are is unknown: they will be lost.",
            "عدد التعديلات غير المتزامنة غير معروف: ستضيع.",
        ),
        "enroll.server" to Triple("Adresse du serveur (https://…)", "Server address (https://…)", "عنوان الخادم (https://…)"),
        "enroll.code" to Triple("Code d'inscription", "Enrollment code", "رمز التسجيل"),
        "enroll.user" to Triple("Identifiant de l'agent", "Agent id", "معرّف العون"),
        "enroll.ca" to Triple("Certificat du projet (facultatif)", "Project certificate (optional)", "شهادة المشروع (اختياري)"),
        "enroll.sending" to Triple("Inscription en cours…", "Enrolling…", "جارٍ التسجيل…"),
        "enroll.https" to Triple("Une adresse https:// est requise", "An https:// address is required", "يلزم عنوان https://"),
        "enroll.ca_format" to Triple("Certificat PEM attendu", "A PEM certificate", "شهادة PEM"),
        "quarantined" to Triple(
            "Dossier mis de côté : des modifications reçues n'ont pas pu être appliquées ; voici son dernier état valable.",
            "Case set aside: changes received for it could not be applied; this is its last good state.",
            "ملف موضوع جانبا: تعذّر تطبيق تعديلات وصلت إليه؛ هذه آخر حالة سليمة له.",
        ),
        "yes" to Triple("Oui", "Yes", "نعم"),
        "no" to Triple("Non", "No", "لا"),
        "status.draft" to Triple("brouillon", "draft", "مسودة"),
        "status.sent" to Triple("envoyée", "sent", "مُرسلة"),
        "status.accepted" to Triple("acceptée", "accepted", "مقبولة"),
        "status.declined" to Triple("refusée", "declined", "مرفوضة"),
        "status.in_service" to Triple("en cours", "in service", "قيد الخدمة"),
        "status.completed" to Triple("terminée", "completed", "مكتملة"),
        "status.closed" to Triple("fermée", "closed", "مغلقة"),
        "status.transferred" to Triple("transférée", "transferred", "محوّلة"),
        "status.disputed" to Triple("contestée (deux statuts en même temps)", "disputed (two statuses at once)", "متنازع عليها (حالتان في آن واحد)"),
        "referral.note" to Triple("Note (facultative)", "Note (optional)", "ملاحظة (اختيارية)"),
        "referral.next_provider" to Triple("Nouveau prestataire", "New provider", "مقدّم الخدمة الجديد"),
        "due.late" to Triple("en retard de {n} jour(s)", "{n} day(s) late", "متأخرة {n} يوم"),
        "due.today" to Triple("aujourd'hui", "today", "اليوم"),
        "due.in" to Triple("dans {n} jour(s)", "in {n} day(s)", "بعد {n} يوم"),
        "todo.conflict" to Triple("deux valeurs à départager", "two values to settle", "قيمتان يجب الحسم بينهما"),
        "todo.title" to Triple("À faire", "To do", "المهام"),
        "todo.village" to Triple("Village (début du nom)", "Village (start of the name)", "القرية (بداية الاسم)"),
        "todo.any_risk" to Triple("Tous les risques", "Any risk", "كل مستويات الخطر"),
        "draft.restored" to Triple(
            "Formulaire repris là où vous l'aviez laissé.",
            "Form picked up where you left it.",
            "استُؤنفت الاستمارة من حيث توقفت.",
        ),
        "date.pick" to Triple("Choisir une date", "Pick a date", "اختر تاريخا"),
        "gps.capture" to Triple("Relever la position", "Take the position", "تحديد الموقع"),
        "gps.allow" to Triple(
            "Autorisez la localisation, puis touchez encore « Relever la position »",
            "Allow location, then tap \"Take the position\" again",
            "اسمح بتحديد الموقع، ثم المس «تحديد الموقع» مرة أخرى",
        ),
        "gps.off" to Triple(
            "La localisation du téléphone est coupée : activez-la, ou tapez la position",
            "The phone's location is off: turn it on, or type the position",
            "تحديد الموقع متوقف في الهاتف: شغّله أو اكتب الموقع",
        ),
        "gps.waiting" to Triple("Recherche de la position… (dehors, c'est plus rapide)", "Finding the position… (faster outdoors)", "جارٍ تحديد الموقع… (أسرع في الخارج)"),
        "gps.vague" to Triple(
            "Position trop imprécise : réessayez dehors, ou tapez-la",
            "Position too vague: try again outdoors, or type it",
            "الموقع غير دقيق: أعد المحاولة في الخارج أو اكتبه",
        ),
        "draft.discard" to Triple("Abandonner ce formulaire", "Discard this form", "التخلي عن هذه الاستمارة"),
        "refusal.forbidden" to Triple(
            "refusé par le serveur : ce dossier n'est plus dans votre liste",
            "refused by the server: this case is no longer in your caseload",
            "رفضه الخادم: لم تعد هذه الحالة ضمن قائمتك",
        ),
        "refusal.quota_exceeded" to Triple(
            "pas envoyé : le nombre de nouveaux dossiers du jour est atteint ; il partira demain",
            "not sent: today's number of new cases is reached; it goes tomorrow",
            "لم يُرسل: بلغ عدد الحالات الجديدة لليوم حده؛ سيُرسل غدا",
        ),
        "refusal.invalid" to Triple(
            "refusé par le serveur : une réponse ne convient pas au formulaire ; corrigez-la",
            "refused by the server: an answer does not fit the form; correct it",
            "رفضه الخادم: إجابة لا تناسب الاستمارة؛ صحّحها",
        ),
        "refusal.other" to Triple(
            "refusé par le serveur ; votre superviseur peut voir pourquoi",
            "refused by the server; your supervisor can see why",
            "رفضه الخادم؛ يمكن لمشرفك معرفة السبب",
        ),
        "case.edit" to Triple("Modifier l'identification", "Edit the identification", "تعديل بيانات التعريف"),
        "case.move" to Triple(
            "Passer à la nouvelle version du formulaire",
            "Move to the new version of the form",
            "الانتقال إلى النسخة الجديدة من الاستمارة",
        ),
        "syncing" to Triple("Synchronisation…", "Syncing…", "جارٍ المزامنة…"),
        "not_found" to Triple("Introuvable", "Not found", "غير موجود"),
        "storage" to Triple("Erreur de stockage", "Storage error", "خطأ في التخزين"),
        "error" to Triple("Erreur", "Error", "خطأ"),
        "never_synced" to Triple("Jamais synchronisé", "Never synced", "لم تتم المزامنة قط"),
        "last_sync" to Triple("Dernière synchronisation", "Last sync", "آخر مزامنة"),
    )

    /** Whether `key` has a text in every language. */
    fun has(key: String): Boolean = key in texts

    /**
     * A validation problem's message for `field`, with the bound it broke when the form says
     * it ("Trop grand : 17 au plus"; a date bound written out).
     */
    fun fieldError(key: String, field: org.suivi.core.FieldInfo?, lang: Lang): String {
        val bound = when (key) {
            "range.min" -> field?.rangeMin
            "range.max" -> field?.rangeMax
            "length.min" -> field?.lengthMin
            "length.max" -> field?.lengthMax
            else -> null
        } ?: return text(key, lang)
        val shown = if (field?.fieldType == "date") org.suivi.core.dateInWords(bound, lang.tag) else bound
        return text("$key.bound", lang).replace("{b}", shown)
    }

    fun text(key: String, lang: Lang): String {
        val t = texts[key] ?: return key
        return when (lang.app) {
            Lang.EN -> t.second
            Lang.AR -> t.third
            else -> t.first
        }
    }
}
