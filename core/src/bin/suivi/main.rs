//! `suivi`: the device command. Everything an agent's phone does, from a terminal: record
//! children, refer them, move referrals, record visits, read history, search, import, export
//! and sync. Human output by default (French, English or Arabic labels), `--json` for scripts.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value as Json;
use suivi_core::case_doc::{Closure, ClosureStatus, Conflict, HistoryEntry};
use suivi_core::forms::{FieldType, FormDefinition, FOLLOWUP, IDENTIFICATION, REFERRAL};
use suivi_core::outcome;
use suivi_core::store::{
    CaseDetail, CaseRow, QuarantinedCase, RefusedCase, SyncProgress, SyncReport,
};
use suivi_core::words::Zone;
use suivi_core::{CaseFilter, Error, Lang, Record, Store, Transition};
mod args;
mod commands;
mod messages;
mod render;
use args::*;
use commands::*;
use messages::*;
use render::*;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let lang = cli
        .lang
        .clone()
        .or_else(|| std::env::var("LC_ALL").ok())
        .or_else(|| std::env::var("LANG").ok())
        .map(|t| Lang::from_tag(&t))
        .unwrap_or_default();
    match run(&cli, lang) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report_error(&err, lang, cli.json);
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &Error) -> u8 {
    match err {
        Error::Validation(_)
        | Error::InvalidInput(_)
        | Error::IllegalTransition { .. }
        | Error::CaseMerged { .. } => 2,
        Error::NotFound { .. } => 3,
        Error::WrongKeyOrCorrupt | Error::PlaintextDatabase | Error::ForeignDatabase => 4,
        Error::Offline(_) => 5,
        Error::Forbidden(_) | Error::DeviceRevoked => 6,
        Error::UpgradeRequired => 7,
        _ => 1,
    }
}
