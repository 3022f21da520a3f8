//! Wire layout of request and reply messages (mig-language.md §4.3).
//!
//! This is the one place where message layouts are computed; code generation and the
//! layout tests read [`MessageLayout`]s, never recompute offsets. Sizes of the header and
//! descriptors come from `mig_runtime::wire::Target`.

use super::types::{Types, POLY};
use crate::ir::{Arg, ArgId, ArgKind, Complexity, Field, MessageLayout};
use mig_runtime::wire::type_name;

/// Which message of a routine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    Request,
    Reply,
}

impl Message {
    fn mask(self) -> u32 {
        match self {
            Message::Request => ArgKind::REQUEST,
            Message::Reply => ArgKind::REPLY,
        }
    }
}

/// `rtCheckSimpleIn` (`use_in = true`, sender's view) / `rtCheckSimpleOut`.
fn complexity(args: &[Arg], types: &Types, mask: u32, use_in: bool) -> Complexity {
    let mut may = false;
    let mut must = false;
    for a in args.iter().filter(|a| a.kind.any(mask)) {
        let t = types.get(a.ty);
        let name = if use_in { t.in_name } else { t.out_name };
        if name == POLY || t.indefinite {
            may = true;
        }
        if type_name::is_port_any(name) || !t.inline {
            must = true;
        }
    }
    Complexity {
        fixed: must || !may,
        simple: !must,
    }
}

/// Computes the layout of one message of a routine.
pub fn message_layout(args: &[Arg], types: &Types, which: Message) -> MessageLayout {
    let t = types.target;
    let mask = which.mask();
    let mut off = t.align_up(t.header_size());
    let mut fields = Vec::new();
    let mut var_pos = 0u32;
    let mut max_extra = 0u32;
    for (i, a) in args.iter().enumerate() {
        if !a.kind.any(mask) {
            continue;
        }
        let ty = types.get(a.ty);
        let desc_offset = off;
        let desc_size = t.desc_size(a.long_form);
        off = t.align_up(off + desc_size);
        let variable = a.kind.any(ArgKind::VARIABLE);
        fields.push(Field {
            arg: ArgId(i as u32),
            desc_offset,
            desc_size,
            data_offset: off,
            data_size: ty.type_size,
            pad_size: ty.pad_size,
            min_data_size: ty.min_type_size,
            variable,
            var_pos,
        });
        off = off.wrapping_add(ty.min_type_size);
        if variable {
            var_pos += 1;
            max_extra = max_extra.wrapping_add(ty.type_size.wrapping_add(ty.pad_size));
        }
    }
    let (send, check) = match which {
        // A KernelServer's reply is packed with out-names.
        Message::Reply if types.kernel_server => (
            complexity(args, types, mask, false),
            complexity(args, types, mask, false),
        ),
        _ => (
            complexity(args, types, mask, true),
            complexity(args, types, mask, false),
        ),
    };
    MessageLayout {
        fields,
        min_size: off,
        max_size: off.wrapping_add(max_extra),
        num_var: var_pos,
        send,
        check,
    }
}
