//! The demo, small: every message kind but data_initialize, 0 mismatches, paging space back,
//! in both modes; and the binary's `--json` last line.

mod common;

use common::*;
use default_pager_example::demo;
use default_pager_example::kernel::ModeChoice;

/// The demo in both modes; the portable run also coalesces (the userfaultfd one is the
/// binary's run below), and its trace shows the object growing past its size hint.
#[test]
fn demo_small_run_shows_every_message_kind() {
    let _deadline = deadline("demo_small_run", 240);
    for mode in modes("demo") {
        let coalesce = mode == ModeChoice::Portable;
        println!("mode: {} coalesce: {coalesce}", mode_name(mode));
        let o = demo::Options {
            ram_mib: 4,
            size_mib: 48, // past the 32 MiB existence map: data_unavailable shows with pagemap on
            quiet: true,
            portable: mode == ModeChoice::Portable,
            paging_mib: 128,
            coalesce,
            ..demo::Options::default()
        };
        let mut out = Vec::new();
        let r = demo::run(&o, &mut out).expect("demo runs");
        let text = String::from_utf8_lossy(&out);
        println!("{text}");
        demo::check(&r).expect("the demo shows what it should");
        assert_eq!(r.mode, mode_name(mode));
        if coalesce {
            // 48 MiB plus the coalesced eighth.
            assert_eq!(r.pages_verified, 54 * 256);
            assert_coalesced_story(&text);
            // The even pages of the coalesced 6 MiB are stored past the 48 MiB hint.
            assert_eq!(r.grew_past_hint, Some((48 << 20, 3 * 256)));
        } else {
            assert_eq!(r.pages_verified, 48 * 256);
            assert!(!text.contains("past hint"), "no growth without coalescing");
        }
    }
}

/// What a `--coalesce` run must show: the kernel coalescing, then returns, requests and
/// answers past the size hint in the trace, and the pager's view of the grown object.
fn assert_coalesced_story(text: &str) {
    for want in [
        "object_coalesced",
        "past the size hint",
        "past hint: data_return",
        "past hint: data_request",
        "past hint: data_supply",
        "the object grew past its size hint",
    ] {
        assert!(
            text.contains(want),
            "{want:?} missing from the demo's output"
        );
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
    assert_coalesced_story(&stdout);
    assert!(
        !last.contains("\"pages_past_size_hint\":0,"),
        "pages stored past the hint: {last}"
    );
}
