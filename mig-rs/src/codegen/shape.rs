//! How a MIG argument looks in Rust: its [`Shape`] (scalar, port, array, string, out-of-line
//! data…) and the Rust types for each side and direction.

use crate::ir::{Subsystem, Type, TypeId};
use mig_runtime::wire::type_name;

/// An integer (or float) on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scalar {
    /// Bits: 8, 16, 32 or 64.
    pub bits: u32,
    pub signed: bool,
    pub float: bool,
}

impl Scalar {
    /// The Rust primitive (`u32`, `i64`, `f64`…).
    pub fn prim(&self) -> &'static str {
        match (self.float, self.signed, self.bits) {
            (true, _, 32) => "f32",
            (true, _, _) => "f64",
            (false, true, 8) => "i8",
            (false, true, 16) => "i16",
            (false, true, 32) => "i32",
            (false, true, _) => "i64",
            (false, false, 8) => "u8",
            (false, false, 16) => "u16",
            (false, false, 32) => "u32",
            (false, false, _) => "u64",
        }
    }
    /// The unsigned wire type of the same width (`u32`…).
    pub fn wire(&self) -> &'static str {
        match self.bits {
            8 => "u8",
            16 => "u16",
            32 => "u32",
            _ => "u64",
        }
    }
    pub fn bytes(&self) -> u32 {
        self.bits / 8
    }
}

/// The element of an array: a scalar or a port, possibly grouped (`array[*:n] of
/// struct[3] of int` has groups of 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElemKind {
    Scalar(Scalar),
    /// A port right (`msgt_name` on each side, as for [`Shape::Port`]).
    Port {
        in_name: u32,
        out_name: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elem {
    pub kind: ElemKind,
    /// Scalars per C element (GNU MIG's count multiplier).
    pub group: u32,
    /// Wire bytes of one scalar (for ports: the inline slot size).
    pub scalar_bytes: u32,
}

impl Elem {
    /// Wire bytes of one C element inline.
    pub fn inline_bytes(&self) -> u32 {
        self.scalar_bytes * self.group
    }
    pub fn is_bytes(&self) -> bool {
        matches!(&self.kind, ElemKind::Scalar(s) if s.bits == 8 && !s.float) && self.group == 1
    }
}

/// What an argument's type is, for code generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One inline integer.
    Scalar(Scalar),
    /// `MACH_MSG_TYPE_PORT_NAME`: a name, no right.
    PortName,
    /// One inline port right.
    Port { in_name: u32, out_name: u32 },
    /// `array[n]`/`struct[n]` of scalars: `[T; n]`.
    FixedArray { scalar: Scalar, n: u32 },
    /// `c_string[n]` or a single string element of `bytes` bytes.
    FixedString { bytes: u32 },
    /// `c_string[*:max]`.
    VarString { max: u32 },
    /// `array[*:max] of T` (inline, `max` C elements).
    VarArray { elem: Elem, max: u32 },
    /// `array[]`/`array[*]`: inline up to `max` C elements, else out-of-line.
    Indefinite { elem: Elem, max: u32 },
    /// `^array[] of T`: always out-of-line.
    Ool { elem: Elem },
}

/// Why a type has no Rust mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

const SIGNED: &[&str] = &[
    "int",
    "short",
    "int64",
    "int8_t",
    "int16_t",
    "int32_t",
    "int64_t",
    "intptr_t",
    "integer_t",
    "kern_return_t",
    "boolean_t",
    "long",
    "rpc_long_integer_t",
    "long_integer_t",
];
const UNSIGNED: &[&str] = &[
    "char",
    "unsigned char",
    "uint8_t",
    "uint16_t",
    "uint32_t",
    "uint64_t",
    "uintptr_t",
    "natural_t",
    "unsigned",
    "unsigned_int",
    "unsigned_long",
    "rpc_long_natural_t",
    "long_natural_t",
    "mach_port_name_t",
];

/// Signedness from the C type names along the type's definition chain (`natural_t` →
/// `uint32_t`…); unknown names default to unsigned.
pub fn is_signed(sub: &Subsystem, mut id: TypeId) -> bool {
    for _ in 0..64 {
        let t = sub.ty(id);
        for name in [t.user_type.as_deref(), t.name.as_deref()]
            .into_iter()
            .flatten()
        {
            if SIGNED.contains(&name) {
                return true;
            }
            if UNSIGNED.contains(&name) {
                return false;
            }
        }
        match t.element {
            Some(e) => id = e,
            None => break,
        }
    }
    false
}

fn scalar(sub: &Subsystem, id: TypeId, t: &Type) -> Result<Scalar, Unsupported> {
    if !matches!(t.size, 8 | 16 | 32 | 64) {
        return Err(Unsupported(format!(
            "elements of {} bits have no Rust integer type",
            t.size
        )));
    }
    Ok(Scalar {
        bits: t.size,
        signed: is_signed(sub, id),
        float: t.in_name == type_name::REAL,
    })
}

fn is_port(t: &Type) -> bool {
    t.is_port() || t.in_name == type_name::POLYMORPHIC || t.out_name == type_name::POLYMORPHIC
}

fn elem(sub: &Subsystem, id: TypeId) -> Result<Elem, Unsupported> {
    let t = sub.ty(id);
    let e_id = t
        .element
        .ok_or_else(|| Unsupported("array without an element type".into()))?;
    let e = sub.ty(e_id);
    let group = e.number.max(1);
    if is_port(e) {
        if group != 1 {
            return Err(Unsupported(
                "arrays of port arrays are not supported".into(),
            ));
        }
        return Ok(Elem {
            kind: ElemKind::Port {
                in_name: e.in_name,
                out_name: e.out_name,
            },
            group: 1,
            scalar_bytes: e.size / 8,
        });
    }
    let s = scalar(sub, e_id, e)?;
    Ok(Elem {
        scalar_bytes: s.bytes(),
        kind: ElemKind::Scalar(s),
        group,
    })
}

/// Classifies a type.
pub fn shape(sub: &Subsystem, id: TypeId) -> Result<Shape, Unsupported> {
    let t = sub.ty(id);
    if !t.inline {
        if !t.var_array {
            return Err(Unsupported(
                "out-of-line data of fixed size (`^T` of a non-array type) is not supported".into(),
            ));
        }
        return Ok(Shape::Ool {
            elem: elem(sub, id)?,
        });
    }
    if t.is_string {
        if t.var_array {
            return Ok(Shape::VarString { max: t.number });
        }
        return Ok(Shape::FixedString { bytes: t.type_size });
    }
    if t.var_array {
        let e = elem(sub, id)?;
        let max = t.number / e.group.max(1);
        return Ok(if t.indefinite {
            Shape::Indefinite { elem: e, max }
        } else {
            Shape::VarArray { elem: e, max }
        });
    }
    if is_port(t) {
        if t.number != 1 {
            return Err(Unsupported(
                "fixed-size arrays of ports are not supported".into(),
            ));
        }
        return Ok(Shape::Port {
            in_name: t.in_name,
            out_name: t.out_name,
        });
    }
    if t.in_name == type_name::PORT_NAME && t.number == 1 && t.size == 32 {
        return Ok(Shape::PortName);
    }
    if !matches!(t.size, 8 | 16 | 32 | 64) && t.size % 8 == 0 && t.size > 0 {
        // A wide element such as `(MACH_MSG_TYPE_INTEGER_8, 512)`: raw bytes.
        return Ok(Shape::FixedArray {
            scalar: Scalar {
                bits: 8,
                signed: false,
                float: false,
            },
            n: t.type_size,
        });
    }
    let s = scalar(sub, id, t)?;
    if t.number == 1 {
        Ok(Shape::Scalar(s))
    } else {
        Ok(Shape::FixedArray {
            scalar: s,
            n: t.number,
        })
    }
}
