//! Every routine of `features.defs`: the generated client talks to the generated server over
//! the in-process loopback transport, on both targets. The server records what it received;
//! the test checks it against what the client sent and the client's results against what the
//! server returned.

use mig_runtime::loopback::Loopback;
use mig_runtime::msg::OolData;
use mig_runtime::wire::type_name;
use mig_runtime::{
    KernReturn, MsgBuf, OolBuffer, Poly, PortName, ReceivedRight, RpcError, SendRight, Target,
};
use std::cell::RefCell;

macro_rules! server_impl {
    ($m:ident, $rec:ty) => {
        use $m::server::*;
        use $m::*;

        #[derive(Default)]
        pub struct Server {
            pub log: RefCell<Vec<String>>,
        }

        impl Server {
            fn log(&self, s: String) {
                self.log.borrow_mut().push(s);
            }
        }

        impl FeaturesServer for Server {
            fn scalars(
                &self,
                server: PortName,
                a: int32_t,
                b: int64_t,
                c: int16_t,
                d: uint8_t,
                e: boolean_t,
                g: uint32_t,
            ) -> Result<ScalarsReply, KernReturn> {
                self.log(format!("scalars {server:?} {a} {b} {c} {d} {e} {g}"));
                if a == -1 {
                    return Err(KernReturn::KERN_INVALID_ARGUMENT);
                }
                Ok(ScalarsReply { f: b * 2, g: g + 1 })
            }
            fn one_way(&self, server: PortName, x: natural_t) -> Result<(), KernReturn> {
                self.log(format!("one_way {server:?} {x}"));
                Ok(())
            }
            fn arrays(
                &self,
                _s: PortName,
                ints: Vec<i32>,
                shorts: Vec<i16>,
                fixed: [i32; 4],
                triples: Vec<[i32; 3]>,
                out_chars_cnt: u32,
            ) -> Result<ArraysReply, KernReturn> {
                self.log(format!(
                    "arrays {ints:?} {shorts:?} {fixed:?} {triples:?} {out_chars_cnt}"
                ));
                Ok(ArraysReply {
                    out_ints: ints.iter().map(|x| x * 3).collect(),
                    out_fixed: [fixed[3], fixed[2], fixed[1], fixed[0]],
                    out_chars: (0..out_chars_cnt.min(5) as u8).map(|i| b'a' + i).collect(),
                })
            }
            fn strings(
                &self,
                _s: PortName,
                name: &[u8],
                path: &[u8],
                dev: &[u8],
            ) -> Result<StringsReply, KernReturn> {
                self.log(format!(
                    "strings {:?} {:?} {:?}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(dev)
                ));
                Ok(StringsReply {
                    out_name: path.to_vec(),
                    out_path: name.to_vec(),
                })
            }
            fn ool(
                &self,
                _s: PortName,
                data: OolBuffer,
                moved: OolBuffer,
                maybe: OolBuffer,
            ) -> Result<OolReply, KernReturn> {
                self.log(format!(
                    "ool {} {} {}",
                    data.len(),
                    moved.len(),
                    maybe.len()
                ));
                let mut both = data.to_vec();
                both.extend_from_slice(&moved);
                Ok(OolReply {
                    out_data: OolBuffer::from_vec(both),
                    out_moved: maybe,
                })
            }
            fn indefinite(
                &self,
                _s: PortName,
                longs: Vec<i64>,
                pages: Vec<i32>,
            ) -> Result<IndefiniteReply, KernReturn> {
                self.log(format!(
                    "indefinite {} {} {:?} {:?}",
                    longs.len(),
                    pages.len(),
                    longs.last(),
                    pages.last()
                ));
                Ok(IndefiniteReply {
                    out_longs: pages.iter().map(|&x| x as i64).collect(),
                    out_pages: longs.iter().map(|&x| x as i32).collect(),
                })
            }
            fn ports(
                &self,
                _s: PortName,
                copy: SendRight,
                r#move: SendRight,
                make: SendRight,
                poly: ReceivedRight,
                name: PortName,
            ) -> Result<PortsReply, KernReturn> {
                self.log(format!(
                    "ports {:?} {:?} {:?} {:?} {:?}",
                    copy.name(),
                    r#move.name(),
                    make.name(),
                    poly.into_raw(),
                    name
                ));
                let _ = (copy.into_raw(), r#move.into_raw(), make.into_raw());
                Ok(PortsReply {
                    got: Poly::Raw(PortName(0x77), type_name::MAKE_SEND),
                    got_poly: Poly::Raw(PortName(0x78), type_name::MOVE_SEND_ONCE),
                    got_name: PortName(0x79),
                })
            }
            fn port_arrays(
                &self,
                _s: PortName,
                inl: Vec<SendRight>,
                ool: Vec<SendRight>,
                names: Vec<u32>,
            ) -> Result<PortArraysReply, KernReturn> {
                let inl: Vec<u32> = inl.into_iter().map(|r| r.into_raw().0).collect();
                let ool: Vec<u32> = ool.into_iter().map(|r| r.into_raw().0).collect();
                self.log(format!(
                    "port_arrays {} {} {:?} {:?} {:?}",
                    inl.len(),
                    ool.len(),
                    inl.first(),
                    ool.last(),
                    names
                ));
                Ok(PortArraysReply {
                    out_inl: ool.iter().map(|&n| PortName(n)).collect(),
                    out_ool: inl.iter().map(|&n| PortName(n)).collect(),
                })
            }
            fn headers(
                &self,
                server: PortName,
                reply: PortName,
                reply_poly: u32,
                seqno: u32,
                x: int32_t,
            ) -> Result<(), KernReturn> {
                self.log(format!(
                    "headers {server:?} {reply:?} {reply_poly} {seqno} {x}"
                ));
                Ok(())
            }
            fn user_reply(&self, _s: PortName, x: int32_t) -> Result<(), KernReturn> {
                self.log(format!("user_reply {x}"));
                Ok(())
            }
            fn s_structs(
                &self,
                _s: PortName,
                big: [u8; 64],
                rec: $rec,
            ) -> Result<$rec, KernReturn> {
                self.log(format!("structs {} {} {:?}", big[0], big[63], rec));
                let mut r = rec;
                r.reverse();
                Ok(r)
            }
            fn s_two_var(
                &self,
                _s: PortName,
                first: &[u8],
                second: Vec<i32>,
                after: int32_t,
            ) -> Result<TwoVarReply, KernReturn> {
                self.log(format!(
                    "two_var {:?} {:?} {after}",
                    String::from_utf8_lossy(first),
                    second
                ));
                Ok(TwoVarReply {
                    o1: second.iter().map(|&x| x as u8).collect(),
                    o2: first.iter().map(|&c| c as i32).collect(),
                    tail: after as i64 * 1000,
                })
            }
        }
    };
}

mod x86 {
    use super::*;
    use stub_tests::features;
    server_impl!(features, [i64; 2]);
}
mod i386 {
    use super::*;
    use stub_tests::features_i386;
    server_impl!(features_i386, [i32; 4]);
}

macro_rules! run_all {
    ($m:ident, $srv:path, $target:expr) => {{
        use stub_tests::$m::client;
        let srv = <$srv>::default();
        let t = Loopback::new(srv_demux(&srv), $target);
        fn srv_demux(s: &$srv) -> impl Fn(&mut MsgBuf<'_>, &mut MsgBuf<'_>) -> bool + '_ {
            move |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| {
                stub_tests::$m::server::features_server(s, req, rep)
            }
        }
        let port = SendRight::from_raw(mig_runtime::SpaceId::SELF, PortName(0x10));

        let r = client::scalars(&t, &port, -5, 1 << 40, -3, 200, 1, 41).expect("scalars");
        assert_eq!((r.f, r.g), (1 << 41, 42));
        assert_eq!(
            client::scalars(&t, &port, -1, 0, 0, 0, 0, 0).map(|_| ()),
            Err(RpcError::Server(KernReturn::KERN_INVALID_ARGUMENT))
        );
        client::one_way(&t, &port, 7).expect("one_way");

        let ints: Vec<i32> = (0..64).collect();
        let r = client::arrays(
            &t,
            &port,
            &ints,
            &[1, -2, 3],
            &[1, 2, 3, 4],
            &[[1, 2, 3], [4, 5, 6]],
            100,
        )
        .expect("arrays");
        assert_eq!(r.out_ints, ints.iter().map(|x| x * 3).collect::<Vec<_>>());
        assert_eq!(r.out_fixed, [4, 3, 2, 1]);
        assert_eq!(r.out_chars, b"abcde");
        let r = client::arrays(&t, &port, &[], &[], &[0; 4], &[], 2).expect("arrays empty");
        assert_eq!((r.out_ints.len(), r.out_chars.as_slice()), (0, &b"ab"[..]));
        let too_many: Vec<i32> = (0..65).collect();
        assert!(matches!(
            client::arrays(&t, &port, &too_many, &[], &[0; 4], &[], 0),
            Err(RpcError::Mig(KernReturn::MIG_ARRAY_TOO_LARGE))
        ));

        let r = client::strings(&t, &port, b"short", &[b'p'; 300], b"/dev/hd0").expect("strings");
        assert_eq!(r.out_name, vec![b'p'; 63]);
        assert_eq!(r.out_path, b"short");

        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let r = client::ool(
            &t,
            &port,
            &data,
            OolBuffer::from_vec(vec![9; 10]),
            OolData::Owned(OolBuffer::from_vec(vec![7; 3])),
        )
        .expect("ool");
        assert_eq!(r.out_data.len(), 5010);
        assert_eq!(&r.out_data[..5000], &data[..]);
        assert_eq!(&*r.out_moved, &[7, 7, 7]);
        let r = client::ool(&t, &port, &[], OolBuffer::empty(), OolData::Borrowed(&[1]))
            .expect("ool empty");
        assert_eq!((r.out_data.len(), &*r.out_moved), (0, &[1u8][..]));

        for n in [0usize, 3, 256, 257, 1000] {
            let longs: Vec<i64> = (0..n as i64).collect();
            let pages: Vec<i32> = (0..(2 * n) as i32).collect();
            let r = client::indefinite(&t, &port, &longs, &pages).expect("indefinite");
            assert_eq!(
                r.out_longs,
                pages.iter().map(|&x| x as i64).collect::<Vec<_>>()
            );
            assert_eq!(
                r.out_pages,
                longs.iter().map(|&x| x as i32).collect::<Vec<_>>()
            );
        }

        let copy = SendRight::from_raw(mig_runtime::SpaceId::SELF, PortName(0x20));
        let recv = mig_runtime::ReceiveRight::from_raw(mig_runtime::SpaceId::SELF, PortName(0x22));
        let r = client::ports(
            &t,
            &port,
            &copy,
            SendRight::from_raw(mig_runtime::SpaceId::SELF, PortName(0x21)),
            &recv,
            Poly::Raw(PortName(0x23), type_name::MAKE_SEND_ONCE),
            PortName(0x24),
        )
        .expect("ports");
        assert_eq!(r.got.name(), PortName(0x77));
        assert_eq!(r.got_poly.msgt_name(), type_name::PORT_SEND_ONCE);
        assert_eq!(r.got_name, PortName(0x79));
        let _ = (
            r.got.into_raw(),
            r.got_poly.into_raw(),
            copy.into_raw(),
            recv.into_raw(),
        );

        for n in [0usize, 2, 256, 300] {
            let inl: Vec<PortName> = (0..n as u32).map(|i| PortName(0x100 + i)).collect();
            let ool: Vec<PortName> = (0..3).map(|i| PortName(0x200 + i)).collect();
            let r = client::port_arrays(&t, &port, &inl, &ool, &[5, 6]).expect("port_arrays");
            let a: Vec<PortName> = r.out_inl.into_iter().map(|r| r.into_raw()).collect();
            let b: Vec<PortName> = r.out_ool.into_iter().map(|r| r.into_raw()).collect();
            assert_eq!((a, b), (ool, inl));
        }

        let reply = mig_runtime::ReceiveRight::from_raw(mig_runtime::SpaceId::SELF, PortName(0x30));
        client::headers(&t, &port, 9).expect("headers");
        client::user_reply(&t, &port, &reply, 100, 11).expect("user_reply");
        let _ = reply.into_raw();

        let mut big = [0u8; 64];
        big[0] = 1;
        big[63] = 63;
        let mut rec = Default::default();
        set_rec(&mut rec);
        let r = client::u_structs(&t, &port, &big, &rec).expect("structs");
        let mut back = rec;
        back.reverse();
        assert_eq!(r, back);

        let r = client::u_two_var(&t, &port, b"hello", &[1, 2, 3], 4).expect("two_var");
        assert_eq!(
            (r.o1, r.o2, r.tail),
            (
                vec![1, 2, 3],
                b"hello".iter().map(|&c| c as i32).collect(),
                4000
            )
        );
        let _ = port.into_raw();
        drop(t);
        srv.log.into_inner()
    }};
}

trait Rec {
    fn fill(&mut self);
}
impl Rec for [i64; 2] {
    fn fill(&mut self) {
        *self = [5, -6];
    }
}
impl Rec for [i32; 4] {
    fn fill(&mut self) {
        *self = [5, -6, 7, -8];
    }
}
fn set_rec<R: Rec>(r: &mut R) {
    r.fill()
}

fn expected_log(rec: &str) -> Vec<String> {
    let v: Vec<&str> = vec![
        "scalars port#0x10 -5 1099511627776 -3 200 1 41",
        "scalars port#0x10 -1 0 0 0 0 0",
        "one_way port#0x10 7",
        "arrays [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63] [1, -2, 3] [1, 2, 3, 4] [[1, 2, 3], [4, 5, 6]] 100",
        "arrays [] [] [0, 0, 0, 0] [] 2",
        "STRINGS",
        "ool 5000 10 3",
        "ool 0 0 1",
        "indefinite 0 0 None None",
        "indefinite 3 6 Some(2) Some(5)",
        "indefinite 256 512 Some(255) Some(511)",
        "indefinite 257 514 Some(256) Some(513)",
        "indefinite 1000 2000 Some(999) Some(1999)",
        "ports port#0x20 port#0x21 port#0x22 (port#0x23, 18) port#0x24",
        "port_arrays 0 3 None Some(514) [5, 6]",
        "port_arrays 2 3 Some(256) Some(514) [5, 6]",
        "port_arrays 256 3 Some(256) Some(514) [5, 6]",
        "port_arrays 300 3 Some(256) Some(514) [5, 6]",
        "headers port#0x10 port#0x103 18 35 9",
        "user_reply 11",
        "STRUCTS",
        "two_var \"hello\" [1, 2, 3] 4",
    ];
    v.iter()
        .map(|s| match *s {
            "STRUCTS" => format!("structs 1 63 {rec}"),
            "STRINGS" => format!("strings \"short\" \"{}\" \"/dev/hd0\"", "p".repeat(255)),
            _ => s.to_string(),
        })
        .collect()
}

#[test]
fn every_shape_round_trips_on_x86_64() {
    let log = run_all!(features, x86::Server, Target::X86_64);
    assert_eq!(log, expected_log("[5, -6]"));
}

#[test]
fn every_shape_round_trips_on_i386() {
    let log = run_all!(features_i386, i386::Server, Target::I386);
    assert_eq!(log, expected_log("[5, -6, 7, -8]"));
}
