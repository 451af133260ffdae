//! End-to-end tests: real servers on loopback, enrolled devices with encrypted stores, and the
//! link emulator. One binary, a module per area.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod access;
mod at_rest;
mod audit;
mod bad_input;
mod cli;
mod concurrent;
mod console;
mod console_browser;
mod disk_full;
mod erasure;
mod fallback;
mod faults;
mod first_sync;
mod forms;
mod hostile_server;
mod https;
mod older_phone;
mod outcomes;
mod postgres;
mod simulation;
mod trust;
mod words;
