//! The checked-in stubs (`src/generated/`, usage (c)) are what the `mig-rs` command line
//! generates from `kv.defs` today.
//!
//! The command line is run in-process through `mig_rs::cli::run_with`, the function the
//! `mig-rs` binary's `main` consists of, with the same arguments as the documented command:
//!
//! ```text
//! mig-rs -n -header src/generated/kv.rs -user src/generated/kv_user.rs \
//!        -server src/generated/kv_server.rs kv.defs
//! ```
//!
//! With `KV_REGENERATE=1` the test rewrites the checked-in files instead of failing.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

const FILES: [(&str, &str); 3] = [
    ("-header", "kv.rs"),
    ("-user", "kv_user.rs"),
    ("-server", "kv_server.rs"),
];

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the command line with `kv.defs` given as the relative path the documented command
/// uses (it appears in the generated doc comments), writing into `out`.
fn run_cli(out: &Path) -> (i32, String) {
    let mut args: Vec<OsString> = vec!["-n".into()];
    for (flag, file) in FILES {
        args.push(flag.into());
        args.push(out.join(file).into());
    }
    args.push("kv.defs".into());
    // Cargo runs integration tests in the package directory, where `kv.defs` is.
    assert!(
        Path::new("kv.defs").is_file(),
        "run from the package directory"
    );
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = mig_rs::cli::run_with(args, None, &mut stdout, &mut stderr);
    (code, String::from_utf8_lossy(&stderr).into_owned())
}

#[test]
fn checked_in_cli_output_is_up_to_date() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kv-store-generated");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).expect("tmp dir");
    let (code, stderr) = run_cli(&tmp);
    assert_eq!(code, 0, "mig-rs failed:\n{stderr}");
    assert!(stderr.is_empty(), "mig-rs warned:\n{stderr}");

    let regenerate = std::env::var_os("KV_REGENERATE").is_some_and(|v| !v.is_empty());
    let mut stale = Vec::new();
    for (_, file) in FILES {
        let fresh = fs::read_to_string(tmp.join(file)).expect("generated file");
        let checked_in = package_dir().join("src/generated").join(file);
        let old = fs::read_to_string(&checked_in).unwrap_or_default();
        if old != fresh {
            if regenerate {
                fs::write(&checked_in, &fresh).expect("rewrite checked-in file");
            } else {
                stale.push(file);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "src/generated/{{{}}} differ from what mig-rs generates now; regenerate them with\n  \
         KV_REGENERATE=1 cargo test -p kv-store --test generated",
        stale.join(",")
    );
}
