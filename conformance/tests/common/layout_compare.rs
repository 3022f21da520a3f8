//! mig-rs's IR message layouts against GNU MIG's, shared by `tests/layout.rs` (the
//! gnumach-dev corpus and mig-rs's own golden `.defs`) and `tests/own_defs.rs` (our `defs/`
//! against GNU Mach's files).
//!
//! Expected values come only from GNU MIG: its `Request`/`Reply` structs, templates and
//! receiver checks as the oracle's probe reports them, and the shift constants of fields
//! after variable-size ones, read from its C.
//!
//! Offsets: GNU MIG's structs hold variable arrays at their maximum size, and its stubs
//! reach a field after variable ones at `offsetof(field) - Σ N + Σ actual sizes`, where `N`
//! is the constant of the `In%dP = (Request *)((char *)In%dP + msgh_size_delta - N)` (or
//! `OutP = …`) line after each variable field. mig-rs's IR gives offsets with every
//! preceding variable field empty, so `IR offset == offsetof(field) - Σ N`.

use std::collections::BTreeMap;

use mig_conformance::{
    CheckItem, ComplexBit, DescAttr, DescriptorCheck, FieldKind, RoutineLayout, SizeCheck, Template,
};
use mig_rs::ir::{ArgKind, Complexity, MessageLayout, Routine, Subsystem};
use mig_runtime::wire::TypeDesc;

/// Marks differences that come from GNU MIG's C structs (`offsetof`/`sizeof`) rather than
/// from its size arithmetic, templates and checks.
pub const STRUCT: &str = "[struct] ";

/// A message for which GNU MIG's C structs disagree with GNU MIG's own size arithmetic
/// (its receivers' `msgh_size` checks and shift constants), i.e. a GNU MIG bug: for it,
/// struct-derived differences ([`STRUCT`]) are expected (and must occur), everything else
/// must match. (file, routine, message, explanation)
pub type StructBug = (&'static str, &'static str, &'static str, &'static str);

/// What the comparison covered.
#[derive(Default, Debug)]
pub struct Stats {
    pub fields: usize,
    pub shifted_fields: usize,
    pub variable_fields: usize,
    pub quick_checks: usize,
    pub field_checks: usize,
    pub check_items: usize,
    pub templates: usize,
}

/// Compares routines' messages one after the other and keeps the count.
pub struct LayoutComparison {
    /// GNU MIG struct bugs that are expected (empty: none).
    struct_bugs: &'static [StructBug],
    /// Messages compared.
    pub messages: usize,
    /// Messages without differences (after the expected struct bugs).
    pub identical: usize,
    pub stats: Stats,
    /// The expected struct bugs met, "WHAT MESSAGE: explanation".
    pub known: Vec<String>,
}

impl LayoutComparison {
    pub fn new(struct_bugs: &'static [StructBug]) -> Self {
        LayoutComparison {
            struct_bugs,
            messages: 0,
            identical: 0,
            stats: Stats::default(),
            known: Vec::new(),
        }
    }

    /// Compares the request and (if any) reply of `r` with GNU MIG's layouts `gnu`;
    /// `server` and `user` are GNU MIG's server and user stubs of the routine (for the shift
    /// constants). `what` is "FILE [defines] ROUTINE". Differences go to `problems`.
    #[allow(clippy::too_many_arguments)]
    pub fn routine(
        &mut self,
        what: &str,
        sub: &Subsystem,
        r: &Routine,
        gnu: &RoutineLayout,
        server: &str,
        user: &str,
        problems: &mut Vec<String>,
    ) {
        let (server, user) = (shifts_in(server), shifts_in(user));
        let req = format!("{what} request");
        let req_shifts = merge(&req, &user.request, &server.request, problems);
        let d = compare_message(
            &req,
            sub,
            r,
            &r.request,
            &gnu.request,
            &req_shifts,
            ArgKind::REQUEST_QC,
            &mut self.stats,
        );
        self.count(what, "request", d, problems);
        match &gnu.reply {
            Some(reply) => {
                let rep = format!("{what} reply");
                let rep_shifts = merge(&rep, &server.reply, &user.reply, problems);
                let d = compare_message(
                    &rep,
                    sub,
                    r,
                    &r.reply,
                    reply,
                    &rep_shifts,
                    ArgKind::REPLY_QC,
                    &mut self.stats,
                );
                self.count(what, "reply", d, problems);
            }
            None if !r.is_simple() => problems.push(format!("{what}: GNU MIG has no reply")),
            None => {}
        }
    }

    /// Counts one message with its differences `d` and moves them to `problems`.
    fn count(&mut self, what: &str, message: &str, mut d: Vec<String>, problems: &mut Vec<String>) {
        self.messages += 1;
        if self.known_bug(what, message, &mut d, problems) {
            self.identical += 1;
        }
        problems.append(&mut d);
    }

    /// Applies the expected struct bugs to the differences `d` of one message (`what` is
    /// "FILE [defines] ROUTINE"). Returns whether the message counts as identical.
    fn known_bug(
        &mut self,
        what: &str,
        message: &str,
        d: &mut Vec<String>,
        problems: &mut Vec<String>,
    ) -> bool {
        let file = what.split(' ').next().unwrap_or("");
        let routine = what.rsplit(' ').next().unwrap_or("");
        let entry = self
            .struct_bugs
            .iter()
            .find(|(f, r, m, _)| file.ends_with(f) && *r == routine && *m == message);
        let Some((_, _, _, why)) = entry else {
            return d.is_empty();
        };
        let before = d.len();
        d.retain(|x| !x.contains(STRUCT));
        if d.len() == before {
            problems.push(format!(
                "{what} {message}: listed as a GNU MIG struct bug, but GNU MIG's structs now agree"
            ));
        }
        self.known.push(format!("{what} {message}: {why}"));
        d.is_empty()
    }
}

/// The shift constants of one stub's C function, per struct type, in order.
#[derive(Default, Debug)]
pub struct Shifts {
    pub request: Vec<u64>,
    pub reply: Vec<u64>,
}

/// Finds every `X = (Request *) ((char *) Y + msgh_size_delta - N);` (and `Reply`) in `body`.
pub fn shifts_in(body: &str) -> Shifts {
    let mut s = Shifts::default();
    let marker = "+ msgh_size_delta - ";
    for line in body.lines() {
        let Some(at) = line.find(marker) else {
            continue;
        };
        let digits: String = line[at + marker.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let Ok(n) = digits.parse::<u64>() else {
            continue;
        };
        if line.contains("(Request *)") {
            s.request.push(n);
        } else if line.contains("(Reply *)") {
            s.reply.push(n);
        }
    }
    s
}

/// GNU MIG's `Server.c` split into `_X<name>` function bodies, by routine name.
pub fn server_functions(text: &str) -> BTreeMap<String, String> {
    split_functions(text, "mig_internal void _X")
        .into_iter()
        .collect()
}

/// GNU MIG's `User.c` split into its user stubs (name, body), in order: one per routine,
/// in `-list` order (the names carry any `UserPrefix`).
pub fn user_functions(text: &str) -> Vec<(String, String)> {
    split_functions(text, "\nmig_external kern_return_t ")
}

/// The pieces of `text` from each `marker` to the next, named by the identifier after
/// the marker, in order.
fn split_functions(text: &str, marker: &str) -> Vec<(String, String)> {
    let starts: Vec<usize> = text.match_indices(marker).map(|(i, _)| i).collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let end = starts.get(k + 1).copied().unwrap_or(text.len());
            let chunk = &text[i + marker.len()..end];
            let name: String = chunk
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (name, chunk.to_string())
        })
        .collect()
}

/// The constants of one message: sender's and receiver's must agree where both exist.
fn merge(what: &str, a: &[u64], b: &[u64], problems: &mut Vec<String>) -> Vec<u64> {
    let n = a.len().min(b.len());
    if a[..n] != b[..n] {
        problems.push(format!(
            "{what}: GNU MIG's sender and receiver shift constants differ: {a:?} vs {b:?}"
        ));
    }
    if a.len() >= b.len() {
        a.to_vec()
    } else {
        b.to_vec()
    }
}

fn complex_bit(c: Complexity) -> ComplexBit {
    match (c.fixed, c.simple) {
        (true, true) => ComplexBit::Clear,
        (true, false) => ComplexBit::Set,
        (false, _) => ComplexBit::Dynamic,
    }
}

/// Compares one message of mig-rs's IR with GNU MIG's layout; returns the differences,
/// prefixed with `what` (and [`STRUCT`] where they come from GNU MIG's C structs).
#[allow(clippy::too_many_arguments)]
fn compare_message(
    what: &str,
    sub: &Subsystem,
    r: &Routine,
    ir: &MessageLayout,
    gnu: &mig_conformance::MessageLayout,
    shifts: &[u64],
    qc_bit: u32,
    stats: &mut Stats,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |s: String| out.push(format!("{what}: {s}"));
    // Sizes.
    let kind = if ir.is_fixed() { "exactly" } else { "at least" };
    match gnu.size_check {
        SizeCheck::Exact(n) => {
            if !ir.is_fixed() || u64::from(ir.min_size) != n {
                diff(format!(
                    "size: GNU MIG exactly {n}, mig-rs {kind} {}",
                    ir.min_size
                ));
            }
        }
        SizeCheck::Min(n) => {
            if ir.is_fixed() || u64::from(ir.min_size) != n {
                diff(format!(
                    "size: GNU MIG at least {n}, mig-rs {kind} {}",
                    ir.min_size
                ));
            }
        }
    }
    if u64::from(ir.max_size) != gnu.layout.size {
        diff(format!(
            "{STRUCT}maximum size: GNU MIG sizeof {}, mig-rs {}",
            gnu.layout.size, ir.max_size
        ));
    }
    if let Some(n) = gnu.sender_fixed_size {
        if u64::from(ir.min_size) != n || !ir.is_fixed() {
            diff(format!("sender size: GNU MIG {n}, mig-rs {}", ir.min_size));
        }
    }
    let shift_count = shifts.len();
    if ir.num_var as usize > shift_count + 1 {
        diff(format!(
            "{} variable fields in mig-rs, GNU MIG shifts after {shift_count}",
            ir.num_var
        ));
    }
    // Complexity.
    if complex_bit(ir.check) != gnu.complex_check {
        diff(format!(
            "receiver complex check: GNU MIG {:?}, mig-rs {:?}",
            gnu.complex_check, ir.check
        ));
    }
    if complex_bit(ir.send) != gnu.sender_complex {
        diff(format!(
            "sender complex bit: GNU MIG {:?}, mig-rs {:?}",
            gnu.sender_complex, ir.send
        ));
    }
    // Fields.
    let c = &gnu.layout;
    let mut seen: Vec<bool> = c
        .fields
        .iter()
        .map(|f| f.kind == FieldKind::Header)
        .collect();
    for f in &ir.fields {
        let a = r.arg(f.arg);
        let name = &a.name;
        if (f.var_pos as usize) > shift_count {
            diff(format!(
                "field {name}: after {} variable fields but GNU MIG has {shift_count} shifts",
                f.var_pos
            ));
            continue;
        }
        let shift: u64 = shifts.iter().take(f.var_pos as usize).sum();
        stats.fields += 1;
        stats.shifted_fields += usize::from(f.var_pos > 0);
        stats.variable_fields += usize::from(f.variable);
        let dname = format!("{name}Type");
        let Some(di) = c.fields.iter().position(|x| x.name == dname) else {
            diff(format!("field {name}: GNU MIG's struct has no {dname}"));
            continue;
        };
        seen[di] = true;
        let d = &c.fields[di];
        let long = d.kind == FieldKind::LongDescriptor;
        if long != a.long_form {
            diff(format!(
                "field {name}: long form GNU MIG {long}, mig-rs {}",
                a.long_form
            ));
        }
        if d.offset - shift != u64::from(f.desc_offset) || d.size != u64::from(f.desc_size) {
            diff(format!(
                "{STRUCT}field {name}: descriptor at {}-{shift} ({} bytes) in GNU MIG, at {} ({} bytes) in mig-rs",
                d.offset, d.size, f.desc_offset, f.desc_size
            ));
        }
        let Some(xi) = c.fields.iter().position(|x| &x.name == name) else {
            diff(format!("field {name}: GNU MIG's struct has no data member"));
            continue;
        };
        seen[xi] = true;
        let x = &c.fields[xi];
        if x.offset - shift != u64::from(f.data_offset) {
            diff(format!(
                "{STRUCT}field {name}: data at {}-{shift} in GNU MIG, at {} in mig-rs",
                x.offset, f.data_offset
            ));
        }
        let pad_name = format!("{name}Pad");
        let pad = match c.fields.iter().position(|p| p.name == pad_name) {
            Some(pi) => {
                seen[pi] = true;
                c.fields[pi].size
            }
            None => 0,
        };
        // Bytes the field occupies at its maximum: up to the next member (or the end).
        // (The union of a variable array holds the inline maximum or the pointer,
        // whichever is larger. The C member itself can be smaller than GNU MIG's byte
        // count: for a size that is not a multiple of 8 bits, GNU MIG's C type has
        // size/8 bytes but the padding follows ceil(size/8).)
        let last = if pad > 0 { xi + 1 } else { xi };
        let end = c.fields.get(last + 1).map(|n| n.offset).unwrap_or(c.size);
        let gnu_bytes = end - x.offset;
        let ir_bytes = u64::from(f.data_size + f.pad_size);
        let ir_max = if x.ool_pointer.is_some() {
            ir_bytes.max(8)
        } else {
            ir_bytes
        };
        if gnu_bytes != ir_max || pad != u64::from(f.pad_size) {
            diff(format!(
                "{STRUCT}field {name}: {gnu_bytes} bytes with {pad} of padding in GNU MIG, {} + {} in mig-rs",
                f.data_size, f.pad_size
            ));
        }
        if f.variable {
            // The shift after this field is its maximum size.
            if let Some(&n) = shifts.get(f.var_pos as usize) {
                if n != ir_bytes {
                    diff(format!(
                        "field {name}: variable maximum {n} in GNU MIG, {ir_bytes} in mig-rs"
                    ));
                }
            }
        }
        // The sender's template.
        match gnu.template(name) {
            Some(t) => {
                stats.templates += 1;
                compare_template(
                    name,
                    t,
                    sub.send_desc(r, f.arg, qc_bit == ArgKind::REPLY_QC),
                    &mut diff,
                )
            }
            None => diff(format!("field {name}: GNU MIG has no sender template")),
        }
        // The receiver's check.
        let qc = a.kind.any(qc_bit);
        match gnu.check(&dname) {
            Some(DescriptorCheck::Quick { template, .. }) => {
                stats.quick_checks += 1;
                if !qc {
                    diff(format!(
                        "field {name}: GNU MIG checks with one comparison, mig-rs field by field"
                    ));
                }
                compare_template(name, template, sub.check_desc(r, f.arg), &mut diff);
            }
            Some(DescriptorCheck::Fields { long, items, .. }) => {
                stats.field_checks += 1;
                if qc {
                    diff(format!(
                        "field {name}: GNU MIG checks field by field, mig-rs with one comparison"
                    ));
                }
                if *long != a.long_form {
                    diff(format!("field {name}: check reads long form {long}"));
                }
                let want = sub.check_desc(r, f.arg);
                for item in items {
                    let CheckItem::Equals {
                        attr,
                        member,
                        value,
                        when_inline,
                    } = item
                    else {
                        continue;
                    };
                    stats.check_items += 1;
                    let ours: i64 = match attr {
                        DescAttr::Name => i64::from(want.name),
                        DescAttr::Size => match when_inline {
                            // Indefinite userland port arrays: 32-bit names out of line.
                            Some(false) => 32,
                            _ => i64::from(want.size),
                        },
                        DescAttr::Number => i64::from(want.number),
                        DescAttr::Inline => i64::from(want.inline),
                        DescAttr::Longform => i64::from(a.long_form),
                        DescAttr::Deallocate => i64::from(want.deallocate),
                        DescAttr::Unused => 0,
                    };
                    if ours != *value {
                        diff(format!(
                            "field {name}: GNU MIG checks {member} == {value}{}, mig-rs expects {ours}",
                            when_inline
                                .map(|w| format!(" (when inline == {w})"))
                                .unwrap_or_default()
                        ));
                    }
                }
            }
            None => diff(format!("field {name}: GNU MIG does not check {dname}")),
        }
    }
    for (i, f) in c.fields.iter().enumerate() {
        if !seen[i] {
            diff(format!(
                "GNU MIG's struct has {} ({:?}) at {} that mig-rs has no field for",
                f.name, f.kind, f.offset
            ));
        }
    }
    out
}

fn compare_template(name: &str, t: &Template, ours: TypeDesc, diff: &mut impl FnMut(String)) {
    let g = &t.desc;
    let same = u32::from(g.name) == ours.name
        && u32::from(g.size) == ours.size
        && g.number == ours.number
        && g.inline == ours.inline
        && g.longform == ours.longform
        && g.deallocate == ours.deallocate
        && u32::from(g.unused) == ours.unused;
    if !same {
        diff(format!(
            "field {name}: {} is {g:?} in GNU MIG, mig-rs says {ours:?}",
            t.var
        ));
    }
}
