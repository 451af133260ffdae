// Runs every Kotlin suite and prints the closing count CI reads.
package org.suivi.test

import kotlin.system.exitProcess

fun main() {
    bindingsTests()
    org.suivi.demo.demoLogicTests()
    println("${Harness.passed} passed, ${Harness.failed} failed")
    exitProcess(if (Harness.failed == 0 && Harness.passed > 0) 0 else 1)
}
