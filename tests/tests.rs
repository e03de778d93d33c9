//! The one integration-test binary: each module covers one area; `common` holds the harness.

mod common;

mod anchor;
mod archive;
mod batches;
mod central_envelope;
mod checksums;
mod cli;
mod datasync;
mod enrollment;
mod envelope;
#[cfg(feature = "failpoints")]
mod faults;
mod full_disk;
mod fuzzed;
mod gnupg;
mod insider;
mod keys;
mod limits;
mod model;
mod newcomer;
mod operator;
mod ops;
mod package;
mod postgres;
mod readme;
mod results;
mod rotation;
mod schemas;
mod scope;
mod tao;
mod vectors;
