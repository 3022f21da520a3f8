//! The Builder's rebuild tracking, end to end (in the manner of cbindgen's depfile test):
//! a throw-away Cargo project whose build script runs `mig_rs::Builder` on a `.defs` file
//! that `#include`s another one is built several times, and a marker file the build script
//! appends to tells how often it ran.
//!
//! 1. first build: the script runs, the generated stubs compile (`include_defs!`);
//! 2. second build, nothing changed: the script does not run;
//! 3. an unrelated file of the package changes: the script does not run (the rerun lines
//!    replaced Cargo's whole-package scan);
//! 4. the *included* `.defs` changes: the script runs again;
//! 5. the included `.defs` gets an error: the build fails with the `file:line:col` report.
//!
//! A second project does the same for the `#[mig_rs::interface]` attribute, whose
//! `include_bytes!` tracking must make rustc recompile the crate when the included `.defs`
//! changes, and only then.
//!
//! The projects live under `CARGO_TARGET_TMPDIR`, outside the workspace, with its own target
//! directory (kept between runs, so only the first run compiles mig-rs) and a copy of the
//! workspace's `Cargo.lock`; `cargo build --offline` never touches the network or the outer
//! build's lock.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const MAIN_DEFS: &str = "\
/* The interface of the build-script test. */
subsystem probe 4500;
#include <probe_types.defs>
routine ping(server : mach_port_t; x : int32_t; out y : int32_t);
";

const TYPES_DEFS: &str = "\
type int32_t = MACH_MSG_TYPE_INTEGER_32;
type mach_port_t = MACH_MSG_TYPE_COPY_SEND;
";

const BUILD_RS: &str = r#"
use std::io::Write;
fn main() {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("runs.log")
        .expect("runs.log");
    writeln!(log, "run").expect("write runs.log");
    mig_rs::Builder::new()
        .file("defs/probe.defs")
        .include("defs/inc")
        .generate()
        .unwrap();
}
"#;

const LIB_RS: &str = r#"
pub mod probe {
    mig_rs::include_defs!("probe");
}
pub const ID: i32 = probe::PING_ID;
"#;

const ATTR_LIB_RS: &str = r#"
#[mig_rs::interface(path = "defs/probe.defs", include = "defs/inc")]
pub mod probe {}
pub const ID: i32 = probe::PING_ID;
"#;

/// Which way the probe uses mig-rs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `build.rs` with the Builder (package `mig-build-probe`).
    BuildScript,
    /// The attribute (package `mig-attr-probe`).
    Attribute,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn toml_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// Sets a file's modification time clearly after anything Cargo recorded.
fn bump_mtime(path: &Path) {
    let f = fs::File::options().append(true).open(path).expect("open");
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .expect("set mtime");
}

struct Project {
    kind: Kind,
    dir: PathBuf,
    target: PathBuf,
}

impl Project {
    fn new(kind: Kind) -> Project {
        let (name, sub) = match kind {
            Kind::BuildScript => ("mig-build-probe", "build-script-test"),
            Kind::Attribute => ("mig-attr-probe", "attribute-test"),
        };
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(sub);
        let dir = base.join("probe");
        let target = base.join("target");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src")).expect("mkdir");
        fs::create_dir_all(dir.join("defs/inc")).expect("mkdir");
        let ws = workspace();
        let m = toml_path(&ws.join("mig-rs"));
        let r = toml_path(&ws.join("runtime"));
        let deps = match kind {
            Kind::BuildScript => format!(
                "[dependencies]\n\
                 mig-rs = {{ path = \"{m}\", default-features = false }}\n\
                 mig-runtime = {{ path = \"{r}\" }}\n\n\
                 [build-dependencies]\n\
                 mig-rs = {{ path = \"{m}\", default-features = false }}\n"
            ),
            Kind::Attribute => format!(
                "[dependencies]\n\
                 mig-rs = {{ path = \"{m}\" }}\n\
                 mig-runtime = {{ path = \"{r}\" }}\n"
            ),
        };
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
                 publish = false\n\n{deps}\n[workspace]\n"
            ),
        )
        .expect("write Cargo.toml");
        if let Ok(lock) = fs::read(ws.join("Cargo.lock")) {
            fs::write(dir.join("Cargo.lock"), lock).expect("write Cargo.lock");
        }
        match kind {
            Kind::BuildScript => {
                fs::write(dir.join("build.rs"), BUILD_RS).expect("write build.rs");
                fs::write(dir.join("src/lib.rs"), LIB_RS).expect("write lib.rs");
            }
            Kind::Attribute => {
                fs::write(dir.join("src/lib.rs"), ATTR_LIB_RS).expect("write lib.rs");
            }
        }
        fs::write(dir.join("README"), "unrelated\n").expect("write README");
        fs::write(dir.join("defs/probe.defs"), MAIN_DEFS).expect("write defs");
        fs::write(dir.join("defs/inc/probe_types.defs"), TYPES_DEFS).expect("write defs");
        Project { kind, dir, target }
    }

    /// `cargo build --offline -v`; returns (success, stderr).
    fn build(&self) -> (bool, String) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--offline", "-v"])
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", &self.target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .expect("run cargo");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn runs(&self) -> usize {
        fs::read_to_string(self.dir.join("runs.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Applies `change`, builds, and tells whether the build script ran (the attribute
    /// probe: whether the crate was recompiled). The probe depends
    /// on the workspace's crates by path: if they changed meanwhile (someone is editing
    /// the tree), Cargo rebuilds the build script and reruns it for that reason alone, so
    /// such a build is retried.
    fn step(&self, change: impl Fn()) -> (bool, String, bool) {
        let mut attempt = 0;
        loop {
            change();
            let before = self.runs();
            let (ok, err) = self.build();
            attempt += 1;
            if attempt < 3 && deps_rebuilt(&err) {
                continue;
            }
            let ran = match self.kind {
                Kind::BuildScript => {
                    let ran = self.runs() > before;
                    assert_eq!(ran, ran_script(&err), "marker and cargo disagree:\n{err}");
                    ran
                }
                Kind::Attribute => recompiled(&err, "mig-attr-probe"),
            };
            return (ok, err, ran);
        }
    }
}

/// Whether cargo's verbose output says the probe's build script ran.
fn ran_script(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.contains("Running `")
            && l.contains("mig-build-probe-")
            && l.contains("build-script-build")
    })
}

/// Whether cargo compiled package `name` in this build.
fn recompiled(stderr: &str, name: &str) -> bool {
    let want = format!("Compiling {name} v");
    stderr.lines().any(|l| l.trim_start().starts_with(&want))
}

/// Whether the workspace crates the probe uses were recompiled in this build.
fn deps_rebuilt(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("Compiling mig-rs v")
            || l.starts_with("Compiling mig-runtime v")
            || l.starts_with("Compiling mig-rs-macros v")
    })
}

#[test]
fn build_script_reruns_only_when_a_read_file_changes() {
    let p = Project::new(Kind::BuildScript);

    // The first build compiles everything (mig-rs too, into the probe's target directory).
    let (ok, err) = p.build();
    assert!(ok, "first build failed:\n{err}");
    assert_eq!(
        p.runs(),
        1,
        "the first build must run the build script:\n{err}"
    );
    assert!(ran_script(&err), "{err}");
    let out = fs::read_dir(p.target.join("debug/build"))
        .expect("build dir")
        .filter_map(Result::ok)
        .map(|e| e.path().join("output"))
        .find(|o| fs::read_to_string(o).is_ok_and(|s| s.contains("probe_types.defs")))
        .expect("the build script's output lists the included file");
    let printed = fs::read_to_string(out).expect("output");
    let reruns: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("cargo:rerun-if-changed="))
        .collect();
    assert_eq!(
        reruns,
        [
            "cargo:rerun-if-changed=defs/probe.defs",
            "cargo:rerun-if-changed=defs/inc/probe_types.defs"
        ],
        "{printed}"
    );

    let (ok, err, ran) = p.step(|| {});
    assert!(ok, "second build failed:\n{err}");
    assert!(
        !ran,
        "nothing changed, the build script must not run:\n{err}"
    );

    let (ok, err, ran) = p.step(|| bump_mtime(&p.dir.join("README")));
    assert!(ok, "third build failed:\n{err}");
    assert!(!ran, "only an unrelated file changed:\n{err}");

    let (ok, err, ran) = p.step(|| bump_mtime(&p.dir.join("defs/inc/probe_types.defs")));
    assert!(ok, "fourth build failed:\n{err}");
    assert!(
        ran,
        "the included .defs changed, the script must rerun:\n{err}"
    );

    let (ok, err, ran) = p.step(|| {
        fs::write(
            p.dir.join("defs/inc/probe_types.defs"),
            format!("{TYPES_DEFS}type broken_t = array[*:] of int32_t;\n"),
        )
        .expect("write");
        bump_mtime(&p.dir.join("defs/inc/probe_types.defs"));
    });
    assert!(!ok, "a broken include must fail the build");
    assert!(ran);
    assert!(
        err.contains("defs/inc/probe_types.defs:3:"),
        "the report must locate the error in the included file:\n{err}"
    );
    assert!(
        err.contains("in file included from defs/probe.defs:3"),
        "{err}"
    );
    assert!(err.contains("no file was written"), "{err}");
}

#[test]
fn attribute_recompiles_only_when_a_read_file_changes() {
    let p = Project::new(Kind::Attribute);

    let (ok, err) = p.build();
    assert!(ok, "first build failed:\n{err}");
    assert!(recompiled(&err, "mig-attr-probe"), "{err}");

    let (ok, err, ran) = p.step(|| {});
    assert!(ok, "second build failed:\n{err}");
    assert!(
        !ran,
        "nothing changed, the crate must not be recompiled:\n{err}"
    );

    let (ok, err, ran) = p.step(|| bump_mtime(&p.dir.join("defs/inc/probe_types.defs")));
    assert!(ok, "third build failed:\n{err}");
    assert!(
        ran,
        "the included .defs changed, the crate must be recompiled:\n{err}"
    );

    let (ok, err, ran) = p.step(|| {
        fs::write(
            p.dir.join("defs/inc/probe_types.defs"),
            format!("{TYPES_DEFS}type broken_t = array[*:] of int32_t;\n"),
        )
        .expect("write");
        bump_mtime(&p.dir.join("defs/inc/probe_types.defs"));
    });
    assert!(!ok, "a broken include must fail the build");
    assert!(ran);
    assert!(
        err.contains("--> defs/inc/probe_types.defs:3:"),
        "the error must locate the included file:\n{err}"
    );
    assert!(
        err.contains("in file included from defs/probe.defs:3"),
        "{err}"
    );
    assert!(
        err.contains("src/lib.rs:2:"),
        "spanned at the attribute:\n{err}"
    );
}
