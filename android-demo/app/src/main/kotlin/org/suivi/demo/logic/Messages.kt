package org.suivi.demo.logic

/** The UI languages: French by default, English, and Arabic (right to left). */
enum class Lang(val tag: String, val rightToLeft: Boolean) {
    FR("fr", false), EN("en", false), AR("ar", true);

    companion object {
        /** From a locale tag such as "ar-MA" or "en_GB"; anything else is French. */
        fun from(tag: String?): Lang = values().firstOrNull { tag?.lowercase()?.startsWith(it.tag) == true } ?: FR
    }
}

/** Texts for the message keys core returns (core never sends a sentence in one language). */
object Messages {
    private val texts: Map<String, Triple<String, String, String>> = mapOf(
        "required" to Triple("Obligatoire", "Required", "إجباري"),
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
        "offline" to Triple("Hors connexion : rien n'est perdu", "Offline: nothing is lost", "غير متصل: لم يضع شيء"),
        "upgrade_required" to Triple("Mettez l'application à jour pour synchroniser", "Update the app to sync", "حدّث التطبيق للمزامنة"),
        "wrong_key" to Triple("Clé incorrecte", "Wrong key", "مفتاح غير صحيح"),
        "forbidden" to Triple("Refusé par le serveur", "Refused by the server", "رفضه الخادم"),
        "not_found" to Triple("Introuvable", "Not found", "غير موجود"),
        "storage" to Triple("Erreur de stockage", "Storage error", "خطأ في التخزين"),
        "error" to Triple("Erreur", "Error", "خطأ"),
        "never_synced" to Triple("Jamais synchronisé", "Never synced", "لم تتم المزامنة قط"),
        "last_sync" to Triple("Dernière synchronisation", "Last sync", "آخر مزامنة"),
    )

    fun text(key: String, lang: Lang): String {
        val t = texts[key] ?: return key
        return when (lang) {
            Lang.FR -> t.first
            Lang.EN -> t.second
            Lang.AR -> t.third
        }
    }
}
