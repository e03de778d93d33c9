//! Command-line definitions only (clap derive). No logic lives here: `commands/` maps each
//! command to a library call and `output.rs` prints the result.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// courier: signed, encrypted bundle files between air-gapped test centres and central.
///
/// A site (central or a test centre) lives in a home folder: --home DIR, else
/// $COURIER_HOME, else ~/.local/share/courier. Exit codes: 0 ok, 1 input refused,
/// 2 usage error, 3 partly applied (some records refused or kept aside), 4 site not usable
/// (missing, busy, wrong role, passphrase needed), 5 internal failure.
#[derive(Debug, Parser)]
#[command(
    name = "courier",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Examples:\n  courier demo                                   # a whole exam cycle in a temporary folder\n  courier --home central init central --name \"Central\"\n  courier --home box import /media/stick/down/   # apply what central sent\n\nThe README's \"A sync, step by step\" walks through a whole sync."
)]
pub struct Cli {
    /// The site's home folder (default: $COURIER_HOME, else ~/.local/share/courier).
    /// Used by every command except inspect, package check, completions, man and demo.
    #[arg(long, global = true, value_name = "DIR", help_heading = "Site options")]
    pub home: Option<PathBuf>,
    /// Read the secret key's passphrase from the first line of FILE (else $COURIER_PASSPHRASE).
    /// Only needed for a site created with --protect, by commands that use its secret key.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Site options"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// Central on PostgreSQL: read the database password from the first line of FILE (else
    /// $COURIER_STORE_PASSWORD_FILE, then PGPASSWORD).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Site options"
    )]
    pub store_password_file: Option<PathBuf>,
    /// No progress display and no "waiting for the store" notice on stderr (warnings and
    /// errors are still printed). Without it, load, import, export, results/logs add and
    /// results/logs export show a bar on a terminal, and otherwise a line every few seconds.
    #[arg(long, short = 'q', global = true, help_heading = "Output options")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a site: central, or a test centre.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier --home central init central --name \"Central\"\n  courier --home box init center --org ORG-042"
    )]
    Init(InitCommand),
    /// Show or export this site's key.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier --home box keys show\n  courier --home central keys export --out central.asc"
    )]
    Keys(KeysCommand),
    /// Central: register test centres, write their enrollment files, revoke them.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier --home central center add ORG-042 --label \"Lycée X\" --out enroll-ORG-042.json\n  courier --home central center list\n  courier --home central center revoke ORG-042 --reason \"machine stolen\""
    )]
    Center(CenterCommand),
    /// Centre: check central's enrollment file, pin central's key, write the reply bundle.
    #[command(
        after_help = "Examples:\n  courier --home box enroll enroll-ORG-042.json --expect-fingerprint \"2A70 0A2E ... 8BA7\" --out /media/stick/up/"
    )]
    Enroll(EnrollArgs),
    /// Verify, decrypt and apply bundle files (folders are searched for *.courier).
    #[command(
        after_help = "Examples:\n  courier --home central import /media/stick/up/ --archive done/\n  courier --home central import --json-summary /media/stick/up/\n  courier --home box import --dry-run ORG-042-data-000002.courier\n\nFiles are applied ordered by sender and sequence (enrollment replies first), whatever\ntheir names or folders; a last line sums up the batch."
    )]
    Import(ImportArgs),
    /// Check bundle files without applying anything: signature, sizes, hashes, recipient.
    #[command(after_help = "Examples:\n  courier --home central verify /media/stick/up/")]
    Verify(VerifyArgs),
    /// Show a bundle's header without decrypting it.
    #[command(
        after_help = "Examples:\n  courier inspect ORG-042-data-000001.courier\n  courier inspect --json /media/stick/up/*.courier"
    )]
    Inspect(InspectArgs),
    /// Central: load entities (JSON Lines or array of {type,id,properties}, or TAO's entity details) and their test packages.
    #[command(
        after_help = "Examples:\n  courier --home central load examples/entities.jsonl\n  courier --home central load exports/2026-11-26/     # every *.jsonl and *.json in it\n  courier --home central load --type proctor --packages /var/lib/tao/data proctors.json"
    )]
    Load(LoadArgs),
    /// Central: remove entities by id.
    #[command(
        after_help = "Examples:\n  courier --home central remove \"https://central.example/tao.rdf#elig-042-basic\""
    )]
    Remove(RemoveArgs),
    /// Check QTI test packages as TAO's importer does.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier package check examples/packages/2.1-basic-Basic.zip"
    )]
    Package(PackageCommand),
    /// Write the next bundle(s): central → a centre (--to ORG), or centre → central.
    #[command(
        after_help = "Examples:\n  courier --home central export --to ORG-042 --out /media/stick/down/\n  courier --home central export --to-all --out down/    # every centre's, one file each\n  courier --home box export --out /media/stick/up/ --max-file-size 2G"
    )]
    Export(ExportArgs),
    /// List the entities this site holds: a table, or the wire shape `load` reads with --json.
    #[command(
        after_help = "Examples:\n  courier --home box list test-taker --decrypt\n  courier --home central list eligibility delivery --json"
    )]
    List(ListArgs),
    /// Results: add and list at a centre, export decrypted at central.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier --home box results add results.jsonl\n  courier --home central results export --format csv --out results.csv"
    )]
    Results(ResultsCommand),
    /// Delivery logs: add at a centre, export at central.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier --home box logs add delivery-logs.jsonl\n  courier --home central logs export --format jsonl --out logs.jsonl"
    )]
    Logs(LogsCommand),
    /// What is pending, late or lost: per centre at central, what waits and what was sent at a centre.
    #[command(
        after_help = "Examples:\n  courier --home central status\n  courier --home central status --late-after 1 --json\n  courier --home box status"
    )]
    Status(StatusArgs),
    /// Central: the exam-day report, one self-contained HTML page to open in any browser.
    ///
    /// The page holds a table per centre (org id, label, results received, kept aside,
    /// acknowledgements pending, data bundles unconfirmed, last contact, late warning) with
    /// the same numbers as `status --json`, and charts: results received per centre,
    /// results received per hour (per day past three days), and the sizes of the results
    /// bundles received. It needs no network: styles and charts are inside the file, with
    /// no script, font or image to fetch. Written under a temporary name, then renamed;
    /// an existing FILE is replaced. A centre's home is refused (exit 2).
    #[command(
        after_help = "Examples:\n  courier --home central report --out exam-day.html\n  courier --home central report --out exam-day.html --late-after 1"
    )]
    Report(ReportArgs),
    /// Show the sync history (hash-chained; --verify checks the chain).
    #[command(
        after_help = "Examples:\n  courier --home central history --org ORG-042 --limit 10\n  courier --home box history --entity \"https://central.example/tao.rdf#tt-042a\"\n  courier --home central history --verify"
    )]
    History(HistoryArgs),
    /// Central: move the store (store migrate --to postgres://...).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  courier --home central store migrate --to postgres://courier@db.example/courier --store-password-file pg.txt\n  courier --home central store migrate --to postgres://courier@db.example/courier --switch --json"
    )]
    Store(StoreCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell) on standard output.
    #[command(
        after_help = "Examples:\n  courier completions bash > /etc/bash_completion.d/courier\n  courier completions zsh > ~/.zfunc/_courier\n  courier completions fish > ~/.config/fish/completions/courier.fish"
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Write man pages (courier.1 and one per command) into a folder.
    #[command(
        after_help = "Examples:\n  courier man --out /usr/local/share/man/man1\n  courier man --out man/ && man -l man/courier-import.1"
    )]
    Man {
        /// Folder for the pages (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Run the main job: a central and two centres, a full exam cycle, in a temporary folder.
    #[command(
        after_help = "Examples:\n  courier demo\n  courier demo --dir /tmp/courier-demo     # keep the sites to look around"
    )]
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum InitCommand {
    /// Create the central site.
    #[command(
        after_help = "Examples:\n  courier --home central init central --name \"Central\"\n  courier --home central init central --name \"Central\" --protect --passphrase-file pass.txt\n  courier --home central init central --name \"Central\" --store postgres://courier@db.example/courier --store-password-file pg.txt"
    )]
    Central {
        /// Central's display name, shown to centres when they enroll.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Keep central's store in this PostgreSQL database (postgres://USER@HOST[:PORT]/DB, no
        /// password: see --store-password-file) instead of store.sqlite in the home.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        #[command(flatten)]
        protect: Protect,
    },
    /// Create a test centre site.
    #[command(after_help = "Examples:\n  courier --home box init center --org ORG-042")]
    Center {
        /// The centre's organisation id (e.g. ORG-042): the organisationId of its test-center
        /// entity at central, and the id central used in 'center add'.
        #[arg(long = "org", value_name = "ORG_ID")]
        org: String,
        #[command(flatten)]
        protect: Protect,
    },
}

#[derive(Debug, Args)]
pub struct Protect {
    /// Protect the secret key with a passphrase ($COURIER_PASSPHRASE or --passphrase-file).
    #[arg(long)]
    pub protect: bool,
    /// Restore the site's key from FILE (written by 'keys export --secret') instead of generating one.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Print the key information as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the fingerprint, role and organisation id.
    #[command(
        after_help = "Examples:\n  courier --home box keys show\n  courier --home central keys show --json"
    )]
    Show {
        /// Print JSON (fingerprint, role, org_id, name, protected, home) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the public certificate (or, with --secret, the secret key) to FILE.
    #[command(
        after_help = "Examples:\n  courier --home central keys export --out central.asc\n  courier --home central keys export --secret --out /media/backup/central-secret.asc\n  courier --home central keys export --revocation --out /media/safe/central-revocation.asc"
    )]
    Export {
        /// The file to write (ASCII-armored OpenPGP).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Write the secret key instead (for backup or GnuPG); still protected if it is.
        #[arg(long, conflicts_with = "revocation")]
        secret: bool,
        /// Central: write a revocation certificate of central's key instead, for safe
        /// keeping offline; if the key leaks, each centre applies it with 'keys revoke-peer'.
        #[arg(long)]
        revocation: bool,
        /// Replace FILE if it exists (else an existing file is left alone, exit 2).
        #[arg(long)]
        force: bool,
    },
    /// Replace the site's key with a new one (new fingerprint); peers learn it from the next
    /// bundle, which carries a rollover statement signed by the old and the new key.
    ///
    /// The old secret key is kept under retired-keys/ to decrypt what was sealed to it; it
    /// signs nothing any more. A protected key's passphrase protects the new key too.
    #[command(
        after_help = "Examples:\n  courier --home central keys rotate\n  courier --home box --passphrase-file pass.txt keys rotate"
    )]
    Rotate {
        /// Print JSON (old_fingerprint, new_fingerprint, peers) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Centre: revoke central's key with the revocation certificate central wrote ('keys
    /// export --revocation'), after central's key leaked.
    ///
    /// The file must be signed by the central key pinned here. From then on every bundle
    /// signed by that key is refused and nothing is sealed or exported to it, until the
    /// centre enrolls again with a new enrollment file from central's new key.
    #[command(
        after_help = "Examples:\n  courier --home box keys revoke-peer /media/usb/central-revocation.asc"
    )]
    RevokePeer {
        /// The revocation certificate (ASCII-armored or binary OpenPGP).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Add, change or remove the passphrase of the site's secret keys (never prompts).
    ///
    /// The current passphrase comes from --passphrase-file or $COURIER_PASSPHRASE (when the
    /// key is protected); the new one from --new-passphrase-file or $COURIER_NEW_PASSPHRASE.
    #[command(
        after_help = "Examples:\n  courier --home central keys passwd --new-passphrase-file new.txt            # add\n  courier --home central --passphrase-file old.txt keys passwd --new-passphrase-file new.txt\n  COURIER_PASSPHRASE=... courier --home central keys passwd --remove"
    )]
    Passwd {
        /// Read the new passphrase from the first line of FILE (else $COURIER_NEW_PASSPHRASE).
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// Store the secret key unprotected (no new passphrase may be given).
        #[arg(long, conflicts_with = "new_passphrase_file")]
        remove: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CenterCommand {
    /// Register a test centre and write its enrollment file.
    #[command(
        after_help = "Examples:\n  courier --home central center add ORG-042 --label \"Lycée X\" --out enroll-ORG-042.json"
    )]
    Add {
        /// The centre's organisation id: must equal the organisationId of its test-center entity.
        #[arg(value_name = "ORG_ID")]
        org: String,
        /// A human label for the centre (shown in 'center list').
        #[arg(long, value_name = "TEXT")]
        label: String,
        /// Where to write the enrollment file to carry to the centre.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The centre's key fingerprint, as its `enroll` printed it (read out by phone or on
        /// paper; spaces allowed): only a reply with this key enrolls the centre.
        #[arg(long, value_name = "FPR")]
        expect_fingerprint: Option<String>,
    },
    /// Revoke a centre (a stolen or retired machine): its bundles are refused from now on,
    /// with the reason, and nothing more is exported to it; what it sent before stays.
    #[command(
        after_help = "Examples:\n  courier --home central center revoke ORG-042 --reason \"machine stolen 2026-11-26\""
    )]
    Revoke {
        /// The centre's organisation id.
        #[arg(value_name = "ORG_ID")]
        org: String,
        /// Why, in one line: shown with every refusal and in 'center list'.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Re-enroll a reinstalled or replaced centre: revoke its old key and write a new
    /// enrollment file; its next data bundle carries its whole scope.
    ///
    /// Results bundles signed by the old key are still accepted when their sequence is below
    /// the first one central had not seen from it when re-enrolling; later ones are refused.
    #[command(
        after_help = "Examples:\n  courier --home central center reenroll ORG-042 --label \"Lycée X (new PC)\" --out enroll-ORG-042.json"
    )]
    Reenroll {
        /// The centre's organisation id.
        #[arg(value_name = "ORG_ID")]
        org: String,
        /// A human label for the centre (shown in 'center list').
        #[arg(long, value_name = "TEXT")]
        label: String,
        /// Where to write the new enrollment file to carry to the centre.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// List registered centres and their sync state.
    #[command(
        after_help = "Examples:\n  courier --home central center list\n  courier --home central center list --json"
    )]
    List {
        /// Print JSON (one object per centre) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The enrollment file central wrote with 'center add'.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Central's fingerprint as read out by phone or on paper, with or without spaces
    /// (else asked on a terminal).
    #[arg(long, value_name = "FPR")]
    pub expect_fingerprint: Option<String>,
    /// Folder for the reply bundle to carry back to central.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Bundle files (*.courier) or folders holding them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Apply a data bundle older than one already applied (recorded in the history).
    #[arg(long)]
    pub allow_rollback: bool,
    /// Check and apply inside the transaction, report what would happen, keep nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Move each file applied (or already applied) into DIR; refused files stay where they are.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Print one JSON report per file instead of a line per file (an array, as before
    /// --json-summary was added).
    #[arg(long)]
    pub json: bool,
    /// Print one JSON object instead of lines: every file's report, the batch's summary and
    /// the sets with a part missing (schemas/file-reports.schema.json).
    #[arg(long, conflicts_with = "json")]
    pub json_summary: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Bundle files (*.courier) or folders holding them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print one JSON report per file instead of a line per file.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Bundle files (*.courier).
    #[arg(required = true, value_name = "FILE")]
    pub paths: Vec<PathBuf>,
    /// Print the header as JSON (an array for several files) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Entity files (.json array or .jsonl, or TAO's entity details: an object keyed by URI)
    /// or folders of them; a delivery's package path is relative to the file that names it.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The entity type of records that carry none (TAO's entity details); without it, the
    /// type is told from each record's rdf:type and user roles.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// The folder TAO's package references (file://synchronisation/...) are resolved
    /// against; by default the folder of the file naming them.
    #[arg(long, value_name = "DIR")]
    pub packages: Option<PathBuf>,
    /// Print the counts as JSON instead of a line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Entity ids (URIs), as 'list' shows them.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Check QTI test packages (zip); exits 1 if any is refused.
    #[command(
        after_help = "Examples:\n  courier package check examples/packages/2.1-basic-Basic.zip\n  courier package check --json packages/*.zip"
    )]
    Check {
        /// QTI test packages (IMS content package zip files).
        #[arg(required = true, value_name = "ZIP")]
        files: Vec<PathBuf>,
        /// Print one JSON report per package instead of a line each.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Central: the centre to write for (its organisation id). Not used at a centre.
    #[arg(long, value_name = "ORG_ID")]
    pub to: Option<String>,
    /// Central: write the next data bundle of every enrolled centre not revoked, in one
    /// process (a line per centre, then a summary).
    #[arg(long, conflicts_with_all = ["to", "max_file_size", "resend", "resend_all"])]
    pub to_all: bool,
    /// Folder for the bundle files (created if needed), e.g. the stick.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Centre: largest file written, e.g. 64K, 10M, 2G (default just under 4 GiB; above
    /// FAT32's limit of 4 GiB - 1 byte it warns).
    #[arg(long, value_name = "SIZE")]
    pub max_file_size: Option<String>,
    /// Centre: send again now what central is known to miss (a file it never applied while
    /// it applied later ones), without waiting for settings.resend_after_hours.
    #[arg(long)]
    pub resend: bool,
    /// Centre: send again every result and log batch central has not acknowledged.
    #[arg(long, conflicts_with = "resend")]
    pub resend_all: bool,
    /// Print the export report as JSON instead of lines (with --to-all:
    /// schemas/export-batch.schema.json).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these types (test-center, administrator, proctor, test-taker, eligibility, delivery);
    /// all when none is given.
    #[arg(value_name = "TYPE")]
    pub types: Vec<String>,
    /// Print a JSON array in the wire shape `load` reads, instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Reveal encrypted personal properties with this site's key.
    #[arg(long)]
    pub decrypt: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// PowerShell.
    Powershell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// JSON Lines: one record per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// The request bodies TAO's central sync API receives, one per line (needs --tao-version).
    Tao,
}

#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// Centre: ingest results (TAO wire shape, JSON array or JSON Lines).
    #[command(
        after_help = "Examples:\n  courier --home box results add results.jsonl\n  courier --home box results add --json day1.jsonl day2.jsonl"
    )]
    Add {
        /// Result files exported from the centre's TAO (delivery executions with their variables).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the counts and refusals as JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Centre: list results and their sync status.
    #[command(
        after_help = "Examples:\n  courier --home box results list\n  courier --home box results list --json"
    )]
    List {
        /// Print a JSON array instead of a line per result.
        #[arg(long)]
        json: bool,
    },
    /// Central: write every result received, decrypted.
    #[command(
        after_help = "Examples:\n  courier --home central results export --format csv --out results.csv\n  courier --home central results export --format jsonl --out results.jsonl\n  courier --home central results export --format tao --tao-version 3.3.0 --out results-bodies.jsonl"
    )]
    Export {
        /// jsonl: TAO's result wire shape, one result per line; csv: one row per variable;
        /// tao: the bodies of TAO's syncResults requests, one per line and organisation.
        #[arg(long, value_enum)]
        format: OutputFormat,
        /// With --format tao: the TAO version the bodies' sync_params claim (TAO central
        /// refuses versions it does not support).
        #[arg(long, value_name = "VERSION", required_if_eq("format", "tao"))]
        tao_version: Option<String>,
        /// With --format tao: results per request body (default 100; TAO's own client
        /// sends 10, its chunkSize option; TAO central takes any number).
        #[arg(long, value_name = "N", requires = "tao_version", value_parser = clap::value_parser!(u32).range(1..))]
        chunk: Option<u32>,
        /// The file to write (written under a temporary name, then renamed).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE if it exists (else an existing file is left alone, exit 2).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Centre: ingest delivery logs.
    #[command(after_help = "Examples:\n  courier --home box logs add delivery-logs.jsonl")]
    Add {
        /// Delivery log files exported from the centre's TAO (rows of its delivery_log table).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the counts and refusals as JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Central: write every delivery log received.
    #[command(
        after_help = "Examples:\n  courier --home central logs export --format csv --out logs.csv\n  courier --home central logs export --format tao --tao-version 3.3.0 --out logs-bodies.jsonl"
    )]
    Export {
        /// jsonl: one log per line as the centre sent it; csv: one row per log; tao: the
        /// bodies of TAO's syncDeliveryLogs requests, one per line and organisation.
        #[arg(long, value_enum)]
        format: OutputFormat,
        /// With --format tao: the TAO version the bodies' sync_params claim (TAO central
        /// refuses versions it does not support).
        #[arg(long, value_name = "VERSION", required_if_eq("format", "tao"))]
        tao_version: Option<String>,
        /// With --format tao: log rows per request body (default 200, as TAO's own
        /// client's chunkSize option; TAO central takes any number).
        #[arg(long, value_name = "N", requires = "tao_version", value_parser = clap::value_parser!(u32).range(1..))]
        chunk: Option<u32>,
        /// The file to write (written under a temporary name, then renamed).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE if it exists (else an existing file is left alone, exit 2).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Central: a centre not heard from for more than DAYS days is late (default:
    /// settings.late_after_days in courier.json, 3 unless changed).
    #[arg(long, value_name = "DAYS")]
    pub late_after: Option<u64>,
    /// Print the report as JSON (schemas/status.schema.json) instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// A centre not heard from for more than DAYS days is marked late (default:
    /// settings.late_after_days in courier.json, as for `status`).
    #[arg(long, value_name = "DAYS")]
    pub late_after: Option<u64>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// Only syncs with this organisation.
    #[arg(long, value_name = "ORG_ID")]
    pub org: Option<String>,
    /// Show the most recent N entries.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: i64,
    /// Check the hash chain and its signed head; exits 1 if a row was altered, deleted or
    /// the chain recomputed.
    #[arg(long)]
    pub verify: bool,
    /// Sign the history's head now (needs the key's passphrase when it is protected); done
    /// after every command that can unlock the key, so this is for rows written without it.
    #[arg(long, conflicts_with_all = ["verify", "entity"])]
    pub anchor: bool,
    /// What each sync did to one entity (created, updated, touched, deleted).
    #[arg(long, value_name = "ID", conflicts_with = "verify")]
    pub entity: Option<String>,
    /// Print JSON instead of a line per entry.
    #[arg(long)]
    pub json: bool,
}

/// `courier store migrate`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy this SQLite central's store into an empty PostgreSQL database, in one
    /// transaction, and verify the copy (rows per table, the history chain and its head).
    ///
    /// courier.json is left as it is unless --switch is given: then every later command uses
    /// the database. Stop imports while it runs (the SQLite store is held meanwhile).
    #[command(
        after_help = "Examples:\n  courier --home central store migrate --to postgres://courier@db.example/courier\n  courier --home central store migrate --to postgres://courier@db.example/courier --switch"
    )]
    Migrate {
        /// The empty database: postgres://USER@HOST[:PORT]/DB (no password: see --store-password-file).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Once verified, make courier.json's settings.store name the database.
        #[arg(long)]
        switch: bool,
        /// Print the per-table summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Archiving the history: `courier history export | verify-archive | prune`.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Write the history (all rows, or those before a date) and the bundle files those rows
    /// name (moved away by `import --archive`, or in --bundles DIR) as one signed archive file.
    #[command(
        after_help = "Examples:\n  courier --home central history export --out history-2026.tar --before 2027-01-01\n  courier --home central keys export --out central.asc   # the certificate that checks it"
    )]
    Export {
        /// The archive file to write (written under a temporary name, then renamed).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only the rows from the start up to the first one written at or after DATE
        /// (YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SSZ; UTC).
        #[arg(long, value_name = "DATE")]
        before: Option<String>,
        /// Also look in DIR for bundle files to carry (may be repeated). The folders
        /// `import --archive` moved files into are always looked in; a bundle file is
        /// carried when a row of the archive names its bundle (or its set).
        #[arg(long = "bundles", value_name = "DIR")]
        bundles: Vec<PathBuf>,
        /// Replace FILE if it exists (else an existing file is left alone, exit 2).
        #[arg(long)]
        force: bool,
    },
    /// Check a history archive with the site's public certificate alone (no home needed).
    #[command(
        after_help = "Examples:\n  courier history verify-archive history-2026.tar --certificate central.asc"
    )]
    VerifyArchive {
        /// The archive written by `history export`.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The site's certificate, as `keys export` writes it.
        #[arg(long, value_name = "CERT")]
        certificate: PathBuf,
        /// Print JSON instead of a line.
        #[arg(long)]
        json: bool,
    },
    /// Drop from the store the rows before DATE that a verified archive of this site holds;
    /// `history --verify` keeps passing (the chain starts after the last row dropped).
    #[command(
        after_help = "Examples:\n  courier --home central history prune --before 2027-01-01 --archived history-2026.tar"
    )]
    Prune {
        /// Drop the rows from the start up to the first one written at or after DATE.
        #[arg(long, value_name = "DATE")]
        before: String,
        /// The archive holding them (`history export`), verified with this site's key first.
        #[arg(long, value_name = "FILE")]
        archived: PathBuf,
        /// Then delete, from the folders `import --archive` moved files into, every file
        /// whose size and SHA-256 are those of a bundle the archive holds.
        #[arg(long)]
        delete_bundles: bool,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the sites in DIR (created; must be empty) instead of a temporary folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
