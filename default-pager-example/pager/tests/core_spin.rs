//! The core without the std layer, as a bare GNU Mach program (issue 8) runs it: the spin
//! platform, one port set, one server loop on one thread.

mod common;

use common::*;
use default_pager::{Config, Core, MemStore, SpinPlatform};
use mig_runtime::server::mach_msg_server_timeout;
use mig_runtime::wire::{msg_return as mr, option, type_name as tn};
use mig_runtime::SendRight;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `Core<_, SpinPlatform>` with `one_port_set`, served by a plain `mach_msg_server` loop
/// on a single thread: registration, create → unavailable, return → supply, terminate →
/// no-senders → space free again, then teardown.
#[test]
fn spin_platform_single_thread_server() {
    let k = Kern::new();
    let pt = k.new_task();
    let task_self = SendRight::from_raw(pt.space_id(), pt.task_self().unwrap());
    let host = SendRight::from_raw(
        pt.space_id(),
        k.kt.transfer_right(k.host, tn::MAKE_SEND, &pt).unwrap(),
    );
    let core: Arc<Core<_, SpinPlatform>> = Arc::new(Core::new(
        pt.clone(),
        task_self,
        Config {
            one_port_set: true,
            ..Config::default()
        },
    ));
    core.add_store(Arc::new(MemStore::new(8))).unwrap();
    core.register(&host).unwrap();
    assert_eq!(core.default_set(), core.object_set());
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s, t) = (core.clone(), stop.clone(), pt.clone());
    let server = std::thread::spawn(move || loop {
        let r = mach_msg_server_timeout(&*c, 0, c.object_set(), option::RCV_TIMEOUT, 20, &t);
        if s.load(Ordering::Acquire) || r.0 as u32 != mr::RCV_TIMED_OUT {
            return r;
        }
    });
    let o = k.create(4 * PSU);
    k.data_request(&o, 0, PSU);
    k.expect_unavailable(&o, 0);
    let d = pattern(40, 1, 0);
    k.data_return(&o, PSU, &d);
    k.data_request(&o, PSU, PSU);
    k.expect_supply(&o, PSU, &d);
    k.terminate(o);
    wait_until("freed", || core.stats().objects_freed == 1);
    let st = core.stats();
    assert_eq!(st.paging_free, st.paging_total);
    assert_eq!(st.messages.memory_object_create, 1);
    stop.store(true, Ordering::Release);
    assert_eq!(server.join().unwrap().0 as u32, mr::RCV_TIMED_OUT);
    core.teardown();
    assert!(core.rejections().is_empty(), "{:?}", core.rejections());
}
