//! The demo, small: every message kind but data_initialize, 0 mismatches, paging space back,
//! in both modes; and the binary's `--json` last line.

mod common;

use common::*;
use default_pager_example::demo;
use default_pager_example::kernel::ModeChoice;

#[test]
fn demo_small_run_shows_every_message_kind() {
    let _deadline = deadline("demo_small_run", 240);
    for mode in modes("demo") {
        println!("mode: {}", mode_name(mode));
        let o = demo::Options {
            ram_mib: 4,
            size_mib: 48, // past the 32 MiB existence map: data_unavailable shows with pagemap on
            quiet: true,
            portable: mode == ModeChoice::Portable,
            paging_mib: 128,
            ..demo::Options::default()
        };
        let mut out = Vec::new();
        let r = demo::run(&o, &mut out).expect("demo runs");
        let text = String::from_utf8_lossy(&out);
        println!("{text}");
        demo::check(&r).expect("the demo shows what it should");
        assert_eq!(r.mode, mode_name(mode));
        assert_eq!(r.pages_verified, 48 * 256);
    }
}

#[test]
fn demo_binary_prints_json_last() {
    let _deadline = deadline("demo_binary_json", 240);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_default-pager-example"))
        .args([
            "--ram",
            "4",
            "--size",
            "40",
            "--paging-size",
            "64",
            "--quiet",
            "--json",
            "--coalesce",
            "--pagemap",
            "off",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let last = stdout.lines().last().expect("output");
    assert!(last.starts_with('{') && last.ends_with('}'), "{last}");
    for key in [
        "\"mode\":",
        "\"messages\":{",
        "\"memory_object_create\":",
        "\"memory_object_data_request\":",
        "\"memory_object_data_unavailable\":",
        "\"memory_object_data_supply\":",
        "\"memory_object_data_return\":",
        "\"memory_object_data_initialize\":",
        "\"memory_object_terminate\":",
        "\"no_senders\":",
        "\"pages_verified\":",
        "\"mismatches\":0",
        "\"paging_free_before\":",
        "\"paging_free_after\":",
    ] {
        assert!(last.contains(key), "{key} missing in {last}");
    }
    assert!(
        stdout.contains("object_coalesced"),
        "the trace shows the coalesced object"
    );
}
