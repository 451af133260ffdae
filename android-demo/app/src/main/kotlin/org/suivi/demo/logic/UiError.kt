package org.suivi.demo.logic

import org.suivi.core.SuiviException

/**
 * What a screen shows for a failure: a message, per-field messages for a form, and what the app
 * offers next. Built from the error's kind only: no message from Rust is shown, so no child's
 * data can reach the screen or a log through an error.
 */
data class UiError(
    val message: String,
    val fieldErrors: Map<String, String> = emptyMap(),
    val next: Next = Next.NOTHING,
) {
    enum class Next { NOTHING, RETRY_LATER, ENROLL_AGAIN, RESET_KEY, UPDATE_APP, REPORT_BUG }
}

/** Maps the bindings' typed exceptions to what the agent reads, in their language. */
fun SuiviException.toUiError(lang: Lang): UiError = when (this) {
    is SuiviException.Validation -> UiError(
        Messages.text("error", lang),
        problems.associate { it.field to Messages.text(it.key, lang) },
    )
    is SuiviException.Offline -> UiError(Messages.text("offline", lang), next = UiError.Next.RETRY_LATER)
    is SuiviException.WrongKey -> UiError(Messages.text("wrong_key", lang), next = UiError.Next.RESET_KEY)
    is SuiviException.Revoked -> UiError(Messages.text("revoked", lang), next = UiError.Next.ENROLL_AGAIN)
    is SuiviException.NotEnrolled -> UiError(Messages.text("not_enrolled", lang), next = UiError.Next.ENROLL_AGAIN)
    is SuiviException.UpgradeRequired -> UiError(Messages.text("upgrade_required", lang), next = UiError.Next.UPDATE_APP)
    is SuiviException.IllegalTransition -> UiError(Messages.text("illegal_transition", lang))
    is SuiviException.CaseMerged -> UiError(Messages.text("case_merged", lang))
    is SuiviException.CaseArriving -> UiError(Messages.text("case_arriving", lang), next = UiError.Next.RETRY_LATER)
    is SuiviException.Forbidden -> UiError(Messages.text("forbidden", lang))
    is SuiviException.NotFound -> UiError(Messages.text("not_found", lang))
    is SuiviException.StorageFull -> UiError(Messages.text("storage_full", lang))
    is SuiviException.Storage -> UiError(Messages.text("storage", lang))
    is SuiviException.Cancelled -> UiError(Messages.text("cancelled", lang))
    is SuiviException.InvalidInput -> UiError(Messages.text("invalid_input", lang))
    is SuiviException.Internal -> UiError(Messages.text("internal", lang), next = UiError.Next.REPORT_BUG)
    is SuiviException.Other -> UiError(Messages.text("error", lang))
}

/** A form refused: each problem on its field of `form`, saying the bound it broke. */
fun SuiviException.Validation.onFields(form: org.suivi.core.FormInfo, lang: Lang): UiError {
    val fields = form.fields.associateBy { it.id }
    return UiError(
        Messages.text("error", lang),
        problems.associate { it.field to Messages.fieldError(it.key, fields[it.field], lang) },
    )
}

/**
 * Any failure a screen can meet: the bindings' own, a lost Keystore key, the phone's storage, or
 * anything else, uniffi's `InternalException` included (a bug: reported, never a crash).
 */
fun Throwable.toUiError(lang: Lang): UiError = when (this) {
    is SuiviException -> toUiError(lang)
    is KeyUnavailable -> UiError(Messages.text("key_lost", lang), next = UiError.Next.RESET_KEY)
    is KeyTemporarilyUnavailable -> UiError(Messages.text("key_busy", lang), next = UiError.Next.RETRY_LATER)
    is java.io.IOException -> UiError(Messages.text("storage", lang))
    else -> UiError(Messages.text("internal", lang), next = UiError.Next.REPORT_BUG)
}

/** A call's outcome for a screen. */
sealed class Outcome<out T> {
    data class Ok<T>(val value: T) : Outcome<T>()
    data class Failed(val error: UiError) : Outcome<Nothing>()
}

/** Runs `block`; any failure but a coroutine's cancellation becomes what the screen shows. */
inline fun <T> attempt(lang: Lang, block: () -> T): Outcome<T> = try {
    Outcome.Ok(block())
} catch (e: kotlinx.coroutines.CancellationException) {
    throw e
} catch (e: Exception) {
    Outcome.Failed(e.toUiError(lang))
}
