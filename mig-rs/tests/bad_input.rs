//! Hostile and broken input through the whole front end (preprocessor, lexer, parser,
//! checker, diagnostics rendering): every case must end with a located error (or, for the
//! empty file, the plain "no SubSystem declaration"), in bounded time, without a panic or a
//! stack overflow. Each case runs in its own thread with a 1 MB stack and must finish
//! within [`LIMIT`] (a generous bound: nothing is measured, a hang fails).

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mig_rs::driver::{compile_with, Options};
use mig_rs::preprocess::MemLoader;

const LIMIT: Duration = Duration::from_secs(20);
const STACK: usize = 1024 * 1024;
const MAIN: &str = "/bad/main.defs";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// At least one error with a primary location, rendered as `file:line:col`.
    Located,
    /// Exactly the "no SubSystem declaration" error.
    NoSubsystem,
    /// No error, but a located warning (what GCC's preprocessor also just warns about).
    Warned,
}

struct Outcome {
    errors: usize,
    located: bool,
    warned: bool,
    rendered: String,
    elapsed: Duration,
}

/// Compiles `main` (plus `others`) in a thread with a small stack, under a time limit.
fn run(name: &str, main: Vec<u8>, others: Vec<(&'static str, Vec<u8>)>) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let thread_name = name.to_string();
    std::thread::Builder::new()
        .name(thread_name)
        .stack_size(STACK)
        .spawn(move || {
            let start = Instant::now();
            let mut loader = MemLoader::new().with(MAIN, main);
            for (p, c) in others {
                loader.insert(p, c);
            }
            let opts = Options {
                include_dirs: vec!["/bad/inc".into()],
                ..Options::default()
            };
            let comp = compile_with(Path::new(MAIN), &opts, &mut loader);
            let rendered = comp.render_diagnostics();
            let located = comp
                .diags
                .iter()
                .any(|d| d.is_error() && d.primary.is_some());
            let warned = comp.diags.iter().any(|d| {
                d.severity == mig_rs::diagnostics::Severity::Warning && d.primary.is_some()
            });
            let _ = tx.send(Outcome {
                errors: comp.diags.error_count(),
                located,
                warned,
                rendered,
                elapsed: start.elapsed(),
            });
        })
        .expect("spawn");
    match rx.recv_timeout(LIMIT) {
        Ok(o) => o,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: did not finish within {LIMIT:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name}: the front end panicked"),
    }
}

/// Whether `text` shows a `main.defs:LINE:COL` (or included file) location.
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

fn check(name: &str, main: impl Into<Vec<u8>>, expect: Expect) {
    check_with(name, main, vec![], expect)
}

fn check_with(
    name: &str,
    main: impl Into<Vec<u8>>,
    others: Vec<(&'static str, Vec<u8>)>,
    expect: Expect,
) {
    let o = run(name, main.into(), others);
    let head: String = o.rendered.chars().take(1500).collect();
    match expect {
        Expect::Located => {
            assert!(o.errors > 0, "{name}: no error");
            assert!(
                o.located && has_location(&o.rendered),
                "{name}: error without a location:\n{head}"
            );
        }
        Expect::Warned => {
            assert_eq!(o.errors, 0, "{name}:\n{head}");
            assert!(
                o.warned && has_location(&o.rendered),
                "{name}: no located warning:\n{head}"
            );
        }
        Expect::NoSubsystem => {
            assert_eq!(o.errors, 1, "{name}:\n{head}");
            assert!(
                o.rendered.contains("no SubSystem declaration"),
                "{name}:\n{head}"
            );
        }
    }
    eprintln!("{name}: {} errors in {:?}", o.errors, o.elapsed);
}

const HEAD: &str = "subsystem bad 100;\ntype int32_t = MACH_MSG_TYPE_INTEGER_32;\ntype mach_port_t = MACH_MSG_TYPE_COPY_SEND;\n";

#[test]
fn empty_file() {
    check("empty file", "", Expect::NoSubsystem);
    check("only blanks", " \n\t\n\n", Expect::NoSubsystem);
    check(
        "only a comment",
        "/* nothing */\n// here\n",
        Expect::NoSubsystem,
    );
}

#[test]
fn unterminated_comments_and_strings() {
    check(
        "unterminated comment",
        format!("{HEAD}/* never closed\nroutine r(s: mach_port_t);\n"),
        Expect::Located,
    );
    check(
        "unterminated comment at end without newline",
        format!("{HEAD}/*"),
        Expect::Located,
    );
    check(
        "unterminated import string",
        format!("{HEAD}import \"never_closed.h;\nroutine r(s: mach_port_t);\n"),
        Expect::Located,
    );
    check(
        "unterminated rcsid string",
        format!("{HEAD}rcsid \"abc;\n"),
        Expect::Located,
    );
    check(
        "unterminated char literal",
        format!("{HEAD}type t = array['a] of int32_t;\n"),
        Expect::Located,
    );
    check(
        "unterminated string in #if",
        format!("{HEAD}#if \"abc\n#endif\n"),
        Expect::Located,
    );
    check(
        "unterminated bracket include",
        format!("{HEAD}#include <never_closed.defs\n"),
        Expect::Located,
    );
}

#[test]
fn recursive_includes() {
    check(
        "file including itself",
        format!("{HEAD}#include \"main.defs\"\n"),
        Expect::Located,
    );
    check_with(
        "two files including each other",
        format!("{HEAD}#include <a.defs>\n"),
        vec![
            ("/bad/inc/a.defs", b"#include <b.defs>\n".to_vec()),
            ("/bad/inc/b.defs", b"#include <a.defs>\n".to_vec()),
        ],
        Expect::Located,
    );
    check(
        "include of a missing file",
        format!("{HEAD}#include <nowhere/none.defs>\n"),
        Expect::Located,
    );
    check(
        "include without a file name",
        format!("{HEAD}#include\n#include 42\n"),
        Expect::Located,
    );
}

#[test]
fn self_referential_and_exploding_macros() {
    // Legal C (the name is not expanded again), so the result is a MIG syntax error.
    check(
        "self-referential macro",
        format!("#define subsystem subsystem subsystem\n{HEAD}"),
        Expect::Located,
    );
    check(
        "mutually recursive macros",
        format!("{HEAD}#define a b\n#define b a\nroutine a(s: mach_port_t);\ntype x = a;\n"),
        Expect::Located,
    );
    check(
        "recursive function-like macro",
        format!("{HEAD}#define f(x) f(x) f(x)\ntype t = f(f(f(1)));\n"),
        Expect::Located,
    );
    // 2^40 tokens if expanded naively: must hit a bound.
    let mut s = String::from(HEAD);
    for i in 0..40 {
        s.push_str(&format!("#define m{i} m{} m{}\n", i + 1, i + 1));
    }
    s.push_str("#define m40 x\ntype t = m0;\n");
    check("exponential macro expansion", s, Expect::Located);
    check(
        "macro with unterminated argument list",
        format!("{HEAD}#define f(x) x\ntype t = f(int32_t;\n"),
        Expect::Located,
    );
    check(
        "bad macro definitions",
        format!("{HEAD}#define\n#define 1abc\n#define f(x\n#define g(x,x) x\n#undef\n"),
        Expect::Located,
    );
}

#[test]
fn conditional_garbage() {
    for (name, text) in [
        ("#if without expression", "#if\n#endif\n"),
        ("#if dangling operator", "#if 1 +\n#endif\n"),
        ("#if open parenthesis", "#if (1\n#endif\n"),
        ("#if division by zero", "#if 1 / 0\n#endif\n"),
        ("#if modulo by zero", "#if 1 % 0\n#endif\n"),
        ("#if defined without name", "#if defined\n#endif\n"),
        ("#if garbage characters", "#if @ $ `\n#endif\n"),
        ("#if string", "#if \"s\"\n#endif\n"),
        ("#elif without #if", "#elif 1\n"),
        ("#else without #if", "#else\n"),
        ("#endif without #if", "#endif\n"),
        ("#else after #else", "#if 0\n#else\n#else\n#endif\n"),
        ("#elif after #else", "#if 0\n#else\n#elif 1\n#endif\n"),
        ("unterminated #if", "#if 1\n"),
        ("unterminated #ifdef in skipped code", "#if 0\n#ifdef X\n"),
        ("#ifdef without name", "#ifdef\n#endif\n"),
        ("unknown directive", "#frobnicate\n"),
        ("#error", "#error stop here\n"),
        ("#line garbage", "#line abc\n"),
    ] {
        check(name, format!("{HEAD}{text}"), Expect::Located);
    }
    // GCC only warns ("integer constant is too large for its type").
    check(
        "#if huge number",
        format!("{HEAD}#if 99999999999999999999999999\n#endif\n"),
        Expect::Warned,
    );
}

#[test]
fn numbers_past_32_bits() {
    check(
        "subsystem base",
        "subsystem big 4294967296;\n",
        Expect::Located,
    );
    check(
        "skip count",
        format!("{HEAD}skip 99999999999999999999;\n"),
        Expect::Located,
    );
    check(
        "array size",
        format!("{HEAD}type t = array[18446744073709551616] of int32_t;\n"),
        Expect::Located,
    );
    check(
        "IPC type size",
        format!("{HEAD}type t = (MACH_MSG_TYPE_INTEGER_8, 4294967296);\n"),
        Expect::Located,
    );
    // Fits in 32 bits, but the product does not: GNU MIG wraps; mig-rs must not panic.
    check(
        "overflowing products",
        format!(
            "{HEAD}type t = array[65536 * 65536 * 65536] of int32_t;\n\
             type u = array[4294967295] of int32_t;\n\
             type v = array[*:4294967295] of int32_t;\n\
             routine r(s: mach_port_t; a: u; b: v);\n\
             type w = (MACH_MSG_TYPE_INTEGER_32, 4294967295);\n"
        ),
        Expect::Located,
    );
}

#[test]
fn deep_nesting() {
    const N: usize = 10_000;
    let parens = format!(
        "{HEAD}type t = array[{}1{}] of int32_t;\nsyntax error here\n",
        "(".repeat(N),
        ")".repeat(N)
    );
    check(
        "10000 parentheses in an array size",
        parens,
        Expect::Located,
    );
    check(
        "10000 unclosed parentheses",
        format!("{HEAD}type t = array[{}1] of int32_t;\n", "(".repeat(N)),
        Expect::Located,
    );
    check(
        "10000 nested array types",
        format!("{HEAD}type t = {}int32_t;\n", "array[1] of ".repeat(N)),
        Expect::Located,
    );
    check(
        "10000 pointer types",
        format!("{HEAD}type t = {}int32_t;\n", "^".repeat(N)),
        Expect::Located,
    );
    check(
        "10000 struct arrays",
        format!("{HEAD}type t = {}int32_t;\n", "struct[1] of ".repeat(N)),
        Expect::Located,
    );
    check(
        "10000 nested #if",
        format!(
            "{HEAD}{}type t = x;\n{}",
            "#if 1\n".repeat(N),
            "#endif\n".repeat(N)
        ),
        Expect::Located,
    );
    check(
        "10000 nested skipped #if",
        format!(
            "{HEAD}#if 0\n{}{}#endif\ntype t = x;\n",
            "#if 1\n".repeat(N),
            "#endif\n".repeat(N)
        ),
        Expect::Located,
    );
    check(
        "10000 parentheses in #if",
        format!(
            "{HEAD}#if {}1{}\ntype t = x;\n#endif\n",
            "(".repeat(N),
            ")".repeat(N)
        ),
        Expect::Located,
    );
    check(
        "10000 unary operators in #if",
        format!("{HEAD}#if {}1\ntype t = x;\n#endif\n", "-!~+".repeat(N / 4)),
        Expect::Located,
    );
    let mut chain = String::from(HEAD);
    chain.push_str("#define m0 x\n");
    for i in 1..N {
        chain.push_str(&format!("#define m{i} m{}\n", i - 1));
    }
    chain.push_str(&format!("type t = m{};\n", N - 1));
    check("10000 chained macros", chain, Expect::Located);
    check(
        "10000 nested macro arguments",
        format!(
            "{HEAD}#define f(x) x\ntype t = {}x{};\n",
            "f(".repeat(N),
            ")".repeat(N)
        ),
        Expect::Located,
    );
    check(
        "10000 parentheses in a routine",
        format!("{HEAD}routine r{};\n", "(".repeat(N)),
        Expect::Located,
    );
    check(
        "10000 braces",
        format!("{HEAD}type t = struct {};\n", "{".repeat(N)),
        Expect::Located,
    );
    // A chain of 10000 include files, each including the next.
    let mut files = Vec::new();
    const NAMES: usize = 10_000;
    let names: Vec<&'static str> = (0..NAMES)
        .map(|i| &*Box::leak(format!("/bad/inc/f{i}.defs").into_boxed_str()))
        .collect();
    for (i, n) in names.iter().enumerate() {
        let body = if i + 1 < NAMES {
            format!("#include <f{}.defs>\n", i + 1)
        } else {
            "type deepest = x;\n".to_string()
        };
        files.push((*n, body.into_bytes()));
    }
    check_with(
        "10000 nested includes",
        format!("{HEAD}#include <f0.defs>\n"),
        files,
        Expect::Located,
    );
}

#[test]
fn non_utf8_bytes() {
    let mut s = HEAD.as_bytes().to_vec();
    s.extend_from_slice(b"type t\xff\xfe = int32_t;\n");
    check("invalid UTF-8 in a name", s, Expect::Located);
    let mut s = HEAD.as_bytes().to_vec();
    s.extend_from_slice(b"/* \xc3\x28 in a comment */ routine r(s: mach_port_t; x: \x80);\n");
    check(
        "invalid UTF-8 in a comment and an argument",
        s,
        Expect::Located,
    );
    let mut s = HEAD.as_bytes().to_vec();
    s.extend_from_slice(b"type t = int32_t;\x00\x00\x00\nroutine r(s: mach_port_t);\n");
    // GCC ignores NUL characters with a warning.
    check("NUL bytes", s, Expect::Warned);
    check_with(
        "invalid UTF-8 in an included file",
        format!("{HEAD}#include <bin.defs>\n"),
        vec![(
            "/bad/inc/bin.defs",
            vec![0xff, 0x00, 0x80, b'\n', 0xc0, 0xaf],
        )],
        Expect::Located,
    );
    // Pseudo-random bytes (a fixed linear congruential sequence).
    let mut x: u32 = 12345;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let mut s = HEAD.as_bytes().to_vec();
    s.extend_from_slice(&bytes);
    check("100 kB of random bytes", s, Expect::Located);
}

#[test]
fn one_megabyte_lines() {
    const MB: usize = 1 << 20;
    check(
        "1 MB identifier",
        format!("{HEAD}type {} = nosuch;\n", "a".repeat(MB)),
        Expect::Located,
    );
    check(
        "1 MB of empty statements, then an error",
        format!("{HEAD}{}type t = nosuch;", ";".repeat(MB)),
        Expect::Located,
    );
    check(
        "1 MB comment line, then an error",
        format!("{HEAD}/*{}*/ type t = nosuch;\n", "x".repeat(MB)),
        Expect::Located,
    );
    check(
        "1 MB macro body",
        format!(
            "{HEAD}#define BIG {}\ntype t = BIG;\n",
            "int32_t ".repeat(MB / 8)
        ),
        Expect::Located,
    );
    check(
        "1 MB number",
        format!("{HEAD}skip {};\n", "9".repeat(MB)),
        Expect::Located,
    );
    check(
        "1 MB string",
        format!("{HEAD}rcsid \"{}\";\ntype t = nosuch;\n", "s".repeat(MB)),
        Expect::Located,
    );
    check(
        "1 MB of line splices",
        format!("{HEAD}type t = {}nosuch;\n", "\\\n".repeat(MB / 2)),
        Expect::Located,
    );
}
