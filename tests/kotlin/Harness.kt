// A minimal test runner for the JVM tests of the Kotlin bindings and the demo's logic: no JUnit
// is installable here, and these tests need no more than named checks and a closing count.
package org.suivi.test

import java.io.File
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files

object Harness {
    var passed = 0
    var failed = 0

    fun test(name: String, body: () -> Unit) {
        try {
            body()
            passed++
            println("test $name ... ok")
        } catch (e: Throwable) {
            failed++
            println("test $name ... FAILED: $e")
            e.printStackTrace(System.out)
        }
    }
}

class CheckFailed(message: String) : AssertionError(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw CheckFailed(message())
}

fun <T> checkEq(expected: T, actual: T, what: String = "value") {
    if (expected != actual) throw CheckFailed("$what: expected <$expected>, got <$actual>")
}

inline fun <reified E : Throwable> expectThrows(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw CheckFailed("expected ${E::class.simpleName}, got $e")
    }
    throw CheckFailed("expected ${E::class.simpleName}, nothing was thrown")
}

fun tempDir(): File = Files.createTempDirectory("suivi-kotlin").toFile().apply { deleteOnExit() }

/** A real suivi-server on loopback, administered through its own command. */
class TestServer : AutoCloseable {
    private val binary = System.getenv("SUIVI_SERVER_BIN") ?: error("SUIVI_SERVER_BIN is not set")
    private val root = tempDir()
    // The key file lives outside the data directory, as the server requires.
    private val location = listOf("--data", File(root, "data").path, "--key-file", File(root, "server.key").path)
    val port: Int = ServerSocket(0).use { it.localPort }
    val url = "http://127.0.0.1:$port"
    private val process: Process = ProcessBuilder(listOf(binary) + location + listOf("serve", "--listen", "127.0.0.1:$port"))
        .redirectErrorStream(true)
        .redirectOutput(File(root, "server.log"))
        .start()

    init {
        val deadline = System.currentTimeMillis() + 20_000
        while (true) {
            try {
                Socket("127.0.0.1", port).close()
                break
            } catch (e: Exception) {
                check(System.currentTimeMillis() < deadline) { "suivi-server did not start" }
                Thread.sleep(50)
            }
        }
    }

    fun admin(vararg args: String): String {
        val p = ProcessBuilder(listOf(binary) + location + args).redirectErrorStream(false).start()
        val out = p.inputStream.bufferedReader().readText().trim()
        check(p.waitFor() == 0) { "suivi-server ${args.joinToString(" ")} failed" }
        return out
    }

    fun addUser(user: String, role: String, team: String) = admin("user", "add", user, "--role", role, "--team", team)

    fun enrollmentCode(user: String): String = admin("device", "code", user)

    override fun close() {
        process.destroy()
        process.waitFor()
    }
}
