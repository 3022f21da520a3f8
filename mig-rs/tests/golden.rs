//! Data-driven golden tests: every `tests/defs/good/*.defs` must compile (warnings allowed)
//! and every `tests/defs/bad/*.defs` must fail with located errors. Each `X.defs` has a
//! snapshot `X.expected` next to it:
//!
//! * good files: the `-list` output, the rendered warnings (if any) and a compact IR dump
//!   (the `-v` format, limited to the types declared in the file itself);
//! * bad files: the rendered diagnostics.
//!
//! Run with `UPDATE_EXPECT=1` to rewrite the snapshots (then review the diff).
//!
//! Where the GNU MIG oracle is present, GNU MIG must also accept exactly the good files
//! (with the same `-list` output, and warnings exactly when mig-rs warns) and reject the
//! bad ones. A bad file whose text contains `gnu-mig: accepts` documents a deliberate
//! difference: GNU MIG is expected to accept it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mig_conformance::{Oracle, Outputs};
use mig_rs::driver::{compile, Compilation, Options};

const DIR: &str = "tests/defs";

fn defs_files(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(DIR).join(kind);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "defs"))
        .collect();
    v.sort();
    v
}

fn options() -> Options {
    Options {
        include_dirs: vec![Path::new(DIR).join("include")],
        ..Options::default()
    }
}

/// The `-v` dump without the `type` lines of types declared outside `file`.
fn ir_summary(comp: &Compilation, file: &Path) -> String {
    let Some(sub) = comp.ok() else {
        return String::new();
    };
    let main_name = file.to_string_lossy();
    let mut local = std::collections::HashSet::new();
    for (name, id) in sub.types.named() {
        if let Some(loc) = sub.ty(*id).loc {
            if comp.map.file(loc.file).name == main_name {
                local.insert(name.clone());
            }
        }
    }
    let mut out = String::new();
    for line in mig_rs::cli::describe(sub).lines() {
        if let Some(rest) = line.strip_prefix("type ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !local.contains(name) {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn snapshot(comp: &Compilation, file: &Path, good: bool) -> String {
    let mut s = String::new();
    let diags = comp.render_diagnostics();
    if good {
        let list = comp.ok().map(|sub| sub.routine_list()).unwrap_or_default();
        let _ = write!(s, "== -list\n{list}");
        if !diags.is_empty() {
            let _ = write!(s, "== diagnostics\n{diags}");
        }
        let _ = write!(s, "== ir\n{}", ir_summary(comp, file));
    } else {
        s.push_str(&diags);
    }
    s
}

/// Whether `text` names a `.defs` location as `file.defs:LINE:COL`.
fn has_location(text: &str) -> bool {
    text.match_indices(".defs:").any(|(i, m)| {
        let rest = &text[i + m.len()..];
        let line = rest.bytes().take_while(u8::is_ascii_digit).count();
        line > 0
            && rest.as_bytes().get(line) == Some(&b':')
            && rest
                .as_bytes()
                .get(line + 1)
                .is_some_and(u8::is_ascii_digit)
    })
}

/// A simple line diff for failure messages.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    let n = e.len().max(a.len());
    let mut shown = 0;
    for i in 0..n {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            if let Some(x) = x {
                let _ = writeln!(out, "  {:>4} - {x}", i + 1);
            }
            if let Some(y) = y {
                let _ = writeln!(out, "  {:>4} + {y}", i + 1);
            }
            shown += 1;
            if shown >= 12 {
                out.push_str("  …\n");
                break;
            }
        }
    }
    out
}

fn run_kind(kind: &str, good: bool, failures: &mut Vec<String>) -> usize {
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| !v.is_empty());
    let files = defs_files(kind);
    assert!(!files.is_empty(), "no {kind} files");
    for file in &files {
        let comp = compile(file, &options());
        let what = file.display();
        if good && comp.has_errors() {
            failures.push(format!(
                "{what}: expected to compile:\n{}",
                comp.render_diagnostics()
            ));
        }
        if !good {
            if !comp.has_errors() {
                failures.push(format!("{what}: expected errors, compiled fine"));
            } else if !comp
                .diags
                .iter()
                .any(|d| d.is_error() && d.primary.is_some())
                || !has_location(&comp.render_diagnostics())
            {
                failures.push(format!(
                    "{what}: no located error:\n{}",
                    comp.render_diagnostics()
                ));
            }
        }
        let actual = snapshot(&comp, file, good);
        let exp_path = file.with_extension("expected");
        if update {
            std::fs::write(&exp_path, &actual)
                .unwrap_or_else(|e| panic!("{}: {e}", exp_path.display()));
            continue;
        }
        match std::fs::read_to_string(&exp_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{what}: output differs from {} (UPDATE_EXPECT=1 rewrites it):\n{}",
                exp_path.display(),
                diff(&expected, &actual)
            )),
            Err(e) => failures.push(format!(
                "{what}: no snapshot {} ({e}); run with UPDATE_EXPECT=1",
                exp_path.display()
            )),
        }
    }
    files.len()
}

#[test]
fn golden_snapshots() {
    let mut failures = Vec::new();
    let good = run_kind("good", true, &mut failures);
    let bad = run_kind("bad", false, &mut failures);
    eprintln!("golden: {good} good and {bad} bad files");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// GNU MIG accepts exactly the good files (same `-list`, warnings iff mig-rs warns) and
/// rejects exactly the bad ones (except documented differences).
#[test]
fn golden_files_agree_with_gnu_mig() {
    let oracle = match Oracle::locate() {
        Ok(o) => o,
        Err(skip) => {
            mig_conformance::oracle::report_skip(&skip);
            return;
        }
    };
    let mut failures = Vec::new();
    let mut deviations = Vec::new();
    for (kind, good) in [("good", true), ("bad", false)] {
        for file in defs_files(kind) {
            let what = file.display().to_string();
            let run = oracle
                .run(&file, &[], Outputs::LIST)
                .unwrap_or_else(|e| panic!("{what}: GNU MIG: {e}"));
            let comp = compile(&file, &options());
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if good {
                if !run.accepted() {
                    failures.push(format!(
                        "{what}: GNU MIG rejects it (exit {:?}):\n{}",
                        run.exit_code, run.stderr
                    ));
                    continue;
                }
                let ours = comp.ok().map(|s| s.routine_list()).unwrap_or_default();
                let theirs = run.list.clone().unwrap_or_default();
                if ours != theirs {
                    failures.push(format!(
                        "{what}: -list differs\n--- GNU MIG\n{theirs}--- mig-rs\n{ours}"
                    ));
                }
                let gnu_warns = run.stderr.contains("warning");
                let we_warn = comp
                    .diags
                    .iter()
                    .any(|d| d.severity == mig_rs::diagnostics::Severity::Warning);
                if gnu_warns != we_warn {
                    failures.push(format!(
                        "{what}: GNU MIG warns: {gnu_warns}, mig-rs warns: {we_warn}\n\
                         GNU MIG: {}\nmig-rs:\n{}",
                        run.stderr.trim(),
                        comp.render_diagnostics()
                    ));
                }
            } else {
                let expect_accept = text.contains("gnu-mig: accepts");
                if run.accepted() != expect_accept {
                    failures.push(format!(
                        "{what}: GNU MIG {} it (exit {:?}): {}",
                        if run.accepted() { "accepts" } else { "rejects" },
                        run.exit_code,
                        run.stderr.trim()
                    ));
                } else if expect_accept {
                    deviations.push(what);
                }
            }
        }
    }
    if !deviations.is_empty() {
        eprintln!("golden: documented differences from GNU MIG: {deviations:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
