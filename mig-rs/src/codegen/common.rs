//! Pieces shared by the client and server generators: names, Rust types, descriptor
//! templates and offsets.

use super::shape::{shape, Elem, ElemKind, Scalar, Shape, Unsupported};
use crate::ir::{Arg, ArgId, Field, Routine, Subsystem, TypeId};
use crate::source::SourceMap;
use heck::ToUpperCamelCase;
use mig_runtime::wire::{type_name, Target, TypeDesc};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

/// Rust keywords that need `r#` (or a suffix, for the ones that cannot be raw).
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized",
    "virtual", "yield", "try", "gen",
];

/// An identifier for a MIG name: raw if it is a keyword, `name_` for `self`/`super`/….
pub fn ident(name: &str) -> Ident {
    match name {
        "self" | "Self" | "super" | "crate" | "_" => format_ident!("{}_", name),
        n if KEYWORDS.contains(&n) => Ident::new_raw(n, Span::call_site()),
        n => Ident::new(n, Span::call_site()),
    }
}

/// A Rust type name for a MIG routine (`vm_region` → `VmRegion`).
pub fn camel(name: &str) -> Ident {
    format_ident!("{}", name.to_upper_camel_case())
}

pub fn lit_u32(v: u32) -> Literal {
    Literal::u32_unsuffixed(v)
}
pub fn lit_usize(v: u32) -> Literal {
    Literal::usize_unsuffixed(v as usize)
}
pub fn lit_i32(v: i32) -> Literal {
    Literal::i32_unsuffixed(v)
}

/// Generation context for one subsystem.
pub struct Ctx<'a> {
    pub sub: &'a Subsystem,
    pub map: &'a SourceMap,
    pub rt: TokenStream,
    pub t: Target,
}

impl<'a> Ctx<'a> {
    /// The port disposition `side` writes when sending a port of a type with these names
    /// (see [`Subsystem::sent_name`]).
    pub fn sent_port(&self, side: super::fields::Side, in_name: u32, out_name: u32) -> u32 {
        if self.sub.kernel_sender(side == super::fields::Side::Server) {
            out_name
        } else {
            in_name
        }
    }

    /// The runtime's `Target` value.
    pub fn target_tokens(&self) -> TokenStream {
        let rt = &self.rt;
        match self.t {
            Target::X86_64 => quote!(#rt::wire::Target::X86_64),
            Target::I386 => quote!(#rt::wire::Target::I386),
        }
    }

    pub fn shape_of(&self, r: &Routine, a: ArgId) -> Result<Shape, Unsupported> {
        shape(self.sub, r.arg(a).ty)
    }

    /// `file:line` of a routine in its `.defs`.
    pub fn location(&self, r: &Routine) -> String {
        self.map.describe(r.loc)
    }

    /// The pre-encoded descriptor bytes `d` as a byte-array literal.
    pub fn desc_bytes(&self, d: &TypeDesc) -> Result<TokenStream, Unsupported> {
        let mut buf = [0u8; 12];
        let n = d
            .encode(self.t, &mut buf)
            .map_err(|e| Unsupported(format!("descriptor cannot be encoded: {e}")))?;
        let bytes = buf[..n].iter().map(|b| Literal::u8_unsuffixed(*b));
        Ok(quote!([#(#bytes),*]))
    }

    /// The sender's descriptor template for a field (see [`Subsystem::send_desc`]).
    /// `side` is the sender: clients send requests, servers replies.
    pub fn send_template(
        &self,
        r: &Routine,
        f: &Field,
        side: super::fields::Side,
    ) -> Result<TokenStream, Unsupported> {
        let reply = side == super::fields::Side::Server;
        self.desc_bytes(&self.sub.send_desc(r, f.arg, reply))
    }

    /// The receiver's quick-check template.
    pub fn check_template(&self, r: &Routine, f: &Field) -> Result<TokenStream, Unsupported> {
        self.desc_bytes(&self.sub.check_desc(r, f.arg))
    }

    /// The Rust scalar type of an argument type: its alias if it is a named scalar with an
    /// alias, else the primitive.
    pub fn scalar_type(&self, ty: TypeId, s: &Scalar) -> TokenStream {
        let t = self.sub.ty(ty);
        if let Some(name) = t.name.as_deref() {
            if alias_ok(name) && t.number == 1 && t.inline && !t.is_port() {
                let id = ident(name);
                return quote!(#id);
            }
        }
        let p = format_ident!("{}", s.prim());
        quote!(#p)
    }

    /// The Rust element type of an array.
    pub fn elem_type(&self, e: &Elem) -> TokenStream {
        match &e.kind {
            ElemKind::Scalar(s) => {
                let p = format_ident!("{}", s.prim());
                if e.group > 1 {
                    let n = lit_usize(e.group);
                    quote!([#p; #n])
                } else {
                    quote!(#p)
                }
            }
            ElemKind::Port { .. } => {
                let rt = &self.rt;
                quote!(#rt::PortName)
            }
        }
    }
}

/// Whether a MIG type name can become a Rust type alias.
pub fn alias_ok(name: &str) -> bool {
    !matches!(
        name,
        "char"
            | "short"
            | "int"
            | "int64"
            | "uintptr_t"
            | "intptr_t"
            | "bool"
            | "str"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "f32"
            | "f64"
            | "usize"
            | "isize"
            | "u128"
            | "i128"
            | "Self"
            | "self"
            | "super"
            | "crate"
    ) && name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && !name.contains(' ')
}

/// Port rights as a client sends them, by disposition.
pub fn client_port_in_type(rt: &TokenStream, in_name: u32) -> Result<TokenStream, Unsupported> {
    Ok(match in_name {
        type_name::MOVE_RECEIVE => quote!(#rt::ReceiveRight),
        type_name::MOVE_SEND => quote!(#rt::SendRight),
        type_name::MOVE_SEND_ONCE => quote!(#rt::SendOnceRight),
        type_name::COPY_SEND => quote!(&#rt::SendRight),
        type_name::MAKE_SEND | type_name::MAKE_SEND_ONCE => quote!(&#rt::ReceiveRight),
        type_name::POLYMORPHIC => quote!(#rt::Poly<'_>),
        other => {
            return Err(Unsupported(format!(
                "port disposition {other} cannot be sent"
            )))
        }
    })
}

/// Port rights as a receiver gets them, by received type name.
pub fn received_port_type(rt: &TokenStream, out_name: u32) -> Result<TokenStream, Unsupported> {
    Ok(match out_name {
        type_name::PORT_RECEIVE => quote!(#rt::ReceiveRight),
        type_name::PORT_SEND => quote!(#rt::SendRight),
        type_name::PORT_SEND_ONCE => quote!(#rt::SendOnceRight),
        type_name::POLYMORPHIC => quote!(#rt::ReceivedRight),
        other => {
            return Err(Unsupported(format!(
                "received port type {other} is not a right"
            )))
        }
    })
}

/// Port rights as a server returns them, by disposition (`'a` is `&self`'s lifetime).
pub fn server_port_out_type(rt: &TokenStream, in_name: u32) -> Result<TokenStream, Unsupported> {
    Ok(match in_name {
        type_name::MOVE_RECEIVE => quote!(#rt::ReceiveRight),
        type_name::MOVE_SEND => quote!(#rt::SendRight),
        type_name::MOVE_SEND_ONCE => quote!(#rt::SendOnceRight),
        type_name::COPY_SEND | type_name::MAKE_SEND | type_name::MAKE_SEND_ONCE => {
            quote!(#rt::PortName)
        }
        type_name::POLYMORPHIC => quote!(#rt::Poly<'static>),
        other => {
            return Err(Unsupported(format!(
                "port disposition {other} cannot be sent"
            )))
        }
    })
}

/// The argument's name as a Rust identifier.
pub fn arg_ident(a: &Arg) -> Ident {
    ident(&a.name)
}

/// Doc text describing an argument's MIG type.
pub fn describe_type(sub: &Subsystem, ty: TypeId) -> String {
    let t = sub.ty(ty);
    let name = t
        .name
        .clone()
        .or_else(|| t.user_type.clone())
        .unwrap_or_else(|| "(anonymous)".into());
    let names = if t.in_name == t.out_name {
        type_name::c_name(t.in_name).to_string()
    } else {
        format!(
            "{}|{}",
            type_name::c_name(t.in_name),
            type_name::c_name(t.out_name)
        )
    };
    format!("`{name}` ({names}, {} bits × {})", t.size, t.number)
}

/// The name of a routine's reply struct, on the client or the server side (`into`: of its
/// `_into` variant).
pub fn reply_struct_name(r: &Routine, into: bool) -> Ident {
    if into {
        format_ident!("{}IntoReply", camel(&r.name))
    } else {
        format_ident!("{}Reply", camel(&r.name))
    }
}
