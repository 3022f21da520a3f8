//! mig-rs's front end (as a library) against GNU MIG over every `.defs` file of Debian 13's
//! gnumach-dev, with and without `-DSEQNOS`: mig-rs accepts exactly the files GNU MIG
//! accepts, rejects the others with a located error, and its `-list` output is
//! byte-identical. (`mig-rs/tests/list_cli.rs` does the same through the `mig-rs` binary.)
//!
//! Without the oracle this prints `SKIP: …` and passes, unless `CI` is set.

use std::path::Path;
use std::time::Instant;

use mig_conformance::{require_oracle, Oracle, Outputs};
use mig_rs::driver::{compile, Options};
use mig_rs::preprocess::Define;

const VARIANTS: [&[&str]; 2] = [&[], &["SEQNOS"]];

fn rel(oracle: &Oracle, p: &Path) -> String {
    p.strip_prefix(oracle.include_dir())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Whether `text` names a `.defs` location as `file.defs:LINE:COL`.
fn has_location(text: &str) -> bool {
    text.match_indices(".defs:").any(|(i, m)| {
        let rest = &text[i + m.len()..];
        let line = rest.bytes().take_while(u8::is_ascii_digit).count();
        if line == 0 || rest.as_bytes().get(line) != Some(&b':') {
            return false;
        }
        rest[line + 1..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit())
    })
}

#[test]
fn list_output_and_acceptance_match_gnu_mig() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let corpus = oracle.corpus();
    assert_eq!(corpus.len(), 23, "Debian 13 gnumach-dev has 23 .defs files");
    let mut problems = Vec::new();
    let mut identical = 0;
    let mut rejected = 0;
    let mut gnu_accepted = 0;
    for variant in VARIANTS {
        for defs in &corpus {
            let what = format!("{} {variant:?}", rel(&oracle, defs));
            let run = oracle
                .run(defs, variant, Outputs::ALL)
                .unwrap_or_else(|e| panic!("{what}: GNU MIG: {e}"));
            let opts = Options {
                include_dirs: vec![oracle.include_dir()],
                defines: variant
                    .iter()
                    .map(|d| Define::Set(d.to_string(), None))
                    .collect(),
                ..Options::default()
            };
            let comp = compile(defs, &opts);
            let rendered = comp.render_diagnostics();
            if run.accepted() {
                gnu_accepted += 1;
            }
            match (run.accepted(), comp.ok()) {
                (true, Some(sub)) => {
                    let theirs = run.list.clone().unwrap_or_default();
                    let ours = sub.routine_list();
                    if ours == theirs {
                        identical += 1;
                    } else {
                        problems.push(format!(
                            "{what}: -list differs\n--- GNU MIG\n{theirs}--- mig-rs\n{ours}"
                        ));
                    }
                }
                (false, None) => {
                    rejected += 1;
                    let located = comp
                        .diags
                        .iter()
                        .any(|d| d.is_error() && d.primary.is_some());
                    if !located || !has_location(&rendered) {
                        problems.push(format!(
                            "{what}: rejected without a located error:\n{rendered}"
                        ));
                    }
                }
                (true, None) => problems.push(format!(
                    "{what}: GNU MIG accepts it, mig-rs rejects it:\n{rendered}"
                )),
                (false, Some(_)) => problems.push(format!(
                    "{what}: GNU MIG rejects it (exit {:?}: {}), mig-rs accepts it",
                    run.exit_code,
                    run.stderr.trim()
                )),
            }
        }
    }
    eprintln!(
        "list: {identical}/{gnu_accepted} accepted files byte-identical, {rejected} rejected \
         by both, {} problems ({:?})",
        problems.len(),
        start.elapsed()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(identical, 2 * 17, "accepted files (plain and SEQNOS)");
    assert_eq!(rejected, 2 * 6, "types-only files (plain and SEQNOS)");
}

#[test]
fn location_pattern() {
    assert!(has_location("  ┌─ /x/mach/std_types.defs:33:6\n"));
    assert!(!has_location("error: cannot read a.defs: No such file"));
    assert!(!has_location("a.defs:12: oops"));
}
