plugins {
    id("com.android.application") version "9.1.0" apply false
    // AGP 9 compiles Kotlin itself (built-in Kotlin); the Kotlin Gradle plugin on the classpath
    // only pins the compiler version, the same as tests/kotlin.sh uses.
    id("org.jetbrains.kotlin.android") version "2.4.20" apply false
}
