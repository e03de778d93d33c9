//! Command-line definitions only (clap derive). No logic lives here: `main.rs` maps each
//! command to a library call and prints the result.

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
    max_term_width = 100
)]
pub struct Cli {
    /// The site's home folder (default: $COURIER_HOME, else ~/.local/share/courier).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Read the secret key's passphrase from the first line of FILE (else $COURIER_PASSPHRASE).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a site: central, or a test centre.
    #[command(subcommand)]
    Init(InitCommand),
    /// Show or export this site's key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Central: register test centres and write their enrollment files.
    #[command(subcommand)]
    Center(CenterCommand),
    /// Centre: check central's enrollment file, pin central's key, write the reply bundle.
    Enroll(EnrollArgs),
    /// Verify, decrypt and apply bundle files (folders are searched for *.courier).
    Import(ImportArgs),
    /// Check bundle files without applying anything: signature, sizes, hashes, recipient.
    Verify(VerifyArgs),
    /// Show a bundle's header without decrypting it.
    Inspect(InspectArgs),
    /// Central: load entities (TAO wire shape, JSON array or JSON Lines) and their test packages.
    Load(LoadArgs),
    /// Central: remove entities by id.
    Remove(RemoveArgs),
    /// Check QTI test packages as TAO's importer does.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Write the next bundle(s): central → a centre (--to ORG), or centre → central.
    Export(ExportArgs),
    /// List the entities this site holds, in the wire shape `load` reads.
    List(ListArgs),
    /// Results: add and list at a centre, export decrypted at central.
    #[command(subcommand)]
    Results(ResultsCommand),
    /// Delivery logs: add at a centre, export at central.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Show the sync history (hash-chained; --verify checks the chain).
    History(HistoryArgs),
    /// Run the main job: a central and two centres, a full exam cycle, in a temporary folder.
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum InitCommand {
    /// Create the central site.
    Central {
        /// Central's display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        protect: Protect,
    },
    /// Create a test centre site.
    Center {
        /// The centre's organisation id (e.g. ORG-042).
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
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the fingerprint, role and organisation id.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Write the public certificate (or, with --secret, the secret key) to FILE.
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Write the secret key instead (for backup or GnuPG); still protected if it is.
        #[arg(long)]
        secret: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CenterCommand {
    /// Register a test centre and write its enrollment file.
    Add {
        /// The centre's organisation id.
        org: String,
        /// A human label for the centre.
        #[arg(long)]
        label: String,
        /// Where to write the enrollment file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The centre's key fingerprint, as its `enroll` printed it (read out by phone or on
        /// paper; spaces allowed): only a reply with this key enrolls the centre.
        #[arg(long, value_name = "FPR")]
        expect_fingerprint: Option<String>,
    },
    /// List registered centres and their sync state.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The enrollment file from central.
    pub file: PathBuf,
    /// Central's fingerprint as read out by phone or on paper (else asked on a terminal).
    #[arg(long, value_name = "FPR")]
    pub expect_fingerprint: Option<String>,
    /// Folder for the reply bundle to carry back to central.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Bundle files or folders.
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
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Bundle files or folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Bundle files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Entity files (.json array or .jsonl) or folders of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Entity ids (URIs).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Check QTI test packages (zip); exits 1 if any is refused.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Central: the centre to write for.
    #[arg(long, value_name = "ORG_ID")]
    pub to: Option<String>,
    /// Folder for the bundle files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Centre: largest file written, e.g. 64K, 10M, 4G (default just under 4 GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_file_size: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these types (test-center, administrator, proctor, test-taker, eligibility, delivery).
    pub types: Vec<String>,
    #[arg(long)]
    pub json: bool,
    /// Reveal encrypted personal properties with this site's key.
    #[arg(long)]
    pub decrypt: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// Centre: ingest results (TAO wire shape, JSON array or JSON Lines).
    Add {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Centre: list results and their sync status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Central: write every result received, decrypted.
    Export {
        #[arg(long, value_enum)]
        format: OutputFormat,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Centre: ingest delivery logs.
    Add {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Central: write every delivery log received.
    Export {
        #[arg(long, value_enum)]
        format: OutputFormat,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only syncs with this organisation.
    #[arg(long, value_name = "ORG_ID")]
    pub org: Option<String>,
    /// Most recent N entries.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Check the hash chain; exits 1 if any row was altered.
    #[arg(long)]
    pub verify: bool,
    /// What each sync did to one entity (created, updated, touched, deleted).
    #[arg(long, value_name = "ID", conflicts_with = "verify")]
    pub entity: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the sites in DIR (created; must be empty) instead of a temporary folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
