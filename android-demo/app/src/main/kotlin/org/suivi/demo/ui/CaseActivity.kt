package org.suivi.demo.ui

import android.content.Intent
import android.os.Bundle
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.launch
import org.suivi.demo.R
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.referralChains
import org.suivi.demo.logic.toUiError

/**
 * One child: identification with the form's labels, conflicts, referral chains, visits. Loaded
 * off the main thread through the store's read connection. (Android only.)
 */
class CaseActivity : ComponentActivity() {
    override fun onStart() {
        super.onStart()
        val caseId = intent.getStringExtra("case_id") ?: return finish()
        val repository = app.repository ?: return finish()
        val lang = app.lang()
        lifecycleScope.launch {
            val body = LinearLayout(this@CaseActivity).apply { orientation = LinearLayout.VERTICAL }
            fun line(text: String, size: Float = 14f) = body.addView(TextView(this@CaseActivity).apply { this.text = text; textSize = size })
            try {
                val detail = repository.case(caseId)
                // The record's own version, which may be older than the newest published one.
                val form = repository.formVersion("identification", detail.identificationForm, lang)
                val referralForm = repository.form("referral", lang)
                val visitForm = repository.form("followup", lang)
                line("${detail.summary.firstName} ${detail.summary.lastName}", 20f)
                if (detail.quarantineReason != null) line("⚠ " + Messages.text("quarantined", lang))
                for (field in form.fields) {
                    val value = detail.identification[field.id] ?: continue
                    val shown = field.choices.firstOrNull { it.id == value }?.label ?: value
                    line("${field.label} : $shown")
                }
                // Asked by an earlier version only: shown as recorded, read-only.
                detail.formerFields.forEach { (id, value) -> line("($id) $value") }
                detail.conflicts.forEach { c ->
                    val values = c.values.zip(c.sources) { v, src -> "$v (${src.user ?: "?"})" }
                    line("⚠ ${c.path} : ${values.joinToString(" | ")}")
                }
                line(getString(R.string.referral_chain), 18f)
                for (chain in referralChains(detail)) {
                    line(chain.joinToString(" → ") { "${it.fields["provider"].orEmpty()} (${Messages.text("status.${it.status}", lang)})" })
                }
                line(getString(R.string.followups), 18f)
                val riskField = visitForm.fields.firstOrNull { it.id == "risk_level_now" }
                detail.followups.forEach { f ->
                    val risk = riskField?.choices?.firstOrNull { it.id == f.fields["risk_level_now"] }?.label ?: f.fields["risk_level_now"].orEmpty()
                    line("${f.fields["visit_date"].orEmpty()} · $risk")
                }
                for ((form, title) in listOf("referral" to referralForm.title, "followup" to visitForm.title)) {
                    body.addView(Button(this@CaseActivity).apply {
                        text = title
                        setOnClickListener {
                            startActivity(Intent(this@CaseActivity, FormActivity::class.java).putExtra("form", form).putExtra("case_id", caseId))
                        }
                    })
                }
            } catch (e: kotlinx.coroutines.CancellationException) {
                throw e
            } catch (e: Throwable) {
                line(e.toUiError(lang).message)
            }
            show(ScrollView(this@CaseActivity).apply { addView(body) })
        }
    }
}
