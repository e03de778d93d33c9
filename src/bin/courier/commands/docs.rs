//! `courier completions SHELL` and `courier man --out DIR`, from the clap definitions.

use std::path::Path;

use clap::CommandFactory;
use courier::error::{exit, Error, Result};

use crate::cli::{self, Cli};
use crate::output::out;

pub fn completions(shell: cli::CompletionShell) -> Result<u8> {
    let shell = match shell {
        cli::CompletionShell::Bash => clap_complete::Shell::Bash,
        cli::CompletionShell::Zsh => clap_complete::Shell::Zsh,
        cli::CompletionShell::Fish => clap_complete::Shell::Fish,
        cli::CompletionShell::Powershell => clap_complete::Shell::PowerShell,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "courier",
        &mut std::io::stdout(),
    );
    Ok(exit::OK)
}

pub fn man(out: &Path) -> Result<u8> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    clap_mangen::generate_to(Cli::command(), out).map_err(|e| Error::io(out, e))?;
    out!("wrote man pages to {}", out.display());
    Ok(exit::OK)
}
