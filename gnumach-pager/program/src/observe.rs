//! What the real kernel sends, looked at before the pager core handles it: the fields of
//! `memory_object_create`, `memory_object_data_request` and `memory_object_data_return`,
//! classified against what the worker wrote. These are the facts to compare with the
//! emulated kernel (which pages the kernel asks for, how it returns them).

use core::cell::Cell;
use mig_runtime::wire::{type_name, Target, TypeDesc};
use mig_runtime::{stub, MsgBuf};

const T: Target = Target::X86_64;
const PAGE: u64 = 4096;
/// GNU Mach's existence map covers the first 8192 pages (32 MiB) of an object.
const PAGEMAP_LIMIT: u64 = 8192 * PAGE;

/// One body field of a typed message.
#[derive(Clone, Copy, Debug)]
enum Field {
    Int(u64),
    Port,
    Ool { addr: u64, len: usize },
}

/// The body fields in order (at most 8), read from the typed descriptors.
fn fields(msg: &MsgBuf<'_>) -> ([Option<Field>; 8], usize) {
    let b = msg.bytes();
    let size = (stub::msgh_size(b) as usize).min(b.len());
    let mut out = [None; 8];
    let mut n = 0;
    let mut off = T.header_size() as usize;
    while off < size && n < out.len() {
        let Ok(d) = TypeDesc::decode(T, &b[..size], off) else {
            break;
        };
        off = (off + d.wire_size).div_ceil(8) * 8;
        let len = (u64::from(d.desc.size) * u64::from(d.desc.number)).div_ceil(8) as usize;
        if !d.desc.inline {
            if off + 8 > size {
                break;
            }
            out[n] = Some(Field::Ool {
                addr: stub::rd_u64(b, off),
                len,
            });
            n += 1;
            off += 8;
            continue;
        }
        if off + len > size {
            break;
        }
        out[n] = Some(if type_name::is_port_any(d.desc.name) {
            Field::Port
        } else {
            Field::Int(match len {
                8 => stub::rd_u64(b, off),
                4 => u64::from(stub::rd_u32(b, off)),
                _ => 0,
            })
        });
        n += 1;
        off = (off + len).div_ceil(8) * 8;
    }
    (out, n)
}

fn int(f: Option<Field>) -> u64 {
    match f {
        Some(Field::Int(v)) => v,
        _ => 0,
    }
}

/// Counters of what the kernel sent.
#[derive(Default)]
pub struct Observed {
    pub create_size: Cell<u64>,
    pub create_page_size: Cell<u64>,
    pub request_read: Cell<u64>,
    pub request_write: Cell<u64>,
    pub request_not_one_page: Cell<u64>,
    pub request_written: Cell<u64>,
    pub request_unwritten_below_32m: Cell<u64>,
    pub request_unwritten_above_32m: Cell<u64>,
    pub return_msgs: Cell<u64>,
    pub return_pages: Cell<u64>,
    pub return_max_pages: Cell<u64>,
    pub return_dirty: Cell<u64>,
    pub return_kernel_copy: Cell<u64>,
    pub return_zero_pages: Cell<u64>,
    pub return_unwritten_pages: Cell<u64>,
}

fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

impl Observed {
    /// Looks at one received message (`write_every`: which pages the worker writes).
    pub fn look(&self, msg: &MsgBuf<'_>, write_every: u64) {
        let written = |off: u64| (off / PAGE) % write_every.max(1) == 0;
        match stub::msgh_id(msg.bytes(), T) {
            2250 => {
                // new object (port), size, control (port), name (port), page size
                let (f, _) = fields(msg);
                self.create_size.set(int(f[1]));
                self.create_page_size.set(int(f[4]));
            }
            2203 => {
                // control (port), offset, length, desired_access
                let (f, _) = fields(msg);
                let (off, len, access) = (int(f[1]), int(f[2]), int(f[3]));
                add(
                    if access & 2 != 0 {
                        &self.request_write
                    } else {
                        &self.request_read
                    },
                    1,
                );
                if len != PAGE {
                    add(&self.request_not_one_page, 1);
                }
                if written(off) {
                    add(&self.request_written, 1);
                } else if off < PAGEMAP_LIMIT {
                    add(&self.request_unwritten_below_32m, 1);
                } else {
                    add(&self.request_unwritten_above_32m, 1);
                }
            }
            2208 => {
                // control (port), offset, data (out of line), dirty, kernel_copy
                let (f, _) = fields(msg);
                let off = int(f[1]);
                add(&self.return_msgs, 1);
                if int(f[3]) != 0 {
                    add(&self.return_dirty, 1);
                }
                if int(f[4]) != 0 {
                    add(&self.return_kernel_copy, 1);
                }
                if let Some(Field::Ool { addr, len }) = f[2] {
                    let pages = len as u64 / PAGE;
                    add(&self.return_pages, pages);
                    self.return_max_pages
                        .set(self.return_max_pages.get().max(pages));
                    if let Some(data) = msg.find_ool(addr, len) {
                        for (i, page) in data.chunks(PAGE as usize).enumerate() {
                            if page.iter().all(|&b| b == 0) {
                                add(&self.return_zero_pages, 1);
                            }
                            if !written(off + i as u64 * PAGE) {
                                add(&self.return_unwritten_pages, 1);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}
