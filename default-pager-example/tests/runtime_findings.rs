//! Regression tests for runtime problems found while building the emulated kernel (the kernel
//! relies on these behaviours).

use mig_runtime::ipc::Kernel;
use mig_runtime::rights::RightKind;
use mig_runtime::wire::{option, type_name};
use mig_runtime::{KernReturn, MsgBuf, PortName, Transport};

/// `ipc::Task::mach_msg` must record the receiving space in the `MsgBuf`: the typed rights
/// generated server stubs build from `msg.space()` otherwise belong to `SpaceId(0)`, so
/// dropping them releases nothing and `SendRight::try_clone` fails with `KERN_INVALID_TASK`
/// (seen with the kernel's `vm_set_default_memory_manager` before the runtime set it).
#[test]
fn received_message_knows_its_space() {
    let k = Kernel::new();
    let a = k.new_task();
    let b = k.new_task();
    let port = b.port_allocate(RightKind::Receive).expect("port");
    let dest = b
        .transfer_right(port, type_name::MAKE_SEND, &a)
        .expect("send right");
    let mut m = MsgBuf::with_capacity(64);
    let bits = mig_runtime::wire::msgh_bits::make(type_name::COPY_SEND, 0);
    mig_runtime::stub::wr_header(
        m.bytes_mut(),
        mig_runtime::wire::Target::X86_64,
        bits,
        32,
        dest,
        PortName::NULL,
        1,
    );
    assert_eq!(
        a.mach_msg(
            &mut m,
            option::SEND_MSG,
            32,
            0,
            PortName::NULL,
            0,
            PortName::NULL
        ),
        KernReturn::KERN_SUCCESS
    );
    let mut r = MsgBuf::with_capacity(64);
    assert_eq!(
        b.mach_msg(
            &mut r,
            option::RCV_MSG | option::RCV_TIMEOUT,
            0,
            64,
            port,
            1000,
            PortName::NULL
        ),
        KernReturn::KERN_SUCCESS
    );
    assert_eq!(
        r.space(),
        b.space(),
        "the received message should carry the receiver's space"
    );
}
