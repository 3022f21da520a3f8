//! Running an external preprocessor (`gcc -E -x c`, `cpp`, …) and mapping its output back to
//! the sources through its `# N "file" flags` line markers.

use super::lexer::{Lexer, RawKind};
use super::{FileLoader, PpOptions};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::source::{CtxId, FileId, Loc, Preprocessed, Segment, SourceFile, SourceMap};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;

/// The command-line arguments passed to the external preprocessor before the file.
pub(super) fn cpp_args(opts: &PpOptions) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = Vec::new();
    for d in &opts.defines {
        v.push(d.to_flag().into());
    }
    for i in &opts.include_dirs {
        v.push("-I".into());
        v.push(i.as_os_str().to_owned());
    }
    for i in &opts.system_dirs {
        v.push("-isystem".into());
        v.push(i.as_os_str().to_owned());
    }
    for i in &opts.imacros {
        v.push("-imacros".into());
        v.push(i.as_os_str().to_owned());
    }
    v
}

pub(super) fn run(
    cmd: &str,
    main: &Path,
    opts: &PpOptions,
    loader: &mut dyn FileLoader,
    map: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Preprocessed {
    let mut words = cmd.split_whitespace();
    let Some(prog) = words.next() else {
        diags.push(Diagnostic::error(
            "the external preprocessor command is empty",
        ));
        return Preprocessed::default();
    };
    let mut c = Command::new(prog);
    c.args(words)
        .args(cpp_args(opts))
        .arg(main)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = match c.output() {
        Ok(o) => o,
        Err(e) => {
            diags.push(Diagnostic::error(format!(
                "cannot run the external preprocessor `{cmd}`: {e}"
            )));
            return Preprocessed::default();
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr)
        .trim_end()
        .to_string();
    if !output.status.success() {
        let mut d = Diagnostic::error(format!(
            "the external preprocessor `{cmd}` failed ({}) on {}",
            output.status,
            main.display()
        ));
        if !stderr.is_empty() {
            d = d.note(stderr);
        }
        diags.push(d);
    } else if !stderr.is_empty() {
        diags.push(
            Diagnostic::warning(format!(
                "the external preprocessor `{cmd}` reported problems"
            ))
            .note(stderr),
        );
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut pp = from_cpp_output(text, main, loader, map);
    for m in &opts.imacros {
        if !pp.files_read.contains(m) {
            pp.files_read.push(m.clone());
        }
    }
    pp
}

/// A parsed line marker: line number, file name (if any), flags.
struct Marker {
    line: u32,
    name: Option<String>,
    flags: Vec<u32>,
}

/// Parses `# N "file" flags` or `#line N "file"`.
fn parse_marker(line: &str) -> Option<Marker> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let rest = match rest.strip_prefix("line") {
        Some(r) if r.starts_with([' ', '\t']) => r.trim_start_matches([' ', '\t']),
        _ => rest,
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u32 = rest.get(..digits)?.parse().ok()?;
    let mut rest = rest.get(digits..)?.trim_start_matches([' ', '\t']);
    let mut name = None;
    if rest.starts_with('"') {
        let mut s = String::new();
        let mut chars = rest.char_indices().skip(1);
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = i + 1;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, d @ '0'..='7')) => {
                        let mut v = d.to_digit(8).unwrap_or(0);
                        let mut look = chars.clone();
                        for _ in 0..2 {
                            match look.next() {
                                Some((_, x @ '0'..='7')) => {
                                    v = v * 8 + x.to_digit(8).unwrap_or(0);
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    Some((_, x)) => s.push(x),
                    None => {}
                },
                c => s.push(c),
            }
        }
        name = Some(s);
        rest = rest.get(end..).unwrap_or("");
    }
    let flags = rest
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Some(Marker {
        line: n,
        name,
        flags,
    })
}

struct Level {
    name: String,
    ctx: CtxId,
    file: FileId,
    /// Presumed line of the next output line.
    line: u32,
}

/// Builds a [`Preprocessed`] from a C preprocessor's output: loads the files named in its
/// line markers (through `loader`) and maps each output line to its source line.
pub(super) fn from_cpp_output(
    text: String,
    main: &Path,
    loader: &mut dyn FileLoader,
    map: &mut SourceMap,
) -> Preprocessed {
    // Pass 1: the lines of every file, for files that cannot be read.
    let mut lines_of: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    {
        let mut cur: Option<(String, u32)> = None;
        for line in text.lines() {
            if let Some(m) = parse_marker(line) {
                let name = m
                    .name
                    .or_else(|| cur.as_ref().map(|c| c.0.clone()))
                    .unwrap_or_else(|| main.to_string_lossy().into_owned());
                if !lines_of.contains_key(&name) {
                    order.push(name.clone());
                    lines_of.insert(name.clone(), Vec::new());
                }
                cur = Some((name, m.line));
                continue;
            }
            let c = cur.get_or_insert_with(|| (main.to_string_lossy().into_owned(), 1));
            if !lines_of.contains_key(&c.0) {
                order.push(c.0.clone());
                lines_of.insert(c.0.clone(), Vec::new());
            }
            if let Some(v) = lines_of.get_mut(&c.0) {
                v.push((c.1, line.to_string()));
            }
            c.1 = c.1.saturating_add(1);
        }
    }
    // Load the files.
    let mut files: HashMap<String, FileId> = HashMap::new();
    let mut files_read: Vec<PathBuf> = Vec::new();
    for name in &order {
        let pseudo = name.starts_with('<') && name.ends_with('>');
        let path = PathBuf::from(name);
        let loaded = if pseudo {
            None
        } else {
            loader.load(&path).ok()
        };
        if !pseudo {
            files_read.push(path.clone());
        }
        let file = match loaded {
            Some(bytes) => SourceFile::new(
                name.clone(),
                Some(path),
                String::from_utf8_lossy(&bytes).into_owned(),
            ),
            None => {
                // Reconstruct what we can from the output, at the right line numbers.
                let mut t = String::new();
                let mut at = 1u32;
                for (n, l) in lines_of.get(name).map(|v| &v[..]).unwrap_or(&[]) {
                    if *n < at || *n - at > 100_000 {
                        continue;
                    }
                    while at < *n {
                        t.push('\n');
                        at += 1;
                    }
                    t.push_str(l);
                    t.push('\n');
                    at += 1;
                }
                SourceFile::new(name.clone(), None, t)
            }
        };
        files.insert(name.clone(), map.add_file(file));
    }
    // Pass 2: include chains and segments.
    let mut segments: Vec<Segment> = Vec::new();
    let mut stack: Vec<Level> = Vec::new();
    let mut ctx_cache: HashMap<(String, Option<u32>), CtxId> = HashMap::new();
    let mut out_off = 0usize;
    let fallback_name = main.to_string_lossy().into_owned();
    for line in text.split_inclusive('\n') {
        let start = out_off;
        out_off += line.len();
        let content = line.strip_suffix('\n').unwrap_or(line);
        let content = content.strip_suffix('\r').unwrap_or(content);
        if let Some(m) = parse_marker(content) {
            let name = m
                .name
                .clone()
                .or_else(|| stack.last().map(|l| l.name.clone()))
                .unwrap_or_else(|| fallback_name.clone());
            let Some(&file) = files.get(&name) else {
                continue;
            };
            if m.flags.contains(&1) {
                let included_at = stack
                    .last()
                    .map(|p| map.line_loc(p.ctx, p.line.saturating_sub(1) as usize));
                let ctx = map.add_ctx(file, included_at);
                stack.push(Level {
                    name,
                    ctx,
                    file,
                    line: m.line,
                });
            } else if m.flags.contains(&2) {
                while stack.len() > 1 && stack.last().is_some_and(|l| l.name != name) {
                    stack.pop();
                }
                match stack.last_mut() {
                    Some(l) if l.name == name => l.line = m.line,
                    _ => {
                        replace_top(&mut stack, name, file, m.line, map, &mut ctx_cache);
                    }
                }
            } else {
                match stack.last_mut() {
                    Some(l) if l.name == name => l.line = m.line,
                    _ => replace_top(&mut stack, name, file, m.line, map, &mut ctx_cache),
                }
            }
            continue;
        }
        if stack.is_empty() {
            let name = fallback_name.clone();
            let file = match files.get(&name) {
                Some(&f) => f,
                None => {
                    let f = map.add_file(SourceFile::new(name.clone(), None, String::new()));
                    files.insert(name.clone(), f);
                    f
                }
            };
            replace_top(&mut stack, name, file, 1, map, &mut ctx_cache);
        }
        let Some(top) = stack.last_mut() else {
            continue;
        };
        map_line(content, start as u32, top, map, &mut segments);
        top.line = top.line.saturating_add(1);
    }
    Preprocessed {
        text,
        segments,
        files_read,
        env_read: Vec::new(),
    }
}

fn replace_top(
    stack: &mut Vec<Level>,
    name: String,
    file: FileId,
    line: u32,
    map: &mut SourceMap,
    cache: &mut HashMap<(String, Option<u32>), CtxId>,
) {
    let parent = stack.len().checked_sub(2).and_then(|i| stack.get(i));
    let included_at = parent.map(|p| map.line_loc(p.ctx, p.line.saturating_sub(1) as usize));
    let key = (name.clone(), parent.map(|p| p.ctx.0));
    let ctx = *cache
        .entry(key)
        .or_insert_with(|| map.add_ctx(file, included_at));
    stack.pop();
    stack.push(Level {
        name,
        ctx,
        file,
        line,
    });
}

/// Adds segments for one output line: each token is looked up in the source line; tokens
/// not found map to the start of the line.
fn map_line(
    content: &str,
    out_start: u32,
    top: &Level,
    map: &SourceMap,
    segments: &mut Vec<Segment>,
) {
    if content.trim().is_empty() {
        return;
    }
    let f = map.file(top.file);
    let idx = top.line.saturating_sub(1) as usize;
    let line_start = f.line_start(idx).unwrap_or(f.text.len() as u32);
    let src = f.line_text(idx);
    let loc = |off: u32, len: u32| Loc {
        file: top.file,
        start: line_start + off,
        end: line_start + off + len,
        ctx: top.ctx,
        expansion: None,
    };
    if src == content {
        segments.push(Segment {
            out_start,
            len: content.len() as u32,
            origin: loc(0, content.len() as u32),
        });
        return;
    }
    // Look each token up in the source line, left to right.
    let mut search = 0usize;
    let mut lx = Lexer::new(Rc::new(content.to_string()));
    loop {
        let t = lx.next();
        if matches!(t.kind, RawKind::Eof | RawKind::Newline) {
            break;
        }
        let Some(word) = content.get(t.start as usize..t.end as usize) else {
            break;
        };
        let found = src
            .get(search..)
            .and_then(|s| s.find(word))
            .map(|i| i + search);
        let origin = match found {
            Some(i) => {
                search = i + word.len();
                loc(i as u32, word.len() as u32)
            }
            None => loc(0, 0),
        };
        segments.push(Segment {
            out_start: out_start + t.start,
            len: word.len() as u32,
            origin,
        });
    }
}
