//! Every argument: defines (with and without values, in order with undefine), include
//! directories, the i386 layout, one side only and default server methods.
use mig_runtime::{KernReturn, PortName, Target};

#[mig_rs::interface(
    path = "../defs/calc.defs",
    include = "../defs/inc",
    define(SEQNOS),
    define(SCALE_T = int64_t),
    define(UNUSED = 7),
    undefine(UNUSED),
    target = "i386",
    client = false,
    server = true,
    default_server_methods = true,
    runtime_crate = "::mig_runtime",
    routine_prefix = "do_",
)]
mod calc_i386 {}

// Only `add` is implemented; the others answer MIG_BAD_ID by default.
struct Adder;

impl calc_i386::server::DoCalcServer for Adder {
    fn do_add(&self, _server: PortName, seqno: u32, a: i32, b: i32) -> Result<i64, KernReturn> {
        Ok(i64::from(a) + i64::from(b) + i64::from(seqno))
    }
}

// The same file twice with different options, as for a SEQNOS variant.
#[mig_rs::interface(
    path = "../defs/calc.defs",
    include = "../defs/inc",
    define(SCALE_T = "int32_t"),
    server = false
)]
mod calc_client_only {}

fn main() {
    assert_eq!(calc_i386::TARGET, Target::I386);
    assert_eq!(calc_i386::DEMUX, "do_calc_server");
    assert!(calc_i386::server::do_calc_server_routine::<Adder>(calc_i386::ADD_ID).is_some());
    let _ = Adder;
    let _ = calc_client_only::client::scale::<
        mig_runtime::loopback::Loopback<
            fn(&mut mig_runtime::MsgBuf<'_>, &mut mig_runtime::MsgBuf<'_>) -> bool,
        >,
    >;
}
