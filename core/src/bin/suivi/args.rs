//! The command line: every command and its arguments (clap).

use super::*;

#[derive(Parser)]
#[command(
    name = "suivi",
    version,
    about = "Suivi device command: child protection case records, offline first"
)]
pub(super) struct Cli {
    /// The encrypted case database.
    #[arg(long, env = "SUIVI_DB", default_value = "suivi.db", global = true)]
    pub(super) db: PathBuf,
    /// Print JSON instead of text, for scripts.
    #[arg(long, global = true)]
    pub(super) json: bool,
    /// Language of labels and messages: fr (default), en or ar. Defaults to the locale.
    #[arg(long, global = true)]
    pub(super) lang: Option<String>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Create the encrypted database for a user on this device. The key comes from SUIVI_KEY
    /// or is asked for.
    Init {
        #[arg(long)]
        user: String,
        #[arg(long)]
        device: String,
    },
    /// Children's cases.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Refer a child to a service: `suivi refer <case> --set service_type=health ...`.
    Refer {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    /// Move a referral: send, accept, decline, start, complete, close, transfer.
    Referral {
        referral: String,
        transition: String,
        #[arg(long)]
        note: Option<String>,
        /// For `transfer`: the next provider.
        #[arg(long)]
        provider: Option<String>,
    },
    /// Record a follow-up visit: `suivi followup <case> --set visit_date=2026-11-02 ...`.
    Followup {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    /// Who changed what in a case, and when.
    History { case: String },
    /// Import cases from JSON: a spreadsheet's rows (one object per child) or a `suivi export`.
    Import { file: PathBuf },
    /// Export every case as JSON.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show a form's fields and choices: identification, referral or followup. The newest
    /// active version this device holds (received from the server at sync), or --version.
    Form {
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// The form versions this device holds: built in, and received from the server.
    Forms,
    /// Enroll this device with a sync server, with a one-time code from an admin.
    Enroll {
        #[arg(long)]
        server: String,
        #[arg(long)]
        code: String,
        /// The project's CA certificate (PEM), when the server's certificate is not public.
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
    /// Push what was recorded offline and pull the caseload's changes.
    Sync,
    /// Cases the last syncs set aside (quarantined) or the server refused, with why.
    Problems,
    /// Fields two devices set at once: each value, who wrote it and when.
    Conflicts,
    /// Settle a conflict: `suivi resolve <case> identification.village Kaniko`, or a disputed
    /// referral's `referrals.<id>.status` with one of its statuses.
    Resolve {
        case: String,
        path: String,
        value: String,
    },
}

#[derive(Subcommand)]
pub(super) enum CaseCommand {
    /// Record a new child: `--set field=value` for each field, or `--file case.json`.
    New {
        #[command(flatten)]
        values: Values,
    },
    /// Change identification fields; `--set field=` clears one.
    Edit {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    /// Move a case to the newest identification form version, giving its new questions
    /// answers with `--set`; fields that version no longer asks stay, read-only.
    MoveForm {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    Show {
        case: String,
    },
    /// Give a case to another agent of the team (supervisors; works offline: the server moves
    /// it at the next sync).
    Reassign {
        case: String,
        #[arg(long)]
        to: String,
    },
    /// Propose to close a case, offline if need be; a supervisor approves or returns it.
    /// Reasons: exited_stable, moved_away, age_limit, transferred, consent_withdrawn, deceased.
    Close {
        case: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Decide a proposed closure (supervisors): approve, or return it to the agent with a note.
    Decide {
        case: String,
        /// approve or return.
        decision: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Open a closed case again (counted in the programme's report).
    Reopen {
        case: String,
        #[arg(long)]
        note: Option<String>,
    },
    List {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Search children by name; case and accents do not matter.
    Search {
        query: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[derive(Args)]
pub(super) struct Values {
    /// field=value, repeated. Choice ids, yes/no (oui/non), dates as YYYY-MM-DD, lists as a,b.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub(super) set: Vec<String>,
    /// A JSON object of field values.
    #[arg(long)]
    pub(super) file: Option<PathBuf>,
}

#[derive(Args)]
pub(super) struct FilterArgs {
    #[arg(long)]
    pub(super) village: Option<String>,
    #[arg(long)]
    pub(super) risk: Option<String>,
    /// Cases with a referral in this status.
    #[arg(long)]
    pub(super) status: Option<String>,
    /// Cases whose next follow-up visit is overdue today.
    #[arg(long)]
    pub(super) overdue: bool,
    #[arg(long)]
    pub(super) limit: Option<usize>,
}

impl Values {
    /// Collects `--set` pairs and `--file` into a record, converting text by field type.
    pub(super) fn record(&self, form: &FormDefinition) -> Result<Record, Error> {
        let mut record = Record::new();
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
            record = serde_json::from_str(&text)
                .map_err(|e| Error::InvalidInput(format!("JSON: {e}")))?;
        }
        let mut pairs = Vec::new();
        for pair in &self.set {
            let (field, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::InvalidInput(format!("expected FIELD=VALUE, got {pair}")))?;
            pairs.push((field, value));
        }
        record.extend(form.record_from_inputs(pairs)?);
        Ok(record)
    }
}

impl FilterArgs {
    pub(super) fn to_filter(&self, query: Option<&String>) -> CaseFilter {
        CaseFilter {
            query: query.cloned(),
            village: self.village.clone(),
            risk_level: self.risk.clone(),
            referral_status: self.status.clone(),
            overdue_on: self.overdue.then(|| chrono::Local::now().date_naive()),
            limit: self.limit,
        }
    }
}
