package org.suivi.demo.ui

import android.app.AlertDialog
import android.content.Intent
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.launch
import org.suivi.demo.R
import org.suivi.core.ReferralMove
import org.suivi.demo.logic.ClosureModel
import org.suivi.demo.logic.ConflictPicker
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.ReferralLine
import org.suivi.demo.logic.ReferralModel
import org.suivi.demo.logic.toUiError

/**
 * One child: identification with the form's labels, conflicts, referral chains with the moves
 * each referral allows (`ReferralModel`), visits. Loaded off the main thread through the store's
 * read connection. (Android only.)
 */
class CaseActivity : ChildScreen() {
    override fun onStart() {
        super.onStart()
        if (!unlocked()) return
        draw()
    }

    private fun draw() {
        val caseId = intent.getStringExtra("case_id") ?: return finish()
        val repository = app.repository ?: return finish()
        val lang = app.lang()
        lifecycleScope.launch {
            val body = LinearLayout(this@CaseActivity).apply { orientation = LinearLayout.VERTICAL }
            fun line(text: String, size: Float = 14f) = body.addView(TextView(this@CaseActivity).apply { this.text = text; textSize = size })
            try {
                val detail = repository.case(caseId)
                val referralForm = repository.form("referral", lang)
                val visitForm = repository.form("followup", lang)
                line("${detail.summary.firstName} ${detail.summary.lastName}", 20f)
                if (detail.quarantineReason != null) line("⚠ " + Messages.text("quarantined", lang))
                // By the labels of the record's own form version; fields only an earlier version
                // asked come last, read-only, by that version's labels.
                for (shown in repository.identificationInWords(caseId, lang)) {
                    line(if (shown.former) "(${shown.label} : ${shown.value})" else "${shown.label} : ${shown.value}")
                }
                // Where the child stands (core's rules), the next step, the closure's steps, and
                // what this phone's user may do: propose, decide (a supervisor), reopen.
                val closures = ClosureModel(repository, lang)
                closures.outcome(detail.summary)?.let { o ->
                    line(listOfNotNull(o.stage, o.classification).joinToString(" · "), 16f)
                    o.nextStep?.let { line(Messages.text("closure.next_step", lang) + " : " + it) }
                }
                val closure = closures.closure(caseId)
                line(listOfNotNull(closure.label, closure.reason).joinToString(" — "))
                closure.steps.forEach { s -> line("  ${s.at} · ${s.step} · ${s.actor}" + (s.note?.let { " « $it »" } ?: "")) }
                if (closure.mayPropose) body.addView(Button(this@CaseActivity).apply {
                    text = Messages.text("closure.propose", lang)
                    setOnClickListener { askAndPropose(closures, caseId, lang) }
                })
                if (closure.mayDecide) for (approve in listOf(true, false)) body.addView(Button(this@CaseActivity).apply {
                    text = Messages.text(if (approve) "closure.approve" else "closure.return", lang)
                    setOnClickListener { askNoteThen(text.toString(), lang) { note -> closures.decide(caseId, approve, note) } }
                })
                if (closure.mayReopen) body.addView(Button(this@CaseActivity).apply {
                    text = Messages.text("closure.reopen", lang)
                    setOnClickListener { askNoteThen(text.toString(), lang) { note -> closures.reopen(caseId, note) } }
                })
                // Each conflict by its label, each value in words with who wrote it, where and
                // when; a tap keeps it (`ConflictPicker`).
                val picker = ConflictPicker(repository, lang)
                for (choice in picker.choices(caseId)) {
                    line("⚠ ${choice.label}", 16f)
                    for (option in choice.options) {
                        body.addView(Button(this@CaseActivity).apply {
                            text = picker.line(option)
                            setOnClickListener {
                                lifecycleScope.launch {
                                    when (val kept = picker.keep(caseId, choice, option)) {
                                        is Outcome.Ok -> draw()
                                        is Outcome.Failed -> line(kept.error.message)
                                    }
                                }
                            }
                        })
                    }
                }
                body.addView(Button(this@CaseActivity).apply {
                    text = Messages.text("case.edit", lang)
                    setOnClickListener {
                        startActivity(Intent(this@CaseActivity, CaseEditActivity::class.java).putExtra("case_id", caseId))
                    }
                })
                line(getString(R.string.referral_chain), 18f)
                val referrals = ReferralModel(repository, lang)
                for (chain in referrals.chains(caseId)) {
                    for (link in chain) {
                        line("${link.title} — ${link.status}", 16f)
                        link.steps.forEach { line("  $it") }
                        for (move in link.moves) {
                            body.addView(Button(this@CaseActivity).apply {
                                text = move.label
                                setOnClickListener { askAndMove(referrals, link, move, lang) }
                            })
                        }
                    }
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

    /** A reason picked in the reader's words and a note, then the proposal; the screen redraws. */
    private fun askAndPropose(closures: ClosureModel, caseId: String, lang: Lang) {
        val reasons = closures.reasons()
        var picked = 0
        val note = EditText(this).apply { hint = Messages.text("closure.note", lang) }
        AlertDialog.Builder(this)
            .setTitle(Messages.text("closure.propose", lang))
            .setSingleChoiceItems(reasons.map { it.label }.toTypedArray(), 0) { _, which -> picked = which }
            .setView(note)
            .setNegativeButton(R.string.cancel, null)
            .setPositiveButton(Messages.text("closure.propose", lang)) { _, _ ->
                lifecycleScope.launch { told(closures.propose(caseId, reasons[picked], note.text.toString())) }
            }
            .show()
    }

    /** A note, then `step` (a decision or a reopening); the screen redraws. */
    private fun askNoteThen(title: String, lang: Lang, step: suspend (String) -> Outcome<Unit>) {
        val note = EditText(this).apply { hint = Messages.text("closure.note", lang) }
        AlertDialog.Builder(this)
            .setTitle(title)
            .setView(note)
            .setNegativeButton(R.string.cancel, null)
            .setPositiveButton(title) { _, _ -> lifecycleScope.launch { told(step(note.text.toString())) } }
            .show()
    }

    private fun told(outcome: Outcome<Unit>) {
        when (outcome) {
            is Outcome.Ok -> draw()
            is Outcome.Failed -> AlertDialog.Builder(this)
                .setMessage((outcome.error.fieldErrors.values + outcome.error.message).joinToString("\n"))
                .setPositiveButton(android.R.string.ok, null)
                .show()
        }
    }

    /** The move's note (and, for a transfer, the next provider), then the move; the screen redraws. */
    private fun askAndMove(referrals: ReferralModel, link: ReferralLine, move: ReferralMove, lang: Lang) {
        val fields = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        val note = EditText(this).apply { hint = Messages.text("referral.note", lang) }
        val provider = EditText(this).apply { hint = Messages.text("referral.next_provider", lang) }
        if (move.namesProvider) fields.addView(provider)
        fields.addView(note)
        AlertDialog.Builder(this)
            .setTitle("${move.label} · ${link.title}")
            .setView(fields)
            .setNegativeButton(R.string.cancel, null)
            .setPositiveButton(move.label) { _, _ ->
                lifecycleScope.launch {
                    val next = provider.text.toString().takeIf { move.namesProvider }
                    when (val outcome = referrals.move(link.referral, move, note.text.toString(), next)) {
                        is Outcome.Ok -> draw()
                        is Outcome.Failed -> AlertDialog.Builder(this@CaseActivity)
                            .setMessage((outcome.error.fieldErrors.values + outcome.error.message).joinToString("\n"))
                            .setPositiveButton(android.R.string.ok, null)
                            .show()
                    }
                }
            }
            .show()
    }
}
