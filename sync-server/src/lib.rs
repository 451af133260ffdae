//! Suivi sync server.
