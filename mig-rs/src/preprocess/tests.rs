//! Tests of the preprocessor.

use super::lexer::{Lexer, RawKind};
use super::*;
use crate::diagnostics::{Diagnostics, Severity};
use crate::source::{Loc, SourceMap};
use std::path::PathBuf;
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
        if t.starts_with('#')
            && t[1..]
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit())
        {
            continue;
        }
        let src: Rc<String> = Rc::new(line.to_string());
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

fn gcc_available() -> bool {
    std::process::Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn defs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
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
        for flag in [
            None,
            Some("SEQNOS"),
            Some("KERNEL_USER"),
            Some("KERNEL_SERVER"),
        ] {
            let mut cmd = std::process::Command::new("gcc");
            cmd.args(["-E", "-x", "c"])
                .arg(format!("-I{}", inc.display()));
            if let Some(d) = flag {
                cmd.arg(format!("-D{d}"));
            }
            let out = cmd.arg(f).output().expect("gcc runs");
            let gcc_ok = out.status.success();
            let gcc_text = String::from_utf8_lossy(&out.stdout).into_owned();

            let mut opts = PpOptions {
                include_dirs: vec![inc.clone()],
                ..Default::default()
            };
            if let Some(d) = flag {
                opts.defines.push(Define::from_d(d));
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
                let i = aw
                    .iter()
                    .zip(&bw)
                    .position(|(x, y)| x != y)
                    .unwrap_or(aw.len().min(bw.len()));
                panic!(
                    "{} ({flag:?}): token {i} differs:\n ours: {:?}\n gcc:  {:?}",
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

/// Snippets whose output must equal gcc's (token for token), when gcc is available.
const GCC_SNIPPETS: &[&str] = &[
    // C11 6.10.3.5 example 3.
    r#"#define x 3
#define f(a) f(x * (a))
#undef x
#define x 2
#define g f
#define z z[0]
#define h g(~
#define m(a) a(w)
#define w 0,1
#define t(a) a
#define p() int
#define q(x) x
#define r(x,y) x ## y
#define str(x) # x
f(y+1) + f(f(z)) % t(t(g)(0) + t)(1);
g(x+(3,4)-w) | h 5) & m
(f)^m(m);
p() i[q()] = { q(1), r(2,3), r(4,), r(,5), r(,) };
char c[2][6] = { str(hello), str() };
"#,
    // Example 4.
    r#"#define str(s) # s
#define xstr(s) str(s)
#define debug(s, t) printf("x" # s "= %d, x" # t "= %s", \
 x ## s, x ## t)
#define INCFILE(n) vers ## n
#define glue(a, b) a ## b
#define xglue(a, b) glue(a, b)
#define HIGHLOW "hello"
#define LOW LOW ", world"
debug(1, 2);
fputs(str(strncmp("abc\0d", "abc", '\4') // this goes away
 == 0) str(: @\n), s);
xstr(INCFILE(2).h)
glue(HIGH, LOW);
xglue(HIGH, LOW)
"#,
    // Example 5: placemarkers.
    r#"#define t(x,y,z) x ## y ## z
int j[] = { t(1,2,3), t(,4,5), t(6,,7), t(8,9,),
 t(10,,), t(,11,), t(,,12), t(,,) };
"#,
    // Example 7: variadic.
    r#"#define debug(...) fprintf(stderr, __VA_ARGS__)
#define showlist(...) puts(#__VA_ARGS__)
#define report(test, ...) ((test)?puts(#test):\
 printf(__VA_ARGS__))
debug("Flag");
debug("X = %d\n", x);
showlist(The first, second, and third items.);
report(x>y, "x is %d but y is %d", x, y);
"#,
    // GNU comma paste, named variadic.
    r#"#define e(fmt, ...) f(fmt, ## __VA_ARGS__)
#define n(fmt, args...) g(fmt, ## args)
e(a) e(a, b) e(a, b, c) n(x) n(x, y, z) e(a,)
"#,
    // Blue paint.
    r#"#define x x
#define a b
#define b a
#define foo foo bar
#define f(y) y f
#define g f
x a b foo f(1)(2) g(3)(4) f f(f)(f)
#define AA BB
#define BB AA CC
#define CC AA
AA BB CC
#define obj fn
#define fn(q) [q]
obj(1) obj (2) obj
(3) fn
"#,
    // MIG-style statement macros.
    r#"#define RPTDECL sreplyport reply: sreply_port_t
#define RPT RPTDECL;
#define RPTLAST ; RPTDECL
#define SCP , servercopy
#define routine simpleroutine
#define out /* empty */
routine foo(server: mach_port_t; RPT out data: int SCP RPTLAST);
"#,
    // Conditionals and expressions.
    r#"#if 1 + 2 * 3 == 7 && (1 << 4) == 16 && -1 < 0 && 0xffffffffffffffff > 0
e1
#endif
#if -1 > 0u
e2
#endif
#if (2 || 1/0) && !(0 && 1/0) && (1 ? 2 : 1/0)
e3
#endif
#if 'a' == 97 && '\n' == 10 && '\377' < 0 && '\x41' == 65
e4
#endif
#if ~0 == -1 && (-7 / 2) == -3 && (-7 % 2) == -1 && 7 >> 1 == 3 && 010 == 8
e5
#endif
#if defined X || defined(Y) || !defined __FILE__ || UNDEFINED_ID
e6
#elif 3 > 2
e7
#else
e8
#endif
#define ZERO 0
#define ONE ZERO + 1
#if ONE == 1 && (ZERO, 5) == 5 && (1 ? -1 : 0u) > 0
e9
#endif
#ifdef ONE
# ifndef ZERO
e10
# elif ZERO
e11
# else
e12
# endif
#endif
#if 0
#if garbage ((
#error not reached
#endif
#else
e13
#endif
"#,
    // Builtins and strings.
    r#"#define S(x) #x
#define XS(x) S(x)
__LINE__ XS(__LINE__) S(  a   "b\"c"   'd'  ) S('\'') __COUNTER__ __COUNTER__
S(a
b)
L'x' u8"s" U"t" .5e+3 0x1p-3 1.e10 a..b a...b x+++++y <<= >>= -> ##
"#,
    // Line splicing and comments.
    "a\\\nb /* c\n */ d // e \\\n f\ng /**/ h\n#def\\\nine SPL spliced\nSPL\n",
    // Macros spanning lines and directives inside arguments.
    r#"#define F(a, b) <a|b>
F(1,
  2) F
(3, 4)
F((x, y), [z, w])
F(,) F( , )
"#,
    // #line and __LINE__.
    "#line 100\n__LINE__\n#line 7 \"other.c\"\n__LINE__ __FILE__\n",
    // Object-like macro whose body starts with a parenthesis.
    "#define P (1)\n#define Q() 2\nP Q() Q ( ) Q\n",
    // Stringify corner cases.
    r#"#define S(...) #__VA_ARGS__
S() S( ) S(,) S( a , b ) S("\\") S('"') S(a/**/b) S(/**/a/**/)
"#,
    // Directives inside macro arguments; a name, a newline, a directive, then `(`.
    r#"#define F(a, b) <a|b>
#define G(x) {x}
F(1,
#ifdef NOPE
2
#else
3
#endif
) G
#define INSIDE 1
(INSIDE)
"#,
    // Not directives.
    "#define EMPTY\nEMPTY # define X 1\n#define H #\nH define Y 2\nX Y\n#\n# /* null */\n",
    // Pasting that makes a macro name; invalid-looking but valid pastes.
    "#define cat(a,b) a##b\n#define xy 42\ncat(x,y) cat(-,>) cat(<<,=) cat(.,5) cat(1,e) cat(L,'a') cat(,) cat(x,)\n",
    // defined produced by macro expansion; elif after a taken branch is not evaluated.
    "#define D defined(X) && defined Y\n#define X\n#define Y\n#if D\nd1\n#endif\n#if 1\nd2\n#elif 1/0\n#endif\n",
    // GNU line markers in input, comments inside directives.
    "# 33 \"foo.c\"\n__LINE__ __FILE__\n#define X 1 /* multi\n line */ + 2\nX __LINE__\n",
    // Skipped text is only scanned for directives.
    "#if 0\ndon't \"care\n#bogus directive\n#if garbage (\n#endif\n#else\nok\n#endif\n",
    // Empty function-like invocations.
    "#define f() x\n#define g(a) [a]\nf() f( ) g() g( ) g((,)) f\n",
    // Redefinition with the same body is fine; #undef.
    "#define A 1 + 2\n#define A 1   +   2\nA\n#undef A\nA\n#undef NOT_DEFINED\n",
    // Stringify arguments spanning lines and with strings.
    "#define s(x) #x\ns(\n  a\n  b  \n) s(\"a\\n\" 'b') s(@ \\ `)\n",
];

#[test]
fn matches_gcc_on_snippets() {
    if !gcc_available() {
        println!("skipped: gcc is not on PATH");
        return;
    }
    let dir = std::env::temp_dir().join(format!("mig-rs-pp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, src) in GCC_SNIPPETS.iter().enumerate() {
        let path = dir.join(format!("snippet{i}.c"));
        std::fs::write(&path, src).unwrap();
        let out = std::process::Command::new("gcc")
            .args(["-E", "-x", "c", "-P"])
            .arg(&path)
            .output()
            .unwrap();
        let gcc = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut map = SourceMap::new();
        let mut diags = Diagnostics::new();
        let pp = preprocess(
            &path,
            &PpOptions::default(),
            &mut FsLoader,
            &mut map,
            &mut diags,
        );
        assert_eq!(
            tokens(&pp.text),
            tokens(&gcc),
            "snippet {i}:\n{src}\nours:\n{}\ngcc:\n{gcc}\n{}",
            pp.text,
            diags.render(&map)
        );
        assert_eq!(
            out.status.success(),
            !diags.has_errors(),
            "snippet {i}: {}",
            diags.render(&map)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cargo test --release -p mig-rs --lib preprocess::tests::bench_mach_defs -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_mach_defs() {
    let inc = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/debian13/root/usr/include/x86_64-linux-gnu");
    if !inc.is_dir() {
        println!("skipped: {} is absent", inc.display());
        return;
    }
    let opts = PpOptions {
        include_dirs: vec![inc.clone()],
        ..Default::default()
    };
    // Preload into memory so that only preprocessing is timed.
    let mut mem = MemLoader::new();
    let mut fs_files = Vec::new();
    defs_files(&inc.join("mach"), &mut fs_files);
    for f in fs_files {
        mem.insert(f.clone(), std::fs::read(&f).unwrap());
    }
    let main = inc.join("mach/mach.defs");
    let mut best = std::time::Duration::MAX;
    let mut bytes = 0;
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    for _ in 0..iters {
        let mut map = SourceMap::new();
        let mut diags = Diagnostics::new();
        let mut l = mem.clone();
        let t = std::time::Instant::now();
        let pp = preprocess(&main, &opts, &mut l, &mut map, &mut diags);
        best = best.min(t.elapsed());
        bytes = pp.text.len();
        assert!(!diags.has_errors());
    }
    println!(
        "mach/mach.defs: {} µs (best of {iters}), {bytes} bytes of output",
        best.as_micros()
    );
    let mut map = SourceMap::new();
    let mut diags = Diagnostics::new();
    let t = std::time::Instant::now();
    let _ = preprocess(&main, &opts, &mut FsLoader, &mut map, &mut diags);
    println!(
        "mach/mach.defs with FsLoader: {} µs",
        t.elapsed().as_micros()
    );
}

/// A table-driven case: files (the first is the main file), flags, the expected output
/// tokens (joined by single spaces) and the expected diagnostics, each a substring of
/// `severity: message @ file:line:col`. Every diagnostic must be expected.
struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    flags: &'static [&'static str],
    out: &'static str,
    diags: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "empty file",
        files: &[("main.defs", "")],
        flags: &[],
        out: "",
        diags: &[],
    },
    Case {
        name: "gnumach conditional keyword, without KERNEL_USER",
        files: &[(
            "main.defs",
            "subsystem\n#if KERNEL_USER\n\t  KernelUser\n#endif\n\t\t     memory_object_default 2250;\n",
        )],
        flags: &[],
        out: "subsystem memory_object_default 2250 ;",
        diags: &[],
    },
    Case {
        name: "gnumach conditional keyword, with -DKERNEL_USER",
        files: &[(
            "main.defs",
            "subsystem\n#if KERNEL_USER\n\t  KernelUser\n#endif\n\t\t     memory_object_default 2250;\n",
        )],
        flags: &["-DKERNEL_USER"],
        out: "subsystem KernelUser memory_object_default 2250 ;",
        diags: &[],
    },
    Case {
        name: "comments, splices, literals",
        files: &[(
            "main.defs",
            "a /* x\n y */ b // c \\\n still comment\nd\\\ne 'f' \"g/*h*/i\" '\\'' L\"w\" x//\n",
        )],
        flags: &[],
        out: "a b de 'f' \"g/*h*/i\" '\\'' L\"w\" x",
        diags: &[],
    },
    Case {
        name: "directives only at line start, after white space",
        files: &[("main.defs", "  #  define A 1\n/* c */ # define B 2\nx # define C 3\nA B C\n")],
        flags: &[],
        out: "x # define C 3 1 2 C",
        diags: &[],
    },
    Case {
        name: "quoted include: includer's directory, then -I, then -isystem",
        files: &[
            ("main.defs", "#include \"sub/a.defs\"\n#include \"c.defs\"\n#include \"d.defs\"\nmain\n"),
            ("sub/a.defs", "#include \"b.defs\"\na\n"),
            ("sub/b.defs", "b_sub\n"),
            ("b.defs", "b_top\n"),
            ("inc/c.defs", "c_inc\n"),
            ("sys/c.defs", "c_sys\n"),
            ("sys/d.defs", "d_sys\n"),
        ],
        flags: &["-Iinc", "-isystemsys"],
        out: "b_sub a c_inc d_sys main",
        diags: &[],
    },
    Case {
        name: "angled include does not search the includer's directory",
        files: &[("main.defs", "#include <a.defs>\nx\n"), ("a.defs", "a\n")],
        flags: &[],
        out: "x",
        diags: &["error: <a.defs>: No such file or directory @ main.defs:1:10"],
    },
    Case {
        name: "include_next",
        files: &[
            ("main.defs", "#include <x.h>\n"),
            ("i1/x.h", "#include_next <x.h>\none\n"),
            ("i2/x.h", "#include_next <x.h>\ntwo\n"),
            ("i3/x.h", "three\n"),
        ],
        flags: &["-Ii1", "-Ii2", "-isystemi3"],
        out: "three two one",
        diags: &[],
    },
    Case {
        name: "computed includes",
        files: &[
            ("main.defs", "#define Q \"a.defs\"\n#define A <b.defs>\n#define F(x) #x\n#include Q\n#include A\n#include F(a.defs)\n"),
            ("a.defs", "a\n"),
            ("inc/b.defs", "b\n"),
        ],
        flags: &["-Iinc"],
        out: "a b a",
        diags: &[],
    },
    Case {
        name: "include guards and #pragma once",
        files: &[
            ("main.defs", "#include \"g.defs\"\n#include \"g.defs\"\n#include \"o.defs\"\n#include \"./o.defs\"\n#include \"g.defs\"\n"),
            ("g.defs", "/* guard */\n#ifndef G\n#define G\nguarded\n#endif\n"),
            ("o.defs", "#pragma once\nonce\n"),
            ("./o.defs", "#pragma once\nonce\n"),
        ],
        flags: &[],
        out: "guarded once",
        diags: &[],
    },
    Case {
        name: "object-like and function-like macros",
        files: &[("main.defs", "#define N 10\n#define F(a, b) (a + b * N)\n#define E\nF(1, 2) E F ((x), [y]) F\n")],
        flags: &[],
        out: "( 1 + 2 * 10 ) ( ( x ) + [ y ] * 10 ) F",
        diags: &[],
    },
    Case {
        name: "stringification and pasting",
        files: &[(
            "main.defs",
            "#define S(x) #x\n#define X(x) S(x)\n#define C(a, b) a ## b\n#define V 42\nS(V) X(V) S( a  \"\\n\"  'q' ) C(foo, bar) C(V, 1) C(, x) C(x, ) C(-, =)\n",
        )],
        flags: &[],
        out: "\"V\" \"42\" \"a \\\"\\\\n\\\" 'q'\" foobar V1 x x -=",
        diags: &[],
    },
    Case {
        name: "variadic macros and GNU comma paste",
        files: &[(
            "main.defs",
            "#define P(fmt, ...) p(fmt, __VA_ARGS__)\n#define Q(fmt, ...) q(fmt, ## __VA_ARGS__)\n#define R(fmt, args...) r(fmt , ##args)\nP(a, b, c) Q(a) Q(a, b) R(x) R(x, y)\n",
        )],
        flags: &[],
        out: "p ( a , b , c ) q ( a ) q ( a , b ) r ( x ) r ( x , y )",
        diags: &[],
    },
    Case {
        name: "MIG statement macros (RPT, RPTLAST, SCP, keyword renaming)",
        files: &[(
            "main.defs",
            "#define RPTDECL sreplyport reply: sreply_port_t\n#define RPT RPTDECL;\n#define RPTLAST ; RPTDECL\n#define SCP , servercopy\n#define routine simpleroutine\n#define out /* empty */\nroutine r(p: port; RPT out d: data_t SCP RPTLAST);\n",
        )],
        flags: &[],
        out: "simpleroutine r ( p : port ; sreplyport reply : sreply_port_t ; d : data_t , servercopy ; sreplyport reply : sreply_port_t ) ;",
        diags: &[],
    },
    Case {
        name: "self-referential macros terminate",
        files: &[("main.defs", "#define x x\n#define a b\n#define b a\n#define f(y) f(y) y\nx a b f(1) f(f(2))\n")],
        flags: &[],
        out: "x a b f ( 1 ) 1 f ( f ( 2 ) 2 ) f ( 2 ) 2",
        diags: &[],
    },
    Case {
        name: "redefinition with a different body warns",
        files: &[("main.defs", "#define A 1\n#define A 1\n#define A 2\nA\n")],
        flags: &[],
        out: "2",
        diags: &["warning: \"A\" redefined @ main.defs:3:9"],
    },
    Case {
        name: "-D and -U in order",
        files: &[("main.defs", "X Y Z F(1) W\n")],
        flags: &["-DX=1", "-UX", "-DY", "-DZ=a b", "-DF(x)=[x]", "-DW=0", "-DW"],
        out: "X 1 a b [ 1 ] 1",
        diags: &["warning: \"W\" redefined @ <command-line>:7:9"],
    },
    Case {
        name: "-U of a predefined macro",
        files: &[("main.defs", "#ifdef __x86_64__\nyes\n#else\nno\n#endif\n")],
        flags: &["-U__x86_64__"],
        out: "no",
        diags: &[],
    },
    Case {
        name: "predefined macros, x86_64",
        files: &[(
            "main.defs",
            "__x86_64__ __x86_64 __amd64__ __LP64__ _LP64 __SIZEOF_POINTER__ __SIZEOF_LONG__ __CHAR_BIT__ __ELF__ __GNU__ __gnu_hurd__ __MACH__ __STDC__ __STDC_VERSION__ i386 linux unix __i386__ __ILP32__\n",
        )],
        flags: &[],
        out: "1 1 1 1 1 8 8 8 1 1 1 1 1 201710L i386 linux unix __i386__ __ILP32__",
        diags: &[],
    },
    Case {
        name: "predefined macros, i386",
        files: &[(
            "main.defs",
            "__i386__ __i386 __ILP32__ __SIZEOF_POINTER__ __SIZEOF_LONG__ __GNU__ __MACH__ i386 __x86_64__ __LP64__\n#if defined(__x86_64__) || defined(__LP64__)\nwrong\n#endif\n",
        )],
        flags: &["-i386"],
        out: "1 1 1 4 4 1 1 i386 __x86_64__ __LP64__",
        diags: &[],
    },
    Case {
        name: "-imacros: macros kept, output discarded, after -D",
        files: &[
            ("main.defs", "A B C\n"),
            ("mac.h", "#define A 1\nnot output\n#ifdef C\n#define B C\n#endif\n"),
        ],
        flags: &["-DC=3", "-imacrosmac.h"],
        out: "1 3 3",
        diags: &[],
    },
    Case {
        name: "-imacros searched in -I",
        files: &[("main.defs", "M\n"), ("inc/m.h", "#define M mutated\n")],
        flags: &["-Iinc", "-imacrosm.h"],
        out: "mutated",
        diags: &[],
    },
    Case {
        name: "dynamic built-ins",
        files: &[
            ("main.defs", "__LINE__ __FILE__\n#include \"a.defs\"\n__LINE__ __COUNTER__ __COUNTER__ __INCLUDE_LEVEL__\n"),
            ("a.defs", "\n__FILE__ __LINE__ __INCLUDE_LEVEL__ __BASE_FILE__\n"),
        ],
        flags: &[],
        out: "1 \"main.defs\" \"a.defs\" 2 1 \"main.defs\" 3 0 1 0",
        diags: &[],
    },
    Case {
        name: "#if arithmetic",
        files: &[(
            "main.defs",
            "#if 1 + 2 * 3 == 7 && 10 / 3 == 3 && 10 % 3 == 1 && (1 << 62) > 0 && -1 >> 1 == -1\na\n#endif\n\
#if 0x10 == 16 && 010 == 8 && 0b11 == 3 && 10u == 10 && 5L == 5 && 7ull == 7 && 'A' == 65 && '\\0' == 0\nb\n#endif\n\
#if -1 < 0 && !(-1 < 0u) && ~0u == 18446744073709551615u && (0 ? 1 : 2) == 2 && (1, 2) == 2\nc\n#endif\n\
#if (3 & 6) == 2 && (3 | 4) == 7 && (3 ^ 1) == 2 && !0 == 1 && !5 == 0 && +3 == 3 && - -3 == 3\nd\n#endif\n\
#if 0 && 1 / 0 || 1 || 1 % 0\ne\n#endif\n\
#if UNDEFINED == 0 && (UNDEFINED + 1) == 1\nf\n#endif\n\
#if 9223372036854775807 + 0 > 0 && 0xffffffffffffffff == -1 && 18446744073709551615 == -1\ng\n#endif\n",
        )],
        flags: &[],
        out: "a b c d e f g",
        diags: &["warning: integer constant is so large that it is unsigned @ main.defs:19:64"],
    },
    Case {
        name: "#ifdef, #ifndef, #elif, #else, nesting",
        files: &[(
            "main.defs",
            "#define A\n#ifdef A\n# ifndef B\n1\n# elif 1\nx\n# else\nx\n# endif\n#elif 1/0\nx\n#else\nx\n#endif\n\
#if 0\n# if 1/0\n# error no\n# else\nx\n# endif\n#elif defined B\nx\n#elifdef A\n2\n#else\nx\n#endif\n",
        )],
        flags: &[],
        out: "1 2",
        diags: &[],
    },
    Case {
        name: "#error and #warning",
        files: &[("main.defs", "#warning careful  here\n#if 0\n#error not this\n#endif\n  #error stop \"now\"\nx\n")],
        flags: &[],
        out: "x",
        diags: &[
            "warning: #warning careful here @ main.defs:1:1",
            "error: #error stop \"now\" @ main.defs:5:3",
        ],
    },
    Case {
        name: "#line, #ident, #sccs, null directive",
        files: &[("main.defs", "#line 100\n__LINE__\n#line 7 \"x.c\"\n__LINE__ __FILE__\n#ident \"v1\"\n#sccs \"v2\"\n#\nend\n")],
        flags: &[],
        out: "100 7 \"x.c\" end",
        diags: &[],
    },
    Case {
        name: "#pragma passes through, #pragma once does not",
        files: &[("main.defs", "a\n  #  pragma weak  foo   bar\n#pragma once\nb\n")],
        flags: &[],
        out: "a # pragma weak foo bar b",
        diags: &["warning: #pragma once in main file @ main.defs:3:9"],
    },
    Case {
        name: "#pragma push_macro / pop_macro",
        files: &[("main.defs", "#define X 1\n#pragma push_macro(\"X\")\n#undef X\n#define X 2\nX\n#pragma pop_macro(\"X\")\nX\n")],
        flags: &[],
        out: "# pragma push_macro ( \"X\" ) 2 # pragma pop_macro ( \"X\" ) 1",
        diags: &[],
    },
    Case {
        name: "unknown directives: error when active, ignored when skipped",
        files: &[("main.defs", "#if 0\n#foo\n#123abc\n#endif\n#foo bar\n#!\nx\n")],
        flags: &[],
        out: "x",
        diags: &[
            "error: invalid preprocessing directive #foo @ main.defs:5:1",
            "error: invalid preprocessing directive @ main.defs:6:1",
        ],
    },
    Case {
        name: "unterminated comment",
        files: &[("main.defs", "a\n  b /* never\nclosed\n")],
        flags: &[],
        out: "a b",
        diags: &["error: unterminated comment @ main.defs:2:5"],
    },
    Case {
        name: "unterminated string and char literals",
        files: &[("main.defs", "x \"abc\ny 'f\n#if 0\nit's skipped\n#endif\n")],
        flags: &[],
        out: "x \"abc y 'f",
        diags: &[
            "error: missing terminating \" character @ main.defs:1:3",
            "error: missing terminating ' character @ main.defs:2:3",
            "warning: missing terminating ' character @ main.defs:4:3",
        ],
    },
    Case {
        name: "missing include file",
        files: &[("main.defs", "\n  #include \"nope.defs\"\nafter\n")],
        flags: &["-Iinc"],
        out: "after",
        diags: &["error: \"nope.defs\": No such file or directory @ main.defs:2:12"],
    },
    Case {
        name: "recursive include",
        files: &[("main.defs", "#include \"a.defs\"\n"), ("a.defs", "\n#include \"a.defs\"\n")],
        flags: &[],
        out: "",
        diags: &["error: #include nested depth 200 exceeds maximum of 200 @ a.defs:2:1"],
    },
    Case {
        name: "#define syntax errors",
        files: &[(
            "main.defs",
            "#define\n#define 3 x\n#define defined\n#define f(x x\n#define g(x,x) x\n#define h(x) #y\n#define i ## x\n#define j x ##\n#define k(x\n#define l(,) x\n#define m(... x) x\n#define n+1\n#undef\n#undef 4\n#undef A B\nok\n",
        )],
        flags: &[],
        out: "ok",
        diags: &[
            "error: no macro name given in #define directive @ main.defs:1:8",
            "error: macro names must be identifiers @ main.defs:2:9",
            "error: \"defined\" cannot be used as a macro name @ main.defs:3:9",
            "error: expected ',' or ')', found \"x\" @ main.defs:4:13",
            "error: duplicate macro parameter \"x\" @ main.defs:5:13",
            "error: '#' is not followed by a macro parameter @ main.defs:6:14",
            "error: '##' cannot appear at either end of a macro expansion @ main.defs:7:11",
            "error: '##' cannot appear at either end of a macro expansion @ main.defs:8:13",
            "error: missing ')' in macro parameter list @ main.defs:9:10",
            "error: expected parameter name, found \",\" @ main.defs:10:11",
            "error: expected ')' after \"...\" @ main.defs:11:15",
            "warning: missing whitespace after the macro name @ main.defs:12:10",
            "error: no macro name given in #undef directive @ main.defs:13:7",
            "error: macro names must be identifiers @ main.defs:14:8",
            "warning: extra tokens at end of #undef directive @ main.defs:15:10",
        ],
    },
    Case {
        name: "#include syntax errors",
        files: &[("main.defs", "#include\n#include \"\"\n#include foo\n#include <a.defs\n#include \"a.defs\" junk\nok\n"), ("a.defs", "a\n")],
        flags: &[],
        out: "a ok",
        diags: &[
            "error: #include expects \"FILENAME\" or <FILENAME> @ main.defs:1:1",
            "error: empty filename in #include @ main.defs:2:10",
            "error: #include expects \"FILENAME\" or <FILENAME> @ main.defs:3:10",
            "error: missing terminating > character @ main.defs:4:10",
            "warning: extra tokens at end of #include directive @ main.defs:5:19",
        ],
    },
    Case {
        name: "#if expression errors",
        files: &[(
            "main.defs",
            "#if\n#endif\n#if 1 +\n#endif\n#if (1\n#endif\n#if 1/0\n#endif\n#if 1 2\n#endif\n#if \"s\"\n#endif\n#if 1.0\n#endif\n#if 08\n#endif\n#if 1 ? 2\n#endif\n#if defined\n#endif\n#if defined(X\n#endif\n#if 0x\n#endif\n#if 1abc\n#endif\n#if ''\n#endif\n#if 1 = 1\n#endif\n#if )\n#endif\n#if 5 % (2 - 2)\n#endif\nok\n",
        )],
        flags: &[],
        out: "ok",
        diags: &[
            "error: #if with no expression @ main.defs:1:4",
            "error: operator '+' has no right operand @ main.defs:3:7",
            "error: missing ')' in expression @ main.defs:5:5",
            "error: division by zero in #if @ main.defs:7:6",
            "error: missing binary operator before token \"2\" @ main.defs:9:7",
            "error: token \"\"s\"\" is not valid in preprocessor expressions @ main.defs:11:5",
            "error: floating constant in preprocessor expression @ main.defs:13:5",
            "error: invalid digit \"8\" in octal constant @ main.defs:15:5",
            "error: '?' without following ':' @ main.defs:17:",
            "error: operator \"defined\" requires an identifier @ main.defs:19:5",
            "error: missing ')' after \"defined\" @ main.defs:21:13",
            "error: invalid suffix \"x\" on integer constant @ main.defs:23:5",
            "error: invalid suffix \"abc\" on integer constant @ main.defs:25:5",
            "error: empty character constant @ main.defs:27:5",
            "error: token \"=\" is not valid in preprocessor expressions @ main.defs:29:7",
            "error: missing '(' in expression @ main.defs:31:5",
            "error: division by zero in #if @ main.defs:33:7",
        ],
    },
    Case {
        name: "conditional structure errors",
        files: &[("main.defs", "#else\n#endif\n#elif 1\n#if 1\n#else\n#else\n#endif\n#ifdef\n#endif\n#ifndef 3\n#endif\n#if 1\n#else junk\n#endif junk\nx\n#if 1\n# ifdef Y\n")],
        flags: &[],
        out: "x",
        diags: &[
            "error: #else without #if @ main.defs:1:1",
            "error: #endif without #if @ main.defs:2:1",
            "error: #elif without #if @ main.defs:3:1",
            "error: #else after #else @ main.defs:6:1",
            "error: no macro name given in #ifdef directive @ main.defs:8:7",
            "error: macro names must be identifiers @ main.defs:10:9",
            "warning: extra tokens at end of #else directive @ main.defs:13:7",
            "warning: extra tokens at end of #endif directive @ main.defs:14:8",
            "error: unterminated #ifdef @ main.defs:17:1",
            "error: unterminated #if @ main.defs:16:1",
        ],
    },
    Case {
        name: "macro invocation errors",
        files: &[("main.defs", "#define f(x) [x]\n#define g(x, y) x\n#define c(a, b) a ## b\nf(1, 2) g(1) c(+, /) f()\nf(unterminated\n")],
        flags: &[],
        out: "f g + / [ ] f",
        diags: &[
            "error: macro \"f\" passed 2 arguments, but takes just 1 @ main.defs:4:1",
            "error: macro \"g\" requires 2 arguments, but only 1 given @ main.defs:4:9",
            "error: pasting \"+\" and \"/\" does not give a valid preprocessing token @ main.defs:4:16",
            "error: unterminated argument list invoking macro \"f\" @ main.defs:5:1",
        ],
    },
    Case {
        name: "#line errors",
        files: &[("main.defs", "#line x\n#line 5 foo\n#line\nok\n")],
        flags: &[],
        out: "ok",
        diags: &[
            "error: \"x\" after #line is not a positive integer @ main.defs:1:7",
            "error: invalid filename \"foo\" @ main.defs:2:9",
            "error: unexpected end of line after #line @ main.defs:3:6",
        ],
    },
    Case {
        name: "NUL bytes are ignored with a warning",
        files: &[("main.defs", "a\0b\n")],
        flags: &[],
        out: "a b",
        diags: &["warning: null character(s) ignored @ main.defs:1:2"],
    },
    Case {
        name: "directives inside macro arguments",
        files: &[("main.defs", "#define f(x, y) <x|y>\nf(1,\n#ifdef NOPE\n2\n#else\n3\n#endif\n)\n")],
        flags: &[],
        out: "< 1 | 3 >",
        diags: &[],
    },
    Case {
        name: "#include inside macro arguments is refused",
        files: &[("main.defs", "#define f(x) x\nf(1\n#include \"a.defs\"\n)\n"), ("a.defs", "a\n")],
        flags: &[],
        out: "1",
        diags: &["error: #include inside macro arguments is not supported @ main.defs:3:1"],
    },
    Case {
        name: "-D with a bad name",
        files: &[("main.defs", "ok\n")],
        flags: &["-D3=4", "-U5"],
        out: "ok",
        diags: &[
            "error: macro names must be identifiers @ <command-line>:1:9",
            "error: macro names must be identifiers @ <command-line>:2:8",
        ],
    },
    Case {
        name: "GNU extensions and their warnings",
        files: &[
            (
                "main.defs",
                "#define f(x) x __VA_ARGS__\n#import \"a.defs\"\n#import \"a.defs\"\n#assert machine(x86)\nf(1) \"a\0b\" c\\  \nd\n",
            ),
            ("a.defs", "imported\n"),
        ],
        flags: &[],
        out: "imported 1 __VA_ARGS__ \"a\0b\" cd",
        diags: &[
            "warning: __VA_ARGS__ can only appear in the expansion of a C99 variadic macro @ main.defs:1:16",
            "warning: #import is a deprecated GCC extension @ main.defs:2:1",
            "warning: #import is a deprecated GCC extension @ main.defs:3:1",
            "warning: #assert is a deprecated GCC extension; ignored @ main.defs:4:1",
            "warning: null character(s) preserved in literal @ main.defs:5:8",
            "warning: backslash and newline separated by space @ main.defs:5:13",
        ],
    },
    Case {
        name: "#elif, #else and #endif in skipped groups are only counted",
        files: &[("main.defs", "#if 0\n#if garbage (\n#elif 1/0\n#else junk\n#endif junk\n#elif 1\nyes\n#endif\n")],
        flags: &[],
        out: "yes",
        diags: &[],
    },
    Case {
        name: "-imacros file missing",
        files: &[("main.defs", "ok\n")],
        flags: &["-imacrosnope.h"],
        out: "ok",
        diags: &["error: -imacros nope.h: No such file or directory @ "],
    },
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for c in CASES {
        let r = run(c.files, c.flags);
        let got = tokens(&r.pp.text);
        let diags = diag_lines(&r);
        let mut problems = Vec::new();
        if got != c.out {
            problems.push(format!("output:\n  got:      {got}\n  expected: {}", c.out));
        }
        for e in c.diags {
            if !diags.iter().any(|d| d.contains(e)) {
                problems.push(format!("missing diagnostic: {e}"));
            }
        }
        for d in &diags {
            if !c.diags.iter().any(|e| d.contains(e)) {
                problems.push(format!("unexpected diagnostic: {d}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {:?}:\n{}\ntext:\n{}",
                c.name,
                problems.join("\n"),
                r.pp.text.chars().take(1500).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn output_text_and_line_markers() {
    let r = run(
        &[
            (
                "main.defs",
                "a\n#include \"b.defs\"\nc\n\n\n\n\n\n\n\n\n\n\n  d e\n#line 50 \"z.defs\"\nz\n",
            ),
            ("b.defs", "#define M m1  m2\n\tb   M\n"),
        ],
        &[],
    );
    assert!(!r.diags.has_errors());
    let expected = "# 1 \"main.defs\"\na\n# 1 \"b.defs\" 1\n\n\tb m1  m2\n# 3 \"main.defs\" 2\nc\n# 14 \"main.defs\"\n  d e\n# 50 \"z.defs\"\nz\n";
    assert_eq!(r.pp.text, expected);
    // Files read, in order.
    assert_eq!(
        r.pp.files_read,
        vec![PathBuf::from("main.defs"), PathBuf::from("b.defs")]
    );
    assert!(r.pp.env_read.is_empty());
}

/// Checks that every segment without a macro expansion maps to identical source text.
fn check_segments(r: &Run) {
    let mut prev_end = 0;
    for s in &r.pp.segments {
        assert!(s.out_start >= prev_end, "segments overlap or are unsorted");
        prev_end = s.out_start + s.len;
        let out = &r.pp.text[s.out_start as usize..(s.out_start + s.len) as usize];
        let f = r.map.file(s.origin.file);
        if let Some(src) = f
            .text
            .get(s.origin.start as usize..(s.origin.start + s.len) as usize)
        {
            if s.origin.expansion.is_none() && !out.starts_with('"') {
                assert_eq!(out, src, "segment {s:?}");
            }
        }
    }
}

/// The origin of the first occurrence of `word` in the output.
fn origin_of(r: &Run, word: &str) -> Loc {
    let off =
        r.pp.text
            .find(word)
            .unwrap_or_else(|| panic!("{word} not in output"));
    r.pp.origin(off as u32)
        .unwrap_or_else(|| panic!("{word} has no origin"))
}

#[test]
fn include_chains_and_expansion_chains() {
    let r = run(
        &[
            ("main.defs", "#include \"a.defs\"\n#define B bx by\n#define A B az\nA\n#include \"a.defs\"\n#define F(p) [p] B\nF(arg)\n"),
            ("a.defs", "#include \"b.defs\"\nqa\n"),
            ("b.defs", "  tok_b\n"),
        ],
        &[],
    );
    assert!(!r.diags.has_errors(), "{}", r.diags.render(&r.map));
    check_segments(&r);
    // Include chain: b.defs included from a.defs included from main.defs.
    let t = origin_of(&r, "tok_b");
    assert_eq!(r.map.describe(t), "b.defs:1:3");
    let chain: Vec<String> = r
        .map
        .include_chain(t.ctx)
        .iter()
        .map(|l| r.map.describe(*l))
        .collect();
    assert_eq!(chain, ["a.defs:1:1", "main.defs:1:1"]);
    // One context per #include: the second inclusion of a.defs has its own chain.
    let second = r.pp.text.rfind("tok_b").unwrap();
    let t2 = r.pp.origin(second as u32).unwrap();
    assert_ne!(t.ctx, t2.ctx);
    let chain2: Vec<String> = r
        .map
        .include_chain(t2.ctx)
        .iter()
        .map(|l| r.map.describe(*l))
        .collect();
    assert_eq!(chain2, ["a.defs:1:1", "main.defs:5:1"]);
    // Expansion chain of `bx`: B (called from A's body), then A (called at main.defs:4:1).
    let bx = origin_of(&r, "bx");
    assert_eq!(r.map.describe(bx), "main.defs:2:11");
    let chain = r.map.expansion_chain(bx);
    let names: Vec<&str> = chain.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["B", "A"]);
    assert_eq!(r.map.describe(chain[0].call_site), "main.defs:3:11");
    assert_eq!(r.map.describe(chain[0].def_site.unwrap()), "main.defs:2:9");
    assert_eq!(r.map.describe(chain[1].call_site), "main.defs:4:1");
    assert_eq!(r.map.describe(chain[1].def_site.unwrap()), "main.defs:3:9");
    assert!(chain[1].call_site.expansion.is_none());
    let az = origin_of(&r, "az");
    assert_eq!(r.map.expansion_chain(az).len(), 1);
    // A macro argument keeps its own location; the body tokens are in the expansion.
    let arg = origin_of(&r, "arg");
    assert_eq!(r.map.describe(arg), "main.defs:7:3");
    assert!(arg.expansion.is_none());
    let bracket = r.pp.origin(r.pp.text.rfind('[').unwrap() as u32).unwrap();
    assert_eq!(r.map.describe(bracket), "main.defs:6:14");
    assert_eq!(r.map.expansion_chain(bracket)[0].name, "F");
    // Rendering shows the include chain and the expansions.
    let d = crate::diagnostics::Diagnostic::error("test").at(bx);
    let text = crate::diagnostics::render(&d, &r.map);
    assert!(text.contains("in this expansion of macro `A`"), "{text}");
}

#[test]
fn redefinition_points_at_previous_definition() {
    let r = run(&[("main.defs", "#define A 1\n#define A 2\n")], &[]);
    let d = r.diags.iter().next().unwrap();
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(r.map.describe(d.secondary[0].loc), "main.defs:1:9");
}

#[test]
fn missing_include_names_the_search_path() {
    let r = run(
        &[(
            "dir/main.defs",
            "#include <nope.defs>\n#include \"nope2.defs\"\n",
        )],
        &["-Iinc1", "-isystemsys"],
    );
    let ds: Vec<_> = r.diags.iter().collect();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds[0].message, "<nope.defs>: No such file or directory");
    assert_eq!(ds[0].notes, ["searched in: inc1, sys"]);
    assert_eq!(ds[1].message, "\"nope2.defs\": No such file or directory");
    assert_eq!(ds[1].notes, ["searched in: dir, inc1, sys"]);
    assert_eq!(r.map.describe(ds[1].primary.unwrap()), "dir/main.defs:2:10");
}

#[test]
fn non_utf8_is_reported_at_the_replacement_character() {
    let r = run_opts(
        &[
            ("main.defs", b"ok\n#include \"b.defs\"\n"),
            ("b.defs", b"ab\xe9\xff cd\nx \xfe\n"),
        ],
        &PpOptions::default(),
    );
    let d = diag_lines(&r);
    assert_eq!(d, ["error: invalid UTF-8 in source file @ b.defs:1:3"]);
    let t = tokens(&r.pp.text);
    assert_eq!(t, "ok ab \u{fffd} \u{fffd} cd x \u{fffd}");
    // The location is the replacement character in the SourceFile text.
    let loc = r.diags.iter().next().unwrap().primary.unwrap();
    assert_eq!(
        &r.map.file(loc.file).text[loc.start as usize..loc.end as usize],
        "\u{fffd}"
    );
}

#[test]
fn empty_main_file_gives_empty_output() {
    for text in [
        "",
        "\n\n",
        "/* only a comment */\n",
        "#define X\n#if 0\nx\n#endif\n",
    ] {
        let r = run(&[("main.defs", text)], &[]);
        assert_eq!(r.pp.text, "", "{text:?}");
        assert!(r.pp.segments.is_empty());
        assert!(r.diags.is_empty());
    }
}

#[test]
fn unreadable_main_file() {
    let mut map = SourceMap::new();
    let mut diags = Diagnostics::new();
    let pp = preprocess(
        Path::new("nope.defs"),
        &PpOptions::default(),
        &mut MemLoader::new(),
        &mut map,
        &mut diags,
    );
    assert_eq!(pp.text, "");
    assert_eq!(pp.files_read, [PathBuf::from("nope.defs")]);
    let d: Vec<_> = diags.iter().collect();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].message.starts_with("cannot read nope.defs"),
        "{}",
        d[0].message
    );
    assert!(d[0].primary.is_none());
}

#[test]
fn deep_conditional_nesting() {
    let n = 10_000;
    let mut s = String::new();
    for i in 0..n {
        s.push_str(if i % 2 == 0 {
            "#if 1\n"
        } else {
            "#ifdef __GNU__\n"
        });
    }
    s.push_str("inside\n");
    for _ in 0..n {
        s.push_str("#endif\n");
    }
    s.push_str("#if 0\n");
    for _ in 0..n {
        s.push_str("#if 1\n");
    }
    s.push_str("skipped\n");
    for _ in 0..n {
        s.push_str("#else\n#endif\n");
    }
    s.push_str("#endif\nafter\n");
    let r = run(&[("main.defs", &s)], &[]);
    assert!(r.diags.is_empty(), "{:?}", diag_lines(&r));
    assert_eq!(tokens(&r.pp.text), "inside after");
    // Unterminated: one error per open group, at its #if.
    let mut s = String::from("x\n");
    for _ in 0..n {
        s.push_str("#if 1\n");
    }
    let r = run(&[("main.defs", &s)], &[]);
    let d = diag_lines(&r);
    assert_eq!(d.len(), n);
    assert_eq!(
        d[0],
        format!("error: unterminated #if @ main.defs:{}:1", n + 1)
    );
    assert_eq!(d[n - 1], "error: unterminated #if @ main.defs:2:1");
}

#[test]
fn deep_expression_nesting() {
    let ok = format!("#if {}1{}\nyes\n#endif\n", "(".repeat(200), ")".repeat(200));
    let r = run(&[("main.defs", &ok)], &[]);
    assert!(r.diags.is_empty(), "{:?}", diag_lines(&r));
    assert_eq!(tokens(&r.pp.text), "yes");
    for deep in [
        format!(
            "#if {}1{}\nyes\n#endif\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
        format!("#if {}1\nyes\n#endif\n", "- ".repeat(100_000)),
        format!("#if {}1\nyes\n#endif\n", "1 ? ".repeat(100_000)),
        format!("#if {}\nyes\n#endif\n", "(".repeat(100_000)),
    ] {
        let r = run(&[("main.defs", &deep)], &[]);
        let d = diag_lines(&r);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].contains("#if expression nested too deeply (more than 256 levels) @ main.defs:1:"),
            "{d:?}"
        );
        assert_eq!(tokens(&r.pp.text), "");
    }
}

#[test]
fn deep_macro_argument_nesting() {
    let ok = format!("#define f(x) x\n{}1{}\n", "f(".repeat(150), ")".repeat(150));
    let r = run(&[("main.defs", &ok)], &[]);
    assert!(r.diags.is_empty(), "{:?}", diag_lines(&r));
    assert_eq!(tokens(&r.pp.text), "1");
    let deep = format!("#define f(x) x\n{}1{}\n", "f(".repeat(300), ")".repeat(300));
    let r = run(&[("main.defs", &deep)], &[]);
    let d = diag_lines(&r);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with("error: macro invocations nested too deeply in macro arguments (more than 200 levels) @ main.defs:2:"),
        "{d:?}"
    );
    // Much deeper: the work bound stops it first.
    let deep = format!(
        "#define f(x) x\n{}1{}\n",
        "f(".repeat(100_000),
        ")".repeat(100_000)
    );
    let t = std::time::Instant::now();
    let r = run(&[("main.defs", &deep)], &[]);
    assert_fast(t, "deep arguments");
    let d = diag_lines(&r);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with("error: macro expansion produces too many tokens"),
        "{d:?}"
    );
    // Deep parentheses that are not invocations are fine.
    let parens = format!(
        "#define f(x) x\nf({}1{})\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let r = run(&[("main.defs", &parens)], &[]);
    assert!(r.diags.is_empty());
}

#[test]
fn long_macro_chains_and_self_reference() {
    // A chain of 20 000 object-like macros: a deep (heap) context stack, no recursion.
    let mut s = String::new();
    let n = 20_000;
    for i in 0..n {
        s.push_str(&format!("#define m{i} m{}\n", i + 1));
    }
    s.push_str(&format!("#define m{n} end\nm0 m0\n"));
    let r = run(&[("main.defs", &s)], &[]);
    assert!(r.diags.is_empty());
    assert_eq!(tokens(&r.pp.text), "end end");
    // Mutual recursion stops.
    let r = run(&[("main.defs", "#define a b c\n#define b a d\na b\n")], &[]);
    assert_eq!(tokens(&r.pp.text), "a d c b c d");
}

fn assert_fast(start: std::time::Instant, what: &str) {
    let t = start.elapsed();
    assert!(t < std::time::Duration::from_secs(20), "{what} took {t:?}");
}

#[test]
fn exponential_macros_are_bounded() {
    let mut s = String::from("#define a0 x x\n");
    for i in 1..64 {
        s.push_str(&format!("#define a{i} a{} a{}\n", i - 1, i - 1));
    }
    s.push_str("a63\n");
    let t = std::time::Instant::now();
    let r = run(&[("main.defs", &s)], &[]);
    assert_fast(t, "object-like blow-up");
    let d = diag_lines(&r);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with("error: macro expansion produces too many tokens"),
        "{d:?}"
    );
    assert!(d[0].contains("@ main.defs:"), "{d:?}");

    let s = format!(
        "#define f(x) x x x x\n{}1{}\n",
        "f(".repeat(60),
        ")".repeat(60)
    );
    let t = std::time::Instant::now();
    let r = run(&[("main.defs", &s)], &[]);
    assert_fast(t, "function-like blow-up");
    assert!(diag_lines(&r)[0].starts_with("error: macro expansion produces too many tokens"));

    // Stringification and pasting of big arguments.
    let s = format!(
        "#define s(x) #x #x #x #x\n#define t(x) s(x) s(x) s(x) s(x)\n#define u(x) t(x) t(x) t(x) t(x)\n#define v(x) u(x) u(x) u(x) u(x)\n#define w(x) v(x) v(x) v(x) v(x)\nw({})\n",
        "a ".repeat(100_000)
    );
    let t = std::time::Instant::now();
    let r = run(&[("main.defs", &s)], &[]);
    assert_fast(t, "stringify blow-up");
    assert!(r.diags.has_errors());
    assert!(r.pp.text.len() < 600 << 20);
}

#[test]
fn exponential_includes_are_bounded() {
    let mut files: Vec<(String, String)> = vec![("main.defs".into(), "#include \"f0.h\"\n".into())];
    for i in 0..40 {
        files.push((
            format!("f{i}.h"),
            format!("x{i}\n#include \"f{0}.h\"\n#include \"f{0}.h\"\n", i + 1),
        ));
    }
    files.push(("f40.h".into(), "leaf\n".into()));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let t = std::time::Instant::now();
    let r = run(&files, &[]);
    assert_fast(t, "include blow-up");
    let d = diag_lines(&r);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].starts_with("error: too much included text"), "{d:?}");
}

#[test]
fn one_megabyte_lines() {
    let mut s = String::new();
    s.push_str(&"tok ".repeat(250_000));
    s.push('\n');
    s.push_str("/*");
    s.push_str(&"c".repeat(1 << 20));
    s.push_str("*/ after_comment \"");
    s.push_str(&"s".repeat(1 << 20));
    s.push_str("\" #define_not\n#define BIG ");
    s.push_str(&"b ".repeat(1 << 19));
    s.push_str("\nBIG BIG\n");
    s.push_str(&"x".repeat(1 << 20));
    s.push('\n');
    let t = std::time::Instant::now();
    let r = run(&[("main.defs", &s)], &[]);
    assert_fast(t, "1 MB lines");
    assert!(r.diags.is_empty(), "{:?}", diag_lines(&r));
    let toks = tokens(&r.pp.text);
    assert_eq!(toks.split(' ').filter(|w| *w == "tok").count(), 250_000);
    assert_eq!(toks.split(' ').filter(|w| *w == "b").count(), 1 << 20);
    assert!(toks.contains("after_comment"));
}

#[test]
fn many_files_and_includes_are_linear() {
    // 500 guarded headers, each included 20 times: the guard optimization skips them.
    let mut files: Vec<(String, String)> = Vec::new();
    let mut main = String::new();
    for rep in 0..20 {
        for i in 0..500 {
            main.push_str(&format!("#include \"h{i}.h\"\n"));
            if rep == 0 {
                files.push((
                    format!("h{i}.h"),
                    format!("#ifndef H{i}\n#define H{i}\nh{i}\n#endif\n"),
                ));
            }
        }
    }
    files.insert(0, ("main.defs".into(), main));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let t = std::time::Instant::now();
    let r = run(&files, &[]);
    assert_fast(t, "includes");
    assert!(r.diags.is_empty());
    assert_eq!(tokens(&r.pp.text).split(' ').count(), 500);
    assert_eq!(r.pp.files_read.len(), 501);
}

/// Output invariants that hold for any input.
fn check_invariants(r: &Run) {
    let mut prev_end = 0u32;
    for seg in &r.pp.segments {
        assert!(
            seg.out_start >= prev_end,
            "unsorted or overlapping segments"
        );
        assert!(seg.len > 0);
        prev_end = seg.out_start + seg.len;
        assert!(prev_end as usize <= r.pp.text.len());
        assert!(r.pp.text.is_char_boundary(seg.out_start as usize));
        assert!(r.pp.text.is_char_boundary(prev_end as usize));
        let f = r.map.file(seg.origin.file);
        assert!(seg.origin.start as usize <= f.text.len());
        let _ = r.map.describe(seg.origin);
        let _ = r.map.include_chain(seg.origin.ctx);
        let _ = r.map.expansion_chain(seg.origin);
    }
    for d in r.diags.iter() {
        if let Some(l) = d.primary {
            assert!(l.start as usize <= r.map.file(l.file).text.len());
        }
    }
    let _ = r.diags.render(&r.map);
}

/// Pieces of preprocessor input, glued at random.
const SOUP: &[&str] = &[
    "#if ",
    "#ifdef X\n",
    "#ifndef Y\n",
    "#elif ",
    "#else\n",
    "#endif\n",
    "#define X ",
    "#define Y(a, ...) ",
    "#define F(a,b) a##b #a\n",
    "#undef X\n",
    "#include \"main.defs\"\n",
    "#include \"b.h\"\n",
    "#include <b.h>\n",
    "#include X\n",
    "#line 3\n",
    "#line 9 \"f\"\n",
    "#pragma once\n",
    "#pragma x\n",
    "#error e\n",
    "#warning w\n",
    "#\n",
    "# 5 \"q\"\n",
    "#include_next <b.h>\n",
    "#import \"b.h\"\n",
    "defined",
    "defined(X)",
    "X",
    "Y",
    "F",
    "(",
    ")",
    ",",
    "...",
    "__VA_ARGS__",
    "##",
    "#",
    "1",
    "0x1f",
    "'a'",
    "'",
    "\"s\"",
    "\"",
    "/*",
    "*/",
    "//",
    "\\\n",
    "\n",
    " ",
    "\t",
    "\0",
    "\u{fffd}",
    "é",
    "1/0",
    "?",
    ":",
    "-",
    "<<",
    "__LINE__",
    "__FILE__",
    "__COUNTER__",
    "Y(1,2)",
    "F(x,y)",
    "F(",
    "Y(",
    "routine",
    "<",
    ">",
    "%:",
    "%:%:",
    "\r\n",
    "1.5",
    "08",
    "~",
    "!",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    #[test]
    fn random_bytes_never_panic(a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
                                b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..500)) {
        let mut main = a.clone();
        main.extend_from_slice(b"\n#include \"b.h\"\n");
        main.extend_from_slice(&a);
        let r = run_opts(&[("main.defs", &main), ("b.h", &b), ("inc/b.h", &a)], &opts_from(&["-Iinc", "-DX=1", "-DF(x)=#x"]));
        check_invariants(&r);
    }

    #[test]
    fn directive_soup_never_panics(main in proptest::collection::vec(0..SOUP.len(), 0..300),
                                   inc in proptest::collection::vec(0..SOUP.len(), 0..100)) {
        let main: String = main.iter().map(|&i| SOUP[i]).collect();
        let inc: String = inc.iter().map(|&i| SOUP[i]).collect();
        let t = std::time::Instant::now();
        let r = run(&[("main.defs", &main), ("b.h", &inc), ("inc/b.h", &inc)], &["-Iinc", "-imacrosb.h"]);
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "slow: {main:?}");
        check_invariants(&r);
    }
}

#[test]
fn invariants_on_gnumach_defs() {
    let inc = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/debian13/root/usr/include/x86_64-linux-gnu");
    let mut files = Vec::new();
    defs_files(&inc, &mut files);
    for f in files {
        let opts = PpOptions {
            include_dirs: vec![inc.clone()],
            ..Default::default()
        };
        let mut map = SourceMap::new();
        let mut diags = Diagnostics::new();
        let pp = preprocess(&f, &opts, &mut FsLoader, &mut map, &mut diags);
        let r = Run { pp, map, diags };
        check_invariants(&r);
        check_segments(&r);
    }
}

#[test]
fn external_output_is_mapped_through_line_markers() {
    let out = "# 0 \"main.defs\"\n# 0 \"<built-in>\"\n# 0 \"<command-line>\"\n# 1 \"/usr/include/stdc-predef.h\" 1 3 4\n# 0 \"<command-line>\" 2\n# 1 \"main.defs\"\nsubsystem foo 1;\n# 1 \"inc.defs\" 1\ntype t =  int;\n# 3 \"main.defs\" 2\n\n  routine r(x: t);\n# 1 \"gone.defs\" 1\n\nlost line\n# 5 \"main.defs\" 2\n";
    let mut loader = MemLoader::new()
        .with("main.defs", "subsystem foo 1;\n#include \"inc.defs\"\n\n  routine r(x: t);\n#include \"gone.defs\"\n")
        .with("inc.defs", "type t = int;\n");
    let mut map = SourceMap::new();
    let pp = external::from_cpp_output(
        out.to_string(),
        Path::new("main.defs"),
        &mut loader,
        &mut map,
    );
    let r = Run {
        pp,
        map,
        diags: Diagnostics::new(),
    };
    check_invariants(&r);
    assert_eq!(r.pp.text, out);
    assert_eq!(
        r.pp.files_read,
        [
            "main.defs",
            "/usr/include/stdc-predef.h",
            "inc.defs",
            "gone.defs"
        ]
        .map(PathBuf::from)
    );
    let t = origin_of(&r, "subsystem");
    assert_eq!(r.map.describe(t), "main.defs:1:1");
    assert!(r.map.include_chain(t.ctx).is_empty());
    // A line that matches its source maps column for column; others word by word.
    let t = origin_of(&r, "int");
    assert_eq!(r.map.describe(t), "inc.defs:1:10");
    let chain: Vec<String> = r
        .map
        .include_chain(t.ctx)
        .iter()
        .map(|l| r.map.describe(*l))
        .collect();
    assert_eq!(chain, ["main.defs:2:1"]);
    assert_eq!(r.map.describe(origin_of(&r, "routine")), "main.defs:4:3");
    assert_eq!(r.map.describe(origin_of(&r, "r(x:")), "main.defs:4:11");
    // An unreadable file is reconstructed from the output, at the right line.
    let t = origin_of(&r, "lost");
    assert_eq!(r.map.describe(t), "gone.defs:2:1");
}

#[test]
fn external_gcc() {
    if !gcc_available() {
        println!("skipped: gcc is not on PATH");
        return;
    }
    let dir = std::env::temp_dir().join(format!("mig-rs-pp-ext-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("inc")).unwrap();
    let main = dir.join("main.defs");
    std::fs::write(&main, "subsystem x 1;\n#include <t.defs>\n#define R(n) routine n(p: t)\nR(one);\n#ifdef EXTRA\nR(two);\n#endif\n").unwrap();
    std::fs::write(
        dir.join("inc/t.defs"),
        "#ifndef T\n#define T\n  type t = int;\n#endif\n",
    )
    .unwrap();
    let mut opts = opts_from(&["-DEXTRA", "-DUNUSED=1", "-UUNUSED"]);
    opts.include_dirs.push(dir.join("inc"));
    let mut map = SourceMap::new();
    let mut diags = Diagnostics::new();
    let internal = preprocess(&main, &opts, &mut FsLoader, &mut map, &mut diags);
    assert!(diags.is_empty());
    opts.external = Some("gcc -E -x c".into());
    let mut map = SourceMap::new();
    let mut diags = Diagnostics::new();
    let pp = preprocess(&main, &opts, &mut FsLoader, &mut map, &mut diags);
    assert!(diags.is_empty(), "{}", diags.render(&map));
    assert_eq!(tokens(&pp.text), tokens(&internal.text));
    assert!(pp.files_read.contains(&main));
    assert!(pp.files_read.contains(&dir.join("inc").join("t.defs")));
    let r = Run { pp, map, diags };
    check_invariants(&r);
    let t = origin_of(&r, "type");
    assert!(
        r.map.describe(t).ends_with("inc/t.defs:3:3"),
        "{}",
        r.map.describe(t)
    );
    let chain = r.map.include_chain(t.ctx);
    assert_eq!(chain.len(), 1);
    assert!(
        r.map.describe(chain[0]).ends_with("main.defs:2:1"),
        "{}",
        r.map.describe(chain[0])
    );
    let t = origin_of(&r, "two");
    assert!(
        r.map.describe(t).ends_with("main.defs:6:3"),
        "{}",
        r.map.describe(t)
    );

    // Failure: an error with the preprocessor's messages.
    std::fs::write(&main, "#error broken here\n").unwrap();
    let mut map = SourceMap::new();
    let mut diags = Diagnostics::new();
    let _ = preprocess(&main, &opts, &mut FsLoader, &mut map, &mut diags);
    let d: Vec<_> = diags.iter().collect();
    assert_eq!(d.len(), 1);
    assert!(d[0].is_error());
    assert!(
        d[0].message
            .starts_with("the external preprocessor `gcc -E -x c` failed"),
        "{}",
        d[0].message
    );
    assert!(
        d[0].notes.iter().any(|n| n.contains("broken here")),
        "{:?}",
        d[0].notes
    );

    // A command that cannot run.
    opts.external = Some("/nonexistent/cpp -E".into());
    let mut diags = Diagnostics::new();
    let _ = preprocess(&main, &opts, &mut FsLoader, &mut map, &mut diags);
    assert!(diags
        .iter()
        .next()
        .unwrap()
        .message
        .starts_with("cannot run the external preprocessor `/nonexistent/cpp -E`"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn define_options() {
    assert_eq!(Define::from_d("FOO"), Define::Set("FOO".into(), None));
    assert_eq!(
        Define::from_d("FOO=bar=baz"),
        Define::Set("FOO".into(), Some("bar=baz".into()))
    );
    assert_eq!(
        Define::from_d("F(x)=x"),
        Define::Set("F(x)".into(), Some("x".into()))
    );
    assert_eq!(
        Define::from_d("E="),
        Define::Set("E".into(), Some(String::new()))
    );
    assert_eq!(Define::from_d("F(x)=x").to_flag(), "-DF(x)=x");
    assert_eq!(Define::Set("A".into(), None).to_flag(), "-DA");
    assert_eq!(Define::Unset("A".into()).to_flag(), "-UA");
    let r = run(&[("main.defs", "[E] [NL]\n")], &["-DE=", "-DNL=a\nb"]);
    assert_eq!(tokens(&r.pp.text), "[ ] [ a b ]");
    let o = opts_from(&["-DA=1", "-UB", "-Ii", "-isystems", "-imacrosm.h"]);
    let args: Vec<String> = external::cpp_args(&o)
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args,
        ["-DA=1", "-UB", "-I", "i", "-isystem", "s", "-imacros", "m.h"]
    );
}

#[test]
fn lexer_punctuators_and_tokens() {
    let src = "a<<=b>>=c...d..e->f++g--h<<i>>j<=k>=l==m!=n&&o||p*=q/=r%=s+=t-=u&=v^=w|=x##y<:z:><%%>%:%:%:#.5.e+1 0x1p-3 L'a' u8\"s\" $id é x@`\\";
    let mut lx = Lexer::new(Rc::new(src.to_string()));
    let mut v = Vec::new();
    loop {
        let t = lx.next();
        if t.kind == RawKind::Eof {
            break;
        }
        v.push(&src[t.start as usize..t.end as usize]);
    }
    assert_eq!(
        v,
        [
            "a", "<<=", "b", ">>=", "c", "...", "d", ".", ".", "e", "->", "f", "++", "g", "--",
            "h", "<<", "i", ">>", "j", "<=", "k", ">=", "l", "==", "m", "!=", "n", "&&", "o", "||",
            "p", "*=", "q", "/=", "r", "%=", "s", "+=", "t", "-=", "u", "&=", "v", "^=", "w", "|=",
            "x", "##", "y", "<:", "z", ":>", "<%", "%>", "%:%:", "%:", "#", ".5.e+1", "0x1p-3",
            "L'a'", "u8\"s\"", "$id", "é", "x", "@", "`", "\\"
        ]
    );
    assert!(lx.problems.is_empty());
}

/// Compares with gcc on every .defs under `$PP_CORPUS` (with `-I` for each directory in
/// `$PP_INCLUDE`, colon-separated, and gcc's own system directories as `-isystem`), with and
/// without the flags in `$PP_FLAGS` (space-separated `-D`/`-U`). For corpora not in the
/// repository, e.g. the Hurd's .defs.
#[test]
#[ignore]
fn compare_with_gcc_on_corpus() {
    let Ok(corpus) = std::env::var("PP_CORPUS") else {
        println!("set PP_CORPUS");
        return;
    };
    let incs: Vec<PathBuf> = std::env::var("PP_INCLUDE")
        .unwrap_or_default()
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    let flags: Vec<String> = std::env::var("PP_FLAGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    // gcc's system include directories.
    let out = std::process::Command::new("gcc")
        .args(["-E", "-x", "c", "-v", "/dev/null"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let sys: Vec<PathBuf> = err
        .lines()
        .skip_while(|l| !l.starts_with("#include <...>"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .map(|l| PathBuf::from(l.trim()))
        .collect();
    let mut files = Vec::new();
    defs_files(Path::new(&corpus), &mut files);
    let (mut same, mut differ) = (0, 0);
    for f in &files {
        for with_flags in [false, true] {
            let mut cmd = std::process::Command::new("gcc");
            cmd.args(["-E", "-x", "c"]);
            for i in &incs {
                cmd.arg(format!("-I{}", i.display()));
            }
            let mut opts = PpOptions {
                include_dirs: incs.clone(),
                system_dirs: sys.clone(),
                ..Default::default()
            };
            if with_flags {
                cmd.args(&flags);
                for fl in &flags {
                    if let Some(d) = fl.strip_prefix("-D") {
                        opts.defines.push(Define::from_d(d));
                    } else if let Some(u) = fl.strip_prefix("-U") {
                        opts.defines.push(Define::Unset(u.into()));
                    }
                }
            }
            let out = cmd.arg(f).output().unwrap();
            let gcc = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut map = SourceMap::new();
            let mut diags = Diagnostics::new();
            let pp = preprocess(f, &opts, &mut FsLoader, &mut map, &mut diags);
            let (a, b) = (tokens(&pp.text), tokens(&gcc));
            if a == b && out.status.success() != diags.has_errors() {
                same += 1;
            } else {
                differ += 1;
                let aw: Vec<&str> = a.split(' ').collect();
                let bw: Vec<&str> = b.split(' ').collect();
                let i = aw
                    .iter()
                    .zip(&bw)
                    .position(|(x, y)| x != y)
                    .unwrap_or(aw.len().min(bw.len()));
                println!(
                    "DIFF {} flags={with_flags} gcc_ok={} ours_ok={}: token {i}\n ours: {:?}\n gcc:  {:?}\n{}{}",
                    f.display(),
                    out.status.success(),
                    !diags.has_errors(),
                    &aw[i.saturating_sub(5)..(i + 8).min(aw.len())],
                    &bw[i.saturating_sub(5)..(i + 8).min(bw.len())],
                    diags.render(&map).lines().take(6).collect::<Vec<_>>().join("\n"),
                    String::from_utf8_lossy(&out.stderr).lines().take(3).collect::<Vec<_>>().join("\n"),
                );
            }
        }
    }
    println!("{same} same, {differ} differ");
}
