//! The main job (`courier demo`): placeholder until the flows are wired.
use crate::error::Result;
use std::path::Path;

/// Run the demo in `dir`, writing a narrative to `out`.
pub fn run(_dir: &Path, _fixtures: &Path, _out: &mut dyn std::io::Write) -> Result<()> {
    Ok(())
}
