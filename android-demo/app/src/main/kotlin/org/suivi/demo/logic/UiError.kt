package org.suivi.demo.logic

import org.suivi.core.SuiviException

/** What a screen shows for a failure: a message, and per-field messages for a form. */
data class UiError(val message: String, val fieldErrors: Map<String, String> = emptyMap())

/** Maps the bindings' typed exceptions to what the agent reads, in their language. */
fun SuiviException.toUiError(lang: Lang): UiError = when (this) {
    is SuiviException.Validation -> UiError(
        Messages.text("error", lang),
        problems.associate { it.field to Messages.text(it.key, lang) },
    )
    is SuiviException.Offline -> UiError(Messages.text("offline", lang))
    is SuiviException.WrongKey -> UiError(Messages.text("wrong_key", lang))
    is SuiviException.Forbidden -> UiError(Messages.text("forbidden", lang))
    is SuiviException.NotFound -> UiError(Messages.text("not_found", lang))
    is SuiviException.Storage -> UiError(Messages.text("storage", lang))
    is SuiviException.UpgradeRequired -> UiError(Messages.text("upgrade_required", lang))
    is SuiviException.Other -> UiError(Messages.text("error", lang))
}

/** A call's outcome for a screen. */
sealed class Outcome<out T> {
    data class Ok<T>(val value: T) : Outcome<T>()
    data class Failed(val error: UiError) : Outcome<Nothing>()
}

inline fun <T> attempt(lang: Lang, block: () -> T): Outcome<T> = try {
    Outcome.Ok(block())
} catch (e: SuiviException) {
    Outcome.Failed(e.toUiError(lang))
}
