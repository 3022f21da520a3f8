//! The `mig-rs` binary against GNU MIG over every `.defs` file of Debian 13's gnumach-dev,
//! with and without `-DSEQNOS`, run as
//! `mig-rs -n -I<gnumach include dir> [-DSEQNOS] -list out.list FILE.defs`:
//! same acceptance, a located error (`file:line:col`) for rejected files and nothing
//! written for them, and a byte-identical `-list` file for accepted ones.
//! (`conformance/tests/list.rs` does the same through the library.)
//!
//! Without the oracle this prints `SKIP: …` and passes, unless `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mig_conformance::{require_oracle, Oracle, Outputs};

const VARIANTS: [&[&str]; 2] = [&[], &["SEQNOS"]];

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("list-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

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
        line > 0
            && rest.as_bytes().get(line) == Some(&b':')
            && rest
                .as_bytes()
                .get(line + 1)
                .is_some_and(u8::is_ascii_digit)
    })
}

#[test]
fn cli_list_matches_gnu_mig() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let dir = scratch("corpus");
    let corpus = oracle.corpus();
    assert_eq!(corpus.len(), 23);
    let mut problems = Vec::new();
    let mut identical = 0;
    let mut rejected = 0;
    for variant in VARIANTS {
        for defs in &corpus {
            let what = format!("{} {variant:?}", rel(&oracle, defs));
            let run = oracle
                .run(defs, variant, Outputs::ALL)
                .unwrap_or_else(|e| panic!("{what}: GNU MIG: {e}"));
            let out = dir.join("out.list");
            let _ = std::fs::remove_file(&out);
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_mig-rs"));
            cmd.current_dir(&dir)
                .env_remove("CPP")
                .arg("-n")
                .arg(format!("-I{}", oracle.include_dir().display()));
            for d in variant {
                cmd.arg(format!("-D{d}"));
            }
            cmd.arg("-list").arg(&out).arg(defs);
            let done = cmd.output().expect("run mig-rs");
            let stderr = String::from_utf8_lossy(&done.stderr);
            match (run.accepted(), done.status.code()) {
                (true, Some(0)) => {
                    let ours = std::fs::read_to_string(&out).unwrap_or_default();
                    let theirs = run.list.clone().unwrap_or_default();
                    if ours == theirs {
                        identical += 1;
                    } else {
                        problems.push(format!(
                            "{what}: -list differs\n--- GNU MIG\n{theirs}--- mig-rs\n{ours}"
                        ));
                    }
                }
                (false, Some(1)) => {
                    rejected += 1;
                    if !has_location(&stderr) {
                        problems.push(format!("{what}: no located error:\n{stderr}"));
                    }
                    if out.exists() {
                        problems.push(format!("{what}: -list file written despite errors"));
                    }
                }
                (gnu, ours) => problems.push(format!(
                    "{what}: GNU MIG accepted={gnu}, mig-rs exit {ours:?}:\n{stderr}"
                )),
            }
        }
    }
    eprintln!(
        "list (CLI): {identical} accepted files byte-identical, {rejected} rejected by both, \
         {} problems ({:?})",
        problems.len(),
        start.elapsed()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!((identical, rejected), (34, 12));
    let _ = std::fs::remove_dir_all(&dir);
}
