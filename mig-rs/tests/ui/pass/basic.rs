//! The attribute on a module with attributes, a visibility and items of its own: the
//! generated client talks to the generated server over the loopback transport.
use mig_runtime::loopback::Loopback;
use mig_runtime::{KernReturn, MsgBuf, PortName, SendRight, SpaceId, Target};

/// The calculator interface.
#[mig_rs::interface(
    path = "../defs/calc.defs",
    include = "../defs/inc",
    define(SCALE_T = "int32_t")
)]
#[allow(dead_code)]
pub(crate) mod calc {
    /// Items of the module itself are kept after the generated ones.
    pub const EXTRA: i32 = SUBSYSTEM_BASE + 1;
}

struct Calc;

impl calc::server::CalcServer for Calc {
    fn add(&self, _server: PortName, a: i32, b: i32) -> Result<i64, KernReturn> {
        Ok(i64::from(a) + i64::from(b))
    }
    fn note(&self, _server: PortName, label: &[u8]) -> Result<(), KernReturn> {
        assert_eq!(label, b"hello");
        Ok(())
    }
    fn scale(&self, _server: PortName, x: i32) -> Result<i32, KernReturn> {
        Ok(x * 10)
    }
}

fn main() {
    assert_eq!(calc::SUBSYSTEM, "calc");
    assert_eq!(calc::EXTRA, 2301);
    assert_eq!(calc::ADD_ID, 2300);
    assert_eq!(calc::TARGET, Target::X86_64);
    let server = Calc;
    let demux =
        |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| calc::server::calc_server(&server, req, rep);
    let t = Loopback::new(demux, Target::X86_64);
    let port = SendRight::from_raw(SpaceId::SELF, PortName(0x10));
    assert_eq!(calc::client::add(&t, &port, 40, 2).unwrap(), 42);
    assert_eq!(calc::client::scale(&t, &port, 7).unwrap(), 70);
    calc::client::note(&t, &port, b"hello").unwrap();
    let _ = port.into_raw();
}
