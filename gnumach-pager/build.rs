//! Builds the no_std program in `program/` (its own workspace: a `#![no_std]` executable
//! needs `panic = "abort"`, which only a workspace root's profile sets on stable Rust) with
//! `cargo build --release --target x86_64-unknown-linux-gnu`, into
//! `<target dir>/gnumach-pager/`, and tells the crate where it is
//! (`GNUMACH_PAGER_PROGRAM`).
use std::path::{Path, PathBuf};
use std::process::Command;

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// The target directory this build writes to, from OUT_DIR
/// (`<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`).
fn target_dir() -> PathBuf {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut t = out
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out")
        .to_path_buf();
    let target = std::env::var("TARGET").unwrap_or_default();
    if t.file_name().is_some_and(|n| n == target.as_str()) {
        t.pop();
    }
    t
}

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = here.parent().expect("workspace root").to_path_buf();
    for p in [
        here.join("program/src"),
        here.join("program/defs"),
        here.join("program/build.rs"),
        here.join("program/Cargo.toml"),
        here.join("mach-trap/src"),
        here.join("mach-trap/build.rs"),
        here.join("mach-trap/Cargo.toml"),
        root.join("defs"),
        root.join("runtime/src"),
        root.join("runtime/Cargo.toml"),
        root.join("mig-rs/src"),
        root.join("default-pager-example/pager/src"),
        root.join("default-pager-example/pager/build.rs"),
        root.join("default-pager-example/pager/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let target_dir = target_dir().join("gnumach-pager");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", TRIPLE, "--manifest-path"])
        .arg(here.join("program/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // What the outer cargo set for this build script must not configure the inner build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let outer = k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_FEATURE_")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_PROFILE_")
            || k.starts_with("CARGO_BUILD_")
            || k.starts_with("DEP_")
            || matches!(
                k.as_str(),
                "CARGO_TARGET_DIR"
                    | "CARGO_ENCODED_RUSTFLAGS"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_CRATE_NAME"
                    | "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTC_LINKER"
                    | "OUT_DIR"
                    | "TARGET"
                    | "HOST"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if outer {
            cmd.env_remove(&k);
        }
    }
    // The inner cargo's output is captured, then passed on to our stderr (shown by cargo on
    // failure or with -vv); our stdout is for `cargo:` lines only.
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return not_built(&format!("cannot run cargo: {e}")),
    };
    let log = String::from_utf8_lossy(&out.stderr);
    eprint!("{log}");
    if !out.status.success() {
        // The rest of the workspace must still build and test: say why, loudly, and let
        // the crate know (its tests fail under CI and print SKIP otherwise).
        let first: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("error"))
            .take(3)
            .collect();
        return not_built(&format!(
            "cargo build of gnumach-pager/program failed ({}): {}",
            out.status,
            first.join(" | ")
        ));
    }
    let program: &Path = &target_dir.join(TRIPLE).join("release/gnumach-pager");
    println!(
        "cargo:rustc-env=GNUMACH_PAGER_PROGRAM={}",
        program.display()
    );
    println!("cargo:rustc-env=GNUMACH_PAGER_BUILD_ERROR=");
}

/// Records that the program could not be built (`GNUMACH_PAGER_BUILD_ERROR`).
fn not_built(why: &str) {
    let why = why.replace(['\n', '\r'], " ");
    println!("cargo:warning=gnumach-pager: the GNU Mach program was not built: {why}");
    println!("cargo:rustc-env=GNUMACH_PAGER_PROGRAM=");
    println!("cargo:rustc-env=GNUMACH_PAGER_BUILD_ERROR={why}");
}
