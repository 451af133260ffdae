// The Suivi demo app. Its logic (src/main/kotlin/org/suivi/demo/logic) and unit tests
// (src/test) are plain Kotlin over the uniffi bindings: tests/kotlin.sh compiles and runs them
// on the JVM in CI, and `./gradlew test` runs the same tests here. Building the APK needs the
// Android SDK and NDK and cargo-ndk (see ../README.md).
import org.gradle.api.file.DirectoryProperty
import org.gradle.api.tasks.Exec
import org.gradle.api.tasks.OutputDirectory
import org.gradle.process.CommandLineArgumentProvider

plugins {
    id("com.android.application")
}

/** The Cargo workspace this app lives in. */
val repoRoot: File = rootProject.projectDir.parentFile
/** Where cargo builds the host library and suivi-server for the JVM unit tests. */
val hostTarget: String = System.getenv("CARGO_TARGET_DIR") ?: "$repoRoot/target"
/** The ABIs that ship; x86_64 only for an emulator build. */
val phoneAbis = listOf("arm64-v8a", "armeabi-v7a")
val emulatorAbis = if (project.hasProperty("suiviEmulator")) listOf("x86_64") else emptyList()
/**
 * minSdk, also the API level the Rust library links against: Android 8.0, the first with
 * PBKDF2WithHmacSHA256, which the app PIN's verifier uses (`logic/AppLock.kt`).
 */
val minApi = 26

android {
    namespace = "org.suivi.demo"
    compileSdk = 36

    defaultConfig {
        applicationId = "org.suivi.demo"
        minSdk = minApi
        // Google Play requires API 36 for new apps and updates from 31 August 2026.
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
    }

    // One APK per ABI (the splits are the ABI filter: AGP refuses ndk.abiFilters beside them),
    // and only what phones run: 64-bit ARM and the 32-bit ARM of the cheapest ones; x86_64 only
    // in an emulator build (-PsuiviEmulator). A 2G download carries one library, not three.
    splits {
        abi {
            isEnable = true
            reset()
            include(*(phoneAbis + emulatorAbis).toTypedArray())
            isUniversalApk = false
        }
    }

    buildTypes {
        getByName("release") {
            isMinifyEnabled = true
            isShrinkResources = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
            // Signed outside the build (apksigner with the project's key): no key in the repository.
        }
    }

    packaging {
        // Native libraries stored uncompressed and page-aligned in the APK, loaded in place
        // (16 KB pages: see ../../.cargo/config.toml for how they are linked).
        jniLibs.useLegacyPackaging = false
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    testOptions {
        unitTests.all {
            // The JVM tests load the host build of the Rust library and start a real suivi-server.
            it.systemProperty("jna.library.path", "$hostTarget/debug")
            it.environment("SUIVI_SERVER_BIN", "$hostTarget/debug/suivi-server")
        }
    }
}

/** Builds the Rust library for each ABI with cargo-ndk. */
abstract class CargoNdk : Exec() {
    @get:OutputDirectory abstract val outputDir: DirectoryProperty
}

/** Generates the Kotlin bindings from the library (uniffi library mode), and so builds the host library. */
abstract class UniffiBindings : Exec() {
    @get:OutputDirectory abstract val outputDir: DirectoryProperty
}

// Generated sources go through the variant API: one task per variant, each writing where AGP
// tells it (the output path is read when the task runs, not when it is configured). They run
// before compilation, live under build/ (Clean deletes them and the next build makes them
// again), and always run: cargo decides what is up to date, Gradle does not see Rust sources.
androidComponents {
    onVariants { variant ->
        val name = variant.name.replaceFirstChar { it.uppercase() }
        val ndkDirectory = androidComponents.sdkComponents.ndkDirectory
        val cargoNdk = tasks.register<CargoNdk>("cargoNdk$name") {
            workingDir = repoRoot
            executable = "cargo"
            argumentProviders.add(CommandLineArgumentProvider {
                // The phones' profile even in a debug APK: a debug build of SQLCipher and
                // Automerge is too slow on a phone to try anything. `--platform` is the API
                // level the library links against: minSdk, not the NDK's default.
                listOf("ndk") + (phoneAbis + emulatorAbis).flatMap { listOf("-t", it) } + listOf(
                    "--platform", minApi.toString(), "-o", outputDir.get().asFile.path,
                    "build", "--profile", "release-android", "-p", "suivi-ffi", "--features", "vendored-openssl",
                )
            })
            // The NDK the Android Gradle plugin resolved (android.ndkVersion / ndk.dir), not
            // whichever one cargo-ndk would guess.
            doFirst { environment("ANDROID_NDK_HOME", ndkDirectory.get().asFile.path) }
            outputs.upToDateWhen { false }
        }
        val bindings = tasks.register<UniffiBindings>("uniffiBindings$name") {
            workingDir = repoRoot
            executable = "bash"
            // Only the library and the generator: the workspace's other crates are not the APK's.
            argumentProviders.add(CommandLineArgumentProvider { listOf("ffi/generate-kotlin.sh", outputDir.get().asFile.path, "--ffi-only") })
            outputs.upToDateWhen { false }
        }
        variant.sources.jniLibs?.addGeneratedSourceDirectory(cargoNdk, CargoNdk::outputDir)
        variant.sources.kotlin?.addGeneratedSourceDirectory(bindings, UniffiBindings::outputDir)
    }
}

dependencies {
    // uniffi's Kotlin bindings load the Rust library through JNA (the AAR carries its Android
    // native parts; the JVM unit tests use the JAR and the host library).
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("androidx.activity:activity-ktx:1.11.0")
    implementation("androidx.lifecycle:lifecycle-viewmodel-ktx:2.9.4")
    implementation("androidx.lifecycle:lifecycle-runtime-ktx:2.9.4")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    // The background sync (ui/SyncWorker.kt): unique work, a network constraint, backoff.
    implementation("androidx.work:work-runtime-ktx:2.10.1")
    implementation("androidx.core:core-ktx:1.16.0")

    testImplementation("net.java.dev.jna:jna:5.17.0")
    testImplementation("junit:junit:4.13.2")
}
