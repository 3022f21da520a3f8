//! Arbitrary bytes as the main `.defs` file, through the whole front end (built-in
//! preprocessor, lexer, parser, checker), diagnostics rendering, `-list` and the `-v` dump.
//!
//! The in-memory file system also holds a small types file (written for this project) at
//! `/fuzz/inc/std.defs`, so `#include <std.defs>` works, and the main file itself, so
//! self-inclusion is exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mig_rs::driver::{compile_with, Options};
use mig_rs::preprocess::{Define, MemLoader};
use std::path::Path;

const STD: &str = "\
#ifndef STD_DEFS
#define STD_DEFS
type int32_t = MACH_MSG_TYPE_INTEGER_32;
type int64_t = MACH_MSG_TYPE_INTEGER_64;
type boolean_t = MACH_MSG_TYPE_BOOLEAN;
type natural_t = MACH_MSG_TYPE_INTEGER_32;
type mach_port_t = MACH_MSG_TYPE_COPY_SEND;
type mach_port_send_t = MACH_MSG_TYPE_PORT_SEND ctype: mach_port_t;
type mach_port_poly_t = polymorphic ctype: mach_port_t;
type data_t = ^array[] of MACH_MSG_TYPE_BYTE;
type bytes_t = array[] of char;
type name_t = c_string[64];
#endif
";

fuzz_target!(|data: &[u8]| {
    let main = Path::new("/fuzz/main.defs");
    let mut loader = MemLoader::new()
        .with(main, data.to_vec())
        .with("/fuzz/inc/std.defs", STD.as_bytes().to_vec());
    let opts = Options {
        include_dirs: vec!["/fuzz/inc".into()],
        defines: vec![Define::Set("SEQNOS".into(), None)],
        ..Options::default()
    };
    let comp = compile_with(main, &opts, &mut loader);
    let _ = comp.render_diagnostics();
    if let Some(sub) = comp.ok() {
        let _ = sub.routine_list();
        let _ = mig_rs::cli::describe(sub);
    }
});
