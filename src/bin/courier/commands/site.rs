//! `courier init` and `courier keys`.

use courier::actions::key_info;
use courier::error::{exit, Error, Result};
use courier::site::{InitOptions, Passphrase, Role, Site};

use super::Ctx;
use crate::cli;
use crate::output::{err, out, print_json};

fn read_key(p: &cli::Protect) -> Result<Option<Vec<u8>>> {
    p.key
        .as_ref()
        .map(|f| std::fs::read(f).map_err(|e| Error::input(f, &e)))
        .transpose()
}

pub fn init(ctx: &Ctx, init: cli::InitCommand) -> Result<u8> {
    let (opts, json) = match init {
        cli::InitCommand::Central {
            name,
            store,
            protect,
        } => (
            InitOptions {
                role: Role::Central,
                name: Some(name),
                org_id: None,
                protect: protect.protect,
                key: read_key(&protect)?,
                store,
                store_password_file: ctx.store_password_file.clone(),
            },
            protect.json,
        ),
        cli::InitCommand::Center { org, protect } => (
            InitOptions {
                role: Role::Center,
                name: None,
                org_id: Some(org),
                protect: protect.protect,
                key: read_key(&protect)?,
                store: None,
                store_password_file: None,
            },
            protect.json,
        ),
    };
    let site = Site::init(&ctx.home, opts, ctx.pass.clone())?;
    ctx.opened.set(true); // its empty history is signed as the command ends
    if json {
        print_json(&key_info(&site)?);
    } else {
        out!("created {} in {}", site.describe(), ctx.home.display());
        out!(
            "fingerprint {}",
            courier::crypto::grouped(&site.config.fingerprint)
        );
    }
    Ok(exit::OK)
}

pub fn keys(ctx: &Ctx, cmd: cli::KeysCommand) -> Result<u8> {
    match cmd {
        cli::KeysCommand::Show { json } => {
            let site = ctx.open()?;
            let info = key_info(&site)?;
            if json {
                print_json(&info);
            } else {
                out!(
                    "fingerprint {}",
                    courier::crypto::grouped(&info.fingerprint)
                );
                out!("role        {}", info.role_label);
                if let Some(o) = &info.org_id {
                    out!("org         {o}");
                }
                if let Some(n) = &info.name {
                    out!("name        {n}");
                }
                out!("protected   {}", if info.protected { "yes" } else { "no" });
                out!("own keys:");
                for k in &info.keys {
                    out!("  {}", courier::actions::describe_own_key(k));
                }
                if !info.peers.is_empty() {
                    out!("pinned keys:");
                    for k in &info.peers {
                        out!("  {}", courier::actions::describe_peer_key(k));
                    }
                }
            }
        }
        cli::KeysCommand::Export {
            out,
            revocation: true,
            force,
            ..
        } => {
            courier::site::check_output(&out, force)?;
            let site = ctx.open()?;
            let fpr = courier::revocation::export_certificate(&site, &out)?;
            out!(
                "wrote the revocation certificate of {}'s key {} to {}",
                site.describe(),
                courier::crypto::grouped(&fpr),
                out.display()
            );
            out!("keep it offline; if the key leaks, each centre runs 'courier keys revoke-peer FILE'");
        }
        cli::KeysCommand::Export {
            out, secret, force, ..
        } => {
            courier::site::check_output(&out, force)?;
            let site = ctx.open()?;
            let bytes = if secret {
                site.secret_key_armored()?
            } else {
                courier::crypto::armor_public(&site.certificate()?)?.into_bytes()
            };
            courier::site::write_atomic(&out, &bytes)?;
            out!(
                "wrote {} key of {} to {}",
                if secret { "secret" } else { "public" },
                site.describe(),
                out.display()
            );
        }
        cli::KeysCommand::Rotate { json } => {
            let mut site = ctx.open()?;
            let rotated = courier::rollover::rotate(&mut site)?;
            if json {
                print_json(&rotated);
            } else {
                out!(
                    "{}: new key {}",
                    site.describe(),
                    courier::crypto::grouped(&rotated.new_fingerprint)
                );
                out!(
                    "old key {} kept to decrypt only",
                    courier::crypto::grouped(&rotated.old_fingerprint)
                );
                for (peer, from) in &rotated.peers {
                    out!("{peer} learns the new key from the next bundle to it (sequence {from})");
                }
            }
        }
        cli::KeysCommand::RevokePeer { file } => {
            let site = ctx.open()?;
            let done = courier::revocation::revoke_peer(&site, &file)?;
            out!(
                "revoked central's key {} at {} (certificate signed {}: {})",
                courier::crypto::grouped(&done.fingerprint),
                done.revoked_at,
                done.signed,
                done.reason
            );
            out!("its bundles are refused and nothing is sealed or exported to it; enroll again with a new enrollment file from central");
        }
        cli::KeysCommand::Passwd {
            new_passphrase_file,
            remove,
        } => {
            let new = Passphrase::new_from_sources(new_passphrase_file.as_deref(), remove)?;
            let site = ctx.open_read_only()?;
            let (change, anchored) = courier::actions::change_passphrase(&site, new.as_deref())?;
            out!("{}: {}", site.describe(), change.describe());
            if let courier::anchor::Anchored::Refused(problem) = anchored {
                err!("courier: warning: the sync history was not signed: {problem}; see `courier history --verify`");
            }
        }
    }
    Ok(exit::OK)
}
