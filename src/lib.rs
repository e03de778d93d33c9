//! courier: signed, encrypted bundle files between air-gapped TAO test centres and
//! their central server.
//!
//! The library holds every piece of logic; the binary (src/bin/courier/) only parses
//! arguments, calls the library ([`actions`] for the decisions it used to take) and prints.
//! Reading order for newcomers: [`bundle`] (the file format), [`site`] (a home folder with
//! its keys and store), [`store`] (the SQLite store behind a narrow interface), then the
//! flows: [`enroll`], [`entities`] and [`downsync`] (central → centre), [`results`] and
//! [`upsync`] (centre → central), and [`import`] which dispatches any bundle. Beneath the
//! flows: [`wire`] (the documents inside payloads), [`outcome`] (what an import did) and
//! [`fs`] (files written beside and renamed). Imports go one way only: docs/DESIGN.md.
#![forbid(unsafe_code)]

pub mod actions;
pub mod anchor;
pub mod archive;
pub mod bundle;
pub mod crypto;
pub mod demo;
pub mod downsync;
pub mod enroll;
pub mod entities;
pub mod error;
pub mod failpoint;
pub mod fs;
pub mod import;
pub mod limits;
#[cfg(feature = "postgres")]
pub mod migrate;
pub mod outcome;
pub mod package;
pub mod progress;
pub mod report;
pub mod results;
pub mod revocation;
pub mod rollover;
pub mod schema;
pub mod site;
pub mod status;
pub mod store;
pub mod tao;
pub mod text;
pub mod time;
pub mod upsync;
pub mod wire;

pub use error::{Error, Result};
