//! The `courier` binary: parse arguments, call the library, print, exit.
//! One file per command family under commands/; printing in output.rs; clap definitions
//! in cli.rs. No store access here: decisions live in the library (`courier::actions`).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use courier::error::{exit, Result};
use output::err;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    progress::clear();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            err!("courier: {e}");
            e.exit_code()
        }
    };
    let failed = output::finish_stdout();
    output::report_peak_rss();
    match failed {
        Some(e) => {
            err!("courier: standard output: write failed ({e}); what was printed is incomplete");
            ExitCode::from(code.max(exit::INTERNAL))
        }
        None => ExitCode::from(code),
    }
}

fn run(cli: Cli) -> Result<u8> {
    use commands::*;
    let ctx = Ctx::new(
        cli.home.clone(),
        cli.passphrase_file.as_deref(),
        cli.store_password_file.clone(),
        cli.quiet,
    )?;
    let code = match cli.command {
        Command::Init(a) => site::init(&ctx, a),
        Command::Keys(a) => site::keys(&ctx, a),
        Command::Center(a) => center::center(&ctx, a),
        Command::Enroll(a) => center::enroll(&ctx, a),
        Command::Import(a) => bundles::import(&ctx, a),
        Command::Verify(a) => bundles::verify(&ctx, a),
        Command::Inspect(a) => bundles::inspect(&ctx, a),
        Command::Export(a) => bundles::export(&ctx, a),
        Command::Load(a) => entities::load(&ctx, a),
        Command::Remove(a) => entities::remove(&ctx, a),
        Command::List(a) => entities::list(&ctx, a),
        Command::Package(cli::PackageCommand::Check { files, json }) => {
            Ok(package::check(&files, json))
        }
        Command::Results(a) => results::results(&ctx, a),
        Command::Logs(a) => results::logs(&ctx, a),
        Command::Status(a) => status::status(&ctx, a),
        Command::Report(a) => status::report(&ctx, a),
        Command::History(a) => history::history(&ctx, a),
        Command::Store(a) => status::store(&ctx, a),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { out } => docs::man(&out),
        Command::Demo(a) => demo::demo(a),
    }?;
    // Exits 1, 2, 4 and 5 changed nothing; 0 and 3 may have added history rows.
    if code == exit::OK || code == exit::PARTIAL {
        ctx.anchor_history();
    }
    Ok(code)
}
