//! Suivi FFI: thin uniffi adapters over suivi-core (to come, see issue 6).
