//! The `_into` variants of generated stubs for routines with a variable-size inline array
//! out: the client writing into the caller's slice, the server method writing into the
//! reply. On both targets: a server implementing only the `Vec` methods (the provided
//! `_into` methods copy) and one implementing only the `_into` methods must send the same
//! reply bytes, and both client functions must return the same values; too small a caller
//! slice or too large a server count fails cleanly with `MIG_ARRAY_TOO_LARGE`.

use mig_runtime::loopback::Loopback;
use mig_runtime::{KernReturn, MsgBuf, PortName, RpcError, SendRight, SpaceId, Target};

#[mig_rs::interface(path = "tests/into.defs", default_server_methods = true)]
mod gen_x86_64 {}

#[mig_rs::interface(
    path = "tests/into.defs",
    target = "i386",
    default_server_methods = true
)]
mod gen_i386 {}

macro_rules! suite {
    ($m:ident, $g:ident, $target:expr) => {
        mod $m {
            use super::*;
            use crate::$g::{client, server};

            fn shorts(n: i32) -> Vec<i16> {
                (0..n).map(|i| -(i as i16) * 7).collect()
            }
            fn chars(n: i32) -> Vec<u8> {
                (0..n).map(|i| b'a' + (i % 26) as u8).collect()
            }

            /// Only the `Vec` methods: the demux goes through the provided `_into` methods.
            pub struct VecSrv;
            impl server::IntoTestServer for VecSrv {
                fn info(
                    &self,
                    _server: PortName,
                    flavor: i32,
                    _cnt: u32,
                ) -> Result<Vec<i32>, KernReturn> {
                    if flavor < 0 {
                        return Err(KernReturn::KERN_INVALID_ARGUMENT);
                    }
                    Ok((0..flavor).map(|i| i * 3 + 1).collect())
                }
                fn mixed(
                    &self,
                    _server: PortName,
                    n: i32,
                ) -> Result<server::MixedReply, KernReturn> {
                    Ok(server::MixedReply {
                        before: n as i64 * 1000,
                        shorts: shorts(n),
                        after: n + 1,
                    })
                }
                fn chars(&self, _server: PortName, n: i32) -> Result<Vec<u8>, KernReturn> {
                    Ok(chars(n))
                }
            }

            /// Only the `_into` methods (the `Vec` ones answer `MIG_BAD_ID`).
            pub struct IntoSrv;
            impl server::IntoTestServer for IntoSrv {
                fn info_into(
                    &self,
                    _server: PortName,
                    flavor: i32,
                    _cnt: u32,
                    out: &mut [i32],
                ) -> Result<usize, KernReturn> {
                    if flavor < 0 {
                        return Err(KernReturn::KERN_INVALID_ARGUMENT);
                    }
                    let n = flavor as usize;
                    if n > out.len() {
                        // What a server reports when it has more than fits.
                        return Ok(n);
                    }
                    for (i, x) in out[..n].iter_mut().enumerate() {
                        *x = i as i32 * 3 + 1;
                    }
                    Ok(n)
                }
                fn mixed_into(
                    &self,
                    _server: PortName,
                    n: i32,
                    out: &mut [i16],
                ) -> Result<server::MixedIntoReply, KernReturn> {
                    let v = shorts(n);
                    let Some(d) = out.get_mut(..v.len()) else {
                        return Err(KernReturn::MIG_ARRAY_TOO_LARGE);
                    };
                    d.copy_from_slice(&v);
                    Ok(server::MixedIntoReply {
                        before: n as i64 * 1000,
                        shortsCnt: v.len(),
                        after: n + 1,
                    })
                }
                fn chars_into(
                    &self,
                    _server: PortName,
                    n: i32,
                    out: &mut [u8],
                ) -> Result<usize, KernReturn> {
                    let v = chars(n);
                    let Some(d) = out.get_mut(..v.len()) else {
                        return Err(KernReturn::MIG_ARRAY_TOO_LARGE);
                    };
                    d.copy_from_slice(&v);
                    Ok(v.len())
                }
            }

            fn reply_bytes(rep: &MsgBuf<'_>) -> Vec<u8> {
                let n = (mig_runtime::stub::msgh_size(rep.bytes()) as usize).min(rep.bytes().len());
                rep.bytes()[..n].to_vec()
            }

            /// Serves with `IntoSrv` after checking that `VecSrv` answers the same request
            /// with the same bytes.
            fn demux(req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>) -> bool {
                let mut req2 = MsgBuf::from_bytes(req.bytes());
                let mut rep2 = MsgBuf::with_capacity(rep.capacity());
                let a = server::into_test_server(&VecSrv, &mut req2, &mut rep2);
                let b = server::into_test_server(&IntoSrv, req, rep);
                assert_eq!(a, b);
                assert_eq!(reply_bytes(&rep2), reply_bytes(rep));
                b
            }

            #[test]
            fn into_variants() {
                let t = Loopback::new(demux, $target);
                let port = SendRight::from_raw(SpaceId::SELF, PortName(0x10));
                let too_large = Err(RpcError::Mig(KernReturn::MIG_ARRAY_TOO_LARGE));

                // info: CountInOut from the slice's length.
                for n in [0, 1, 10, 64] {
                    let v = client::info(&t, &port, n, 64).expect("info");
                    let mut buf = [0i32; 64];
                    let c = client::info_into(&t, &port, n, &mut buf).expect("info_into");
                    assert_eq!(c, n as usize);
                    assert_eq!(&buf[..c], &v[..]);
                    assert_eq!(v, (0..n).map(|i| i * 3 + 1).collect::<Vec<_>>());
                    // A larger slice than the maximum is fine (the count sent is clamped).
                    let mut big = [0i32; 100];
                    assert_eq!(client::info_into(&t, &port, n, &mut big), Ok(n as usize));
                    assert_eq!(&big[..c], &v[..]);
                }
                // Too small a caller slice: a clean error, the slice past it untouched.
                let mut small = [-1i32; 3];
                assert_eq!(client::info_into(&t, &port, 10, &mut small), too_large);
                let mut empty: [i32; 0] = [];
                assert_eq!(client::info_into(&t, &port, 1, &mut empty), too_large);
                assert_eq!(client::info_into(&t, &port, 0, &mut empty), Ok(0));
                // More than the reply holds: the server answers MIG_ARRAY_TOO_LARGE.
                let mut buf = [0i32; 64];
                assert_eq!(
                    client::info_into(&t, &port, 65, &mut buf),
                    Err(RpcError::Server(KernReturn::MIG_ARRAY_TOO_LARGE))
                );
                assert_eq!(
                    client::info(&t, &port, 65, 64).map(|_| ()),
                    Err(RpcError::Server(KernReturn::MIG_ARRAY_TOO_LARGE))
                );
                assert_eq!(
                    client::info_into(&t, &port, -1, &mut buf),
                    Err(RpcError::Server(KernReturn::KERN_INVALID_ARGUMENT))
                );

                // mixed: results around the array.
                for n in [0, 1, 3, 10] {
                    let r = client::mixed(&t, &port, n).expect("mixed");
                    let mut buf = [0i16; 10];
                    let ri = client::mixed_into(&t, &port, n, &mut buf).expect("mixed_into");
                    assert_eq!((ri.before, ri.after), (r.before, r.after));
                    assert_eq!((r.before, r.after), (n as i64 * 1000, n + 1));
                    assert_eq!(&buf[..ri.shortsCnt], &r.shorts[..]);
                    assert_eq!(r.shorts, shorts(n));
                }
                let mut small = [0i16; 2];
                assert!(matches!(
                    client::mixed_into(&t, &port, 3, &mut small),
                    Err(RpcError::Mig(KernReturn::MIG_ARRAY_TOO_LARGE))
                ));
                assert!(matches!(
                    client::mixed(&t, &port, 11),
                    Err(RpcError::Server(KernReturn::MIG_ARRAY_TOO_LARGE))
                ));

                // chars: bytes, no CountInOut.
                for n in [0, 5, 127, 128] {
                    let v = client::chars(&t, &port, n).expect("chars");
                    let mut buf = [0u8; 128];
                    let c = client::chars_into(&t, &port, n, &mut buf).expect("chars_into");
                    assert_eq!(&buf[..c], &v[..]);
                    assert_eq!(v, chars(n));
                }
                let mut small = [0u8; 4];
                assert_eq!(client::chars_into(&t, &port, 5, &mut small), too_large);
                assert_eq!(client::chars_into(&t, &port, 4, &mut small), Ok(4));
                assert_eq!(&small, b"abcd");
            }
        }
    };
}

suite!(x86_64, gen_x86_64, Target::X86_64);
suite!(i386, gen_i386, Target::I386);
