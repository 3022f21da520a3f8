//! Benchmark (not a test): whole-process time of `mig-rs` against GNU MIG over the 17
//! subsystem files of Debian 13's gnumach-dev, one process per file for both tools, in the
//! same run, alternating.
//!
//! Both do the same work: preprocess, parse, check and write the `-list` file, no stubs:
//! * GNU MIG: `x86_64-gnu-mig -n -I<gnumach include> -list OUT FILE.defs` (its shell
//!   wrapper, `gcc -E -x c` as the preprocessor, and `migcom`);
//! * mig-rs: `mig-rs -n -I<gnumach include> -list OUT FILE.defs` (release build).
//!
//! Run it with
//!
//! ```text
//! cargo build --release -p mig-rs && cargo bench -p mig-conformance --bench frontend
//! ```
//!
//! This bench builds nothing itself: it runs `target/release/mig-rs` (or `$MIG_RS_BIN`) and
//! warns when that binary is older than mig-rs's sources. `MIG_BENCH_ROUNDS` sets the number
//! of rounds (default 20). Needs the oracle (see `mig_conformance::Oracle::locate`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use mig_conformance::{Oracle, Outputs};

fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                newest = Some(newest.map_or(m, |n: SystemTime| n.max(m)));
            }
        }
    }
    newest
}

fn time(cmd: &mut Command, what: &str) -> Duration {
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let t = start.elapsed();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test` of benches passes nothing and
    // should not spend a minute here.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("frontend bench: run with `cargo bench` to measure");
        return;
    }
    let oracle = match Oracle::locate() {
        Ok(o) => o,
        Err(skip) => {
            eprintln!("SKIP: {skip}");
            return;
        }
    };
    let root = mig_conformance::workspace_root();
    let bin = std::env::var_os("MIG_RS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/mig-rs"));
    if !bin.is_file() {
        eprintln!(
            "error: {} not found; run `cargo build --release -p mig-rs` first (or set MIG_RS_BIN)",
            bin.display()
        );
        std::process::exit(1);
    }
    if let (Some(src), Ok(built)) = (
        newest_source(&root.join("mig-rs/src")),
        std::fs::metadata(&bin).and_then(|m| m.modified()),
    ) {
        if src > built {
            eprintln!(
                "warning: {} is older than mig-rs/src; run `cargo build --release -p mig-rs`",
                bin.display()
            );
        }
    }
    let rounds: usize = std::env::var("MIG_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let files: Vec<PathBuf> = oracle
        .corpus()
        .into_iter()
        .filter(|f| {
            oracle
                .run(f, &[], Outputs::LIST)
                .map(|r| r.accepted())
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(files.len(), 17, "subsystem files of gnumach-dev");
    let scratch = root.join("target/tmp/frontend-bench");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let inc = format!("-I{}", oracle.include_dir().display());
    let gnu_out = scratch.join("gnu.list");
    let ours_out = scratch.join("mig-rs.list");

    let gnu = |f: &Path| {
        let mut c = Command::new("/bin/sh");
        c.arg(oracle.wrapper())
            .env("MIGDIR", oracle.migdir())
            .env("CPP", "gcc -E -x c")
            .env_remove("MIGCOM")
            .env_remove("CC")
            .current_dir(&scratch)
            .arg("-n")
            .arg(&inc)
            .arg("-list")
            .arg(&gnu_out)
            .arg(f);
        c
    };
    let ours = |f: &Path| {
        let mut c = Command::new(&bin);
        c.env_remove("CPP")
            .current_dir(&scratch)
            .arg("-n")
            .arg(&inc)
            .arg("-list")
            .arg(&ours_out)
            .arg(f);
        c
    };

    // Warm-up (file cache, dynamic loader) and a sanity check that both agree.
    for f in &files {
        time(&mut gnu(f), "GNU MIG");
        time(&mut ours(f), "mig-rs");
        let a = std::fs::read(&gnu_out).unwrap_or_default();
        let b = std::fs::read(&ours_out).unwrap_or_default();
        assert_eq!(a, b, "-list of {} differs", f.display());
    }

    let mut t_gnu = Duration::ZERO;
    let mut t_ours = Duration::ZERO;
    for round in 0..rounds {
        for f in &files {
            // Alternate which tool goes first.
            if round % 2 == 0 {
                t_gnu += time(&mut gnu(f), "GNU MIG");
                t_ours += time(&mut ours(f), "mig-rs");
            } else {
                t_ours += time(&mut ours(f), "mig-rs");
                t_gnu += time(&mut gnu(f), "GNU MIG");
            }
        }
    }
    let n = (rounds * files.len()) as u32;
    println!(
        "frontend: {} files x {rounds} rounds, one process per file (-n -list)",
        files.len()
    );
    println!(
        "  GNU MIG (sh wrapper + gcc -E + migcom): total {:>9.3} s, {:>8.3} ms/file",
        t_gnu.as_secs_f64(),
        (t_gnu / n).as_secs_f64() * 1e3
    );
    println!(
        "  mig-rs  ({}): total {:>9.3} s, {:>8.3} ms/file",
        bin.display(),
        t_ours.as_secs_f64(),
        (t_ours / n).as_secs_f64() * 1e3
    );
    println!(
        "  ratio mig-rs / GNU MIG = {:.4} (GNU MIG is {:.1}x slower; goal: ratio <= 0.1)",
        t_ours.as_secs_f64() / t_gnu.as_secs_f64(),
        t_gnu.as_secs_f64() / t_ours.as_secs_f64()
    );
}
