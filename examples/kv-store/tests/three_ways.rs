//! The three usages generate the same protocol: every client stub of (a) build.rs, (b) the
//! attribute and (c) the checked-in CLI output sends byte-identical requests, and each
//! module's server answers the others' clients.

use kv_store::demo::Harness;
use kv_store::store::Store;
use kv_store::{attr, built, checked_in};
use mig_runtime::wire::msg_return;
use mig_runtime::{KernReturn, MsgBuf, PortName, SendRight, SpaceId, Transport};
use std::cell::RefCell;

/// A transport that records what is sent (bytes and out-of-line regions) and fails the
/// receive, so every stub call stops right after sending.
#[derive(Default)]
struct Recorder {
    sent: RefCell<Vec<Sent>>,
}

/// One recorded message: its bytes and its out-of-line regions.
type Sent = (Vec<u8>, Vec<Vec<u8>>);

impl Transport for Recorder {
    fn mach_msg(
        &self,
        msg: &mut MsgBuf<'_>,
        _option: u32,
        send_size: u32,
        _rcv_size: u32,
        _rcv_name: PortName,
        _timeout: u32,
        _notify: PortName,
    ) -> KernReturn {
        let bytes = msg.bytes()[..send_size as usize].to_vec();
        let ool = msg
            .ool_entries()
            .iter()
            .map(|e| e.data.bytes().to_vec())
            .collect();
        self.sent.borrow_mut().push((bytes, ool));
        KernReturn(msg_return::SEND_INVALID_DEST as i32)
    }
    fn get_reply_port(&self) -> PortName {
        PortName(0x77)
    }
    fn dealloc_reply_port(&self, _port: PortName) {}
    fn space(&self) -> SpaceId {
        SpaceId::SELF
    }
}

macro_rules! requests {
    ($m:ident, $t:expr, $port:expr, $blob:expr) => {{
        let t = $t;
        let p = $port;
        let _ = $m::client::kv_open(t, p, b"bucket");
        let _ = $m::client::kv_put(t, p, b"key", b"some value", 7);
        let _ = $m::client::kv_get(t, p, b"key");
        let _ = $m::client::kv_dump(t, p);
        let _ = $m::client::kv_load(t, p, $blob);
        let _ = $m::client::kv_clear(t, p);
        t.sent.take()
    }};
}

#[test]
fn all_three_clients_send_identical_requests() {
    let port = SendRight::from_raw(SpaceId::SELF, PortName(0x10));
    let blob = b"a=1\nb=2\n".as_slice();
    let a = requests!(built, &Recorder::default(), &port, blob);
    let b = requests!(attr, &Recorder::default(), &port, blob);
    let c = requests!(checked_in, &Recorder::default(), &port, blob);
    let _ = port.into_raw();
    assert_eq!(a.len(), 6);
    assert_eq!(a, b, "build.rs and attribute stubs differ");
    assert_eq!(a, c, "build.rs and CLI stubs differ");
    // Same constants too.
    assert_eq!(built::SUBSYSTEM_BASE, attr::SUBSYSTEM_BASE);
    assert_eq!(built::MAX_REPLY_SIZE, checked_in::MAX_REPLY_SIZE);
    assert_eq!(built::KV_LOAD_ID, checked_in::KV_LOAD_ID);
}

/// The attribute's and the CLI's server modules serve the build.rs client (through a
/// forwarding implementation of their traits), over the userspace IPC.
#[test]
fn every_server_module_serves_the_other_clients() {
    struct ViaAttr<'a>(&'a Store);
    impl attr::server::KvServer for ViaAttr<'_> {
        fn kv_open(&self, s: PortName, name: &[u8]) -> Result<PortName, KernReturn> {
            built::server::KvServer::kv_open(self.0, s, name)
        }
        fn kv_put(&self, b: PortName, k: &[u8], v: &[u8], ver: u32) -> Result<u32, KernReturn> {
            built::server::KvServer::kv_put(self.0, b, k, v, ver)
        }
        fn kv_get(&self, b: PortName, k: &[u8]) -> Result<attr::server::KvGetReply, KernReturn> {
            let r = built::server::KvServer::kv_get(self.0, b, k)?;
            Ok(attr::server::KvGetReply {
                value: r.value,
                version: r.version,
            })
        }
        fn kv_dump(&self, b: PortName) -> Result<mig_runtime::OolBuffer, KernReturn> {
            built::server::KvServer::kv_dump(self.0, b)
        }
        fn kv_load(&self, b: PortName, d: mig_runtime::OolBuffer) -> Result<u32, KernReturn> {
            built::server::KvServer::kv_load(self.0, b, d)
        }
        fn kv_clear(&self, b: PortName) -> Result<(), KernReturn> {
            built::server::KvServer::kv_clear(self.0, b)
        }
    }

    let h = Harness::new().expect("ipc");
    let store = Store::new(h.server_task.clone(), h.service, h.port_set);
    let service = h.service_right().expect("service right");
    let t = &h.client_task;
    let via = ViaAttr(&store);
    let stop = mig_runtime::server::StopHandle::new();
    let demux =
        |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| attr::server::kv_server(&via, req, rep);
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            mig_runtime::server::mach_msg_server_threads(
                &demux,
                0,
                h.port_set,
                &h.server_task,
                1,
                &stop,
            )
        });
        let bucket = built::client::kv_open(t, &service, b"b").expect("open");
        assert_eq!(checked_in::client::kv_put(t, &bucket, b"k", b"v", 0), Ok(1));
        let r = built::client::kv_get(t, &bucket, b"k").expect("get");
        assert_eq!((r.value.as_slice(), r.version), (b"v".as_slice(), 1));
        assert_eq!(attr::client::kv_load(t, &bucket, b"x=1\n"), Ok(1));
        let dump = checked_in::client::kv_dump(t, &bucket).expect("dump");
        assert_eq!(&dump[..], b"k=v\nx=1\n");
        stop.stop();
        assert_eq!(
            server.join().expect("server thread"),
            KernReturn::KERN_SUCCESS
        );
    });
    h.kernel.check_consistency().expect("consistent kernel");
}

#[test]
fn transcript() {
    let lines = kv_store::demo::run().expect("demo");
    let text = lines.join("\n");
    for want in [
        "kv_put(\"apple\", \"red\", version 0) -> version 1",
        "kv_put(\"apple\", \"yellow\", version 1) -> error KERN_ABORTED",
        "kv_get(\"apple\") -> \"green\" version 2",
        "-> 3 entries",
        "cherry=dark red",
        "the same port: true",
        "kv_get(\"apple\") -> error KERN_INVALID_ARGUMENT",
        "server buckets: [\"fruits\"]",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}
