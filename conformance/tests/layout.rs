//! mig-rs's message layouts (the IR) against GNU MIG's, for every routine of the 17
//! gnumach-dev subsystem files, with and without `-DSEQNOS`.
//!
//! Expected values come only from GNU MIG: the oracle's probe compiles GNU MIG's
//! `Request`/`Reply` structs and descriptor templates and reports `offsetof`/`sizeof`, the
//! template bits and the receivers' size, complex-bit and descriptor checks; the shift
//! constants of fields after variable-size ones are read from GNU MIG's C. The comparison
//! itself (shared with `own_defs.rs`) is in `common/layout_compare.rs`.
//!
//! Without the oracle this prints `SKIP: …` and passes, unless `CI` is set.

use std::path::Path;
use std::time::Instant;

use mig_conformance::{require_oracle, Oracle, Outputs, RoutineLayout};
use mig_rs::driver::{compile, Options};
use mig_rs::ir::Routine;
use mig_rs::preprocess::Define;

#[path = "common/layout_compare.rs"]
mod layout_compare;

use layout_compare::{server_functions, shifts_in, user_functions, LayoutComparison, StructBug};

const VARIANTS: [&[&str]; 2] = [&[], &["SEQNOS"]];

fn rel(oracle: &Oracle, p: &Path) -> String {
    p.strip_prefix(oracle.include_dir())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Messages for which GNU MIG's C structs disagree with GNU MIG's own size arithmetic (its
/// receivers' `msgh_size` checks and shift constants), i.e. GNU MIG bugs: for these,
/// struct-derived differences are expected (and must occur), everything else must match.
const GNU_MIG_STRUCT_BUGS: &[StructBug] = &[
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

/// mig-rs's id and kind of `r` are GNU MIG's.
fn check_id(what: &str, r: &Routine, gnu: &RoutineLayout, problems: &mut Vec<String>) {
    if i64::from(r.msg_id) != gnu.msgh_id || r.is_simple() != gnu.simple {
        problems.push(format!(
            "{what}: id/kind GNU MIG {} simple={}, mig-rs {} simple={}",
            gnu.msgh_id,
            gnu.simple,
            r.msg_id,
            r.is_simple()
        ));
    }
}

#[test]
fn layouts_match_gnu_mig() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let mut problems = Vec::new();
    let mut cmp = LayoutComparison::new(GNU_MIG_STRUCT_BUGS);
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
            for ((r, g), (_, u)) in sub.routines.iter().zip(&gnu).zip(&user) {
                let rw = format!("{what} {}", g.name);
                if r.name != g.name {
                    problems.push(format!("{rw}: mig-rs has {} here", r.name));
                    continue;
                }
                let Some(s) = server.get(&g.name) else {
                    problems.push(format!("{rw}: no _X{} in Server.c", g.name));
                    continue;
                };
                check_id(&rw, r, g, &mut problems);
                cmp.routine(&rw, sub, r, g, s, u, &mut problems);
            }
        }
    }
    eprintln!(
        "layout: {}/{} messages identical ({files} files, {:?})",
        cmp.identical,
        cmp.messages,
        start.elapsed()
    );
    eprintln!("layout: compared {:?}", cmp.stats);
    assert_eq!(files, 2 * 17, "accepted files");
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(cmp.identical, cmp.messages);
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
    let mut cmp = LayoutComparison::new(GNU_MIG_STRUCT_BUGS);
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
        for ((r, g), (_, u)) in sub.routines.iter().zip(&gnu).zip(&user) {
            let rw = format!("{what} {}", g.name);
            let Some(s) = server.get(&g.name) else {
                problems.push(format!("{rw}: no _X{} in Server.c", g.name));
                continue;
            };
            check_id(&rw, r, g, &mut problems);
            cmp.routine(&rw, sub, r, g, s, u, &mut problems);
        }
    }
    eprintln!(
        "layout (golden files): {}/{} messages identical ({} files, {:?})",
        cmp.identical,
        cmp.messages,
        files.len(),
        start.elapsed()
    );
    eprintln!("layout (golden files): compared {:?}", cmp.stats);
    for x in &cmp.known {
        eprintln!("layout (golden files): GNU MIG bug, struct ignored: {x}");
    }
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
