//! `courier demo`: the main job, in a temporary folder unless --dir is given.

use courier::error::{exit, Error, Result};

use crate::cli;

pub fn demo(a: cli::DemoArgs) -> Result<u8> {
    let (dir, _keep) = match a.dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    courier::demo::run(&dir, &mut std::io::stdout())?;
    Ok(exit::OK)
}
