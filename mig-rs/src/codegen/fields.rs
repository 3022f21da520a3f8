//! Encoding and decoding of one message field, shared by the client (request out, reply in)
//! and the server (request in, reply out).
//!
//! Generated code keeps the message in a `MsgBuf` named `__m`. Offsets of fields after
//! variable-size ones are `FIXED + __sK`, where `__sK` is the total wire size of the first
//! `K` variable-size fields (computed while encoding or while checking).

use super::common::*;
use super::shape::{Elem, ElemKind, Scalar, Shape, Unsupported};
use crate::ir::{Arg, ArgKind, Dealloc, Field, Routine};
use mig_runtime::wire::{type_name, Target};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// Which side generates, for value types.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Client,
    Server,
}

/// A field offset: a constant plus the shift `__sK` of the `K` preceding variable fields.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub fixed: u32,
    pub var_pos: u32,
}

impl At {
    pub fn desc(f: &Field) -> At {
        At {
            fixed: f.desc_offset,
            var_pos: f.var_pos,
        }
    }
    pub fn data(f: &Field) -> At {
        At {
            fixed: f.data_offset,
            var_pos: f.var_pos,
        }
    }
    pub fn tokens(self) -> TokenStream {
        let f = lit_usize(self.fixed);
        if self.var_pos == 0 {
            quote!(#f)
        } else {
            let s = shift_var(self.var_pos);
            quote!((#f + #s))
        }
    }
}

/// `__sK`.
pub fn shift_var(k: u32) -> Ident {
    format_ident!("__s{}", k)
}

fn wr_fn(s: &Scalar) -> Ident {
    format_ident!("wr_{}", s.wire())
}
fn rd_fn(s: &Scalar) -> Ident {
    format_ident!("rd_{}", s.wire())
}

/// Expression converting a Rust scalar value to its wire integer.
fn to_wire(s: &Scalar, v: TokenStream) -> TokenStream {
    let w = format_ident!("{}", s.wire());
    if s.float {
        quote!((#v).to_bits() as #w)
    } else if s.prim() == s.wire() {
        v
    } else {
        quote!((#v) as #w)
    }
}

/// Expression reading a scalar as its Rust primitive.
pub fn read_scalar(ctx: &Ctx<'_>, s: &Scalar, off: TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    let f = rd_fn(s);
    let prim = format_ident!("{}", s.prim());
    match (s.float, s.bits) {
        (true, 32) => quote!(f32::from_bits(#rt::stub::#f(__m.bytes(), #off))),
        (true, _) => quote!(f64::from_bits(#rt::stub::#f(__m.bytes(), #off))),
        _ if s.prim() == s.wire() => quote!(#rt::stub::#f(__m.bytes(), #off)),
        _ => quote!((#rt::stub::#f(__m.bytes(), #off) as #prim)),
    }
}

/// The Rust type of a value being sent.
pub fn send_type(
    ctx: &Ctx<'_>,
    side: Side,
    a: &Arg,
    shape: &Shape,
) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    Ok(match shape {
        Shape::Scalar(s) => ctx.scalar_type(a.ty, s),
        Shape::PortName => quote!(#rt::PortName),
        Shape::Port { in_name, out_name } => match side {
            Side::Client => client_port_in_type(rt, ctx.sent_port(side, *in_name, *out_name))?,
            Side::Server => server_port_out_type(rt, ctx.sent_port(side, *in_name, *out_name))?,
        },
        Shape::FixedArray { scalar, n } => {
            let p = format_ident!("{}", scalar.prim());
            let n = lit_usize(*n);
            match side {
                Side::Client => quote!(&[#p; #n]),
                Side::Server => quote!([#p; #n]),
            }
        }
        Shape::FixedString { .. } | Shape::VarString { .. } => match side {
            Side::Client => quote!(&[u8]),
            Side::Server => quote!(#rt::stub::Vec<u8>),
        },
        Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } => {
            let e = ctx.elem_type(elem);
            match side {
                Side::Client => quote!(&[#e]),
                Side::Server => quote!(#rt::stub::Vec<#e>),
            }
        }
        Shape::Ool { elem } => {
            if elem.is_bytes() {
                match a.dealloc {
                    Dealloc::No => match side {
                        Side::Client => quote!(&[u8]),
                        Side::Server => quote!(#rt::OolBuffer),
                    },
                    Dealloc::Yes => quote!(#rt::OolBuffer),
                    Dealloc::Maybe => match side {
                        Side::Client => quote!(#rt::msg::OolData<'_>),
                        Side::Server => quote!(#rt::msg::OolData<'static>),
                    },
                }
            } else {
                let e = ctx.elem_type(elem);
                match side {
                    Side::Client => quote!(&[#e]),
                    Side::Server => quote!(#rt::stub::Vec<#e>),
                }
            }
        }
    })
}

/// The Rust type of a received value.
pub fn recv_type(
    ctx: &Ctx<'_>,
    side: Side,
    a: &Arg,
    shape: &Shape,
) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let elem_vec = |e: &Elem| -> Result<TokenStream, Unsupported> {
        Ok(match &e.kind {
            ElemKind::Port { out_name, .. } => {
                let r = received_port_type(rt, *out_name)?;
                quote!(#rt::stub::Vec<#r>)
            }
            ElemKind::Scalar(_) => {
                let t = ctx.elem_type(e);
                quote!(#rt::stub::Vec<#t>)
            }
        })
    };
    Ok(match shape {
        Shape::Scalar(s) => ctx.scalar_type(a.ty, s),
        Shape::PortName => quote!(#rt::PortName),
        Shape::Port { out_name, .. } => received_port_type(rt, *out_name)?,
        Shape::FixedArray { scalar, n } => {
            let p = format_ident!("{}", scalar.prim());
            let n = lit_usize(*n);
            quote!([#p; #n])
        }
        Shape::FixedString { .. } | Shape::VarString { .. } => match side {
            Side::Client => quote!(#rt::stub::Vec<u8>),
            Side::Server => quote!(&[u8]),
        },
        Shape::VarArray { elem, .. } => {
            if elem.is_bytes() && side == Side::Server {
                quote!(&[u8])
            } else {
                elem_vec(elem)?
            }
        }
        Shape::Indefinite { elem, .. } => {
            if elem.is_bytes() {
                match side {
                    Side::Client => quote!(#rt::OolBuffer),
                    Side::Server => quote!(#rt::msg::OolData<'_>),
                }
            } else {
                elem_vec(elem)?
            }
        }
        Shape::Ool { elem } => {
            if elem.is_bytes() {
                quote!(#rt::OolBuffer)
            } else {
                elem_vec(elem)?
            }
        }
    })
}

/// After a variable inline array of `count` elements was written at its field: the
/// descriptor's count, `__delta` (the field's aligned size) and the zeroed padding after the
/// data, not what the buffer held before.
pub fn var_array_tail(
    ctx: &Ctx<'_>,
    r: &Routine,
    f: &Field,
    elem: &Elem,
    count: TokenStream,
) -> TokenStream {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let d = At::desc(f).tokens();
    let o = At::data(f).tokens();
    let long = r.arg(f.arg).long_form;
    let g = lit_usize(elem.group);
    let eb = lit_usize(elem.inline_bytes());
    quote! {
        #rt::stub::desc_set_number(__m.init_mut(), #d, #tt, #long, (#count * #g) as u32);
        let __delta = #rt::stub::align(#tt, #count * #eb);
        #rt::stub::wr_pad(__m.init_mut(), #o + #count * #eb, __delta - #count * #eb);
    }
}

/// Code that encodes `v` (an expression of [`send_type`]) into field `f`. For variable-size
/// fields the code defines `__delta` (the field's wire size); `dyn_simple` says whether the
/// message's complex bit is decided at run time (`__simple`). Returns the statements and
/// the statements that release moved rights if the send fails.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    ctx: &Ctx<'_>,
    r: &Routine,
    f: &Field,
    side: Side,
    shape: &Shape,
    v: TokenStream,
    dyn_simple: bool,
) -> Result<(TokenStream, TokenStream), Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let a = r.arg(f.arg);
    let d = At::desc(f).tokens();
    let o = At::data(f).tokens();
    let long = a.long_form;
    let ptr = lit_usize(ctx.t.pointer_size());
    let tmpl = ctx.send_template(r, f, side)?;
    let mut out = vec![quote!(#rt::stub::wr_desc(__m.init_mut(), #d, &#tmpl);)];
    let mut undo = quote!();
    match shape {
        Shape::Scalar(s) => {
            let w = wr_fn(s);
            let x = to_wire(s, v);
            out.push(quote!(#rt::stub::#w(__m.init_mut(), #o, #x);));
        }
        Shape::PortName => out.push(quote!(#rt::stub::wr_u32(__m.init_mut(), #o, (#v).0);)),
        Shape::Port { in_name, out_name } => {
            let nm = format_ident!("__n_{}", a.name);
            let in_name = &ctx.sent_port(side, *in_name, *out_name);
            match (*in_name, side) {
                (type_name::POLYMORPHIC, _) => {
                    let dp = format_ident!("__p_{}", a.name);
                    out.push(quote! {
                        let (#nm, #dp) = (#v).into_wire();
                        #rt::stub::wr_port(__m.init_mut(), #o, #tt, #nm);
                        #rt::stub::desc_set_name(__m.init_mut(), #d, #tt, #long, #dp);
                    });
                    if dyn_simple {
                        out.push(
                            quote!(if #rt::wire::type_name::is_port_any(#dp) { __simple = false; }),
                        );
                    }
                    undo = quote! {
                        if #rt::wire::type_name::is_port_any_right(#dp) {
                            #rt::stub::release_name(__space, #nm, #rt::wire::type_name::received_form(#dp));
                        }
                    };
                }
                (type_name::MOVE_SEND | type_name::MOVE_SEND_ONCE | type_name::MOVE_RECEIVE, _) => {
                    let recv = lit_u32(type_name::received_form(*in_name));
                    out.push(quote! {
                        let #nm = (#v).into_raw();
                        #rt::stub::wr_port(__m.init_mut(), #o, #tt, #nm);
                    });
                    undo = quote!(#rt::stub::release_name(__space, #nm, #recv););
                }
                (_, Side::Client) => {
                    out.push(quote!(#rt::stub::wr_port(__m.init_mut(), #o, #tt, (#v).name());))
                }
                (_, Side::Server) => {
                    out.push(quote!(#rt::stub::wr_port(__m.init_mut(), #o, #tt, #v);))
                }
            }
        }
        Shape::FixedArray { scalar, .. } => {
            if scalar.bits == 8 && !scalar.float {
                out.push(quote! {
                    for (__i, __x) in (#v).iter().enumerate() { #rt::stub::wr_u8(__m.init_mut(), #o + __i, *__x as u8); }
                });
            } else {
                let w = wr_fn(scalar);
                let step = lit_usize(scalar.bytes());
                let x = to_wire(scalar, quote!(*__x));
                out.push(quote! {
                    for (__i, __x) in (#v).iter().enumerate() { #rt::stub::#w(__m.init_mut(), #o + __i * #step, #x); }
                });
            }
        }
        Shape::FixedString { bytes } => {
            let n = lit_usize(*bytes);
            out.push(quote!(#rt::stub::wr_cstr(__m.init_mut(), #o, #n, &(#v)[..]);));
        }
        Shape::VarString { max } => {
            let n = lit_usize(*max);
            let m = lit_u32(*max);
            out.push(quote! {
                let __n = #rt::stub::wr_cstr(__m.init_mut(), #o, #n, &(#v)[..]);
                let __c: u32 = if __n < #m { __n + 1 } else { __n };
                #rt::stub::desc_set_number(__m.init_mut(), #d, #tt, #long, __c);
                let __delta = #rt::stub::align(#tt, __c as usize);
            });
        }
        Shape::VarArray { elem, max } => {
            let m = lit_usize(*max);
            let err = match side {
                Side::Client => {
                    quote!(return Err(#rt::RpcError::Mig(#rt::KernReturn::MIG_ARRAY_TOO_LARGE));)
                }
                Side::Server => quote! {
                    #rt::stub::set_retcode(__m.init_mut(), #tt, #rt::KernReturn::MIG_ARRAY_TOO_LARGE);
                    return;
                },
            };
            let w = write_elems(ctx, elem, &o, &v);
            let tail = var_array_tail(ctx, r, f, elem, quote!(__len));
            out.push(quote! {
                let __len = (#v).len();
                if __len > #m { #err }
                #w
                #tail
            });
        }
        Shape::Indefinite { elem, max } => {
            let m = lit_usize(*max);
            let g = lit_usize(elem.group);
            let eb = lit_usize(elem.inline_bytes());
            let inline = write_elems(ctx, elem, &o, &v);
            let ool = ool_bytes(ctx, elem, &v);
            let dealloc = match a.dealloc {
                Dealloc::No => quote!(),
                // The out-of-line copy is ours: let the kernel free it.
                _ => quote!(#rt::stub::desc_set_dealloc(__m.init_mut(), #d, #tt, true);),
            };
            let port32 = if ctx.t == Target::X86_64 && matches!(elem.kind, ElemKind::Port { .. }) {
                quote!(#rt::stub::desc_set_size(__m.init_mut(), #d, #tt, #long, 32);)
            } else {
                quote!()
            };
            let simple = if dyn_simple {
                quote!(__simple = false;)
            } else {
                quote!()
            };
            let wp = write_ptr(ctx, &o, quote!(__a));
            out.push(quote! {
                let __len = (#v).len();
                let __delta = if __len > #m {
                    #rt::stub::desc_set_inline(__m.init_mut(), #d, #tt, false);
                    #port32
                    #dealloc
                    let __a = __m.attach_ool_owned(#ool);
                    #wp
                    #simple
                    #ptr
                } else {
                    #inline
                    let __d = #rt::stub::align(#tt, __len * #eb);
                    // The padding after the data: zero, not what the buffer held before.
                    #rt::stub::wr_pad(__m.init_mut(), #o + __len * #eb, __d - __len * #eb);
                    __d
                };
                #rt::stub::desc_set_number(__m.init_mut(), #d, #tt, #long, (__len * #g) as u32);
            });
        }
        Shape::Ool { elem } => {
            let g = lit_usize(elem.group);
            let wp = write_ptr(ctx, &o, quote!(__a));
            if elem.is_bytes() {
                let attach = match (a.dealloc, side) {
                    (Dealloc::No, Side::Client) => {
                        quote!(let __len = (#v).len(); let __a = __m.attach_ool(#v);)
                    }
                    (Dealloc::Maybe, _) => quote! {
                        let __len = (#v).bytes().len();
                        let __a = match #v {
                            #rt::msg::OolData::Borrowed(__x) => __m.attach_ool(__x),
                            #rt::msg::OolData::Owned(__x) => {
                                #rt::stub::desc_set_dealloc(__m.init_mut(), #d, #tt, true);
                                __m.attach_ool_owned(__x)
                            }
                        };
                    },
                    _ => quote!(let __len = (#v).len(); let __a = __m.attach_ool_owned(#v);),
                };
                out.push(attach);
            } else {
                let bytes = ool_bytes(ctx, elem, &v);
                out.push(quote!(let __len = (#v).len(); let __a = __m.attach_ool_owned(#bytes);));
            }
            out.push(quote! {
                #wp
                #rt::stub::desc_set_number(__m.init_mut(), #d, #tt, #long, (__len * #g) as u32);
            });
        }
    }
    // The padding after fixed-size inline data (e.g. the 4 bytes after a 32-bit value on
    // x86_64): GNU MIG's stubs leave it unwritten; write zeros so a reused buffer (a server
    // loop's reply buffer) does not send stale bytes.
    if !f.variable && f.pad_size > 0 && !matches!(shape, Shape::Ool { .. }) {
        let at = lit_usize(f.data_size);
        let n = lit_usize(f.pad_size);
        out.push(quote!(#rt::stub::wr_zero(__m.init_mut(), #o + #at, #n);));
    }
    Ok((quote!(#(#out)*), undo))
}

/// Writes the elements of an inline array at `o`.
fn write_elems(ctx: &Ctx<'_>, e: &Elem, o: &TokenStream, v: &TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    match &e.kind {
        ElemKind::Port { .. } => {
            let step = lit_usize(e.scalar_bytes);
            quote! {
                for (__i, __x) in (#v).iter().enumerate() {
                    #rt::stub::wr_port(__m.init_mut(), #o + __i * #step, #tt, *__x);
                }
            }
        }
        ElemKind::Scalar(s) => {
            if e.is_bytes() {
                return quote!(#rt::stub::wr_bytes(__m.init_mut(), #o, &(#v)[..]););
            }
            let w = wr_fn(s);
            let step = lit_usize(s.bytes());
            let x = to_wire(s, quote!(*__x));
            if e.group > 1 {
                let gstep = lit_usize(e.inline_bytes());
                quote! {
                    for (__j, __g) in (#v).iter().enumerate() {
                        for (__i, __x) in __g.iter().enumerate() {
                            #rt::stub::#w(__m.init_mut(), #o + __j * #gstep + __i * #step, #x);
                        }
                    }
                }
            } else {
                let wt = format_ident!("{}", s.wire());
                quote! {
                    for (__c, __x) in #rt::stub::bytes_at_mut(__m.init_mut(), #o, (#v).len().saturating_mul(#step))
                        .chunks_exact_mut(#step)
                        .zip((#v).iter())
                    {
                        let __w: #wt = #x;
                        __c.copy_from_slice(&__w.to_le_bytes());
                    }
                }
            }
        }
    }
}

/// Expression converting the wire chunk `__c` (one scalar) to its Rust primitive.
fn scalar_from_chunk(ctx: &Ctx<'_>, s: &Scalar) -> TokenStream {
    let rt = &ctx.rt;
    let rf = rd_fn(s);
    let rd = quote!(#rt::stub::#rf(__c, 0));
    let p = format_ident!("{}", s.prim());
    match (s.float, s.bits) {
        (true, 32) => quote!(f32::from_bits(#rd)),
        (true, _) => quote!(f64::from_bits(#rd)),
        _ if s.prim() == s.wire() => rd,
        _ => quote!(#rd as #p),
    }
}

/// An owned buffer holding `v`'s elements in out-of-line wire format (ports as 32-bit names).
fn ool_bytes(ctx: &Ctx<'_>, e: &Elem, v: &TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    match &e.kind {
        ElemKind::Port { .. } => quote! {{
            let mut __v = #rt::stub::Vec::with_capacity((#v).len() * 4);
            for __x in (#v).iter() { __v.extend_from_slice(&__x.0.to_le_bytes()); }
            #rt::OolBuffer::from_vec(__v)
        }},
        ElemKind::Scalar(s) => {
            if e.is_bytes() {
                return quote!(#rt::OolBuffer::copy_from(&(#v)[..]));
            }
            let w = format_ident!("{}", s.wire());
            let x = to_wire(s, quote!(*__x));
            let eb = lit_usize(e.inline_bytes());
            let inner = if e.group > 1 {
                quote!(for __g in (#v).iter() { for __x in __g.iter() { let __w: #w = #x; __v.extend_from_slice(&__w.to_le_bytes()); } })
            } else {
                quote!(for __x in (#v).iter() { let __w: #w = #x; __v.extend_from_slice(&__w.to_le_bytes()); })
            };
            quote! {{
                let mut __v = #rt::stub::Vec::with_capacity((#v).len() * #eb);
                #inner
                #rt::OolBuffer::from_vec(__v)
            }}
        }
    }
}

fn write_ptr(ctx: &Ctx<'_>, o: &TokenStream, addr: TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    match ctx.t {
        Target::X86_64 => quote!(#rt::stub::wr_u64(__m.init_mut(), #o, #addr);),
        Target::I386 => quote!(#rt::stub::wr_u32(__m.init_mut(), #o, #addr as u32);),
    }
}

fn read_ptr(ctx: &Ctx<'_>, o: &TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    match ctx.t {
        Target::X86_64 => quote!(#rt::stub::rd_u64(__m.bytes(), #o)),
        Target::I386 => quote!((#rt::stub::rd_u32(__m.bytes(), #o) as u64)),
    }
}

/// The check of one received field's descriptor (GNU MIG's `WriteTypeCheck`). `simple` is
/// the expression saying the received message is simple. Fails with `err`.
pub fn type_check(
    ctx: &Ctx<'_>,
    r: &Routine,
    f: &Field,
    request: bool,
    simple: &TokenStream,
    err: &TokenStream,
) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let a = r.arg(f.arg);
    let it = ctx.sub.ty(a.ty);
    let d = At::desc(f).tokens();
    let qc = a.kind.any(if request {
        ArgKind::REQUEST_QC
    } else {
        ArgKind::REPLY_QC
    });
    if qc {
        let tmpl = ctx.check_template(r, f)?;
        return Ok(quote!(if !#rt::stub::desc_is(__m.bytes(), #d, &#tmpl) { #err }));
    }
    let check = if request {
        r.request.check
    } else {
        r.reply.check
    };
    let mut conds = Vec::new();
    if !it.indefinite {
        conds.push(if it.inline {
            quote!(!__td.inline)
        } else {
            quote!(__td.inline)
        });
    }
    let long = a.long_form;
    conds.push(if long {
        quote!(!__td.longform)
    } else {
        quote!(__td.longform)
    });
    if it.out_name == type_name::POLYMORPHIC {
        if !check.fixed {
            conds.push(quote!((#rt::wire::type_name::is_port_any(__td.name) && #simple)));
        }
    } else {
        let mask = if ctx.t == Target::I386 && long {
            0xffff
        } else {
            0xff
        };
        let n = lit_u32(it.out_name & mask);
        conds.push(quote!(__td.name != #n));
    }
    if !it.var_array {
        let n = lit_u32(it.number);
        conds.push(quote!(__td.number != #n));
    }
    let s = lit_u32(it.size);
    if ctx.t == Target::X86_64 && it.userland_port && long {
        conds.push(quote!((__td.size != #s && __td.inline)));
        conds.push(quote!((__td.size != 32 && !__td.inline)));
    } else {
        conds.push(quote!(__td.size != #s));
    }
    Ok(quote! {{
        let __td = #rt::stub::rd_desc(__m.bytes(), #d, #tt).desc;
        if #(#conds)||* { #err }
    }})
}

/// GNU MIG's variable-size check (`WriteCheckMsgSize`) for the variable field `f`, the
/// `k`-th of `num_var`: defines `__s{k+1}` and checks the message size `__msgh_size`
/// (decremented for all but the last variable field). `min` is the minimum message size.
#[allow(clippy::too_many_arguments)]
pub fn var_size_check(
    ctx: &Ctx<'_>,
    r: &Routine,
    f: &Field,
    shape: &Shape,
    k: u32,
    num_var: u32,
    min: u32,
    err: &TokenStream,
) -> TokenStream {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let d = At::desc(f).tokens();
    let _ = r;
    // GNU MIG multiplies `msgt_number` by the bytes of one scalar, and rounds up to the
    // alignment only when a whole C element is not a multiple of it (server.c/user.c
    // `WriteCheckArgSize`): `4 * n` for `struct[2] of int` elements, `(4 * n + 7) & ~7` for
    // `int`. A hostile odd `n` must fail the size check exactly as in C.
    let (scalar_bytes, elem_bytes, indefinite) = match shape {
        Shape::VarString { .. } => (1, 1, false),
        Shape::VarArray { elem, .. } => (elem.scalar_bytes, elem.inline_bytes(), false),
        Shape::Indefinite { elem, .. } => (elem.scalar_bytes, elem.inline_bytes(), true),
        _ => (0, 0, false),
    };
    let sb = lit_usize(scalar_bytes);
    let bytes = quote!((__td.number as usize * #sb));
    let aligned = if elem_bytes % ctx.t.align() != 0 {
        quote!(#rt::stub::align(#tt, #bytes))
    } else {
        bytes
    };
    let delta = if indefinite {
        let p = lit_usize(ctx.t.pointer_size());
        quote!(if __td.inline { #aligned } else { #p })
    } else {
        aligned
    };
    let prev = if k == 0 {
        quote!(0usize)
    } else {
        let s = shift_var(k);
        quote!(#s)
    };
    let next = shift_var(k + 1);
    let min = lit_usize(min);
    let check = if k + 1 == num_var {
        quote!(if __msgh_size != #min + __delta { #err })
    } else {
        quote! {
            if __msgh_size < #min + __delta { #err }
            __msgh_size -= __delta;
        }
    };
    quote! {
        let __delta: usize = {
            let __td = #rt::stub::rd_desc(__m.bytes(), #d, #tt).desc;
            #delta
        };
        #check
        let #next: usize = #prev + __delta;
    }
}

/// Code that decodes field `f` into a fresh binding `id` of [`recv_type`]; fails with `err`
/// when out-of-line memory the descriptor names is missing. Rights are taken out of the
/// message (their names replaced by `MACH_PORT_NULL`).
///
/// Returns two parts: what takes or copies from the message, and what borrows from it
/// (server-side strings and byte arrays). All first parts of a message must come before all
/// second parts, so borrows do not overlap with takes.
pub fn decode(
    ctx: &Ctx<'_>,
    r: &Routine,
    f: &Field,
    side: Side,
    shape: &Shape,
    id: &Ident,
    err: &TokenStream,
) -> Result<(TokenStream, TokenStream), Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let d = At::desc(f).tokens();
    let o = At::data(f).tokens();
    let desc = quote!(#rt::stub::rd_desc(__m.bytes(), #d, #tt).desc);
    let borrows = side == Side::Server
        && match shape {
            Shape::FixedString { .. } | Shape::VarString { .. } => true,
            Shape::VarArray { elem, .. } => elem.is_bytes(),
            _ => false,
        };
    if side == Side::Server {
        if let Shape::FixedString { bytes } = shape {
            // GNU MIG forces the last byte to NUL before the call.
            let n = lit_usize(*bytes);
            let last = lit_usize(bytes.saturating_sub(1));
            return Ok((
                quote!(#rt::stub::wr_u8(__m.init_mut(), #o + #last, 0);),
                quote!(let #id = #rt::stub::rd_cstr(__m.bytes(), #o, #n);),
            ));
        }
        if let Shape::Indefinite { elem, .. } = shape {
            if elem.is_bytes() {
                let own = format_ident!("__own_{}", id);
                let take = take_ool(ctx, elem, &o, quote!(__c), err);
                let pre = quote! {
                    let #own = {
                        let __dd = #desc;
                        let __c = __dd.number as usize;
                        if __dd.inline { None } else { Some(#take) }
                    };
                };
                let post = quote! {
                    let #id = match #own {
                        Some(__o) => #rt::msg::OolData::Owned(__o),
                        None => #rt::msg::OolData::Borrowed(#rt::stub::rd_bytes(__m.bytes(), #o, #desc.number as usize)),
                    };
                };
                return Ok((pre, post));
            }
        }
    }
    let code = decode_one(ctx, r, f, side, shape, id, err)?;
    Ok(if borrows {
        (quote!(), code)
    } else {
        (code, quote!())
    })
}

fn decode_one(
    ctx: &Ctx<'_>,
    r: &Routine,
    f: &Field,
    side: Side,
    shape: &Shape,
    id: &Ident,
    err: &TokenStream,
) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let a = r.arg(f.arg);
    let d = At::desc(f).tokens();
    let o = At::data(f).tokens();
    let ty = recv_type(ctx, side, a, shape)?;
    let desc = quote!(#rt::stub::rd_desc(__m.bytes(), #d, #tt).desc);
    Ok(match shape {
        Shape::Scalar(s) => {
            let rd = read_scalar(ctx, s, o);
            quote!(let #id: #ty = #rd;)
        }
        Shape::PortName => quote!(let #id = #rt::PortName(#rt::stub::rd_u32(__m.bytes(), #o));),
        Shape::Port { out_name, .. } => {
            let take = quote!(#rt::stub::take_port(__m.init_mut(), #o));
            if *out_name == type_name::POLYMORPHIC {
                quote! {
                    let __pn = #desc.name;
                    let #id = #rt::ReceivedRight::from_received(__space, #take, __pn);
                }
            } else {
                quote!(let #id = <#ty>::from_raw(__space, #take);)
            }
        }
        Shape::FixedArray { scalar, n } => {
            let p = format_ident!("{}", scalar.prim());
            let nl = lit_usize(*n);
            let step = lit_usize(scalar.bytes());
            let rd = read_scalar(ctx, scalar, quote!(#o + __i * #step));
            quote! {
                let mut #id: [#p; #nl] = [Default::default(); #nl];
                for (__i, __x) in #id.iter_mut().enumerate() { *__x = #rd; }
            }
        }
        Shape::FixedString { bytes } => {
            let n = lit_usize(*bytes);
            match side {
                Side::Client => quote!(let #id = #rt::stub::rd_cstr(__m.bytes(), #o, #n).to_vec();),
                // GNU MIG forces the last byte to NUL before the call.
                Side::Server => {
                    let last = lit_usize(bytes.saturating_sub(1));
                    quote! {
                        #rt::stub::wr_u8(__m.init_mut(), #o + #last, 0);
                        let #id = #rt::stub::rd_cstr(__m.bytes(), #o, #n);
                    }
                }
            }
        }
        Shape::VarString { .. } => {
            let conv = match side {
                Side::Client => quote!(.to_vec()),
                Side::Server => quote!(),
            };
            quote! {
                let __c = #desc.number as usize;
                let #id = #rt::stub::rd_cstr(__m.bytes(), #o, __c)#conv;
            }
        }
        Shape::VarArray { elem, .. } => {
            let g = lit_usize(elem.group);
            let pn = poly_name(ctx, elem, &desc);
            if elem.is_bytes() && side == Side::Server {
                quote! {
                    let __c = #desc.number as usize;
                    let #id = #rt::stub::rd_bytes(__m.bytes(), #o, __c);
                }
            } else {
                let read = read_elems(ctx, elem, &o, quote!(__c));
                quote! {
                    #pn
                    let __c = #desc.number as usize / #g;
                    let #id: #ty = #read;
                }
            }
        }
        Shape::Indefinite { elem, .. } => {
            let g = lit_usize(elem.group);
            let pn = poly_name(ctx, elem, &desc);
            let take = take_ool(ctx, elem, &o, quote!(__c), err);
            let inline = if elem.is_bytes() {
                match side {
                    Side::Client => {
                        quote!(#rt::OolBuffer::copy_from(#rt::stub::rd_bytes(__m.bytes(), #o, __c)))
                    }
                    Side::Server => {
                        quote!(#rt::msg::OolData::Borrowed(#rt::stub::rd_bytes(__m.bytes(), #o, __c)))
                    }
                }
            } else {
                read_elems(ctx, elem, &o, quote!(__c))
            };
            let ool = if elem.is_bytes() && side == Side::Server {
                quote!(#rt::msg::OolData::Owned(#take))
            } else {
                take
            };
            quote! {
                #pn
                let __dd = #desc;
                let __c = __dd.number as usize / #g;
                let #id: #ty = if __dd.inline { #inline } else { #ool };
            }
        }
        Shape::Ool { elem } => {
            let g = lit_usize(elem.group);
            let pn = poly_name(ctx, elem, &desc);
            let take = take_ool(ctx, elem, &o, quote!(__c), err);
            quote! {
                #pn
                let __c = #desc.number as usize / #g;
                let #id: #ty = #take;
            }
        }
    })
}

/// For arrays of polymorphic ports: binds `__pn`, the received type of every element.
fn poly_name(_ctx: &Ctx<'_>, e: &Elem, desc: &TokenStream) -> TokenStream {
    match e.kind {
        ElemKind::Port {
            out_name: type_name::POLYMORPHIC,
            ..
        } => quote!(let __pn = #desc.name;),
        _ => quote!(),
    }
}

/// Reads `count` inline elements at `o` into a `Vec` (rights are taken).
fn read_elems(ctx: &Ctx<'_>, e: &Elem, o: &TokenStream, count: TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    match &e.kind {
        ElemKind::Port { out_name, .. } => {
            let step = lit_usize(e.scalar_bytes);
            let wrap = port_wrap(ctx, *out_name, quote!(__n));
            quote! {{
                let mut __v = #rt::stub::Vec::with_capacity(#count);
                for __i in 0..#count {
                    let __n = #rt::stub::take_port(__m.init_mut(), #o + __i * #step);
                    __v.push(#wrap);
                }
                __v
            }}
        }
        ElemKind::Scalar(s) => {
            if e.is_bytes() {
                return quote!(#rt::stub::rd_bytes(__m.bytes(), #o, #count).to_vec());
            }
            let step = lit_usize(s.bytes());
            let p = format_ident!("{}", s.prim());
            if e.group > 1 {
                let g = lit_usize(e.group);
                let gstep = lit_usize(e.inline_bytes());
                let rd = read_scalar(ctx, s, quote!(#o + __j * #gstep + __i * #step));
                quote!((0..#count).map(|__j| { let mut __g: [#p; #g] = [Default::default(); #g]; for (__i, __x) in __g.iter_mut().enumerate() { *__x = #rd; } __g }).collect())
            } else {
                let one = scalar_from_chunk(ctx, s);
                quote! {
                    #rt::stub::rd_bytes(__m.bytes(), #o, (#count).saturating_mul(#step))
                        .chunks_exact(#step)
                        .map(|__c| #one)
                        .collect()
                }
            }
        }
    }
}

/// A received right of type `out_name` from the name expression `n`.
fn port_wrap(ctx: &Ctx<'_>, out_name: u32, n: TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    match out_name {
        type_name::PORT_RECEIVE => quote!(#rt::ReceiveRight::from_raw(__space, #n)),
        type_name::PORT_SEND_ONCE => quote!(#rt::SendOnceRight::from_raw(__space, #n)),
        type_name::POLYMORPHIC => quote!(#rt::ReceivedRight::from_received(__space, #n, __pn)),
        _ => quote!(#rt::SendRight::from_raw(__space, #n)),
    }
}

/// Takes the out-of-line region of `count` C elements whose address is at `o`, converted to
/// the received type (bytes stay an `OolBuffer`).
fn take_ool(
    ctx: &Ctx<'_>,
    e: &Elem,
    o: &TokenStream,
    count: TokenStream,
    err: &TokenStream,
) -> TokenStream {
    let rt = &ctx.rt;
    let addr = read_ptr(ctx, o);
    let (unit, conv) = match &e.kind {
        ElemKind::Port { out_name, .. } => {
            let wrap = port_wrap(ctx, *out_name, quote!(__n));
            (
                quote!(4usize),
                quote! {
                    __o.chunks_exact(4).map(|__c| {
                        let __n = #rt::PortName(u32::from_le_bytes([__c[0], __c[1], __c[2], __c[3]]));
                        #wrap
                    }).collect()
                },
            )
        }
        ElemKind::Scalar(_) if e.is_bytes() => (quote!(1usize), quote!(__o)),
        ElemKind::Scalar(s) => {
            let sb = lit_usize(s.bytes());
            let rf = rd_fn(s);
            let rd = quote!(#rt::stub::#rf(__c, 0));
            let p = format_ident!("{}", s.prim());
            let one = match (s.float, s.bits) {
                (true, 32) => quote!(f32::from_bits(#rd)),
                (true, _) => quote!(f64::from_bits(#rd)),
                _ if s.prim() == s.wire() => rd,
                _ => quote!(#rd as #p),
            };
            if e.group > 1 {
                let g = lit_usize(e.group);
                let gb = lit_usize(e.inline_bytes());
                (
                    quote!(#gb),
                    quote!(__o.chunks_exact(#gb).map(|__gc| { let mut __g: [#p; #g] = [Default::default(); #g]; for (__x, __c) in __g.iter_mut().zip(__gc.chunks_exact(#sb)) { *__x = #one; } __g }).collect()),
                )
            } else {
                (
                    quote!(#sb),
                    quote!(__o.chunks_exact(#sb).map(|__c| #one).collect()),
                )
            }
        }
    };
    quote! {{
        match __m.take_ool(#addr, #count * #unit) {
            Some(__o) => #conv,
            None => { #err }
        }
    }}
}

/// The variable-size inline array out of a routine that gets `_into` variants (a client
/// function writing into the caller's slice, a server method writing into the reply).
#[derive(Clone, Debug)]
pub struct IntoArray {
    /// The array's reply field.
    pub field: Field,
    /// Its C element: a scalar, one per element.
    pub elem: Elem,
    /// Its maximum number of elements.
    pub max: u32,
}

impl IntoArray {
    /// The count binding in `_into` results (`<array>Cnt`).
    pub fn count_ident(&self, r: &Routine) -> Ident {
        format_ident!("{}Cnt", r.arg(self.field.arg).name)
    }
}

/// The `_into` array of a routine, if it has one: a routine (not a simpleroutine) whose reply
/// has exactly one variable-size field, an out (not `inout`) `array[*:n]` of scalars
/// (`side`'s view of "out"), and no routine already named `<name>_into`.
pub fn into_array(ctx: &Ctx<'_>, r: &Routine, side: Side) -> Option<IntoArray> {
    if r.is_simple() || r.reply.num_var != 1 {
        return None;
    }
    let out_kind = match side {
        Side::Client => ArgKind::RETURN_RCV,
        Side::Server => ArgKind::RETURN_SND,
    };
    let name = |r: &Routine| match side {
        Side::Client => r.user_name.clone(),
        Side::Server => r.server_name.clone(),
    };
    let into = format!("{}_into", name(r));
    if ctx.sub.routines.iter().any(|o| name(o) == into) {
        return None;
    }
    let f = r.reply.fields.iter().find(|f| f.variable)?;
    let a = r.arg(f.arg);
    // Not `inout`: the array is out only.
    if !a.kind.any(out_kind) || a.kind.any(ArgKind::REQUEST) || a.kind.ident() == ArgKind::RET_CODE
    {
        return None;
    }
    match ctx.shape_of(r, f.arg).ok()? {
        Shape::VarArray { elem, max } if elem.group == 1 => match elem.kind {
            ElemKind::Scalar(_) => Some(IntoArray {
                field: *f,
                elem,
                max,
            }),
            ElemKind::Port { .. } => None,
        },
        _ => None,
    }
}
