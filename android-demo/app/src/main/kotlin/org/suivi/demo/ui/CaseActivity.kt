package org.suivi.demo.ui

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import org.suivi.demo.R
import org.suivi.demo.logic.referralChains

/** One child: identification, conflicts, referral chains, visits. */
class CaseActivity : Activity() {
    override fun onResume() {
        super.onResume()
        val caseId = intent.getStringExtra("case_id") ?: return finish()
        val detail = Session.store(this).caseDetail(caseId)
        val body = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        body.addView(TextView(this).apply { text = "${detail.summary.firstName} ${detail.summary.lastName}"; textSize = 20f })
        detail.identification.toSortedMap().forEach { (k, v) -> body.addView(TextView(this).apply { text = "$k: $v" }) }
        detail.conflicts.forEach { c -> body.addView(TextView(this).apply { text = "⚠ ${c.path}: ${c.values.joinToString(" | ")}" }) }
        body.addView(TextView(this).apply { text = getString(R.string.referral_chain); textSize = 18f })
        for (chain in referralChains(detail)) {
            body.addView(TextView(this).apply {
                text = chain.joinToString(" → ") { "${it.fields["provider"].orEmpty()} (${it.status})" }
            })
        }
        body.addView(TextView(this).apply { text = getString(R.string.followups); textSize = 18f })
        detail.followups.forEach { f -> body.addView(TextView(this).apply { text = "${f.fields["visit_date"]} · ${f.fields["risk_level_now"]}" }) }
        for (form in listOf("referral", "followup")) {
            body.addView(Button(this).apply {
                text = form
                setOnClickListener {
                    startActivity(Intent(this@CaseActivity, FormActivity::class.java).putExtra("form", form).putExtra("case_id", caseId))
                }
            })
        }
        setContentView(ScrollView(this).apply { addView(body) })
    }
}
