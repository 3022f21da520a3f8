//! Smoke tests of the GNU MIG oracle harness: locating the oracle, running it over the
//! GNU Mach corpus, extracting layouts and recording message bytes.
//!
//! Without the oracle these tests print `SKIP: GNU MIG oracle not found …` and pass
//! (unless `CI` is set). Fetch it with
//! `bash .ci/fetch-debian13.sh target/debian13 mig-x86-64-gnu gnumach-dev`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mig_conformance::harness::{self, AutoVarInit, BuildOptions, StubSide};
use mig_conformance::{
    require_oracle, ComplexBit, DescriptorCheck, FieldKind, Oracle, Outputs, RoutineLayout,
    SizeCheck,
};

const VARIANTS: [&[&str]; 2] = [&[], &["SEQNOS"]];

fn rel(oracle: &Oracle, p: &Path) -> String {
    p.strip_prefix(oracle.include_dir())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// The corpus files GNU MIG accepts (from a run without defines).
fn accepted_files(oracle: &Oracle) -> Vec<PathBuf> {
    oracle
        .corpus()
        .into_iter()
        .filter(|f| {
            oracle
                .run(f, &[], Outputs::ALL)
                .expect("GNU MIG runs")
                .accepted()
        })
        .collect()
}

#[test]
fn oracle_is_located() {
    let oracle = require_oracle!();
    assert!(oracle.wrapper().is_file());
    assert!(oracle.include_dir().join("mach/message.h").is_file());
    let corpus = oracle.corpus();
    let names: Vec<String> = corpus.iter().map(|p| rel(&oracle, p)).collect();
    assert_eq!(corpus.len(), 23, "corpus: {names:?}");
    assert!(names.contains(&"mach/x86_64/mach_i386.defs".to_string()));
    assert!(corpus.windows(2).all(|w| w[0] < w[1]), "sorted");
    eprintln!(
        "oracle at {}; {} corpus files",
        oracle.root().display(),
        corpus.len()
    );
}

#[test]
fn corpus_runs_with_and_without_seqnos() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let mut summary = BTreeMap::new();
    for variant in VARIANTS {
        let mut accepted = 0;
        let mut routines = 0;
        for defs in oracle.corpus() {
            let run = oracle
                .run(&defs, variant, Outputs::ALL)
                .expect("GNU MIG runs");
            let name = rel(&oracle, &defs);
            if run.accepted() {
                accepted += 1;
                let entries = run.list_entries().expect("valid -list output");
                assert!(!entries.is_empty(), "{name}: empty -list");
                for e in &entries {
                    assert_eq!(e.msgh_id, e.base + e.number, "{name}: {e:?}");
                    assert!(e.reply_id == 0 || e.reply_id == e.msgh_id + 100, "{e:?}");
                }
                routines += entries.len();
                for out in [&run.server_c, &run.user_c, &run.header_h, &run.sheader_h] {
                    assert!(
                        out.as_ref().is_some_and(|p| p.is_file()),
                        "{name}: missing output"
                    );
                }
            } else {
                // Types-only files: migcom dies of SIGFPE after "Basic types not initialized".
                assert_eq!(run.exit_code, Some(136), "{name}: {}", run.stderr);
                assert!(run.stderr.contains("Basic types not initialized"), "{name}");
            }
            summary
                .entry(name)
                .or_insert_with(Vec::new)
                .push(run.list_entries().map(|l| l.len()).unwrap_or(0));
        }
        assert_eq!(accepted, 17, "accepted files with {variant:?}");
        assert_eq!(routines, 193, "routines with {variant:?}");
    }
    eprintln!("corpus runs took {:?}", start.elapsed());
    for (name, counts) in &summary {
        eprintln!("  {name:40} routines (plain, SEQNOS): {counts:?}");
    }
}

fn find<'a>(layouts: &'a [RoutineLayout], name: &str) -> &'a RoutineLayout {
    layouts
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no routine {name}"))
}

#[test]
fn layouts_for_every_accepted_file() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let abi = oracle.abi().expect("ABI probe");
    assert_eq!(abi.header, 32);
    assert_eq!(abi.type_desc, 8);
    assert_eq!(abi.type_long, 8);
    assert_eq!(abi.reply_header, 48, "x86_64 mig_reply_header_t");
    assert_eq!(abi.port_name_inlined, 8);

    let files = accepted_files(&oracle);
    assert_eq!(files.len(), 17);
    let mut total = 0;
    let mut variable = 0;
    let mut long_descriptors = 0;
    for variant in VARIANTS {
        for defs in &files {
            let name = rel(&oracle, defs);
            let layouts = oracle
                .layouts(defs, variant)
                .unwrap_or_else(|e| panic!("layouts of {name} {variant:?}: {e}"));
            let list = oracle
                .run(defs, variant, Outputs::ALL)
                .and_then(|r| r.list_entries())
                .expect("list");
            assert_eq!(layouts.len(), list.len(), "{name}");
            total += layouts.len();
            for r in &layouts {
                let what = format!("{name} {variant:?} {}", r.name);
                assert_eq!(r.simple, r.reply.is_none(), "{what}");
                let mut messages = vec![("request", &r.request)];
                if let Some(reply) = &r.reply {
                    messages.push(("reply", reply));
                    // Every x86_64 reply starts with the 48-byte mig_reply_header_t.
                    let f = &reply.layout.fields;
                    assert_eq!(
                        f.iter()
                            .take(4)
                            .map(|f| (f.name.as_str(), f.offset, f.size))
                            .collect::<Vec<_>>(),
                        [
                            ("Head", 0, 32),
                            ("RetCodeType", 32, 8),
                            ("RetCode", 40, 4),
                            ("RetCodePad", 44, 4)
                        ],
                        "{what}"
                    );
                    assert!(reply.size_check.bytes() >= abi.reply_header, "{what}");
                    assert!(matches!(
                        reply.checks.first(),
                        Some(DescriptorCheck::Quick { field, template })
                            if field == "RetCodeType" && template.value == 0x0000_0001_2000_2002
                    ));
                    assert_eq!(reply.templates[0].var, "RetCodeType", "{what}");
                }
                for (kind, m) in messages {
                    assert!(m.layout.same_shape(&m.user_layout), "{what} {kind}");
                    assert_eq!(m.layout.fields[0].kind, FieldKind::Header, "{what}");
                    assert_eq!(m.layout.size % 8, 0, "{what} {kind}");
                    for f in &m.layout.fields {
                        if f.kind != FieldKind::Pad {
                            assert_eq!(f.offset % 8, 0, "{what} {kind} {} misaligned", f.name);
                        }
                        if f.kind == FieldKind::LongDescriptor {
                            long_descriptors += 1;
                        }
                    }
                    if m.layout.has_variable_array() {
                        variable += 1;
                        assert!(
                            m.size_check.bytes() <= m.layout.size,
                            "{what} {kind}: {:?} vs sizeof {}",
                            m.size_check,
                            m.layout.size
                        );
                    } else {
                        assert_eq!(
                            m.size_check,
                            SizeCheck::Exact(m.layout.size),
                            "{what} {kind}"
                        );
                    }
                    if let Some(n) = m.sender_fixed_size {
                        assert_eq!(m.size_check, SizeCheck::Exact(n), "{what} {kind}");
                    }
                    // Poly senders decide at run time what the receiver may require
                    // statically (e.g. device_open's `out device: mach_port_send_t`).
                    if m.complex_check != ComplexBit::Dynamic
                        && m.sender_complex != ComplexBit::Dynamic
                    {
                        assert_eq!(m.complex_check, m.sender_complex, "{what} {kind}");
                    }
                    // Every descriptor field is covered by a template of the sender.
                    for f in m.layout.fields.iter().filter(|f| {
                        matches!(f.kind, FieldKind::Descriptor | FieldKind::LongDescriptor)
                    }) {
                        assert!(
                            m.templates
                                .iter()
                                .any(|t| format!("{}Type", t.arg) == f.name),
                            "{what} {kind}: no template for {}",
                            f.name
                        );
                        assert!(
                            m.check(&f.name).is_some(),
                            "{what} {kind}: {} unchecked",
                            f.name
                        );
                        let t = m
                            .templates
                            .iter()
                            .find(|t| format!("{}Type", t.arg) == f.name);
                        if let Some(t) = t {
                            assert_eq!(t.long, f.kind == FieldKind::LongDescriptor, "{what}");
                            assert_eq!(t.desc.longform, t.long, "{what} {}", t.var);
                            assert_eq!(t.bytes.len(), 8, "{what} {}", t.var);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(total, 2 * 193);

    let seqnos = oracle.include_dir().join("mach/memory_object_default.defs");
    let layouts = oracle.layouts(&seqnos, &["SEQNOS"]).expect("layouts");
    let create = find(&layouts, "memory_object_create");
    assert!(create.simple);
    assert_eq!(create.msgh_id, 2250);
    assert_eq!(create.request.layout.size, 112);
    assert_eq!(create.request.size_check, SizeCheck::Exact(112));
    assert_eq!(create.request.complex_check, ComplexBit::Set);
    let init = find(&layouts, "memory_object_data_initialize");
    assert_eq!(init.request.layout.size, 80);
    let data = init.request.layout.field("dataType").expect("dataType");
    assert_eq!((data.kind, data.offset), (FieldKind::LongDescriptor, 64));
    let t = init.request.template("data").expect("data template");
    assert_eq!(t.bytes, [0x09, 0x08, 0x00, 0x40, 0, 0, 0, 0]);

    let mach_port = oracle.include_dir().join("mach/mach_port.defs");
    let layouts = oracle.layouts(&mach_port, &[]).expect("layouts");
    let alloc = find(&layouts, "mach_port_allocate");
    assert_eq!(alloc.request.layout.size, 48);
    let reply = alloc.reply.as_ref().expect("reply");
    assert_eq!(reply.size_check, SizeCheck::Exact(56 + 8));
    eprintln!(
        "layouts: {total} routines ({variable} variable messages, {long_descriptors} long \
         descriptors) in {:?}",
        start.elapsed()
    );
}

// ---- message-byte recording -------------------------------------------------------

type KernReturn = i32;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[test]
fn records_memory_object_create_and_feeds_the_server() {
    let oracle = require_oracle!();
    let defs = oracle.include_dir().join("mach/memory_object_default.defs");
    let run = oracle.run(&defs, &["SEQNOS"], Outputs::ALL).expect("run");
    let layouts = oracle.layouts_of(&run).expect("layouts");
    let create = find(&layouts, "memory_object_create");

    let user_lib = harness::build_library(&oracle, &run, StubSide::User, &BuildOptions::default())
        .expect("user harness");
    let user = harness::Library::open(&user_lib).expect("dlopen user");
    let rec = user.recorder().expect("recorder");
    rec.reset();
    type Create = extern "C" fn(u32, u32, u64, u32, u32, u64) -> KernReturn;
    // SAFETY: matches GNU MIG's user prototype for memory_object_create.
    let stub: Create = unsafe { user.symbol("memory_object_create") }.expect("stub");
    let kr = stub(0x11, 0x22, 0x10000, 0x33, 0x44, 0x1000);
    assert_eq!(kr, 0);
    let sent = rec.sent();
    let call = rec.last_call();
    assert_eq!(call.option, 1, "MACH_SEND_MSG only");
    assert_eq!(call.send_size, 112);
    assert_eq!(sent.len(), 112);
    assert_eq!(
        u32_at(&sent, 0),
        0x8000_0011,
        "COMPLEX | MOVE_SEND, no reply port"
    );
    assert_eq!(u32_at(&sent, 4), 112);
    assert_eq!(u32_at(&sent, 8), 0x11);
    assert_eq!(u32_at(&sent, 16), 0);
    assert_eq!(u32_at(&sent, 28), 2250);
    let req = &create.request;
    for t in &req.templates {
        let f = req
            .layout
            .field(&format!("{}Type", t.arg))
            .expect("descriptor field");
        let at = f.offset as usize;
        assert_eq!(&sent[at..at + 8], &t.bytes[..], "{}", t.var);
    }
    let value = |name: &str| {
        let f = req.layout.field(name).expect("field");
        u64_at(&sent, f.offset as usize)
    };
    assert_eq!(value("new_object_size"), 0x10000);
    assert_eq!(value("new_page_size"), 0x1000);
    assert_eq!(value("new_control_port") & 0xffff_ffff, 0x33);
    assert_eq!(rec.counters().get_reply_port, 0);

    // Deliver to GNU MIG's server demux (weak default server function → EOPNOTSUPP).
    let server_lib =
        harness::build_library(&oracle, &run, StubSide::Server, &BuildOptions::default())
            .expect("server harness");
    let server = harness::Library::open(&server_lib).expect("dlopen server");
    type Demux = extern "C" fn(*mut u8, *mut u8) -> i32;
    // SAFETY: boolean_t demux(mach_msg_header_t *, mach_msg_header_t *).
    let demux: Demux =
        unsafe { server.symbol("seqnos_memory_object_default_server") }.expect("demux");
    let mut input = harness::deliver_x86_64(&sent).expect("deliver");
    input.resize(8192, 0);
    let mut output = vec![0u8; 8192];
    assert_eq!(demux(input.as_mut_ptr(), output.as_mut_ptr()), 1);
    assert_eq!(u32_at(&output, 4), 48, "mig_reply_header_t");
    assert_eq!(u32_at(&output, 28), 2350);
    assert_eq!(u32_at(&output, 40) as i32, harness::DEFAULT_EOPNOTSUPP);

    // A request one byte short is rejected with MIG_BAD_ARGUMENTS.
    let mut bad = harness::deliver_x86_64(&sent).expect("deliver");
    bad[4..8].copy_from_slice(&104u32.to_le_bytes());
    bad.resize(8192, 0);
    assert_eq!(demux(bad.as_mut_ptr(), output.as_mut_ptr()), 1);
    assert_eq!(u32_at(&output, 40) as i32, -304);
}

const ALLOCATE_SERVER: &str = r#"
#include <mach/message.h>
#include <mach/port.h>
kern_return_t mach_port_allocate(mach_port_t task, mach_port_right_t right,
                                 mach_port_name_t *name)
{
	if (task != 0x55 || right != 1)
		return 4; /* KERN_INVALID_ARGUMENT */
	*name = 0x77;
	return 0;
}
"#;

#[test]
fn round_trips_mach_port_allocate() {
    let oracle = require_oracle!();
    let defs = oracle.include_dir().join("mach/mach_port.defs");
    let run = oracle.run(&defs, &[], Outputs::ALL).expect("run");
    let layouts = oracle.layouts_of(&run).expect("layouts");
    let alloc = find(&layouts, "mach_port_allocate");
    let reply_layout = alloc.reply.as_ref().expect("routine");

    let user = harness::build_library(&oracle, &run, StubSide::User, &BuildOptions::default())
        .and_then(|p| harness::Library::open(&p))
        .expect("user harness");
    let server_opts = BuildOptions {
        extra_sources: vec![("allocate.c".into(), ALLOCATE_SERVER.into())],
        ..BuildOptions::default()
    };
    let server = harness::build_library(&oracle, &run, StubSide::Server, &server_opts)
        .and_then(|p| harness::Library::open(&p))
        .expect("server harness");
    let rec = user.recorder().expect("recorder");
    type Allocate = extern "C" fn(u32, u32, *mut u32) -> KernReturn;
    type Demux = extern "C" fn(*mut u8, *mut u8) -> i32;
    // SAFETY: prototypes as generated by GNU MIG for mach_port.defs.
    let (stub, demux): (Allocate, Demux) = unsafe {
        (
            user.symbol("mach_port_allocate").expect("stub"),
            server.symbol("mach_port_server").expect("demux"),
        )
    };

    // 1. Capture the request (no reply canned: the receive times out).
    rec.reset();
    rec.set_reply_port(0x99);
    let mut name = 0u32;
    let kr = stub(0x55, 1, &mut name);
    assert_eq!(kr, harness::MACH_RCV_TIMED_OUT);
    assert_eq!(rec.counters().dealloc_reply_port, 1);
    let request = rec.sent();
    assert_eq!(request.len() as u64, alloc.request.layout.size);
    assert_eq!(
        u32_at(&request, 0),
        0x1513,
        "COPY_SEND | MAKE_SEND_ONCE << 8"
    );
    assert_eq!(u32_at(&request, 16), 0x99);
    assert_eq!(u32_at(&request, 28), 3204);
    assert_eq!(rec.last_call().option, 3, "MACH_SEND_MSG | MACH_RCV_MSG");

    // 2. Let GNU MIG's server stub answer it.
    let mut input = harness::deliver_x86_64(&request).expect("deliver");
    input.resize(4096, 0);
    let mut output = vec![0u8; 4096];
    assert_eq!(demux(input.as_mut_ptr(), output.as_mut_ptr()), 1);
    let reply_size = u32_at(&output, 4) as usize;
    assert_eq!(SizeCheck::Exact(reply_size as u64), reply_layout.size_check);
    assert_eq!(u32_at(&output, 0), 0x12, "reply to the send-once right");
    let reply = harness::deliver_x86_64(&output[..reply_size]).expect("deliver");

    // 3. Feed the reply back to the user stub.
    rec.reset();
    rec.set_reply(&reply);
    let kr = stub(0x55, 1, &mut name);
    assert_eq!(kr, 0);
    assert_eq!(name, 0x77);
    rec.set_reply_port(0x99);
    rec.set_reply(&reply);
    assert_eq!(stub(0x55, 1, &mut name), 0);
    assert_eq!(
        rec.sent(),
        request,
        "the zero-initialised stub is deterministic"
    );
    let c = rec.counters();
    assert_eq!(
        (c.get_reply_port, c.put_reply_port, c.dealloc_reply_port),
        (2, 2, 0)
    );

    // An error reply (just mig_reply_header_t) is passed through.
    rec.reset();
    let mut short = reply[..48].to_vec();
    short[4..8].copy_from_slice(&48u32.to_le_bytes());
    short[40..44].copy_from_slice(&4i32.to_le_bytes());
    rec.set_reply(&short);
    assert_eq!(stub(0x55, 1, &mut name), 4);
    // A reply with the wrong id is MIG_REPLY_MISMATCH.
    rec.reset();
    let mut wrong = reply.clone();
    wrong[28..32].copy_from_slice(&3305u32.to_le_bytes());
    rec.set_reply(&wrong);
    assert_eq!(stub(0x55, 1, &mut name), -301);
    assert_eq!(rec.counters().dealloc_reply_port, 1);
}

#[test]
fn finds_the_bytes_gnu_mig_leaves_undefined() {
    let oracle = require_oracle!();
    let defs = oracle.include_dir().join("mach/mach_port.defs");
    let run = oracle.run(&defs, &[], Outputs::ALL).expect("run");
    let record = |init: AutoVarInit| {
        let opts = BuildOptions {
            auto_var_init: init,
            ..BuildOptions::default()
        };
        let lib = harness::build_library(&oracle, &run, StubSide::User, &opts)
            .and_then(|p| harness::Library::open(&p))
            .expect("user harness");
        let rec = lib.recorder().expect("recorder");
        type Allocate = extern "C" fn(u32, u32, *mut u32) -> KernReturn;
        // SAFETY: GNU MIG's prototype of mach_port_allocate.
        let stub: Allocate = unsafe { lib.symbol("mach_port_allocate") }.expect("stub");
        rec.reset();
        let mut name = 0;
        stub(0x55, 1, &mut name);
        rec.sent()
    };
    let zero = record(AutoVarInit::Zero);
    let pattern = record(AutoVarInit::Pattern);
    // The upper halves of the two 8-byte header port slots and `rightPad`.
    let undefined = harness::undefined_bytes(&zero, &pattern);
    let expected: Vec<usize> = (12..16).chain(20..24).chain(44..48).collect();
    assert_eq!(undefined, expected);
}

#[test]
fn generated_stubs_compile_into_harness_libraries() {
    let oracle = require_oracle!();
    let start = Instant::now();
    let files = accepted_files(&oracle);
    let results: Vec<(String, StubSide, Result<PathBuf, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .flat_map(|f| [(f, StubSide::User), (f, StubSide::Server)])
            .map(|(f, side)| {
                let oracle = &oracle;
                s.spawn(move || {
                    let built = oracle
                        .run(f, &[], Outputs::ALL)
                        .and_then(|run| {
                            harness::build_library(oracle, &run, side, &BuildOptions::default())
                        })
                        .and_then(|lib| harness::Library::open(&lib).map(|l| l.path().into()))
                        .map_err(|e| e.to_string());
                    (rel(oracle, f), side, built)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("build thread"))
            .collect()
    });
    let failed: Vec<(String, StubSide)> = results
        .iter()
        .filter(|r| r.2.is_err())
        .map(|r| (r.0.clone(), r.1))
        .collect();
    // GNU MIG (1.8+git20231217) emits `In0P->object.name` for the inline variable port
    // array of memory_object_create_proxy: invalid C, so mach4's Server.c cannot compile.
    assert_eq!(
        failed,
        [("mach/mach4.defs".to_string(), StubSide::Server)],
        "{:#?}",
        results.iter().filter(|r| r.2.is_err()).collect::<Vec<_>>()
    );
    eprintln!(
        "built {} harness libraries in {:?}",
        results.len() - failed.len(),
        start.elapsed()
    );
}
