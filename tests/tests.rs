//! The one integration-test binary: each module covers one area; `common` holds the harness.

mod common;

mod cli;
mod datasync;
mod enrollment;
mod envelope;
mod gnupg;
mod package;
mod results;
mod schemas;
mod vectors;
