//! Bounded work for untrusted JSON records (results, log batches, log rows, entities).
//!
//! A parsed `serde_json::Value` costs many times its text (`[[],[],...]`: 3 bytes of text,
//! 32 to 64 bytes of memory per element; `{"":0}`: 7 bytes of text, about 350 bytes), so a
//! size limit alone does not bound memory. Before a record is parsed, [`Scanner`] walks its
//! bytes once, building nothing, and counts what parsing would build: nesting depth, the
//! length of each string, and *value units* (one per value or member name, four more per
//! object for its map). A record within [`Limits`] parses into at most about 64 bytes per
//! unit, so the defaults bound one parsed record to about 64 MiB.
//!
//! [`Records`] splits a file (a JSON array or JSON Lines) into records while streaming, so a
//! file is never held whole; a record over a limit is skipped without being buffered.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Limits on one untrusted record, `settings.limits` in courier.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Bytes of one record's JSON text (a result, a log batch, a log row, an entity).
    pub record_bytes: u64,
    /// Nesting depth of arrays and objects.
    pub depth: u64,
    /// Bytes of one string (escapes counted as written).
    pub string_bytes: u64,
    /// Value units of one record: one per value or member name, four more per object.
    pub values: u64,
    /// Variables of one result.
    pub variables: u64,
    /// Logs of one sealed log batch.
    pub logs_per_batch: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            record_bytes: 16 << 20,
            depth: 32,
            string_bytes: 8 << 20,
            values: 1_000_000,
            variables: 20_000,
            logs_per_batch: 10_000,
        }
    }
}

impl Limits {
    /// No limit at all: for walking past values that are skipped, never kept.
    fn unbounded() -> Self {
        Limits {
            record_bytes: u64::MAX,
            depth: u64::MAX,
            string_bytes: u64::MAX,
            values: u64::MAX,
            variables: u64::MAX,
            logs_per_batch: u64::MAX,
        }
    }
}

/// Whether a file starting with `{` (at `head[0]`) is one object holding records, and how,
/// from its first member: `{}`, or a member whose value is an object and whose name is not
/// one a record starts with, or a sync request body's member. `None`: JSON Lines (or too
/// little was buffered to tell, which reads the file as JSON Lines).
pub fn object_layout(head: &[u8]) -> Option<Layout> {
    let skip_ws = |mut i: usize| {
        while head.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let start = skip_ws(1);
    match head.get(start)? {
        b'}' => return Some(Layout::Keyed),
        b'"' => {}
        _ => return None,
    }
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        let b = *head.get(i)?;
        i += 1;
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => break,
            _ => {}
        }
    }
    let name: String = serde_json::from_slice(&head[start..i]).ok()?;
    let colon = skip_ws(i);
    if head.get(colon) != Some(&b':') {
        return None;
    }
    let value = *head.get(skip_ws(colon + 1))?;
    match name.as_str() {
        BODY_RESULTS | BODY_LOGS | BODY_PARAMS if value == b'{' => Some(Layout::Body),
        n if value == b'{' && !RECORD_OBJECT_MEMBERS.contains(&n) => Some(Layout::Keyed),
        _ => None,
    }
}

/// Which limit a record broke (rendered as one line naming the setting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Breach {
    #[error("larger than {limit} bytes (settings.limits.record_bytes)")]
    RecordBytes { limit: u64 },
    #[error("nested deeper than {limit} levels (settings.limits.depth)")]
    Depth { limit: u64 },
    #[error("holds a string longer than {limit} bytes (settings.limits.string_bytes)")]
    StringBytes { limit: u64 },
    #[error("holds more than {limit} JSON values (settings.limits.values)")]
    Values { limit: u64 },
    #[error("holds {found} variables, more than {limit} (settings.limits.variables)")]
    Variables { found: u64, limit: u64 },
    #[error("holds {found} logs, more than {limit} (settings.limits.logs_per_batch)")]
    Logs { found: u64, limit: u64 },
}

/// Units of an object beyond its own: the map it allocates costs about four values.
const OBJECT_UNITS: u64 = 4;

/// A byte-level walk of JSON text that counts what parsing it would build. It checks
/// structure only as far as limits need (strings, escapes, nesting); the parser that runs
/// afterwards judges the rest.
#[derive(Debug, Clone)]
pub struct Scanner {
    limits: Limits,
    bytes: u64,
    depth: u64,
    units: u64,
    in_string: bool,
    escaped: bool,
    string_len: u64,
    in_scalar: bool,
    breach: Option<Breach>,
}

impl Scanner {
    pub fn new(limits: Limits) -> Self {
        Scanner {
            limits,
            bytes: 0,
            depth: 0,
            units: 0,
            in_string: false,
            escaped: false,
            string_len: 0,
            in_scalar: false,
            breach: None,
        }
    }

    /// The first limit broken so far, if any.
    pub fn breach(&self) -> Option<&Breach> {
        self.breach.as_ref()
    }

    /// Current nesting depth (0 between top-level values).
    pub fn depth(&self) -> u64 {
        self.depth
    }

    /// Whether the walk is inside a string.
    pub fn in_string(&self) -> bool {
        self.in_string
    }

    fn breached(&mut self, b: Breach) {
        if self.breach.is_none() {
            self.breach = Some(b);
        }
    }

    fn unit(&mut self, n: u64) {
        self.units += n;
        if self.units > self.limits.values {
            self.breached(Breach::Values {
                limit: self.limits.values,
            });
        }
    }

    /// Feed one byte. Returns false once a limit is broken (keep feeding to find the end of
    /// the record: depth and strings are still tracked).
    pub fn push(&mut self, b: u8) -> bool {
        self.bytes += 1;
        if self.bytes > self.limits.record_bytes {
            self.breached(Breach::RecordBytes {
                limit: self.limits.record_bytes,
            });
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                return self.breach.is_none();
            }
            self.string_len += 1;
            if self.string_len > self.limits.string_bytes {
                self.breached(Breach::StringBytes {
                    limit: self.limits.string_bytes,
                });
            }
            return self.breach.is_none();
        }
        let scalar = matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
        if scalar && !self.in_scalar {
            self.unit(1);
        }
        self.in_scalar = scalar;
        match b {
            b'"' => {
                self.in_string = true;
                self.string_len = 0;
                self.unit(1);
            }
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > self.limits.depth {
                    self.breached(Breach::Depth {
                        limit: self.limits.depth,
                    });
                }
                self.unit(if b == b'{' { 1 + OBJECT_UNITS } else { 1 });
            }
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        self.breach.is_none()
    }

    /// Counts the bytes at the start of `bytes` that [`Scanner::push`] would only count as
    /// the inside of a string (up to a quote, backslash or newline, and short of any limit),
    /// all at once; returns how many. Most of a result's bytes are inside strings.
    pub fn skip_string_run(&mut self, bytes: &[u8]) -> usize {
        if !self.in_string || self.escaped {
            return 0;
        }
        let to_stop = memchr::memchr3(b'"', b'\\', b'\n', bytes).unwrap_or(bytes.len());
        let room = |limit: u64, used: u64| limit.saturating_sub(used).min(usize::MAX as u64);
        let run = to_stop
            .min(room(self.limits.record_bytes, self.bytes) as usize)
            .min(room(self.limits.string_bytes, self.string_len) as usize);
        self.bytes += run as u64;
        self.string_len += run as u64;
        run
    }

    /// Feed a slice; stops at the first breach. The same walk as pushing byte by byte, with
    /// the inside of strings (most of a result's bytes) skipped in runs.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Breach> {
        self.feed_with(bytes, |_| {})
    }

    /// [`Scanner::feed`], telling `seen` of every byte pushed alone (all but the inside of
    /// string runs: the structure of the text) with the walk's state before it.
    fn feed_with(&mut self, bytes: &[u8], mut seen: impl FnMut(Pushed)) -> Result<(), Breach> {
        let mut i = 0;
        while i < bytes.len() {
            let run = self.skip_string_run(&bytes[i..]);
            if run > 0 {
                i += run;
                continue;
            }
            let (depth, in_string, escaped) = (self.depth, self.in_string, self.escaped);
            let going_on = self.push(bytes[i]);
            seen(Pushed {
                at: i,
                byte: bytes[i],
                depth,
                in_string,
                quote_closes: in_string && !escaped && !self.in_string,
            });
            if !going_on {
                break;
            }
            i += 1;
        }
        match &self.breach {
            Some(b) => Err(b.clone()),
            None => Ok(()),
        }
    }
}

/// Check a whole document against the limits without building anything.
pub fn scan(bytes: &[u8], limits: &Limits) -> Result<(), Breach> {
    Scanner::new(*limits).feed(bytes)
}

/// A byte the scanner pushed alone, with its state before the byte.
#[derive(Debug, Clone, Copy)]
struct Pushed {
    at: usize,
    byte: u8,
    depth: u64,
    in_string: bool,
    /// The byte is the quote that ends a string.
    quote_closes: bool,
}

/// Where the elements of one top-level member's array are in a document's text, found by
/// the limit scan itself (no second pass): what central stores of each variable as sent,
/// without parsing the result again to borrow them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MemberElements {
    /// Byte ranges of the array's elements, without the white space around them.
    pub spans: Vec<std::ops::Range<usize>>,
    /// How many top-level members carry the name (two are two lists, not one).
    pub members: u32,
    /// A top-level member name holds an escape, so names were not compared as parsed: the
    /// spans must not be relied on.
    pub escaped_name: bool,
}

/// The state of [`MemberElements`] while the scan walks a document.
struct ElementWalk<'n> {
    name: &'n [u8],
    found: MemberElements,
    expect_name: bool,
    name_start: Option<usize>,
    value_is_ours: bool,
    in_array: bool,
    start: Option<usize>,
}

impl ElementWalk<'_> {
    fn see(&mut self, bytes: &[u8], p: Pushed) {
        if p.in_string {
            if let Some(from) = self.name_start.take_if(|_| p.quote_closes) {
                let name = &bytes[from..p.at];
                self.found.escaped_name |= name.contains(&b'\\');
                self.value_is_ours = name == self.name;
                self.found.members += u32::from(self.value_is_ours);
            }
            return;
        }
        match (p.depth, p.byte) {
            (0, b'{') => self.expect_name = true,
            (1, b',') => (self.expect_name, self.value_is_ours) = (true, false),
            (1, b'"') if self.expect_name => {
                (self.expect_name, self.name_start) = (false, Some(p.at + 1));
            }
            (1, b'[') if self.value_is_ours => {
                (self.in_array, self.found.spans) = (true, Vec::new());
            }
            (2, b',' | b']') if self.in_array => {
                if let Some(from) = self.start.take() {
                    let text = &bytes[from..p.at];
                    let end = from + text.len()
                        - text
                            .iter()
                            .rev()
                            .take_while(|b| b.is_ascii_whitespace())
                            .count();
                    self.found.spans.push(from..end);
                }
                self.in_array = p.byte == b',';
            }
            (2, b) if self.in_array && self.start.is_none() && !b.is_ascii_whitespace() => {
                self.start = Some(p.at);
            }
            _ => {}
        }
    }
}

/// [`scan`], also finding where the elements of the top-level member `name` (an array) are.
pub fn scan_member_elements(
    bytes: &[u8],
    limits: &Limits,
    name: &str,
) -> Result<MemberElements, Breach> {
    let mut walk = ElementWalk {
        name: name.as_bytes(),
        found: MemberElements::default(),
        expect_name: false,
        name_start: None,
        value_is_ours: false,
        in_array: false,
        start: None,
    };
    Scanner::new(*limits).feed_with(bytes, |p| walk.see(bytes, p))?;
    Ok(walk.found)
}

/// Scan, then parse: the one way untrusted JSON becomes a `Value`. `Err` is a one-line
/// reason that never quotes the document.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Value, String> {
    scan(bytes, limits).map_err(|b| b.to_string())?;
    serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({})", quote(&e.to_string())))
}

/// Most characters of input (or of a message built from input) an error message carries.
pub const QUOTE_CHARS: usize = 200;

/// `text` cut to [`QUOTE_CHARS`] characters, with the cut said.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => text.to_string(),
        Some((at, _)) => format!("{}… ({} bytes in all)", &text[..at], text.len()),
    }
}

/// Call `each(location, parsed)` for every record that `reader` holds (a JSON array or JSON
/// Lines), one record at a time. A record that is not JSON or breaks a limit is passed as
/// `Err(reason)`, so the caller chooses to stop or go on; a broken array ends the input
/// after its reason was passed on. This is the one JSON Lines reader: files given to
/// `load`, `results add` and `logs add`, and the JSON Lines entries of a bundle's payload.
/// A read error of `reader` itself is turned into the caller's error by `unreadable`.
pub fn for_each_json<R: BufRead, E>(
    reader: R,
    limits: &Limits,
    unreadable: impl Fn(std::io::Error) -> E,
    mut each: impl FnMut(&str, Result<Value, String>) -> Result<(), E>,
) -> Result<(), E> {
    let mut records = Records::new(reader, *limits);
    while let Some((loc, split)) = records.next_record().map_err(&unreadable)? {
        each(&loc, parse_split(split))?;
    }
    Ok(())
}

/// A split record parsed, or why it cannot be (not JSON, over a limit, a broken file).
pub fn parse_split(split: Split) -> Result<Value, String> {
    match split {
        Split::Record(bytes) => serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| format!("not JSON ({})", quote(&e.to_string()))),
        Split::OverLimit(breach) => Err(format!("record {breach}")),
        Split::Broken(what) => Err(what),
    }
}

/// One record read from a file, or why it could not be: a limit (record skipped, the file
/// read on), or a broken structure (the rest of the file cannot be split).
#[derive(Debug)]
pub enum Split {
    Record(Vec<u8>),
    OverLimit(Breach),
    Broken(String),
}

/// Records of a JSON array or JSON Lines file, streamed: `(location, record)` with locations
/// `#N` (array) or `line N`. Only one record is held at a time, and none over the limits.
pub struct Records<R> {
    reader: R,
    limits: Limits,
    mode: Option<Mode>,
    n: u64,
    line: u64,
    done: bool,
    pending: Option<(String, Split)>,
    /// Open containers of an object file (Mode::Object), outermost first.
    stack: Vec<Frame>,
    /// The key of the last record read from an object file (its member name).
    key: Option<String>,
}

/// How a file holds its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A JSON array of records.
    Array,
    /// JSON Lines: one record per line.
    Lines,
    /// One JSON object whose members hold the records (see [`Layout`]).
    Object(Layout),
}

/// Where the records of an object file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every member's value is a record: `{"<uri>": {...}, ...}` (TAO's entity details,
    /// keyed by entity URI).
    Keyed,
    /// TAO's sync request bodies: `{"results": {"<execution id>": result, ...},
    /// "sync_params": {...}}` and `{"delivery_logs": {"<execution id>": [log, ...], ...},
    /// "sync_params": {...}}`. Other members (`sync_params`) are skipped.
    Body,
}

/// Top-level members of a sync request body that hold records.
pub const BODY_RESULTS: &str = "results";
pub const BODY_LOGS: &str = "delivery_logs";
pub const BODY_PARAMS: &str = "sync_params";

/// Member names a record itself may start with whose value is an object: a file starting
/// with one of them is JSON Lines, not an object of records.
const RECORD_OBJECT_MEMBERS: [&str; 3] = ["properties", "details", "data"];

/// One open container while walking an object file.
#[derive(Debug)]
struct Frame {
    array: bool,
    /// Members or elements read so far.
    count: u64,
    /// A value was read: a separator or the closing bracket comes next.
    after_value: bool,
    /// The member name under which this container sits (None for the top object).
    key: Option<String>,
}

/// What the walk does with the value at hand.
enum Role {
    Record,
    Descend { array: bool },
    Skip,
}

/// Where one step of [`Records::next_member`] leaves the walk.
enum Step {
    /// A value comes next.
    Value,
    /// Go round again: a bracket closed, a separator or a skipped value was passed, or a
    /// container of records was entered.
    Again,
    /// What `next_member` returns: a record, a broken file, or the end (`None`).
    Done(Option<(String, Split)>),
}

impl<R: BufRead> Records<R> {
    pub fn new(reader: R, limits: Limits) -> Self {
        Records {
            reader,
            limits,
            mode: None,
            n: 0,
            line: 1,
            done: false,
            pending: None,
            stack: Vec::new(),
            key: None,
        }
    }

    /// How the file holds its records, once the first record was asked for.
    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    /// The member name of the last record of an object file: an entity's URI, or the
    /// execution id under which a request body files a result or a log.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Skip whitespace; the next byte, not consumed.
    fn peek_non_ws(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let b = buf[i];
                    self.line += buf[..i].iter().filter(|&&c| c == b'\n').count() as u64;
                    self.reader.consume(i);
                    return Ok(Some(b));
                }
                None => {
                    let n = buf.len();
                    self.line += buf.iter().filter(|&&c| c == b'\n').count() as u64;
                    self.reader.consume(n);
                }
            }
        }
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> std::io::Result<Option<(String, Split)>> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        if self.done {
            return Ok(None);
        }
        let mode = match self.mode {
            Some(m) => m,
            None => match self.peek_non_ws()? {
                None => {
                    self.done = true;
                    return Ok(None);
                }
                Some(b'[') => {
                    self.reader.consume(1);
                    self.mode = Some(Mode::Array);
                    Mode::Array
                }
                Some(b'{') => {
                    let mode = match object_layout(self.reader.fill_buf()?) {
                        Some(layout) => {
                            self.reader.consume(1);
                            self.stack.push(Frame {
                                array: false,
                                count: 0,
                                after_value: false,
                                key: None,
                            });
                            Mode::Object(layout)
                        }
                        None => Mode::Lines,
                    };
                    self.mode = Some(mode);
                    mode
                }
                Some(_) => {
                    self.mode = Some(Mode::Lines);
                    Mode::Lines
                }
            },
        };
        match mode {
            Mode::Lines => self.next_line(),
            Mode::Array => self.next_element(),
            Mode::Object(layout) => self.next_member(layout),
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<(String, Split)>> {
        loop {
            let at = self.line;
            let mut scanner = Scanner::new(self.limits);
            let mut record = Vec::new();
            let mut any = false;
            let mut eof = true;
            loop {
                let buf = self.reader.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                let (chunk, newline) = match memchr::memchr(b'\n', buf) {
                    Some(i) => (&buf[..i], true),
                    None => (buf, false),
                };
                any |= chunk.iter().any(|b| !b.is_ascii_whitespace());
                if scanner.breach().is_none() && scanner.feed(chunk).is_ok() {
                    record.extend_from_slice(chunk);
                } else {
                    record = Vec::new();
                }
                let n = chunk.len() + usize::from(newline);
                self.reader.consume(n);
                if newline {
                    eof = false;
                    self.line += 1;
                    break;
                }
            }
            if !any {
                if eof {
                    self.done = true;
                    return Ok(None);
                }
                continue; // a blank line
            }
            let loc = format!("line {at}");
            return Ok(Some(match scanner.breach() {
                Some(b) => (loc, Split::OverLimit(b.clone())),
                None => (loc, Split::Record(record)),
            }));
        }
    }

    fn next_element(&mut self) -> std::io::Result<Option<(String, Split)>> {
        let first = self.peek_non_ws()?;
        let loc = format!("#{} (line {})", self.n + 1, self.line);
        match first {
            None => return self.broken(loc, "array", "the file ends before its closing ']'"),
            Some(b']') if self.n == 0 => {
                self.reader.consume(1);
                return self.finish_top("]");
            }
            _ => {}
        }
        self.n += 1;
        let Some((split, end)) = self.capture(true)? else {
            return self.broken(loc, "array", "the file ends inside a record");
        };
        self.reader.consume(1);
        if end == b']' {
            // Text after the closing bracket is reported after this element.
            self.pending = self.finish_top("]")?;
        } else if end == b'}' {
            return self.broken(loc, "array", "a '}' where a ',' or ']' belongs");
        }
        Ok(Some((loc, split)))
    }

    /// The structure is broken: say so at `loc`, and read no further.
    fn broken(
        &mut self,
        loc: String,
        what: &str,
        why: &str,
    ) -> std::io::Result<Option<(String, Split)>> {
        self.done = true;
        Ok(Some((
            loc,
            Split::Broken(format!("not a JSON {what} ({why})")),
        )))
    }

    /// Read one value up to (not including) the `,`, `]` or `}` that ends it, keeping its
    /// bytes when `keep` and it is within the limits. `None` when the file ends first.
    fn capture(&mut self, keep: bool) -> std::io::Result<Option<(Split, u8)>> {
        let mut scanner = Scanner::new(if keep {
            self.limits
        } else {
            Limits::unbounded()
        });
        let mut record = Vec::new();
        let mut over = false;
        let end = loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let mut used = 0;
            let mut end = None;
            while used < buf.len() {
                let run = scanner.skip_string_run(&buf[used..]);
                if run > 0 {
                    if keep && !over {
                        record.extend_from_slice(&buf[used..used + run]);
                    }
                    used += run;
                    continue;
                }
                let b = buf[used];
                if scanner.depth() == 0 && !scanner.in_string() && matches!(b, b',' | b']' | b'}') {
                    end = Some(b);
                    break;
                }
                used += 1;
                if b == b'\n' {
                    self.line += 1;
                }
                if !scanner.push(b) && !over {
                    over = true;
                    record = Vec::new();
                }
                if keep && !over {
                    record.push(b);
                }
            }
            self.reader.consume(used);
            if let Some(b) = end {
                break b;
            }
        };
        let split = match scanner.breach() {
            Some(b) => Split::OverLimit(b.clone()),
            None => Split::Record(record),
        };
        Ok(Some((split, end)))
    }

    /// Read a member name (a JSON string) and the `:` after it.
    fn member_name(&mut self) -> std::io::Result<std::result::Result<String, String>> {
        let mut text = Vec::new();
        let mut escaped = false;
        'outer: loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(Err("the file ends inside a member name".into()));
            }
            let mut used = 0;
            for &b in buf {
                used += 1;
                let first = text.is_empty();
                text.push(b);
                if first {
                    if b != b'"' {
                        self.reader.consume(used);
                        return Ok(Err("a member name must be a string".into()));
                    }
                } else if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    self.reader.consume(used);
                    break 'outer;
                }
                if text.len() as u64 > self.limits.string_bytes {
                    self.reader.consume(used);
                    return Ok(Err(format!(
                        "a member name longer than {} bytes (settings.limits.string_bytes)",
                        self.limits.string_bytes
                    )));
                }
            }
            self.reader.consume(used);
        }
        let name: String = match serde_json::from_slice(&text) {
            Ok(n) => n,
            Err(e) => return Ok(Err(format!("bad member name ({})", quote(&e.to_string())))),
        };
        if self.peek_non_ws()? != Some(b':') {
            return Ok(Err(format!("no ':' after member {}", quote(&name))));
        }
        self.reader.consume(1);
        Ok(Ok(name))
    }

    /// What to do with a value found in the innermost open container.
    fn role(&self, layout: Layout) -> Role {
        let top_key = self.stack.get(1).and_then(|f| f.key.as_deref());
        match (layout, self.stack.len()) {
            (Layout::Keyed, 1) => Role::Record,
            (Layout::Body, 1) => match self.key.as_deref() {
                Some(BODY_RESULTS | BODY_LOGS) => Role::Descend { array: false },
                _ => Role::Skip,
            },
            (Layout::Body, 2) if top_key == Some(BODY_RESULTS) => Role::Record,
            (Layout::Body, 2) if top_key == Some(BODY_LOGS) => Role::Descend { array: true },
            (Layout::Body, 3) => Role::Record,
            _ => Role::Skip,
        }
    }

    /// Where the value at hand is, for messages: member names from the top, `#N` for an
    /// array element, and the line.
    fn location(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for f in self.stack.iter().skip(1) {
            if let Some(k) = &f.key {
                parts.push(format!("{:?}", quote(k)));
            }
        }
        if let Some(f) = self.stack.last() {
            if f.array {
                parts.push(format!("#{}", f.count));
            } else if let Some(k) = &self.key {
                parts.push(format!("{:?}", quote(k)));
            }
        }
        format!("{} (line {})", parts.join(" "), self.line)
    }

    /// The next record of an object file: step over brackets and separators, start each value
    /// (its member name) and take it as the layout says.
    fn next_member(&mut self, layout: Layout) -> std::io::Result<Option<(String, Split)>> {
        loop {
            let Some(frame) = self.stack.last() else {
                return Ok(None);
            };
            let array = frame.array;
            let what = if array { "array" } else { "object" };
            let step = match self.between_values(array, what)? {
                Step::Value => match self.start_value(array, what)? {
                    Step::Value => self.take_value(layout, array, what)?,
                    other => other,
                },
                other => other,
            };
            if let Step::Done(found) = step {
                return Ok(found);
            }
        }
    }

    /// Between values of the innermost container (`what`): a closing bracket ends it (and,
    /// at the top, the file), a ',' separates; `Value` when a value comes next.
    fn between_values(&mut self, array: bool, what: &str) -> std::io::Result<Step> {
        let frame = self.stack.last().expect("open");
        let (after_value, count) = (frame.after_value, frame.count);
        let close = if array { b']' } else { b'}' };
        let Some(b) = self.peek_non_ws()? else {
            let loc = format!("line {}", self.line);
            return self.stop(loc, "object", "the file ends before its closing '}'");
        };
        if b == close && (after_value || count == 0) {
            self.reader.consume(1);
            self.stack.pop();
            return match self.stack.last_mut() {
                Some(parent) => {
                    parent.after_value = true;
                    Ok(Step::Again)
                }
                None => Ok(Step::Done(self.finish_top("}")?)),
            };
        }
        if !after_value {
            return Ok(Step::Value);
        }
        if b != b',' {
            let loc = format!("line {}", self.line);
            return self.stop(loc, what, "a ',' or closing bracket is missing");
        }
        self.reader.consume(1);
        self.stack.last_mut().expect("open").after_value = false;
        Ok(Step::Again)
    }

    /// The start of a value in the innermost container (`what`): its member name in an
    /// object, counted; the file must go on.
    fn start_value(&mut self, array: bool, what: &str) -> std::io::Result<Step> {
        if !array {
            match self.member_name()? {
                Ok(name) => self.key = Some(name),
                Err(why) => {
                    let loc = format!("line {}", self.line);
                    return self.stop(loc, "object", &why);
                }
            }
        }
        let frame = self.stack.last_mut().expect("open");
        frame.count += 1;
        frame.after_value = true;
        if self.peek_non_ws()?.is_none() {
            let loc = self.location();
            return self.stop(loc, what, "the file ends inside a record");
        }
        Ok(Step::Value)
    }

    /// The value at hand, as the layout says: a record to return, a container of records to
    /// enter, or something to skip.
    fn take_value(&mut self, layout: Layout, array: bool, what: &str) -> std::io::Result<Step> {
        let loc = self.location();
        match self.role(layout) {
            Role::Record => {
                let Some((split, _)) = self.capture(true)? else {
                    return self.stop(loc, what, "the file ends inside a record");
                };
                if array {
                    self.key = self.stack.last().and_then(|f| f.key.clone());
                }
                Ok(Step::Done(Some((loc, split))))
            }
            Role::Descend { array: inner } => {
                let open = if inner { b'[' } else { b'{' };
                if self.peek_non_ws()? != Some(open) {
                    let expected = if inner { "an array" } else { "an object" };
                    let why = format!("this member must be {expected} of records");
                    return self.stop(loc, "sync request body", &why);
                }
                self.reader.consume(1);
                let key = self.key.take();
                self.stack.push(Frame {
                    array: inner,
                    count: 0,
                    after_value: false,
                    key,
                });
                Ok(Step::Again)
            }
            Role::Skip => {
                if self.capture(false)?.is_none() {
                    return self.stop(loc, what, "the file ends inside a value");
                }
                Ok(Step::Again)
            }
        }
    }

    /// [`Records::broken`] as the last step of [`Records::next_member`].
    fn stop(&mut self, loc: String, what: &str, why: &str) -> std::io::Result<Step> {
        Ok(Step::Done(self.broken(loc, what, why)?))
    }

    /// After the closing bracket of the top-level value only whitespace may follow.
    fn finish_top(&mut self, bracket: &str) -> std::io::Result<Option<(String, Split)>> {
        self.done = true;
        let what = if bracket == "]" { "array" } else { "object" };
        match self.peek_non_ws()? {
            None => Ok(None),
            Some(_) => Ok(Some((
                format!("line {}", self.line),
                Split::Broken(format!(
                    "not a JSON {what} (text after its closing '{bracket}')"
                )),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            record_bytes: 100,
            depth: 3,
            string_bytes: 10,
            values: 20,
            variables: 5,
            logs_per_batch: 5,
        }
    }

    #[test]
    fn an_ordinary_record_passes() {
        let doc = br#"{"a":[1,2,{"b":"text"}],"c":null,"d":-1.5e3}"#;
        assert_eq!(scan(doc, &small()), Ok(()));
        assert!(parse(doc, &small()).is_ok());
    }

    #[test]
    fn each_limit_is_named_when_broken() {
        let l = small();
        assert_eq!(
            scan(&[b' '; 101], &l),
            Err(Breach::RecordBytes { limit: 100 })
        );
        assert_eq!(scan(b"[[[[]]]]", &l), Err(Breach::Depth { limit: 3 }));
        assert_eq!(
            scan(br#"["12345678901"]"#, &l),
            Err(Breach::StringBytes { limit: 10 })
        );
        assert_eq!(
            scan(
                &b"[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]"[..],
                &l
            ),
            Err(Breach::Values { limit: 20 })
        );
    }

    #[test]
    fn values_count_what_parsing_builds() {
        let l = Limits {
            values: 1000,
            ..small()
        };
        let mut s = Scanner::new(Limits {
            record_bytes: u64::MAX,
            ..l
        });
        s.feed(br#"[[],{},"x",12.5,true,{"k":null}]"#).unwrap();
        // outer 1, [] 1, {} 5, "x" 1, 12.5 1, true 1, {"k":null}: 5 + 1 + 1
        assert_eq!(s.units, 17);
    }

    #[test]
    fn quotes_and_escapes_inside_strings_do_not_count_as_structure() {
        let l = Limits {
            string_bytes: 100,
            ..small()
        };
        assert_eq!(scan(br#"["[[[[\"{{{{"]"#, &l), Ok(()));
    }

    #[test]
    fn member_elements_are_the_texts_a_json_parser_borrows() {
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            variables: Vec<&'a serde_json::value::RawValue>,
        }
        let docs = [
            r#"{"variables":[]}"#,
            r#"{"a":{"variables":[9]},"variables":[1, "x,]\"y" ,{"k":[1,2]},[[]], null ]}"#,
            "{ \"b\" : [1,{\"variables\":2}],\n \"variables\" :\n[ {\"c\":\"]\"}\n,\t-1.5e3\n] , \"z\":[3]}",
        ];
        for doc in docs {
            let deep_enough = Limits {
                depth: 10,
                ..roomy()
            };
            let found = scan_member_elements(doc.as_bytes(), &deep_enough, "variables").unwrap();
            let raw: Raw<'_> = serde_json::from_str(doc).unwrap();
            let spans: Vec<&str> = found.spans.iter().map(|r| &doc[r.clone()]).collect();
            let parsed: Vec<&str> = raw.variables.iter().map(|r| r.get()).collect();
            assert_eq!(spans, parsed, "{doc}");
            assert_eq!((found.members, found.escaped_name), (1, false), "{doc}");
        }
        let twice = scan_member_elements(
            br#"{"variables":[1],"variables":[2,3]}"#,
            &roomy(),
            "variables",
        );
        assert_eq!(twice.map(|f| (f.members, f.spans.len())), Ok((2, 2)));
        let escaped = scan_member_elements(br#"{"variabl\u0065s":[1]}"#, &roomy(), "variables");
        assert!(escaped.unwrap().escaped_name);
        let deep = scan_member_elements(b"[[[[1]]]]", &small(), "variables");
        assert_eq!(deep, Err(scan(b"[[[[1]]]]", &small()).unwrap_err()));
    }

    #[test]
    fn feeding_a_slice_walks_as_pushing_byte_by_byte() {
        let texts = [
            r#"{"a":"xyz\"q\\","b":[1,2,{"c":"a rather long string, over ten"}]}"#,
            "\"a string left open, with \\\" and a\nnewline",
            r#"["0123456789","01234567890"]"#,
        ];
        let limits = [
            small(),
            roomy(),
            Limits {
                record_bytes: 20,
                ..roomy()
            },
            Limits {
                string_bytes: 30,
                record_bytes: 30,
                ..roomy()
            },
        ];
        for l in limits {
            for t in texts {
                let mut fed = Scanner::new(l);
                let got = fed.feed(t.as_bytes()).err();
                let mut pushed = Scanner::new(l);
                let _ = t.bytes().take_while(|&b| pushed.push(b)).count();
                assert_eq!(got, pushed.breach().cloned(), "{t} with {l:?}");
                let state = |s: &Scanner| (s.bytes, s.depth, s.units, s.in_string, s.string_len);
                assert_eq!(state(&fed), state(&pushed), "{t} with {l:?}");
            }
        }
    }

    #[test]
    fn a_message_quotes_at_most_200_characters() {
        let long = "x".repeat(10_000);
        let q = quote(&long);
        assert!(q.chars().count() < QUOTE_CHARS + 40, "{q}");
        assert!(q.contains("10000 bytes in all"));
        assert_eq!(quote("short"), "short");
        let wide = "é".repeat(500);
        assert!(quote(&wide).starts_with(&"é".repeat(200)));
    }

    /// Limits that let the small records of these tests through.
    fn roomy() -> Limits {
        Limits {
            record_bytes: 1000,
            string_bytes: 100,
            values: 100,
            ..small()
        }
    }

    fn split(text: &str, limits: Limits) -> Vec<(String, String)> {
        let mut r = Records::new(text.as_bytes(), limits);
        let mut out = vec![];
        while let Some((loc, s)) = r.next_record().unwrap() {
            out.push((
                loc,
                match s {
                    Split::Record(b) => String::from_utf8(b).unwrap(),
                    Split::OverLimit(b) => format!("over: {b}"),
                    Split::Broken(w) => format!("broken: {w}"),
                },
            ));
        }
        out
    }

    #[test]
    fn an_array_is_split_into_its_elements() {
        let got = split("  [ {\"a\":\"x,]\"} ,\n[1,2], 3 ]\n", small());
        let texts: Vec<&str> = got.iter().map(|(_, t)| t.trim()).collect();
        assert_eq!(texts, [r#"{"a":"x,]"}"#, "[1,2]", "3"]);
        assert_eq!(got[1].0, "#2 (line 2)");
        assert!(split("[]", small()).is_empty());
        assert!(split("", small()).is_empty());
    }

    #[test]
    fn json_lines_are_split_by_line_and_blank_lines_skipped() {
        let got = split("{\"a\":1}\n\n  \n[2]\n", small());
        assert_eq!(
            got,
            [
                ("line 1".to_string(), "{\"a\":1}".to_string()),
                ("line 4".to_string(), "[2]".to_string())
            ]
        );
    }

    #[test]
    fn a_record_over_a_limit_is_skipped_and_the_next_one_read() {
        let text = format!("[\"{}\", [[[[[]]]]], 7]", "y".repeat(50));
        let got = split(&text, small());
        assert_eq!(got.len(), 3);
        assert!(got[0].1.starts_with("over: holds a string longer"));
        assert!(got[1].1.starts_with("over: nested deeper"));
        assert_eq!(got[2].1.trim(), "7");
        let lines = format!("{}\n1\n", "9".repeat(200));
        let got = split(&lines, small());
        assert!(got[0].1.starts_with("over: larger than 100 bytes"));
        assert_eq!(got[1], ("line 2".to_string(), "1".to_string()));
    }

    #[test]
    fn a_broken_array_is_reported_and_ends_the_file() {
        let got = split("[1, 2", small());
        assert_eq!(
            got.last().unwrap().1,
            "broken: not a JSON array (the file ends inside a record)"
        );
        let got = split("[1] x", small());
        assert!(got.last().unwrap().1.contains("text after its closing"));
        let got = split("[1,", small());
        assert!(got.last().unwrap().1.contains("ends before its closing"));
    }

    #[test]
    fn an_object_keyed_by_uri_is_split_into_its_members() {
        let text =
            "{\n \"u#1\": {\"id\":\"u#1\",\"p\":{\"k\":\"}\"}},\n \"u#2\": {\"id\":\"u#2\"}\n}\n";
        let mut r = Records::new(text.as_bytes(), roomy());
        let mut keys = vec![];
        let mut texts = vec![];
        while let Some((loc, s)) = r.next_record().unwrap() {
            keys.push((loc, r.key().unwrap().to_string()));
            match s {
                Split::Record(b) => texts.push(String::from_utf8(b).unwrap().trim().to_string()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(r.mode(), Some(Mode::Object(Layout::Keyed)));
        assert_eq!(texts, [r#"{"id":"u#1","p":{"k":"}"}}"#, r#"{"id":"u#2"}"#]);
        assert_eq!(keys[1], ("\"u#2\" (line 3)".to_string(), "u#2".to_string()));
        assert!(split("{}", small()).is_empty());
    }

    #[test]
    fn a_request_body_yields_the_records_it_wraps() {
        let l = roomy();
        let body = r#"{"sync_params":{"a":[1,{"b":2}]},"results":{"e1":{"x":1},"e2":{"x":2}}}"#;
        let got = split(body, l);
        assert_eq!(
            got.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
            [r#"{"x":1}"#, r#"{"x":2}"#]
        );
        assert_eq!(got[1].0, "\"results\" \"e2\" (line 1)");
        let logs = r#"{"delivery_logs":{"e1":[{"n":1},{"n":2}],"e2":[]},"sync_params":{}}"#;
        let mut r = Records::new(logs.as_bytes(), l);
        let mut seen = vec![];
        while let Some((loc, _)) = r.next_record().unwrap() {
            seen.push((loc, r.key().unwrap().to_string()));
        }
        assert_eq!(
            seen,
            [
                (
                    "\"delivery_logs\" \"e1\" #1 (line 1)".to_string(),
                    "e1".to_string()
                ),
                (
                    "\"delivery_logs\" \"e1\" #2 (line 1)".to_string(),
                    "e1".to_string()
                )
            ]
        );
    }

    #[test]
    fn json_lines_starting_with_an_object_member_stay_json_lines() {
        let got = split(
            "{\"properties\":{},\"type\":\"x\"}\n{\"a\":\"b\"}\n",
            roomy(),
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "line 1");
    }

    #[test]
    fn a_broken_object_is_reported_and_ends_the_file() {
        for (text, says) in [
            (r#"{"a":{"x":1},}"#, "a member name must be a string"),
            (r#"{"results":{"e":{}} "x":1}"#, "',' or closing bracket"),
            (r#"{"a":{"x":1}"#, "not a JSON object (the file ends"),
            (r#"{"a":{"x":1}} x"#, "text after its closing '}'"),
            (
                r#"{"results":{},"delivery_logs":{"e":{}}}"#,
                "must be an array of records",
            ),
        ] {
            let got = split(text, roomy());
            assert!(got.last().unwrap().1.contains(says), "{text}: {got:?}");
        }
        let over = split(
            &format!(r#"{{"a":{{"x":"{}"}},"b":{{}}}}"#, "y".repeat(50)),
            small(),
        );
        assert!(
            over[0].1.starts_with("over: holds a string longer"),
            "{over:?}"
        );
        assert_eq!(over[1].1, "{}");
    }
}
