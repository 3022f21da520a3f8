//! The `mig-rs` command line: options, outputs, exit status, and "nothing is written when
//! there are errors".

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn defs(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/defs")
        .join(rel)
}

/// A fresh, empty scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn mig_rs(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mig-rs"))
        .current_dir(dir)
        .env_remove("CPP")
        .args(args)
        .output()
        .expect("run mig-rs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn help_explains_every_flag() {
    let dir = scratch("help");
    let o = mig_rs(&dir, &["--help"]);
    assert!(o.status.success());
    let h = stdout(&o);
    for flag in [
        "-user",
        "-server",
        "-header",
        "-sheader",
        "-iheader",
        "-list",
        "-n",
        "-q",
        "-Q",
        "-v",
        "-V",
        "-s",
        "-S",
        "-r",
        "-prefix",
        "-subrprefix",
        "-i PREFIX",
        "-MD",
        "-cc",
        "-D",
        "-U",
        "-I",
        "-imacros",
        "-isystem",
        "--target",
        "--help",
        "--version",
        "CPP",
        "/dev/null",
    ] {
        assert!(h.contains(flag), "--help does not mention {flag}");
    }
    for default in [
        "<subsystem>_user.rs",
        "<subsystem>_server.rs",
        "<subsystem>.rs",
    ] {
        assert!(
            h.contains(default),
            "--help does not name the default {default}"
        );
    }
    assert!(listing(&dir).is_empty());
}

#[test]
fn version() {
    let o = mig_rs(&scratch("version"), &["--version"]);
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("mig-rs "), "{}", stdout(&o));
    assert!(stdout(&o).contains("GNU MIG 1.8+git20231217"));
}

#[test]
fn bad_command_lines_exit_1() {
    let dir = scratch("bad-args");
    let good = defs("good/routines.defs");
    for args in [
        &[][..],
        &["-x", s(&good)],
        &["-undef", s(&good)],
        &["-list"],
        &["-n", "-list", "out", "-T", s(&good)],
        &["-R", s(&good)],
        &["--target", "sparc", s(&good)],
        &["-D", "", s(&good)],
        &["-migcom", "x", s(&good)],
        &["-", s(&good)],
    ] {
        let o = mig_rs(&dir, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains("error"), "{args:?}: {}", stderr(&o));
    }
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
}

#[test]
fn list_output() {
    let dir = scratch("list");
    let o = mig_rs(
        &dir,
        &["-n", "-list", "out.list", s(&defs("good/routines.defs"))],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("out.list")).expect("list"),
        "routines 5000 first 0 5000 5100\n\
         routines 5000 second 1 5001 0\n\
         routines 5000 fourth 3 5003 5103\n\
         routines 5000 eighth 7 5007 0\n\
         routines 5000 ninth 8 5008 5108\n\
         routines 5000 tenth 9 5009 5109\n"
    );
    assert_eq!(listing(&dir), ["out.list"], "no temporary files left");
}

#[test]
fn quiet_silences_warnings() {
    let dir = scratch("quiet");
    let file = defs("good/warn_sizes.defs");
    let loud = mig_rs(&dir, &["-n", s(&file)]);
    assert!(loud.status.success());
    assert!(stderr(&loud).contains("warning: IPC type decl has strange size"));
    assert!(
        stderr(&loud).contains("warn_sizes.defs:6:18"),
        "{}",
        stderr(&loud)
    );
    let quiet = mig_rs(&dir, &["-n", "-q", s(&file)]);
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "");
    // -Q after -q turns them back on.
    let again = mig_rs(&dir, &["-n", "-q", "-Q", s(&file)]);
    assert!(stderr(&again).contains("warning"));
}

#[test]
fn errors_write_nothing() {
    let dir = scratch("errors");
    std::fs::write(dir.join("out.list"), "old contents\n").expect("write");
    let o = mig_rs(
        &dir,
        &[
            "-n",
            "-MD",
            "-list",
            "out.list",
            s(&defs("bad/type_redefinition.defs")),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("overriding previous definition of my_t"), "{e}");
    assert!(e.contains("type_redefinition.defs:5:6"), "{e}");
    assert!(e.contains("no file was written"), "{e}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out.list")).expect("list"),
        "old contents\n"
    );
    assert_eq!(listing(&dir), ["out.list"]);

    // One bad file among good ones: nothing is written for the good ones either.
    let o = mig_rs(
        &dir,
        &[
            "-n",
            "-MD",
            "-list",
            "new.list",
            s(&defs("good/routines.defs")),
            s(&defs("bad/no_args.defs")),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Routine empty doesn't have a server port argument"));
    assert_eq!(listing(&dir), ["out.list"]);

    // A missing input file.
    let o = mig_rs(&dir, &["-n", "-list", "x.list", "no-such-file.defs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no-such-file.defs"), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["out.list"]);

    // An output that cannot be written: nothing else is written either.
    let o = mig_rs(
        &dir,
        &[
            "-n",
            "-MD",
            "-list",
            "no/such/dir/x.list",
            s(&defs("good/routines.defs")),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["out.list"]);
}

#[test]
fn preprocessor_flags_in_every_form() {
    let dir = scratch("cpp-flags");
    let file = defs("bad/error_directive.defs"); // needs REQUIRED_MACRO
    for d in [
        &["-DREQUIRED_MACRO"][..],
        &["-D", "REQUIRED_MACRO"],
        &["-DREQUIRED_MACRO=2"],
        &["-D", "REQUIRED_MACRO=2"],
    ] {
        let mut args = d.to_vec();
        args.extend(["-n", s(&file)]);
        let o = mig_rs(&dir, &args);
        assert!(o.status.success(), "{d:?}: {}", stderr(&o));
    }
    // -U after -D undoes it; flags may come after the file.
    let o = mig_rs(
        &dir,
        &["-n", s(&file), "-DREQUIRED_MACRO", "-UREQUIRED_MACRO"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("REQUIRED_MACRO must be defined"));
    let o = mig_rs(
        &dir,
        &[
            "-n",
            "-D",
            "REQUIRED_MACRO",
            "-U",
            "REQUIRED_MACRO",
            s(&file),
        ],
    );
    assert_eq!(o.status.code(), Some(1));

    // -I DIR and -IDIR: a file that includes <types.defs>.
    let inc = defs("include");
    std::fs::write(
        dir.join("uses_include.defs"),
        "subsystem uses_include 10;\n#include <types.defs>\nroutine r(s: mach_port_t);\n",
    )
    .expect("write");
    let o = mig_rs(&dir, &["-n", "uses_include.defs"]);
    assert_eq!(o.status.code(), Some(1));
    let o = mig_rs(&dir, &["-n", "-I", s(&inc), "uses_include.defs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = mig_rs(
        &dir,
        &["-n", &format!("-I{}", s(&inc)), "uses_include.defs"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = mig_rs(&dir, &["-n", "-isystem", s(&inc), "uses_include.defs"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // -imacros: the macros of a file, before the input.
    std::fs::write(
        dir.join("macros.h"),
        "#define REQUIRED_MACRO 1\nnot emitted\n",
    )
    .expect("write");
    let o = mig_rs(&dir, &["-n", "-imacros", "macros.h", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn depfile() {
    let dir = scratch("depfile");
    let file = defs("good/routines.defs");
    let o = mig_rs(&dir, &["-n", "-MD", "-list", "r.list", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["r.list", "routines-mig.d"]);
    let d = std::fs::read_to_string(dir.join("routines-mig.d")).expect("depfile");
    assert!(d.starts_with("r.list:"), "{d}");
    assert!(d.contains(s(&file)), "{d}");
    assert!(d.contains("include/types.defs"), "{d}");
    // No outputs: no depfile (with a warning).
    let dir = scratch("depfile-none");
    let o = mig_rs(&dir, &["-n", "-MD", s(&file)]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("no dependency file"), "{}", stderr(&o));
    assert!(listing(&dir).is_empty());
}

#[test]
fn options_without_effect_warn() {
    let dir = scratch("no-effect");
    let file = defs("good/routines.defs");
    let o = mig_rs(
        &dir,
        &[
            "-n",
            "-sheader",
            "s.h",
            "-iheader",
            "i.h",
            "-s",
            "-S",
            "-r",
            "-subrprefix",
            "__",
            "-i",
            "./__",
            s(&file),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.matches("not applicable to Rust output").count(), 5, "{e}");
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    let o = mig_rs(&dir, &["-q", "-n", "-sheader", "s.h", s(&file)]);
    assert_eq!(stderr(&o), "");
}

#[test]
fn verbose_dump_and_target() {
    let dir = scratch("verbose");
    let file = defs("good/directions.defs");
    let o = mig_rs(&dir, &["-n", "-v", s(&file)]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("subsystem directions 3000 (target x86_64"),
        "{out}"
    );
    assert!(
        out.contains("routine all_directions #0 id 3000 reply 3100"),
        "{out}"
    );
    assert!(out.contains("request: 80 bytes"), "{out}");
    let o = mig_rs(&dir, &["-n", "-v", "--target", "i386", s(&file)]);
    assert!(stdout(&o).contains("(target i386"), "{}", stdout(&o));
    assert!(stdout(&o).contains("request: 52 bytes"), "{}", stdout(&o));
    let o = mig_rs(&dir, &["-n", "-v", "-V", s(&file)]);
    assert_eq!(stdout(&o), "");
    let o = mig_rs(&dir, &["-n", "-v", "-prefix", "p_", s(&file)]);
    assert!(stdout(&o).contains("(user p_all_directions, server p_all_directions)"));
    assert!(stdout(&o).contains("demux p_directions_server"));
}

#[test]
fn dev_null_outputs_skip_code_generation() {
    let dir = scratch("dev-null");
    let o = mig_rs(
        &dir,
        &[
            "-user",
            "/dev/null",
            "-server",
            "/dev/null",
            "-header",
            "/dev/null",
            "-list",
            "l",
            s(&defs("good/routines.defs")),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(&dir), ["l"]);
}

/// Without `-n` the default outputs are generated: either code generation works and
/// writes `<subsystem>_user.rs`, `<subsystem>_server.rs` and `<subsystem>.rs`, or it fails
/// with a clear message and nothing (not even the `-list` file) is written.
#[test]
fn default_outputs_or_clear_failure() {
    let dir = scratch("defaults");
    let o = mig_rs(&dir, &["-list", "l", s(&defs("good/routines.defs"))]);
    if o.status.success() {
        assert_eq!(
            listing(&dir),
            ["l", "routines.rs", "routines_server.rs", "routines_user.rs"]
        );
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("code generation failed"),
            "{}",
            stderr(&o)
        );
        assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    }
}

#[test]
fn external_preprocessor() {
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("SKIP: no gcc for the external preprocessor test");
        return;
    }
    let dir = scratch("external-cpp");
    let file = defs("good/routines.defs");
    let inc = format!("-I{}", s(&defs("include")));
    let builtin = mig_rs(&dir, &["-n", "-list", "builtin.list", s(&file)]);
    assert!(builtin.status.success());
    let o = Command::new(env!("CARGO_BIN_EXE_mig-rs"))
        .current_dir(&dir)
        .env("CPP", "gcc -E -x c")
        .args(["-n", &inc, "-list", "env.list", s(&file)])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = mig_rs(
        &dir,
        &[
            "-cc",
            "gcc -E -x c",
            "-n",
            &inc,
            "-list",
            "cc.list",
            s(&file),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect(n);
    assert_eq!(read("builtin.list"), read("env.list"));
    assert_eq!(read("builtin.list"), read("cc.list"));
    // An external preprocessor's errors are errors.
    let o = mig_rs(&dir, &["-cc", "false", "-n", "-list", "f.list", s(&file)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.join("f.list").exists());
}

#[test]
fn special_files_and_links_are_written_through() {
    let dir = scratch("special");
    let file = defs("good/routines.defs");
    // /dev/stdout is not replaced: the list goes to standard output.
    let o = mig_rs(&dir, &["-n", "-list", "/dev/stdout", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("routines 5000 first 0 5000 5100\n"),
        "{}",
        stdout(&o)
    );
    assert!(std::fs::symlink_metadata("/dev/stdout").is_ok());
    // A symbolic link keeps pointing at the file it names, which gets the output.
    std::fs::write(dir.join("real.list"), "old\n").expect("write");
    std::os::unix::fs::symlink("real.list", dir.join("link.list")).expect("symlink");
    let o = mig_rs(&dir, &["-n", "-list", "link.list", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(dir.join("link.list"))
        .expect("link")
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(dir.join("real.list"))
        .expect("real")
        .starts_with("routines 5000 first"));
    assert_eq!(listing(&dir), ["link.list", "real.list"]);
}
