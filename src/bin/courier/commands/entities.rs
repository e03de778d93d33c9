//! `courier load`, `remove` and `list`.

use std::collections::BTreeMap;

use courier::entities;
use courier::error::{exit, Result};

use super::Ctx;
use crate::cli;
use crate::output::{out, print_json, warn};

pub fn load(ctx: &Ctx, a: cli::LoadArgs) -> Result<u8> {
    let site = ctx.open()?;
    let opts = entities::LoadOptions {
        kind: a.kind,
        packages: a.packages,
    };
    let r = entities::load_with(&site, &a.paths, &opts)?;
    warn(&r.warnings);
    if a.json {
        print_json(&r);
    } else {
        let sum = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
        out!(
            "loaded: {} created, {} updated, {} unchanged, {} new package(s)",
            sum(&r.created),
            sum(&r.updated),
            sum(&r.unchanged),
            r.packages
        );
    }
    Ok(exit::OK)
}

pub fn remove(ctx: &Ctx, a: cli::RemoveArgs) -> Result<u8> {
    let site = ctx.open()?;
    let n = entities::remove(&site, &a.ids)?;
    out!("removed {n} entit{}", if n == 1 { "y" } else { "ies" });
    Ok(exit::OK)
}

pub fn list(ctx: &Ctx, a: cli::ListArgs) -> Result<u8> {
    let site = ctx.open()?;
    let list = entities::list(&site, &a.types, a.decrypt)?;
    if a.json {
        print_json(&list);
    } else {
        for line in entities::table(&list) {
            out!("{line}");
        }
    }
    Ok(exit::OK)
}
