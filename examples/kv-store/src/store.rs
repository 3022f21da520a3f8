//! The server: named buckets of versioned entries, one Mach port per bucket.

use crate::built::server::{KvGetReply, KvServer};
use crate::built::{kv_count_t, kv_version_t};
use mig_runtime::ipc::Task;
use mig_runtime::{KernReturn, OolBuffer, PortName, RightKind};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// One bucket: key → (value, version).
#[derive(Default)]
struct Bucket {
    name: String,
    entries: BTreeMap<Vec<u8>, (Vec<u8>, kv_version_t)>,
}

#[derive(Default)]
struct State {
    /// Bucket port (a receive right of the server task) → bucket.
    buckets: BTreeMap<PortName, Bucket>,
    /// Bucket name → its port.
    by_name: BTreeMap<Vec<u8>, PortName>,
}

/// The key-value store. It serves the service port and every bucket port, all members of one
/// port set.
pub struct Store {
    task: Task,
    service: PortName,
    port_set: PortName,
    state: Mutex<State>,
}

impl Store {
    /// A store served by `task`: `service` is the receive right clients `kv_open` on,
    /// `port_set` the set the server loop receives from (new bucket ports join it).
    pub fn new(task: Task, service: PortName, port_set: PortName) -> Store {
        Store {
            task,
            service,
            port_set,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the bucket whose port received the request.
    fn with_bucket<R>(
        &self,
        port: PortName,
        f: impl FnOnce(&mut Bucket) -> Result<R, KernReturn>,
    ) -> Result<R, KernReturn> {
        let mut st = self.state();
        let b = st
            .buckets
            .get_mut(&port)
            .ok_or(KernReturn::KERN_INVALID_NAME)?;
        f(b)
    }
}

impl KvServer for Store {
    fn kv_open(&self, server: PortName, name: &[u8]) -> Result<PortName, KernReturn> {
        if server != self.service {
            return Err(KernReturn::KERN_INVALID_RIGHT);
        }
        if name.is_empty() {
            return Err(KernReturn::KERN_INVALID_ARGUMENT);
        }
        let mut st = self.state();
        if let Some(&port) = st.by_name.get(name) {
            return Ok(port);
        }
        let port = self.task.port_allocate(RightKind::Receive)?;
        self.task.port_move_member(port, self.port_set)?;
        st.by_name.insert(name.to_vec(), port);
        st.buckets.insert(
            port,
            Bucket {
                name: String::from_utf8_lossy(name).into_owned(),
                entries: BTreeMap::new(),
            },
        );
        // The reply makes a send right from this receive right (MACH_MSG_TYPE_MAKE_SEND).
        Ok(port)
    }

    fn kv_put(
        &self,
        bucket: PortName,
        key: &[u8],
        value: &[u8],
        version: kv_version_t,
    ) -> Result<kv_version_t, KernReturn> {
        self.with_bucket(bucket, |b| {
            let current = b.entries.get(key).map_or(0, |e| e.1);
            if version != 0 && version != current {
                return Err(KernReturn::KERN_ABORTED);
            }
            let new = current + 1;
            b.entries.insert(key.to_vec(), (value.to_vec(), new));
            Ok(new)
        })
    }

    fn kv_get(&self, bucket: PortName, key: &[u8]) -> Result<KvGetReply, KernReturn> {
        self.with_bucket(bucket, |b| {
            let (value, version) = b
                .entries
                .get(key)
                .ok_or(KernReturn::KERN_INVALID_ARGUMENT)?;
            Ok(KvGetReply {
                value: value.clone(),
                version: *version,
            })
        })
    }

    fn kv_dump(&self, bucket: PortName) -> Result<OolBuffer, KernReturn> {
        self.with_bucket(bucket, |b| {
            let mut text = Vec::new();
            for (k, (v, _)) in &b.entries {
                text.extend_from_slice(k);
                text.push(b'=');
                text.extend_from_slice(v);
                text.push(b'\n');
            }
            Ok(OolBuffer::from_vec(text))
        })
    }

    fn kv_load(&self, bucket: PortName, data: OolBuffer) -> Result<kv_count_t, KernReturn> {
        self.with_bucket(bucket, |b| {
            let mut n = 0;
            for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                let eq = line
                    .iter()
                    .position(|&c| c == b'=')
                    .ok_or(KernReturn::KERN_INVALID_ARGUMENT)?;
                let (k, v) = (&line[..eq], &line[eq + 1..]);
                let version = b.entries.get(k).map_or(0, |e| e.1) + 1;
                b.entries.insert(k.to_vec(), (v.to_vec(), version));
                n += 1;
            }
            Ok(n)
        })
    }

    fn kv_clear(&self, bucket: PortName) -> Result<(), KernReturn> {
        self.with_bucket(bucket, |b| {
            b.entries.clear();
            Ok(())
        })
    }
}

impl Store {
    /// The names of the open buckets, in port order.
    pub fn bucket_names(&self) -> Vec<String> {
        self.state()
            .buckets
            .values()
            .map(|b| b.name.clone())
            .collect()
    }
}
