//! The one integration-test binary: each module covers one area; `common` holds the harness.

mod common;

mod anchor;
mod archive;
mod batches;
mod central_envelope;
mod cli;
mod datasync;
mod enrollment;
mod envelope;
mod fuzzed;
mod gnupg;
mod insider;
mod keys;
mod limits;
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
