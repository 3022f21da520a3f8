//! Our own `.defs` files (`defs/`, written for this project) against GNU Mach's
//! (Debian 13 `gnumach-dev`): every routine we declare must be the same RPC on the wire.
//!
//! For each interface and each variant (with and without `-DSEQNOS` where GNU Mach's file
//! has one):
//!
//! * both GNU MIG and mig-rs (x86_64 and i386) accept our file without any diagnostic;
//! * every routine we declare exists in GNU Mach's file under the same name, with the same
//!   subsystem, base, number, request and reply ids and kind (so our `skip`s are right);
//! * GNU MIG's own layouts of both files are identical (struct offsets and sizes, size
//!   and complex-bit checks, descriptor templates and receiver checks);
//! * mig-rs's IR layouts of our file equal GNU MIG's layouts of GNU Mach's file;
//! * the C-level names (server functions, demux) are GNU Mach's, and every named type we
//!   declare has GNU Mach's wire shape in mig-rs's view, on both targets.
//!
//! Only GNU MIG's output is the reference; GNU Mach's files are read by GNU MIG (and, for
//! the names and types, by mig-rs), never copied. Without the oracle the oracle tests
//! print `SKIP: …` and pass, unless `CI` is set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mig_conformance::{require_oracle, workspace_root, MigRun, Oracle, Outputs, RoutineLayout};
use mig_rs::driver::{compile, Compilation, Options};
use mig_rs::ir::Routine;
use mig_rs::preprocess::Define;
use mig_runtime::wire::Target;

#[path = "common/layout_compare.rs"]
mod layout_compare;

use layout_compare::{server_functions, user_functions, LayoutComparison};

/// One of our interfaces and GNU Mach's file for the same subsystem.
struct Interface {
    /// Under `defs/`.
    ours: &'static str,
    /// Under the oracle's include directory.
    theirs: &'static str,
    /// GNU Mach's file has a `SEQNOS` variant.
    seqnos: bool,
}

const INTERFACES: &[Interface] = &[
    Interface {
        ours: "memory_object_default.defs",
        theirs: "mach/memory_object_default.defs",
        seqnos: true,
    },
    Interface {
        ours: "memory_object.defs",
        theirs: "mach/memory_object.defs",
        seqnos: true,
    },
    Interface {
        ours: "notify.defs",
        theirs: "mach/notify.defs",
        seqnos: true,
    },
    Interface {
        ours: "default_pager.defs",
        theirs: "mach/default_pager.defs",
        seqnos: false,
    },
    Interface {
        ours: "mach.defs",
        theirs: "mach/mach.defs",
        seqnos: false,
    },
    Interface {
        ours: "mach_host.defs",
        theirs: "mach/mach_host.defs",
        seqnos: false,
    },
    Interface {
        ours: "gnumach.defs",
        theirs: "mach/gnumach.defs",
        seqnos: false,
    },
    Interface {
        ours: "mach_port.defs",
        theirs: "mach/mach_port.defs",
        seqnos: false,
    },
    Interface {
        ours: "device.defs",
        theirs: "device/device.defs",
        seqnos: false,
    },
];

/// The files that only declare types (they have no subsystem of their own).
const TYPE_FILES: &[&str] = &["std_types.defs", "mach_types.defs"];

/// Routines every interface must declare (the minimum the default pager and the no_std
/// program on the real kernel need), by file.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "memory_object_default.defs",
        &["memory_object_create", "memory_object_data_initialize"],
    ),
    (
        "memory_object.defs",
        &[
            "memory_object_init",
            "memory_object_terminate",
            "memory_object_copy",
            "memory_object_data_request",
            "memory_object_data_unlock",
            "memory_object_lock_completed",
            "memory_object_supply_completed",
            "memory_object_data_return",
            "memory_object_change_completed",
        ],
    ),
    (
        "notify.defs",
        &[
            "mach_notify_port_deleted",
            "mach_notify_msg_accepted",
            "mach_notify_port_destroyed",
            "mach_notify_no_senders",
            "mach_notify_send_once",
            "mach_notify_dead_name",
        ],
    ),
    (
        "default_pager.defs",
        &[
            "default_pager_object_create",
            "default_pager_info",
            "default_pager_objects",
            "default_pager_object_pages",
            "default_pager_paging_file",
            "default_pager_register_fileserver",
        ],
    ),
    (
        "mach.defs",
        &[
            "memory_object_data_unavailable",
            "memory_object_get_attributes",
            "vm_set_default_memory_manager",
            "memory_object_lock_request",
            "memory_object_data_error",
            "memory_object_destroy",
            "memory_object_data_supply",
            "memory_object_ready",
            "memory_object_change_attributes",
            "task_create",
            "task_terminate",
            "task_threads",
            "thread_create",
            "thread_resume",
            "thread_get_state",
            "thread_set_state",
            "vm_allocate",
            "vm_deallocate",
            "vm_protect",
            "vm_read",
            "vm_write",
            "vm_region",
            "vm_map",
            "task_get_special_port",
        ],
    ),
    (
        "mach_host.defs",
        &["host_reboot", "host_info", "host_get_time", "vm_wire"],
    ),
    ("gnumach.defs", &["vm_wire_all", "task_set_name"]),
    (
        "mach_port.defs",
        &[
            "mach_port_allocate",
            "mach_port_deallocate",
            "mach_port_destroy",
            "mach_port_insert_right",
            "mach_port_request_notification",
            "mach_port_move_member",
            "mach_port_mod_refs",
            "mach_port_get_refs",
            "mach_port_names",
        ],
    ),
    (
        "device.defs",
        &[
            "device_open",
            "device_close",
            "device_write",
            "device_write_inband",
            "device_read",
            "device_read_inband",
            "device_get_status",
        ],
    ),
];

fn defs_dir() -> PathBuf {
    workspace_root().join("defs")
}

fn variants(i: &Interface) -> Vec<&'static [&'static str]> {
    if i.seqnos {
        vec![&[], &["SEQNOS"]]
    } else {
        vec![&[]]
    }
}

/// mig-rs on `path` for `target`, with `include` on the include path.
fn mig_rs(path: &Path, variant: &[&str], target: Target, include: Option<PathBuf>) -> Compilation {
    let opts = Options {
        target,
        include_dirs: include.into_iter().collect(),
        defines: variant
            .iter()
            .map(|d| Define::Set(d.to_string(), None))
            .collect(),
        ..Options::default()
    };
    compile(path, &opts)
}

fn fail_if(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---- Without the oracle ----------------------------------------------------------------

/// mig-rs accepts every interface of `defs/` without a single diagnostic, on both targets
/// and in every variant; the type-only files stay free of subsystems and routines.
#[test]
fn mig_rs_accepts_own_defs_without_warnings() {
    let dir = defs_dir();
    let mut problems = Vec::new();
    for i in INTERFACES {
        for variant in variants(i) {
            for target in Target::ALL {
                let c = mig_rs(&dir.join(i.ours), variant, target, None);
                let what = format!("{} {variant:?} {}", i.ours, target.name());
                if !c.diags.is_empty() {
                    problems.push(format!("{what}:\n{}", c.render_diagnostics()));
                    continue;
                }
                let Some(sub) = c.ok() else {
                    problems.push(format!("{what}: no subsystem"));
                    continue;
                };
                // Every file read comes from defs/ itself: no dependency on GNU Mach's.
                let canon_dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
                for f in &c.files_read {
                    let f = f.canonicalize().unwrap_or_else(|_| f.clone());
                    if !f.starts_with(&canon_dir) {
                        problems.push(format!("{what}: reads {} outside defs/", f.display()));
                    }
                }
                let names: Vec<&str> = sub.routines.iter().map(|r| r.name.as_str()).collect();
                if let Some((_, required)) = REQUIRED.iter().find(|(f, _)| *f == i.ours) {
                    for r in *required {
                        if !names.contains(r) {
                            problems.push(format!("{what}: {r} is not declared"));
                        }
                    }
                }
                let seqno = variant.contains(&"SEQNOS");
                for r in &sub.routines {
                    if r.msg_seqno.is_some() != (seqno && i.seqnos) {
                        problems.push(format!(
                            "{what} {}: msgseqno argument {}",
                            r.name,
                            if seqno { "missing" } else { "present" }
                        ));
                    }
                }
            }
        }
    }
    // The type files are only meant to be included: compiled alone they declare no routine.
    for f in TYPE_FILES {
        let text = std::fs::read_to_string(dir.join(f)).expect("type file");
        for word in ["subsystem", "routine", "simpleroutine"] {
            if text
                .lines()
                .any(|l| l.split_whitespace().next() == Some(word))
            {
                problems.push(format!("{f}: has a `{word}` statement"));
            }
        }
    }
    fail_if(problems);
}

// ---- With the oracle ---------------------------------------------------------------------

/// Everything about one interface and variant.
struct Pair {
    what: String,
    ours: MigRun,
    theirs: MigRun,
    gnu_ours: Vec<RoutineLayout>,
    gnu_theirs: Vec<RoutineLayout>,
}

fn pair(oracle: &Oracle, i: &Interface, variant: &[&str]) -> Result<Pair, String> {
    let what = format!("{} {variant:?}", i.ours);
    let ours_path = defs_dir().join(i.ours);
    let theirs_path = oracle.include_dir().join(i.theirs);
    let ours = oracle
        .run(&ours_path, variant, Outputs::ALL)
        .map_err(|e| format!("{what}: GNU MIG on ours: {e}"))?;
    let theirs = oracle
        .run(&theirs_path, variant, Outputs::ALL)
        .map_err(|e| format!("{what}: GNU MIG on {}: {e}", i.theirs))?;
    if !ours.accepted() {
        return Err(format!(
            "{what}: GNU MIG rejects ours (exit {:?}):\n{}",
            ours.exit_code, ours.stderr
        ));
    }
    let gnu_ours = oracle
        .layouts_of(&ours)
        .map_err(|e| format!("{what}: GNU MIG layouts of ours: {e}"))?;
    let gnu_theirs = oracle
        .layouts_of(&theirs)
        .map_err(|e| format!("{what}: GNU MIG layouts of {}: {e}", i.theirs))?;
    Ok(Pair {
        what,
        ours,
        theirs,
        gnu_ours,
        gnu_theirs,
    })
}

/// Runs `f` on every interface and variant; collects problems.
fn for_each_pair(oracle: &Oracle, mut f: impl FnMut(&Interface, &[&str], &Pair, &mut Vec<String>)) {
    let mut problems = Vec::new();
    for i in INTERFACES {
        for variant in variants(i) {
            match pair(oracle, i, variant) {
                Ok(p) => f(i, variant, &p, &mut problems),
                Err(e) => problems.push(e),
            }
        }
    }
    fail_if(problems);
}

/// GNU MIG accepts our files without warnings, numbers our routines as GNU Mach's file
/// does (same subsystem, base, number, ids and kind by name), and the routines GNU MIG
/// lists for our file are exactly those mig-rs sees.
#[test]
fn ids_match_gnu_mach() {
    let oracle = require_oracle!();
    let mut routines = 0;
    for_each_pair(&oracle, |i, variant, p, problems| {
        let what = &p.what;
        if !p.ours.stderr.trim().is_empty() {
            problems.push(format!("{what}: GNU MIG warns:\n{}", p.ours.stderr));
        }
        let ours = p.ours.list_entries().expect("our -list");
        let theirs = p.theirs.list_entries().expect("their -list");
        if ours.is_empty() {
            problems.push(format!("{what}: GNU MIG lists no routine"));
        }
        for e in &ours {
            routines += 1;
            match theirs.iter().find(|t| t.name == e.name) {
                None => problems.push(format!("{what}: {} is not in {}", e.name, i.theirs)),
                Some(t) => {
                    if (&t.subsystem, t.base, t.number, t.msgh_id, t.reply_id)
                        != (&e.subsystem, e.base, e.number, e.msgh_id, e.reply_id)
                    {
                        problems.push(format!(
                            "{what}: {} is {} {} #{} id {} reply {} here, {} {} #{} id {} reply {} in GNU Mach",
                            e.name, e.subsystem, e.base, e.number, e.msgh_id, e.reply_id,
                            t.subsystem, t.base, t.number, t.msgh_id, t.reply_id
                        ));
                    }
                }
            }
        }
        // mig-rs numbers our file as GNU MIG does.
        let c = mig_rs(&defs_dir().join(i.ours), variant, Target::X86_64, None);
        match c.ok() {
            None => problems.push(format!("{what}: mig-rs rejects it")),
            Some(sub) => {
                let listed = mig_conformance::parse_list(&sub.routine_list()).expect("list");
                if listed != ours {
                    problems.push(format!(
                        "{what}: mig-rs's -list differs from GNU MIG's:\n{}\nvs\n{}",
                        sub.routine_list(),
                        p.ours.list.clone().unwrap_or_default()
                    ));
                }
            }
        }
    });
    eprintln!("own defs: ids of {routines} routines match GNU Mach's");
}

/// GNU MIG's layouts of our file equal GNU MIG's layouts of GNU Mach's file, routine by
/// routine: C structs (offsets, sizes, alignment, member names and C types), receiver
/// size and complex-bit checks, sender sizes, descriptor templates and receiver checks.
#[test]
fn gnu_mig_layouts_of_ours_equal_gnu_mach() {
    let oracle = require_oracle!();
    let mut messages = 0;
    for_each_pair(&oracle, |_, _, p, problems| {
        for o in &p.gnu_ours {
            let rw = format!("{} {}", p.what, o.name);
            let Some(t) = p.gnu_theirs.iter().find(|t| t.name == o.name) else {
                problems.push(format!("{rw}: not in GNU Mach's file"));
                continue;
            };
            if (o.number, o.msgh_id, o.reply_id, o.simple)
                != (t.number, t.msgh_id, t.reply_id, t.simple)
            {
                problems.push(format!(
                    "{rw}: number/id/reply/simple {:?} vs GNU Mach's {:?}",
                    (o.number, o.msgh_id, o.reply_id, o.simple),
                    (t.number, t.msgh_id, t.reply_id, t.simple)
                ));
            }
            messages += 1;
            same_gnu_message(&format!("{rw} request"), &o.request, &t.request, problems);
            match (&o.reply, &t.reply) {
                (Some(a), Some(b)) => {
                    messages += 1;
                    same_gnu_message(&format!("{rw} reply"), a, b, problems)
                }
                (None, None) => {}
                _ => problems.push(format!("{rw}: only one side has a reply")),
            }
        }
    });
    eprintln!("own defs: GNU MIG's layouts of {messages} messages equal GNU Mach's");
}

fn same_gnu_message(
    what: &str,
    a: &mig_conformance::MessageLayout,
    b: &mig_conformance::MessageLayout,
    problems: &mut Vec<String>,
) {
    let mut differ = |part: &str, x: String, y: String| {
        problems.push(format!(
            "{what}: {part} differs:\n  ours:  {x}\n  GNU Mach: {y}"
        ));
    };
    for (part, x, y) in [
        ("struct (Server.c)", &a.layout, &b.layout),
        ("struct (User.c)", &a.user_layout, &b.user_layout),
    ] {
        if x.size != y.size || x.align != y.align {
            differ(
                &format!("{part} size/alignment"),
                format!("{}/{}", x.size, x.align),
                format!("{}/{}", y.size, y.align),
            );
        }
        if x.fields != y.fields {
            differ(part, format!("{:?}", x.fields), format!("{:?}", y.fields));
        }
    }
    if a.size_check != b.size_check {
        differ(
            "size check",
            format!("{:?}", a.size_check),
            format!("{:?}", b.size_check),
        );
    }
    if a.complex_check != b.complex_check {
        differ(
            "complex check",
            format!("{:?}", a.complex_check),
            format!("{:?}", b.complex_check),
        );
    }
    if a.variable_checks != b.variable_checks {
        differ(
            "variable size checks",
            format!("{:?}", a.variable_checks),
            format!("{:?}", b.variable_checks),
        );
    }
    if a.sender_fixed_size != b.sender_fixed_size {
        differ(
            "sender size",
            format!("{:?}", a.sender_fixed_size),
            format!("{:?}", b.sender_fixed_size),
        );
    }
    if a.sender_complex != b.sender_complex {
        differ(
            "sender complex bit",
            format!("{:?}", a.sender_complex),
            format!("{:?}", b.sender_complex),
        );
    }
    if a.templates != b.templates {
        differ(
            "descriptor templates",
            format!("{:?}", a.templates),
            format!("{:?}", b.templates),
        );
    }
    if a.checks != b.checks {
        differ(
            "receiver descriptor checks",
            format!("{:?}", a.checks),
            format!("{:?}", b.checks),
        );
    }
}

/// mig-rs's IR layouts of our file (x86_64) equal GNU MIG's layouts of GNU Mach's file.
#[test]
fn mig_rs_layouts_of_ours_equal_gnu_mach() {
    let oracle = require_oracle!();
    let mut cmp = LayoutComparison::new(&[]);
    for_each_pair(&oracle, |i, variant, p, problems| {
        let c = mig_rs(&defs_dir().join(i.ours), variant, Target::X86_64, None);
        let Some(sub) = c.ok() else {
            problems.push(format!(
                "{}: mig-rs rejects it:\n{}",
                p.what,
                c.render_diagnostics()
            ));
            return;
        };
        let server = server_functions(&p.theirs.server_c_text().expect("Server.c"));
        let user: BTreeMap<_, _> = user_functions(&p.theirs.user_c_text().expect("User.c"))
            .into_iter()
            .collect();
        for r in &sub.routines {
            let rw = format!("{} {}", p.what, r.name);
            let Some(g) = p.gnu_theirs.iter().find(|g| g.name == r.name) else {
                problems.push(format!("{rw}: not in GNU Mach's file"));
                continue;
            };
            if i64::from(r.msg_id) != g.msgh_id
                || r.is_simple() != g.simple
                || (!r.is_simple() && Some(i64::from(r.reply_id)) != g.reply_id)
            {
                problems.push(format!(
                    "{rw}: id {} reply {} simple {} in mig-rs, GNU MIG {} {:?} {}",
                    r.msg_id,
                    r.reply_id,
                    r.is_simple(),
                    g.msgh_id,
                    g.reply_id,
                    g.simple
                ));
            }
            let (Some(s), Some(u)) = (server.get(&r.name), user.get(&r.name)) else {
                problems.push(format!("{rw}: GNU MIG's C has no stubs for it"));
                continue;
            };
            cmp.routine(&rw, sub, r, g, s, u, problems);
        }
    });
    eprintln!(
        "own defs: mig-rs's layouts of {} messages ({} fields) equal GNU MIG's",
        cmp.messages, cmp.stats.fields
    );
}

/// The C interface GNU MIG generates for our file (demux, user stubs and server functions
/// with their parameter lists) is the one it generates for GNU Mach's file, and mig-rs's
/// IR agrees (names, and every argument's kind and flags, implicit ones included).
#[test]
fn c_interface_matches_gnu_mach() {
    let oracle = require_oracle!();
    for_each_pair(&oracle, |i, variant, p, problems| {
        let what = &p.what;
        let ours_server = p.ours.server_c_text().expect("Server.c");
        let theirs_server = p.theirs.server_c_text().expect("Server.c");
        let ours_user = p.ours.user_c_text().expect("User.c");
        let theirs_user = p.theirs.user_c_text().expect("User.c");
        let (a, b) = (demux_name(&ours_server), demux_name(&theirs_server));
        if a.is_none() || a != b {
            problems.push(format!("{what}: demux {a:?} here, {b:?} in GNU Mach"));
        }
        let c_ours = mig_rs(&defs_dir().join(i.ours), variant, Target::X86_64, None);
        let c_theirs = mig_rs(
            &oracle.include_dir().join(i.theirs),
            variant,
            Target::X86_64,
            Some(oracle.include_dir()),
        );
        let (Some(ours), Some(theirs)) = (c_ours.ok(), c_theirs.ok()) else {
            problems.push(format!("{what}: mig-rs rejects one of the files"));
            return;
        };
        if ours.name != theirs.name || ours.demux_name != theirs.demux_name {
            problems.push(format!(
                "{what}: mig-rs: subsystem {} demux {} here, {} {} in GNU Mach",
                ours.name, ours.demux_name, theirs.name, theirs.demux_name
            ));
        }
        if Some(ours.demux_name.as_str()) != a.as_deref() {
            problems.push(format!(
                "{what}: mig-rs's demux {} is not GNU MIG's {a:?}",
                ours.demux_name
            ));
        }
        for r in &ours.routines {
            let Some(t) = theirs.routines.iter().find(|t| t.name == r.name) else {
                problems.push(format!("{what}: {} not in GNU Mach's file", r.name));
                continue;
            };
            if (&r.server_name, &r.user_name) != (&t.server_name, &t.user_name) {
                problems.push(format!(
                    "{what}: {}: server/user names {} {} here, {} {} in GNU Mach",
                    r.name, r.server_name, r.user_name, t.server_name, t.user_name
                ));
            }
            if r.msg_seqno.is_some() != t.msg_seqno.is_some() {
                problems.push(format!("{what}: {}: msgseqno differs", r.name));
            }
            // Every argument, explicit or implicit (counts, polys, deallocs), has the same
            // kind and flags: e.g. `Dealloc[]` or `CountInOut` change no offset but do
            // change what goes on the wire at run time.
            let args = |r: &Routine| -> Vec<String> {
                r.args
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {:?} dealloc {:?} long {} scopy {} countinout {} mult {}",
                            a.name,
                            a.kind,
                            a.dealloc,
                            a.long_form,
                            a.server_copy,
                            a.count_in_out,
                            a.multiplier
                        )
                    })
                    .collect()
            };
            if args(r) != args(t) {
                problems.push(format!(
                    "{what}: {}: mig-rs's arguments differ:\n  ours:     {:?}\n  GNU Mach: {:?}",
                    r.name,
                    args(r),
                    args(t)
                ));
            }
            // GNU MIG's C prototypes (parameter names, C types, implicit parameters) are
            // the same for both files: the user stub, and the server function as the
            // server stub declares it.
            let user_ours = prototype(&ours_user, &r.user_name);
            let user_theirs = prototype(&theirs_user, &t.user_name);
            if user_ours.is_none() || user_ours != user_theirs {
                problems.push(format!(
                    "{what}: user stub {}:\n  ours:     {user_ours:?}\n  GNU Mach: {user_theirs:?}",
                    r.user_name
                ));
            }
            let server_ours = prototype(&ours_server, &r.server_name);
            let server_theirs = prototype(&theirs_server, &t.server_name);
            if server_ours.is_none() || server_ours != server_theirs {
                problems.push(format!(
                    "{what}: server function {}:\n  ours:     {server_ours:?}\n  GNU Mach: {server_theirs:?}",
                    r.server_name
                ));
            }
        }
    });
}

/// Every named type our files declare has, in mig-rs's view, GNU Mach's wire shape (and C
/// type) wherever GNU Mach's file of the same interface declares it, on both targets; and
/// we use no type name that GNU Mach does not have.
#[test]
fn types_match_gnu_mach() {
    let oracle = require_oracle!();
    let mut problems = Vec::new();
    let mut compared = 0;
    for target in Target::ALL {
        let mut found: BTreeMap<String, bool> = BTreeMap::new();
        for i in INTERFACES {
            let what = format!("{} {}", i.ours, target.name());
            let c_ours = mig_rs(&defs_dir().join(i.ours), &[], target, None);
            let c_theirs = mig_rs(
                &oracle.include_dir().join(i.theirs),
                &[],
                target,
                Some(oracle.include_dir()),
            );
            let (Some(ours), Some(theirs)) = (c_ours.ok(), c_theirs.ok()) else {
                problems.push(format!("{what}: mig-rs rejects one of the files"));
                continue;
            };
            for (name, id) in ours.types.named() {
                let seen = found.entry(name.clone()).or_insert(false);
                let Some(tid) = theirs.types.find(name) else {
                    continue;
                };
                *seen = true;
                compared += 1;
                let (a, b) = (ours.ty(*id), theirs.ty(tid));
                let shape = |t: &mig_rs::ir::Type| {
                    format!(
                        "in {} out {} size {} number {} inline {} long {} dealloc {:?} \
                         struct {} string {} var {} indefinite {} port {} align {} bytes {}+{} \
                         ctype {:?}/{:?}",
                        t.in_name,
                        t.out_name,
                        t.size,
                        t.number,
                        t.inline,
                        t.long_form,
                        t.dealloc,
                        t.is_struct,
                        t.is_string,
                        t.var_array,
                        t.indefinite,
                        t.userland_port,
                        t.alignment,
                        t.type_size,
                        t.pad_size,
                        t.user_type,
                        t.server_type
                    )
                };
                if shape(a) != shape(b) {
                    problems.push(format!(
                        "{what}: type {name}:\n  ours:     {}\n  GNU Mach: {}",
                        shape(a),
                        shape(b)
                    ));
                }
            }
        }
        for (name, seen) in found {
            if !seen {
                problems.push(format!(
                    "{}: type {name} is not declared by GNU Mach's files of the same interfaces",
                    target.name()
                ));
            }
        }
    }
    eprintln!("own defs: {compared} type declarations compared with GNU Mach's");
    fail_if(problems);
}

// ---- Reading GNU MIG's C -------------------------------------------------------------------

/// The demux function GNU MIG defines in a `Server.c`.
fn demux_name(server_c: &str) -> Option<String> {
    let marker = "mig_external boolean_t ";
    let at = server_c.find(marker)? + marker.len();
    let name: String = server_c[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The parameter list of the first `kern_return_t NAME (…)` in `text` (a user stub's
/// definition, or the server function's declaration inside its server stub), with
/// whitespace normalised.
fn prototype(text: &str, name: &str) -> Option<String> {
    let marker = format!("kern_return_t {name}");
    for (at, _) in text.match_indices(&marker) {
        let rest = text[at + marker.len()..].trim_start();
        if !rest.starts_with('(') {
            continue;
        }
        let mut depth = 0;
        for (k, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        let params = &rest[1..k];
                        return Some(params.split_whitespace().collect::<Vec<_>>().join(" "));
                    }
                }
                _ => {}
            }
        }
    }
    None
}
