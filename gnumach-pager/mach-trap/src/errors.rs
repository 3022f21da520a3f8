//! Naming the codes a real kernel returns: `kern_return_t`, MIG's and `mach_msg`'s codes
//! (the runtime knows those), and the device codes `D_*` (`device/device_types.h`), which
//! GNU Mach's device calls return.

use core::fmt;
use mig_runtime::{KernReturn, RpcError};

/// The `D_*` name of a device error code.
pub fn device_error_name(code: i32) -> Option<&'static str> {
    Some(match code {
        2500 => "D_IO_ERROR",
        2501 => "D_WOULD_BLOCK",
        2502 => "D_NO_SUCH_DEVICE",
        2503 => "D_ALREADY_OPEN",
        2504 => "D_DEVICE_DOWN",
        2505 => "D_INVALID_OPERATION",
        2506 => "D_INVALID_RECNUM",
        2507 => "D_INVALID_SIZE",
        2508 => "D_NO_MEMORY",
        2509 => "D_READ_ONLY",
        _ => return None,
    })
}

/// A code with its name, when known (`D_NO_SUCH_DEVICE (2502)`, `KERN_INVALID_ADDRESS (1)`).
pub struct Code(pub KernReturn);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name().or_else(|| device_error_name(self.0 .0)) {
            Some(n) => write!(f, "{n} ({})", self.0 .0),
            None => write!(f, "{:#x}", self.0 .0),
        }
    }
}

/// An [`RpcError`] with its code named ([`Code`]).
pub struct Explain(pub RpcError);

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            RpcError::Server(k) => write!(f, "server returned {}", Code(k)),
            RpcError::Mig(k) => write!(f, "bad reply: {}", Code(k)),
            RpcError::Transport(k) => write!(f, "mach_msg failed: {}", Code(k)),
        }
    }
}
