//! The `mig-rs` command line generates stubs for every gnumach-dev subsystem `.defs`
//! (`-header`, `-user`, `-server`), the generated files compile, and they hold exactly the
//! items the build-script `Builder` generates for the same input (its single file has the
//! header items at the top and the client and server as `pub mod client` / `pub mod
//! server`).
//!
//! The build script (`build/cli.rs`) runs the command line in-process through
//! `mig_rs::cli::run_with`, the binary's whole `main`, and includes every written file into
//! this test crate: this file only builds if they all compile.
//!
//! Without the oracle this prints `SKIP: …` and passes, unless `CI` is set.

use std::path::{Path, PathBuf};

use mig_conformance::require_oracle;
use quote::ToTokens;

mod cli {
    include!(concat!(env!("OUT_DIR"), "/cli_outputs.rs"));
}

/// The items of a Rust file, each as its token text (comments are not tokens; doc comments
/// are, so the documentation must match too), without spacing and the punctuation the formatter adds or
/// drops where it breaks lines — trailing commas and braces around closure bodies — which
/// depends on the indentation (the Builder's client and server sit one module deeper).
fn items(items: &[syn::Item]) -> Vec<String> {
    items.iter().map(item).collect()
}

fn item(i: &syn::Item) -> String {
    let text = i.to_token_stream().to_string();
    text.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, ',' | '{' | '}'))
        .collect()
}

/// The part of `s` around its first difference from `other`.
fn around<'a>(s: &'a str, other: Option<&String>) -> &'a str {
    let other = other.map(String::as_str).unwrap_or("");
    let at = s
        .char_indices()
        .zip(other.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(s.len().min(other.len()));
    let start = s[..at].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
    let end = s[at..]
        .char_indices()
        .nth(60)
        .map_or(s.len(), |(i, _)| at + i);
    &s[start..end]
}

fn parse(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

/// Splits the Builder's file into (header items, client items, server items).
fn split_builder(file: syn::File) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut header, mut client, mut server) = (Vec::new(), None, None);
    for item in file.items {
        match &item {
            syn::Item::Mod(m) if m.ident == "client" || m.ident == "server" => {
                let body = m
                    .content
                    .as_ref()
                    .map(|(_, i)| items(i))
                    .unwrap_or_default();
                if m.ident == "client" {
                    client = Some(body);
                } else {
                    server = Some(body);
                }
            }
            _ => header.push(self::item(&item)),
        }
    }
    (
        header,
        client.expect("the Builder's file has `pub mod client`"),
        server.expect("the Builder's file has `pub mod server`"),
    )
}

#[test]
fn cli_outputs_compile_and_match_the_builder() {
    let _oracle = require_oracle!();
    assert!(
        !cli::CASES.is_empty(),
        "the oracle exists now but did not when this test was built; rebuild"
    );
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-outputs");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("scratch directory");
    let mut generated = 0;
    let mut problems = Vec::new();
    for (k, case) in cli::CASES.iter().enumerate() {
        let what = format!("{} {:?}", case.file, case.defines);
        // The Builder on the same input.
        let name = format!("b{k}");
        let mut b = mig_rs::Builder::new();
        b.file_as(case.path, name.as_str())
            .include(cli::ORACLE_INCLUDE)
            .out_dir(&tmp)
            .quiet(true)
            .emit_rerun_if_changed(false);
        for d in case.defines {
            b.define(*d);
        }
        let built = b.generate();
        match (case.exit, built) {
            (0, Ok(_)) => {}
            (0, Err(e)) => {
                problems.push(format!(
                    "{what}: the CLI succeeded, the Builder failed: {e}"
                ));
                continue;
            }
            (code, Ok(_)) => {
                problems.push(format!(
                    "{what}: the Builder succeeded, the CLI exited {code}:\n{}",
                    case.stderr
                ));
                continue;
            }
            // Not a subsystem file (e.g. std_types.defs): both refuse it.
            (_, Err(_)) => {
                assert!(
                    case.stderr.contains(".defs"),
                    "{what}: the CLI's error names no file:\n{}",
                    case.stderr
                );
                continue;
            }
        }
        generated += 1;
        let (header, client, server) = split_builder(parse(&tmp.join(format!("{name}.rs"))));
        let dir = Path::new(case.dir);
        // The header file holds the header items; the user and server files are
        // self-contained: the header items they use, then exactly the items of the Builder's
        // `client` / `server` module (which reach the header through `use super::*`).
        let own = |v: &[String]| -> Vec<String> {
            v.iter()
                .filter(|i| !i.ends_with("usesuper::*;"))
                .cloned()
                .collect()
        };
        for (file, want, repeats_header) in [
            ("header.rs", header.clone(), false),
            ("user.rs", own(&client), true),
            ("server.rs", own(&server), true),
        ] {
            let mut got = items(&parse(&dir.join(file)).items);
            if repeats_header {
                got.retain(|i| !header.contains(i));
            }
            if got != want {
                let first = got
                    .iter()
                    .zip(want.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(want.len()));
                problems.push(format!(
                    "{what}: {file} differs from the Builder's output ({} items vs {}; first \
                     difference at item {first}: {:?} vs {:?})",
                    got.len(),
                    want.len(),
                    got.get(first).map(|s| around(s, want.get(first))),
                    want.get(first).map(|s| around(s, got.get(first))),
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // 17 subsystem files, two of them also with -DSEQNOS.
    assert_eq!(generated, 19, "subsystem files the CLI generated stubs for");
    println!("cli: stubs for {generated} gnumach-dev subsystem configurations compile and match the Builder's");
}
