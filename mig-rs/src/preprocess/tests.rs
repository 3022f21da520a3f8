//! Tests of the preprocessor.

use super::lexer::{Lexer, RawKind};
use super::*;
use crate::diagnostics::{Diagnostics, Severity};
use crate::source::SourceMap;
use std::rc::Rc;

struct Run {
    pp: Preprocessed,
    map: SourceMap,
    diags: Diagnostics,
}

fn opts_from(flags: &[&str]) -> PpOptions {
    let mut o = PpOptions::default();
    for f in flags {
        if let Some(d) = f.strip_prefix("-D") {
            o.defines.push(Define::from_d(d));
        } else if let Some(u) = f.strip_prefix("-U") {
            o.defines.push(Define::Unset(u.to_string()));
        } else if let Some(i) = f.strip_prefix("-I") {
            o.include_dirs.push(i.into());
        } else if let Some(i) = f.strip_prefix("-isystem") {
            o.system_dirs.push(i.into());
        } else if let Some(i) = f.strip_prefix("-imacros") {
            o.imacros.push(i.into());
        } else if *f == "-i386" {
            o.target = Target::I386;
        } else {
            panic!("bad test flag {f}");
        }
    }
    o
}

fn run_opts(files: &[(&str, &[u8])], opts: &PpOptions) -> Run {
    let mut loader = MemLoader::new();
    for (p, c) in files {
        loader.insert(*p, c.to_vec());
    }
    let mut map = SourceMap::new();
    let mut diags = Diagnostics::new();
    diags.max_errors = 0;
    let main = files.first().map(|f| f.0).unwrap_or("main.defs");
    let pp = preprocess(Path::new(main), opts, &mut loader, &mut map, &mut diags);
    Run { pp, map, diags }
}

fn run(files: &[(&str, &str)], flags: &[&str]) -> Run {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
    run_opts(&files, &opts_from(flags))
}

/// The tokens of preprocessed text, line markers dropped, joined by single spaces.
fn tokens(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('#') && t[1..].trim_start().starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let src: Rc<str> = Rc::from(line);
        let mut lx = Lexer::new(src.clone());
        loop {
            let tok = lx.next();
            match tok.kind {
                RawKind::Eof => break,
                RawKind::Newline => continue,
                _ => out.push(src[tok.start as usize..tok.end as usize].to_string()),
            }
        }
    }
    out.join(" ")
}

/// Diagnostics as `severity: message @ file:line:col`.
fn diag_lines(r: &Run) -> Vec<String> {
    r.diags
        .iter()
        .map(|d| {
            let at = d.primary.map(|l| r.map.describe(l)).unwrap_or_default();
            format!("{}: {} @ {at}", d.severity, d.message)
        })
        .collect()
}

#[test]
fn debug_print() {
    let r = run(
        &[(
            "main.defs",
            "#define X(a) a+1\n  subsystem\n#if KERNEL_USER\nKernelUser\n#endif\nmemory_object_default 2250; X(3) X\n",
        )],
        &[],
    );
    println!("{}", r.pp.text);
    println!("{:?}", diag_lines(&r));
    println!("{}", tokens(&r.pp.text));
}

fn gcc_available() -> bool {
    std::process::Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn defs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            defs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "defs") {
            out.push(p);
        }
    }
}

#[test]
fn matches_gcc_on_gnumach_defs() {
    let inc = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/debian13/root/usr/include/x86_64-linux-gnu");
    if !inc.is_dir() {
        println!("skipped: {} is absent", inc.display());
        return;
    }
    if !gcc_available() {
        println!("skipped: gcc is not on PATH");
        return;
    }
    let mut files = Vec::new();
    for sub in ["mach", "device", "mach_debug"] {
        defs_files(&inc.join(sub), &mut files);
    }
    assert!(!files.is_empty());
    let mut compared = 0;
    for f in &files {
        for seqnos in [false, true] {
            let mut cmd = std::process::Command::new("gcc");
            cmd.args(["-E", "-x", "c"]).arg(format!("-I{}", inc.display()));
            if seqnos {
                cmd.arg("-DSEQNOS");
            }
            let out = cmd.arg(f).output().expect("gcc runs");
            let gcc_ok = out.status.success();
            let gcc_text = String::from_utf8_lossy(&out.stdout).into_owned();

            let mut opts = PpOptions {
                include_dirs: vec![inc.clone()],
                ..Default::default()
            };
            if seqnos {
                opts.defines.push(Define::from_d("SEQNOS"));
            }
            let mut map = SourceMap::new();
            let mut diags = Diagnostics::new();
            let pp = preprocess(f, &opts, &mut FsLoader, &mut map, &mut diags);
            assert_eq!(
                gcc_ok,
                !diags.has_errors(),
                "{}: gcc ok={gcc_ok}, ours: {}",
                f.display(),
                diags.render(&map)
            );
            let (a, b) = (tokens(&pp.text), tokens(&gcc_text));
            if a != b {
                let aw: Vec<&str> = a.split(' ').collect();
                let bw: Vec<&str> = b.split(' ').collect();
                let i = aw.iter().zip(&bw).position(|(x, y)| x != y).unwrap_or(aw.len().min(bw.len()));
                panic!(
                    "{} (SEQNOS={seqnos}): token {i} differs:\n ours: {:?}\n gcc:  {:?}",
                    f.display(),
                    &aw[i.saturating_sub(5)..(i + 10).min(aw.len())],
                    &bw[i.saturating_sub(5)..(i + 10).min(bw.len())]
                );
            }
            compared += 1;
        }
    }
    println!("compared {compared} runs with gcc");
}
