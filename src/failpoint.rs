//! Named points where courier writes, to prove that a failure or a crash at any of them
//! leaves a site that the next clean run brings to the state of one that never failed.
//!
//! Built only with the `failpoints` cargo feature; without it [`hit`] is an empty inline
//! function that always succeeds, so release builds carry nothing. With the feature, the
//! `COURIER_FAILPOINT` variable says what to do:
//!
//! - `list`: every point reached is printed to stderr as `courier-failpoint: NAME`, and the
//!   command runs normally (tests enumerate the points a command reaches this way, so a new
//!   point is walked without touching the test);
//! - `NAME[:error|:exit][@N]`: the `N`th time (default 1) the point `NAME` is reached, it
//!   either returns an I/O error (`error`, the default: the command unwinds as it would on a
//!   full disk) or ends the process at once with exit code [`EXIT_CODE`] (`exit`: no
//!   destructor runs, no temporary file is removed, no transaction is rolled back, as when
//!   the machine loses power or the operator kills the command).
//!
//! Points are named `area.step` (`store.commit`, `part.rename`, `import.archive`, ...);
//! the `@N` count tells apart the several times one command reaches the same point.

/// The variable that arms a failpoint or asks for the list of points reached.
pub const VARIABLE: &str = "COURIER_FAILPOINT";

/// Exit code of a process ended by an `exit` failpoint.
pub const EXIT_CODE: i32 = 86;

/// Reach the failpoint `name`: fails only when the `failpoints` feature is built and
/// `COURIER_FAILPOINT` arms this point for this hit.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &'static str) -> crate::error::Result<()> {
    Ok(())
}

#[cfg(feature = "failpoints")]
pub use armed::hit;

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use crate::error::{Error, Result};

    /// What `COURIER_FAILPOINT` asks for.
    enum Plan {
        Nothing,
        List,
        Fail { name: String, exit: bool, at: u64 },
    }

    fn plan() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        PLAN.get_or_init(|| match std::env::var(super::VARIABLE) {
            Err(_) => Plan::Nothing,
            Ok(v) if v.is_empty() => Plan::Nothing,
            Ok(v) if v == "list" => Plan::List,
            Ok(v) => parse(&v),
        })
    }

    fn parse(spec: &str) -> Plan {
        let (rest, at) = match spec.rsplit_once('@') {
            Some((r, n)) => (r, n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        let (name, exit) = match rest.rsplit_once(':') {
            Some((n, "exit")) => (n, true),
            Some((n, "error")) => (n, false),
            _ => (rest, false),
        };
        Plan::Fail {
            name: name.to_string(),
            exit,
            at,
        }
    }

    /// How many times each point was reached by this process.
    fn count(name: &'static str) -> u64 {
        static HITS: Mutex<Option<HashMap<&'static str, u64>>> = Mutex::new(None);
        let mut hits = HITS.lock().unwrap_or_else(|p| p.into_inner());
        let n = hits
            .get_or_insert_with(HashMap::new)
            .entry(name)
            .or_insert(0);
        *n += 1;
        *n
    }

    pub fn hit(name: &'static str) -> Result<()> {
        match plan() {
            Plan::Nothing => Ok(()),
            Plan::List => {
                eprintln!("courier-failpoint: {name}");
                Ok(())
            }
            Plan::Fail {
                name: armed,
                exit,
                at,
            } => {
                if armed != name || count(name) != *at {
                    return Ok(());
                }
                if *exit {
                    eprintln!("courier-failpoint: {name}@{at}: process ended here");
                    std::process::exit(super::EXIT_CODE);
                }
                Err(Error::io(
                    format!("failpoint {name}@{at}"),
                    std::io::Error::other("injected failure"),
                ))
            }
        }
    }
}
