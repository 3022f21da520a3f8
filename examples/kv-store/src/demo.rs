//! The demonstration `cargo run -p kv-store` prints: a server thread and a client on the
//! runtime's userspace Mach IPC ([`mig_runtime::ipc`]), two tasks of one emulated kernel.

use crate::store::Store;
use crate::{attr, built, checked_in};
use mig_runtime::ipc::{Kernel, Task};
use mig_runtime::server::{mach_msg_server_threads, StopHandle};
use mig_runtime::wire::type_name;
use mig_runtime::{KernReturn, MsgBuf, PortName, RightKind, RpcError, SendRight};

/// A running store: the kernel, the server task serving a [`Store`] on a thread, and a
/// client task holding a send right to the service port.
pub struct Harness {
    pub kernel: Kernel,
    pub server_task: Task,
    pub client_task: Task,
    /// The service port's name in the server task.
    pub service: PortName,
    pub port_set: PortName,
}

impl Harness {
    /// A kernel with a server task (service port in a port set) and a client task.
    pub fn new() -> Result<Harness, KernReturn> {
        let kernel = Kernel::new();
        let server_task = kernel.new_task();
        let client_task = kernel.new_task();
        let port_set = server_task.port_allocate(RightKind::PortSet)?;
        let service = server_task.port_allocate(RightKind::Receive)?;
        server_task.port_move_member(service, port_set)?;
        Ok(Harness {
            kernel,
            server_task,
            client_task,
            service,
            port_set,
        })
    }

    /// A send right to the service port for the client task (what a name server would give).
    pub fn service_right(&self) -> Result<SendRight, KernReturn> {
        let name = self.server_task.transfer_right(
            self.service,
            type_name::MAKE_SEND,
            &self.client_task,
        )?;
        Ok(SendRight::from_raw(self.client_task.space_id(), name))
    }

    /// Serves `store` on one thread while `client` runs on the calling thread, then stops
    /// the server and returns what `client` returned.
    ///
    /// One server thread keeps the requests of the transcript in order (a one-way
    /// `kv_clear` is handled before the next request); the server loop can run more.
    pub fn serve_while<R>(&self, store: &Store, client: impl FnOnce() -> R) -> R {
        let stop = StopHandle::new();
        let demux =
            |req: &mut MsgBuf<'_>, rep: &mut MsgBuf<'_>| built::server::kv_server(store, req, rep);
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                mach_msg_server_threads(&demux, 0, self.port_set, &self.server_task, 1, &stop)
            });
            let r = client();
            stop.stop();
            let _ = server.join();
            r
        })
    }
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

fn err(e: RpcError) -> String {
    format!("error {}", e.code())
}

/// Runs the demonstration and returns its transcript, one line per step.
pub fn run() -> Result<Vec<String>, String> {
    let h = Harness::new().map_err(|e| format!("setting up the IPC: {e}"))?;
    let store = Store::new(h.server_task.clone(), h.service, h.port_set);
    let service = h
        .service_right()
        .map_err(|e| format!("service right: {e}"))?;
    let t = &h.client_task;
    let mut out = vec![format!(
        "kv-store over mig_runtime::ipc (userspace Mach IPC): server task {:?}, client task {:?}",
        h.server_task.space_id().0,
        t.space_id().0
    )];
    let result = h.serve_while(&store, || -> Result<(), String> {
        let mut log = |s: String| out.push(s);
        // (a) the build.rs stubs.
        let bucket = built::client::kv_open(t, &service, b"fruits").map_err(err)?;
        log(format!(
            "[build.rs ] kv_open(\"fruits\") -> send right {:?} to the bucket port",
            bucket.name()
        ));
        let v = built::client::kv_put(t, &bucket, b"apple", b"red", 0).map_err(err)?;
        log(format!(
            "[build.rs ] kv_put(\"apple\", \"red\", version 0) -> version {v}"
        ));
        let v = built::client::kv_put(t, &bucket, b"apple", b"green", v).map_err(err)?;
        log(format!(
            "[build.rs ] kv_put(\"apple\", \"green\", version 1) -> version {v}"
        ));
        match built::client::kv_put(t, &bucket, b"apple", b"yellow", 1) {
            Ok(v) => return Err(format!("a stale version was accepted (version {v})")),
            Err(e) => log(format!(
                "[build.rs ] kv_put(\"apple\", \"yellow\", version 1) -> {} (stale version)",
                err(e)
            )),
        }
        // (b) the attribute's stubs, same server.
        let r = attr::client::kv_get(t, &bucket, b"apple").map_err(err)?;
        log(format!(
            "[attribute] kv_get(\"apple\") -> {} version {}",
            show(&r.value),
            r.version
        ));
        let lines = b"pear=green\nplum=purple\ncherry=dark red\n";
        let n = attr::client::kv_load(t, &bucket, lines).map_err(err)?;
        log(format!(
            "[attribute] kv_load(<{} bytes out of line>) -> {n} entries",
            lines.len()
        ));
        // (c) the checked-in CLI stubs, same server.
        let dump = checked_in::client::kv_dump(t, &bucket).map_err(err)?;
        log(format!(
            "[CLI      ] kv_dump() -> {} bytes out of line:",
            dump.len()
        ));
        for line in String::from_utf8_lossy(&dump).lines() {
            log(format!("              {line}"));
        }
        let again = checked_in::client::kv_open(t, &service, b"fruits").map_err(err)?;
        log(format!(
            "[CLI      ] kv_open(\"fruits\") again -> the same port: {}",
            again.name() == bucket.name()
        ));
        checked_in::client::kv_clear(t, &bucket).map_err(err)?;
        log("[CLI      ] kv_clear() (simpleroutine: no reply)".into());
        match checked_in::client::kv_get(t, &bucket, b"apple") {
            Ok(r) => return Err(format!("cleared, yet kv_get found {}", show(&r.value))),
            Err(e) => log(format!("[CLI      ] kv_get(\"apple\") -> {}", err(e))),
        }
        Ok(())
    });
    result?;
    out.push(format!("server buckets: {:?}", store.bucket_names()));
    h.kernel
        .check_consistency()
        .map_err(|e| format!("kernel state: {e}"))?;
    Ok(out)
}
