package org.suivi.demo.logic

/**
 * The enrollment screen: server address, agent id, one-time code and an optional project
 * certificate authority, checked before anything is sent. The store is created for the user the
 * server confirms; on a failure the fields stay as typed.
 */
class EnrollmentModel(@Volatile var lang: Lang = Lang.FR) {
    @Volatile var server: String = ""
    @Volatile var user: String = ""
    @Volatile var code: String = ""
    /** PEM text of the project's CA, when its server certificate is not from a public one. */
    @Volatile var caPem: String = ""

    /** Problems by field, empty when the form can be sent. */
    fun problems(): Map<String, String> {
        val problems = linkedMapOf<String, String>()
        val address = server.trim()
        // Plain HTTP only to this phone itself (a local test server): names of children must
        // not cross a network in clear.
        val local = address.startsWith("http://127.0.0.1") || address.startsWith("http://localhost")
        if (!address.startsWith("https://") && !local) problems["server"] = Messages.text("enroll.https", lang)
        if (user.isBlank()) problems["user"] = Messages.text("required", lang)
        if (code.isBlank()) problems["code"] = Messages.text("required", lang)
        if (caPem.isNotBlank() && "-----BEGIN CERTIFICATE-----" !in caPem) {
            problems["ca"] = Messages.text("enroll.ca_format", lang)
        }
        return problems
    }

    /** Enrolls through `startup` (blocking: run it on the IO dispatcher). */
    fun enroll(startup: AppStartup, deviceName: String): Outcome<org.suivi.core.CaseStore> {
        val problems = problems()
        if (problems.isNotEmpty()) return Outcome.Failed(UiError(Messages.text("error", lang), problems))
        return attempt(lang) { startup.enroll(user, deviceName, server, code, caPem.ifBlank { null }) }
    }
}
