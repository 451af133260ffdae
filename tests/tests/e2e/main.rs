//! End-to-end tests: real servers on loopback, enrolled devices with encrypted stores, and the
//! link emulator. One binary, a module per area.

mod access;
mod bad_input;
mod fallback;
mod faults;
mod simulation;
