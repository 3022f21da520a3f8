//! mig-rs's message layouts (the IR) against GNU MIG's, for every routine of the 17
//! gnumach-dev subsystem files, with and without `-DSEQNOS`.
//!
//! Expected values come only from GNU MIG: the oracle's probe compiles GNU MIG's
//! `Request`/`Reply` structs and descriptor templates and reports `offsetof`/`sizeof`, the
//! template bits and the receivers' size, complex-bit and descriptor checks; the shift
//! constants of fields after variable-size ones are read from GNU MIG's C.
//!
//! Offsets: GNU MIG's structs hold variable arrays at their maximum size, and its stubs
//! reach a field after variable ones at `offsetof(field) - Σ N + Σ actual sizes`, where `N`
//! is the constant of the `In%dP = (Request *)((char *)In%dP + msgh_size_delta - N)` (or
//! `OutP = …`) line after each variable field. mig-rs's IR gives offsets with every
//! preceding variable field empty, so `IR offset == offsetof(field) - Σ N`.
//!
//! Without the oracle this prints `SKIP: …` and passes, unless `CI` is set.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mig_conformance::{
    require_oracle, CheckItem, ComplexBit, DescAttr, DescriptorCheck, FieldKind, Oracle, Outputs,
    RoutineLayout, SizeCheck, Template,
};
use mig_rs::driver::{compile, Options};
use mig_rs::ir::{ArgKind, Complexity, MessageLayout, Routine, Subsystem};
use mig_rs::preprocess::Define;

const VARIANTS: [&[&str]; 2] = [&[], &["SEQNOS"]];

fn rel(oracle: &Oracle, p: &Path) -> String {
    p.strip_prefix(oracle.include_dir())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Marks differences that come from GNU MIG's C structs (`offsetof`/`sizeof`) rather than
/// from its size arithmetic, templates and checks.
const STRUCT: &str = "[struct] ";

/// Messages for which GNU MIG's C structs disagree with GNU MIG's own size arithmetic (its
/// receivers' `msgh_size` checks and shift constants), i.e. GNU MIG bugs: for these,
/// struct-derived differences are expected (and must occur), everything else must match.
/// (file, routine, message, explanation)
const GNU_MIG_STRUCT_BUGS: &[(&str, &str, &str, &str)] = &[
    (
        "complex_types.defs",
        "fixed_port_array",
        "reply",
        "a fixed inline array of 4 ports is declared as one mach_port_name_inlined_t \
         (8 bytes instead of 32; the size check says 88, sizeof(Reply) is 64, and the \
         server's _Static_assert(sizeof(mach_port_name_inlined_t) == 8 * 4) fails)",
    ),
    (
        "complex_types.defs",
        "odd_var_bytes",
        "request",
        "union { char b[100]; char *bP; } is rounded to 104 bytes and then followed by \
         char bPad[4] and alignment: 112 bytes in the struct, 104 in the shift constant, so \
         the fields after it are 8 bytes later than the size arithmetic says",
    ),
    (
        "complex_types.defs",
        "odd_var_bytes",
        "reply",
        "same as the request: the variable char array of maximum 100 occupies 112 struct \
         bytes but 104 in the arithmetic",
    ),
];

/// The shift constants of one routine's C function, per struct type, in order.
#[derive(Default, Debug, Clone)]
struct Shifts {
    request: Vec<u64>,
    reply: Vec<u64>,
}

/// Finds every `X = (Request *) ((char *) Y + msgh_size_delta - N);` (and `Reply`) in `body`.
fn shifts_in(body: &str) -> Shifts {
    let mut s = Shifts::default();
    for line in body.lines() {
        let Some(at) = line.find("+ msgh_size_delta - ") else {
            continue;
        };
        let digits: String = line[at + "+ msgh_size_delta - ".len()..]
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

/// Splits GNU MIG's `Server.c` into `_X<name>` function bodies.
fn server_functions(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let marker = "mig_internal void _X";
    let starts: Vec<usize> = text.match_indices(marker).map(|(i, _)| i).collect();
    for (k, &i) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(text.len());
        let chunk = &text[i + marker.len()..end];
        let name: String = chunk
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name, chunk.to_string());
    }
    out
}

/// Splits GNU MIG's `User.c` into its user stubs, in order (one per routine, -list order).
fn user_functions(text: &str) -> Vec<String> {
    let marker = "\nmig_external kern_return_t ";
    let starts: Vec<usize> = text.match_indices(marker).map(|(i, _)| i).collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let end = starts.get(k + 1).copied().unwrap_or(text.len());
            text[i..end].to_string()
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

/// What the comparison covered.
#[derive(Default, Debug)]
struct Stats {
    fields: usize,
    shifted_fields: usize,
    variable_fields: usize,
    quick_checks: usize,
    field_checks: usize,
    check_items: usize,
    templates: usize,
}

thread_local! {
    static STATS: std::cell::RefCell<Stats> = std::cell::RefCell::new(Stats::default());
}

fn stat(f: impl FnOnce(&mut Stats)) {
    STATS.with(|s| f(&mut s.borrow_mut()));
}

/// Compares one message. Returns the differences.
#[allow(clippy::too_many_arguments)]
fn compare_message(
    what: &str,
    sub: &Subsystem,
    r: &Routine,
    ir: &MessageLayout,
    gnu: &mig_conformance::MessageLayout,
    shifts: &[u64],
    qc_bit: u32,
    out: &mut Vec<String>,
) {
    let mut diff = |s: String| out.push(format!("{what}: {s}"));
    // Sizes.
    match gnu.size_check {
        SizeCheck::Exact(n) => {
            if !ir.is_fixed() || u64::from(ir.min_size) != n {
                diff(format!(
                    "size: GNU MIG exactly {n}, mig-rs {} {}",
                    if ir.is_fixed() { "exactly" } else { "at least" },
                    ir.min_size
                ));
            }
        }
        SizeCheck::Min(n) => {
            if ir.is_fixed() || u64::from(ir.min_size) != n {
                diff(format!(
                    "size: GNU MIG at least {n}, mig-rs {} {}",
                    if ir.is_fixed() { "exactly" } else { "at least" },
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
    let mut seen = vec![false; c.fields.len()];
    if let Some(h) = c.fields.iter().position(|f| f.kind == FieldKind::Header) {
        seen[h] = true;
    }
    for f in &ir.fields {
        let a = r.arg(f.arg);
        let name = &a.name;
        let shift: u64 = shifts.iter().take(f.var_pos as usize).sum();
        if (f.var_pos as usize) > shift_count {
            diff(format!(
                "field {name}: after {} variable fields but GNU MIG has {shift_count} shifts",
                f.var_pos
            ));
            continue;
        }
        stat(|s| {
            s.fields += 1;
            s.shifted_fields += usize::from(f.var_pos > 0);
            s.variable_fields += usize::from(f.variable);
        });
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
                stat(|s| s.templates += 1);
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
                stat(|s| s.quick_checks += 1);
                if !qc {
                    diff(format!(
                        "field {name}: GNU MIG checks with one comparison, mig-rs field by field"
                    ));
                }
                compare_template(name, template, sub.check_desc(r, f.arg), &mut diff);
            }
            Some(DescriptorCheck::Fields { long, items, .. }) => {
                stat(|s| s.field_checks += 1);
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
                    stat(|s| s.check_items += 1);
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
}

fn compare_template(
    name: &str,
    t: &Template,
    ours: mig_runtime::wire::TypeDesc,
    diff: &mut impl FnMut(String),
) {
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

thread_local! {
    static KNOWN: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Applies [`GNU_MIG_STRUCT_BUGS`] to the differences `d` of one message (`what` is
/// "FILE [defines] ROUTINE"). Returns whether the message counts as identical.
fn known_bug(what: &str, message: &str, d: &mut Vec<String>, problems: &mut Vec<String>) -> bool {
    let mut words = what.split(' ');
    let file = words.next().unwrap_or("");
    let routine = what.rsplit(' ').next().unwrap_or("");
    let entry = GNU_MIG_STRUCT_BUGS
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
    KNOWN.with(|k| k.borrow_mut().push(format!("{what} {message}: {why}")));
    d.is_empty()
}

fn compare_routine(
    what: &str,
    sub: &Subsystem,
    r: &Routine,
    gnu: &RoutineLayout,
    shifts_server: &Shifts,
    shifts_user: &Shifts,
    problems: &mut Vec<String>,
) -> (usize, usize) {
    let mut messages = 0;
    let mut identical = 0;
    if i64::from(r.msg_id) != gnu.msgh_id || r.is_simple() != gnu.simple {
        problems.push(format!(
            "{what}: id/kind GNU MIG {} simple={}, mig-rs {} simple={}",
            gnu.msgh_id,
            gnu.simple,
            r.msg_id,
            r.is_simple()
        ));
    }
    let req_shifts = merge(
        &format!("{what} request"),
        &shifts_user.request,
        &shifts_server.request,
        problems,
    );
    let mut d = Vec::new();
    compare_message(
        &format!("{what} request"),
        sub,
        r,
        &r.request,
        &gnu.request,
        &req_shifts,
        ArgKind::REQUEST_QC,
        &mut d,
    );
    messages += 1;
    if known_bug(what, "request", &mut d, problems) {
        identical += 1;
    }
    problems.append(&mut d);
    if let Some(reply) = &gnu.reply {
        let rep_shifts = merge(
            &format!("{what} reply"),
            &shifts_server.reply,
            &shifts_user.reply,
            problems,
        );
        let mut d = Vec::new();
        compare_message(
            &format!("{what} reply"),
            sub,
            r,
            &r.reply,
            reply,
            &rep_shifts,
            ArgKind::REPLY_QC,
            &mut d,
        );
        messages += 1;
        if known_bug(what, "reply", &mut d, problems) {
            identical += 1;
        }
        problems.append(&mut d);
    }
    (messages, identical)
}

#[test]
fn layouts_match_gnu_mig() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let mut problems = Vec::new();
    let mut messages = 0;
    let mut identical = 0;
    let mut files = 0;
    for variant in VARIANTS {
        for defs in oracle.corpus() {
            let run = oracle
                .run(&defs, variant, Outputs::ALL)
                .unwrap_or_else(|e| panic!("GNU MIG on {}: {e}", defs.display()));
            if !run.accepted() {
                continue;
            }
            files += 1;
            let what = format!("{} {variant:?}", rel(&oracle, &defs));
            let gnu = oracle
                .layouts_of(&run)
                .unwrap_or_else(|e| panic!("{what}: GNU MIG layouts: {e}"));
            let server = server_functions(&run.server_c_text().expect("Server.c"));
            let user = user_functions(&run.user_c_text().expect("User.c"));
            let opts = Options {
                include_dirs: vec![oracle.include_dir()],
                defines: variant
                    .iter()
                    .map(|d| Define::Set(d.to_string(), None))
                    .collect(),
                ..Options::default()
            };
            let comp = compile(&defs, &opts);
            let Some(sub) = comp.ok() else {
                problems.push(format!(
                    "{what}: mig-rs rejects it:\n{}",
                    comp.render_diagnostics()
                ));
                continue;
            };
            if sub.routines.len() != gnu.len() || user.len() != gnu.len() {
                problems.push(format!(
                    "{what}: {} routines in mig-rs, {} in GNU MIG's list, {} user stubs",
                    sub.routines.len(),
                    gnu.len(),
                    user.len()
                ));
                continue;
            }
            for ((r, g), u) in sub.routines.iter().zip(&gnu).zip(&user) {
                let rw = format!("{what} {}", g.name);
                if r.name != g.name {
                    problems.push(format!("{rw}: mig-rs has {} here", r.name));
                    continue;
                }
                let Some(s) = server.get(&g.name) else {
                    problems.push(format!("{rw}: no _X{} in Server.c", g.name));
                    continue;
                };
                let (m, i) =
                    compare_routine(&rw, sub, r, g, &shifts_in(s), &shifts_in(u), &mut problems);
                messages += m;
                identical += i;
            }
        }
    }
    eprintln!(
        "layout: {identical}/{messages} messages identical ({files} files, {:?})",
        start.elapsed()
    );
    STATS.with(|s| eprintln!("layout: compared {:?}", s.borrow()));
    assert_eq!(files, 2 * 17, "accepted files");
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(identical, messages);
}

/// The same comparison over mig-rs's own feature-by-feature `.defs` files
/// (`mig-rs/tests/defs/good`), whose C types come from `tests/c/include/golden_types.h`.
/// That header is first checked against GNU MIG's own `_Static_assert(sizeof(T) == …)`
/// lines (collected from GNU MIG's `User.c` and `Server.c` and compiled with it), so the struct offsets the
/// probe reports still follow from GNU MIG's numbers.
#[test]
fn golden_layouts_match_gnu_mig() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let root = mig_conformance::workspace_root();
    let good = root.join("mig-rs/tests/defs/good");
    let c_include = root.join("conformance/tests/c/include");
    let header = c_include.join("golden_types.h");
    let prelude = vec![std::fs::read_to_string(&header).expect("golden_types.h")];
    let mut files: Vec<_> = std::fs::read_dir(&good)
        .expect("golden files")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "defs"))
        .collect();
    files.sort();
    // GNU MIG's C for kernel subsystems only compiles inside GNU Mach (ipc_port_t, and a
    // mach_port_t of pointer size); with userland headers the probe's struct offsets would
    // not be GNU MIG's. Their layouts are in the snapshot tests instead.
    files.retain(|f| {
        !f.file_name()
            .is_some_and(|n| n == "kernel_user.defs" || n == "kernel_server.defs")
    });
    let mut problems = Vec::new();
    let (mut messages, mut identical) = (0, 0);
    for defs in &files {
        let what = defs
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let run = oracle
            .run(defs, &[], Outputs::ALL)
            .unwrap_or_else(|e| panic!("GNU MIG on {what}: {e}"));
        assert!(run.accepted(), "{what}: GNU MIG rejects it: {}", run.stderr);
        if let Err(e) = oracle.check_type_sizes(&run, std::slice::from_ref(&c_include), &prelude) {
            problems.push(format!(
                "{what}: golden_types.h disagrees with GNU MIG's sizes: {e}"
            ));
            continue;
        }
        let gnu = match oracle.layouts_of_with(&run, std::slice::from_ref(&c_include), &prelude) {
            Ok(g) => g,
            Err(e) => {
                problems.push(format!("{what}: GNU MIG layouts: {e}"));
                continue;
            }
        };
        let server = server_functions(&run.server_c_text().expect("Server.c"));
        let user = user_functions(&run.user_c_text().expect("User.c"));
        let opts = Options {
            include_dirs: vec![good.join("../include")],
            ..Options::default()
        };
        let comp = compile(defs, &opts);
        let Some(sub) = comp.ok() else {
            problems.push(format!(
                "{what}: mig-rs rejects it:\n{}",
                comp.render_diagnostics()
            ));
            continue;
        };
        if sub.routines.len() != gnu.len() || user.len() != gnu.len() {
            problems.push(format!(
                "{what}: {} routines in mig-rs, {} in GNU MIG, {} user stubs",
                sub.routines.len(),
                gnu.len(),
                user.len()
            ));
            continue;
        }
        for ((r, g), u) in sub.routines.iter().zip(&gnu).zip(&user) {
            let rw = format!("{what} {}", g.name);
            let Some(s) = server.get(&g.name) else {
                problems.push(format!("{rw}: no _X{} in Server.c", g.name));
                continue;
            };
            let (m, i) =
                compare_routine(&rw, sub, r, g, &shifts_in(s), &shifts_in(u), &mut problems);
            messages += m;
            identical += i;
        }
    }
    eprintln!(
        "layout (golden files): {identical}/{messages} messages identical ({} files, {:?})",
        files.len(),
        start.elapsed()
    );
    STATS.with(|s| eprintln!("layout (golden files): compared {:?}", s.borrow()));
    KNOWN.with(|k| {
        for x in k.borrow().iter() {
            eprintln!("layout (golden files): GNU MIG bug, struct ignored: {x}");
        }
    });
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn shift_lines_are_found() {
    let s = shifts_in(
        "\tIn1P = (Request *) ((char *) In0P + msgh_size_delta - 8192);\n\
         \tOutP = (Reply *) ((char *) OutP + msgh_size_delta - 2048);\n\
         \tmsgh_size = 64 + msgh_size_delta;\n",
    );
    assert_eq!(s.request, vec![8192]);
    assert_eq!(s.reply, vec![2048]);
}
