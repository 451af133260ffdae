//! Suivi end-to-end support.
