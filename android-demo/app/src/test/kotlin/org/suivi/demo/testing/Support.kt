// What the JVM tests of the app's logic and of the bindings share: a real suivi-server process,
// stores in temporary directories, and small loopback servers that misbehave on purpose. Lives
// in the module's test sources, so `./gradlew test` compiles it with the tests that use it.
package org.suivi.demo.testing

import org.suivi.core.CaseStore
import java.io.File
import java.io.InputStream
import java.io.OutputStream
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit

/** A raw SQLCipher key, as the app's key handling hands it to the store. */
const val KEY = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'"

/** Long enough never to fail a healthy run, short enough to turn a hang into a failure. */
const val DEADLINE_SECONDS = 60L

fun tempDir(): File = Files.createTempDirectory("suivi-kotlin").toFile().apply { deleteOnExit() }

fun child(first: String, last: String, village: String) = mapOf(
    "child_first_name" to first, "child_last_name" to last, "sex" to "female", "dob_known" to "non",
    "estimated_age" to "12", "province" to "Sikasso", "commune" to "Kignan", "village" to village,
    "school_status" to "dropped_out", "works" to "oui", "work_sector" to "artisanal_gold_mining",
    "hazardous_conditions" to "mercury,underground_work", "risk_level" to "high", "consent_to_share" to "oui",
)

fun newStore(user: String = "amina"): Pair<CaseStore, File> {
    val path = File(tempDir(), "$user.db")
    return CaseStore.create(path.path, KEY, user, "$user-phone") to path
}

/** Waits for `condition`, failing (not hanging) after the deadline. */
fun until(what: String, condition: () -> Boolean) {
    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(DEADLINE_SECONDS)
    while (!condition()) {
        if (System.nanoTime() > deadline) throw AssertionError("gave up waiting: $what")
        Thread.sleep(20)
    }
}

/** Amina's phone and her supervisor Fatima's, both users added to `server` (team sikasso) and enrolled. */
fun agentAndSupervisor(server: TestServer): Pair<CaseStore, CaseStore> {
    server.addUser("amina", "agent", "sikasso")
    server.addUser("fatima", "supervisor", "sikasso")
    val (agent, _) = newStore("amina")
    agent.enroll(server.url, server.enrollmentCode("amina"), null)
    val (supervisor, _) = newStore("fatima")
    supervisor.enroll(server.url, server.enrollmentCode("fatima"), null)
    return agent to supervisor
}

/**
 * A conflict two phones make: both hold the case, both set `field` offline, each its value, and
 * they sync until both hold the two values.
 */
fun conflictOn(agent: CaseStore, supervisor: CaseStore, caseId: String, field: String, agentValue: String, supervisorValue: String) {
    agent.sync(null, null)
    supervisor.sync(null, null)
    agent.editCase(caseId, mapOf(field to agentValue))
    supervisor.editCase(caseId, mapOf(field to supervisorValue))
    agent.sync(null, null)
    supervisor.sync(null, null)
    agent.sync(null, null)
}

/** Waits for a job, failing (not hanging) after the deadline. */
suspend fun kotlinx.coroutines.Job.joinWithin() {
    kotlinx.coroutines.withTimeout(TimeUnit.SECONDS.toMillis(DEADLINE_SECONDS)) { join() }
}

/** A real suivi-server on loopback, administered through its own command. */
class TestServer(tls: Tls? = null) : AutoCloseable {
    private val binary = System.getenv("SUIVI_SERVER_BIN") ?: error("SUIVI_SERVER_BIN is not set")
    private val root = tempDir()
    // The key file lives outside the data directory, as the server requires.
    private val location = listOf("--data", File(root, "data").path, "--key-file", File(root, "server.key").path)
    val port: Int = ServerSocket(0).use { it.localPort }
    val url = if (tls == null) "http://127.0.0.1:$port" else "https://localhost:$port"
    private val process: Process = ProcessBuilder(
        listOf(binary) + location + listOf("serve", "--listen", "127.0.0.1:$port") +
            (tls?.let { listOf("--tls-cert", it.cert.path, "--tls-key", it.key.path) } ?: emptyList()),
    )
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
                if (System.currentTimeMillis() > deadline) error("suivi-server did not start")
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

    fun revoke(deviceId: String) = admin("device", "revoke", deviceId)

    override fun close() {
        process.destroy()
        process.waitFor()
    }
}

/** A project's own certificate authority and a server certificate it signed for localhost. */
class Tls private constructor(val caPem: String, val cert: File, val key: File) {
    companion object {
        fun make(): Tls {
            val dir = tempDir()
            fun openssl(vararg args: String) {
                val p = ProcessBuilder(listOf("openssl") + args).directory(dir).redirectErrorStream(true).start()
                val out = p.inputStream.bufferedReader().readText()
                check(p.waitFor() == 0) { "openssl ${args.first()} failed: $out" }
            }
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Projet Suivi CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
            File(dir, "ext.cnf").writeText("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
            openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
            return Tls(File(dir, "ca.pem").readText(), File(dir, "server.pem"), File(dir, "server.key"))
        }
    }
}

/**
 * A loopback proxy to a real server that can stall: once `stall` is set, it accepts new
 * connections, reads what comes and never answers, the way a 2G link dies mid-sync. Once
 * `answer` is set (a status and a JSON body), it answers every new request with it instead: a
 * server upgraded past the phone (426), a busy one (503).
 */
class StallingProxy(private val target: Int) : AutoCloseable {
    private val listener = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    val url = "http://127.0.0.1:${listener.localPort}"
    @Volatile var stall = false
    @Volatile var answer: Pair<Int, String>? = null
    /** Cuts a connection once this many bytes have gone down it (server to phone). */
    @Volatile var cutDownAfter: Long? = null
    val stalled = CopyOnWriteArrayList<Socket>()
    private val open = CopyOnWriteArrayList<Socket>()

    init {
        Thread {
            while (!listener.isClosed) {
                val client = try { listener.accept() } catch (e: Exception) { break }
                open.add(client)
                val fixed = answer
                if (fixed != null) {
                    Thread { client.use { answerFixed(it, fixed.first, fixed.second) } }.apply { isDaemon = true }.start()
                } else if (stall) {
                    stalled.add(client)
                    Thread { drain(client.getInputStream()) }.apply { isDaemon = true }.start()
                } else {
                    val upstream = Socket("127.0.0.1", target)
                    open.add(upstream)
                    pipe(client.getInputStream(), upstream.getOutputStream())
                    pipe(upstream.getInputStream(), client.getOutputStream(), cutDownAfter, listOf(client, upstream))
                }
            }
        }.apply { isDaemon = true }.start()
    }

    private fun drain(input: InputStream) {
        val sink = ByteArray(4096)
        try { while (input.read(sink) >= 0) Unit } catch (e: Exception) { }
    }

    private fun pipe(input: InputStream, output: OutputStream, cutAfter: Long? = null, cut: List<Socket> = emptyList()) {
        Thread {
            try {
                if (cutAfter == null) {
                    input.copyTo(output)
                } else {
                    val buffer = ByteArray(1024)
                    var sent = 0L
                    while (true) {
                        val n = input.read(buffer, 0, minOf(buffer.size.toLong(), cutAfter - sent).toInt().coerceAtLeast(1))
                        if (n < 0) break
                        output.write(buffer, 0, n)
                        output.flush()
                        sent += n
                        if (sent >= cutAfter) {
                            cut.forEach { runCatching { it.close() } }
                            break
                        }
                    }
                }
            } catch (e: Exception) { }
            try { output.close() } catch (e: Exception) { }
        }.apply { isDaemon = true }.start()
    }

    override fun close() {
        listener.close()
        open.forEach { runCatching { it.close() } }
    }
}

/** Reads one request (head and body) from `client`, then answers `status` with a JSON `body`. */
fun answerFixed(client: Socket, status: Int, body: String) {
    val bytes = body.toByteArray()
    val head = "HTTP/1.1 $status Status\r\nContent-Type: application/json\r\n" +
        "Content-Length: ${bytes.size}\r\nConnection: close\r\n\r\n"
    val input = client.getInputStream().buffered()
    var length = 0
    while (true) {
        val line = readLine(input) ?: break
        if (line.isEmpty()) break
        if (line.lowercase().startsWith("content-length:")) length = line.substringAfter(':').trim().toInt()
    }
    input.readNBytes(length)
    client.getOutputStream().apply { write(head.toByteArray() + bytes); flush() }
}

private fun readLine(input: InputStream): String? {
    val line = StringBuilder()
    while (true) {
        val c = input.read()
        if (c < 0) return if (line.isEmpty()) null else line.toString()
        if (c == '\n'.code) return line.toString().trimEnd('\r')
        line.append(c.toChar())
    }
}

/** A loopback HTTP server that answers every request with one fixed response. */
class FixedReplyServer(status: Int, body: String) : AutoCloseable {
    private val listener = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    val url = "http://127.0.0.1:${listener.localPort}"

    init {
        Thread {
            while (!listener.isClosed) {
                val client = try { listener.accept() } catch (e: Exception) { break }
                Thread { client.use { answerFixed(it, status, body) } }.apply { isDaemon = true }.start()
            }
        }.apply { isDaemon = true }.start()
    }

    override fun close() = listener.close()
}

/**
 * A key wrapper for the JVM: the app's own `CipherKeyWrapper` (AES-GCM, failures classified) over
 * a key held in memory, standing in for the Android Keystore. `lose()` replaces the key, as a
 * Keystore reset or a transfer to a new phone does; `failure` is what the key store throws at its
 * next call (a transient `KeyStoreException`, an `UnrecoverableKeyException`...).
 */
class SoftwareKeyWrapper : org.suivi.demo.logic.KeyWrapper {
    @Volatile private var key: javax.crypto.SecretKey? = null
    @Volatile var failure: Exception? = null

    private fun fresh(): javax.crypto.SecretKey =
        javax.crypto.KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    private val inner = org.suivi.demo.logic.CipherKeyWrapper(
        keyOf = { failure?.let { throw it }; key },
        create = { fresh().also { key = it } },
        delete = { key = null },
    )

    override fun wrap(raw: ByteArray): ByteArray = inner.wrap(raw)

    override fun unwrap(sealed: ByteArray): ByteArray = inner.unwrap(sealed)

    override fun deleteKey() = inner.deleteKey()

    fun lose() {
        key = fresh()
    }

    /** The key store entry is gone altogether. */
    fun remove() {
        key = null
    }
}
