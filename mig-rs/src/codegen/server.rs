//! Server side: a trait with one method per routine, the per-routine stubs and the demux
//! (GNU MIG's `<sub>Server.c`, mig-language.md §5).
//!
//! A routine stub checks the request as GNU MIG's `_X<routine>` does (size, complex bit,
//! each descriptor, variable sizes) and answers `MIG_BAD_ARGUMENTS` without touching the
//! request otherwise; then it moves every right and out-of-line region of the request into
//! typed arguments (so a later `mach_msg_destroy` of the request releases nothing twice),
//! calls the trait method, and packs its `Ok` value into the reply or stores its `Err` code
//! in `RetCode`.

use super::client::{args_doc, routine_doc};
use super::common::*;
use super::fields::{
    decode, encode, into_array, recv_type, send_type, shift_var, type_check, var_array_tail,
    var_size_check, At, IntoArray, Side,
};
use super::shape::{Shape, Unsupported};
use crate::ir::{ArgKind, HeaderPort, Routine};
use heck::ToUpperCamelCase;
use mig_runtime::wire::type_name;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The trait's name: the demux name in UpperCamelCase.
pub fn trait_name(ctx: &Ctx<'_>) -> Ident {
    format_ident!("{}", ctx.sub.demux_name.to_upper_camel_case())
}

struct Param {
    id: Ident,
    ty: TokenStream,
    /// Statements binding `id` from the request: what takes or copies (run first for all
    /// parameters), then what borrows.
    bind: TokenStream,
    borrow: TokenStream,
}

/// The out values a server method returns, in reply order.
fn outs(
    ctx: &Ctx<'_>,
    r: &Routine,
) -> Result<Vec<(Ident, TokenStream, crate::ir::Field)>, Unsupported> {
    outs_for(ctx, r, None)
}

/// With `into`, the out values of the `_into` method: the array written into the reply is
/// replaced by its count.
fn outs_for(
    ctx: &Ctx<'_>,
    r: &Routine,
    into: Option<&IntoArray>,
) -> Result<Vec<(Ident, TokenStream, crate::ir::Field)>, Unsupported> {
    let mut v = Vec::new();
    if r.is_simple() {
        return Ok(v);
    }
    for f in &r.reply.fields {
        let a = r.arg(f.arg);
        if !a.kind.any(ArgKind::RETURN_SND) || a.kind.ident() == ArgKind::RET_CODE {
            continue;
        }
        if let Some(i) = into.filter(|i| i.field.arg == f.arg) {
            v.push((i.count_ident(r), quote!(usize), *f));
            continue;
        }
        let shape = ctx.shape_of(r, f.arg)?;
        v.push((arg_ident(a), send_type(ctx, Side::Server, a, &shape)?, *f));
    }
    Ok(v)
}

fn out_type(
    ctx: &Ctx<'_>,
    r: &Routine,
    into: Option<&IntoArray>,
) -> Result<TokenStream, Unsupported> {
    let o = outs_for(ctx, r, into)?;
    Ok(match o.len() {
        0 => quote!(()),
        1 => o[0].1.clone(),
        _ => {
            let n = reply_struct_name(r, into.is_some());
            quote!(#n)
        }
    })
}

/// The struct a server method returns for routines with several out values.
pub fn reply_struct(
    ctx: &Ctx<'_>,
    r: &Routine,
    into: Option<&IntoArray>,
) -> Result<Option<TokenStream>, Unsupported> {
    let o = outs_for(ctx, r, into)?;
    if o.len() < 2 {
        return Ok(None);
    }
    let n = reply_struct_name(r, into.is_some());
    let fields = o.iter().map(|(i, t, _)| quote!(pub #i: #t));
    let doc = if into.is_some() {
        format!(
            " Out values of `{}`'s `_into` method, as the server returns them.",
            r.name
        )
    } else {
        format!(" Out values of `{}`, as the server returns them.", r.name)
    };
    Ok(Some(quote! {
        #[doc = #doc]
        #[allow(non_snake_case)]
        pub struct #n { #(#fields),* }
    }))
}

/// The parameters of a server method (after `&self`), with how to bind them.
fn params(ctx: &Ctx<'_>, r: &Routine, err: &TokenStream) -> Result<Vec<Param>, Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let mut v = Vec::new();
    for (id, a) in r.args() {
        if !a.kind.any(ArgKind::SERVER_ARG) {
            continue;
        }
        let name = arg_ident(a);
        match a.kind.ident() {
            ArgKind::REQUEST_PORT => v.push(Param {
                id: name.clone(),
                ty: quote!(#rt::PortName),
                bind: quote!(let #name = #rt::stub::msgh_local(__m.bytes(), #tt);),
                borrow: quote!(),
            }),
            ArgKind::REPLY_PORT => v.push(Param {
                id: name.clone(),
                ty: quote!(#rt::PortName),
                bind: quote!(let #name = #rt::stub::msgh_remote(__m.bytes());),
                borrow: quote!(),
            }),
            ArgKind::MSG_SEQNO => v.push(Param {
                id: name.clone(),
                ty: quote!(u32),
                bind: quote!(let #name = #rt::stub::msgh_seqno(__m.bytes(), #tt);),
                borrow: quote!(),
            }),
            ArgKind::POLY => match a.header_poly {
                Some(HeaderPort::Request) => v.push(Param {
                    id: name.clone(),
                    ty: quote!(u32),
                    bind: quote!(let #name = #rt::wire::msgh_bits::local(#rt::stub::msgh_bits(__m.bytes()));),
                    borrow: quote!(),
                }),
                Some(HeaderPort::Reply) => v.push(Param {
                    id: name.clone(),
                    ty: quote!(u32),
                    bind: quote!(let #name = #rt::wire::msgh_bits::remote(#rt::stub::msgh_bits(__m.bytes()));),
                    borrow: quote!(),
                }),
                None => {}
            },
            ArgKind::COUNT => {
                // Out arrays with countinout: the capacity the client asked for.
                if let Some(cio) = a.c_in_out {
                    let max = a
                        .parent
                        .and_then(|p| ctx.shape_of(r, p).ok())
                        .and_then(|s| match s {
                            Shape::VarArray { max, .. } | Shape::Indefinite { max, .. } => Some(max),
                            _ => None,
                        })
                        .unwrap_or(0);
                    let f = r
                        .request
                        .field(cio)
                        .ok_or_else(|| Unsupported("countinout field missing".into()))?;
                    let o = super::fields::At::data(f).tokens();
                    let m = lit_u32(max);
                    v.push(Param {
                        id: name.clone(),
                        ty: quote!(u32),
                        bind: quote! {
                            let #name: u32 = { let __x = #rt::stub::rd_u32(__m.bytes(), #o); if __x < #m { __x } else { #m } };
                        },
                        borrow: quote!(),
                    });
                }
            }
            ArgKind::NORMAL if a.kind.any(ArgKind::SEND_RCV) => {
                let f = r
                    .request
                    .field(id)
                    .ok_or_else(|| Unsupported(format!("{}: no request field", a.name)))?;
                let shape = ctx.shape_of(r, id)?;
                let ty = recv_type(ctx, Side::Server, a, &shape)?;
                let (bind, borrow) = decode(ctx, r, f, Side::Server, &shape, &name, err)?;
                v.push(Param { id: name, ty, bind, borrow });
            }
            _ => {}
        }
    }
    Ok(v)
}

/// The trait method of one routine.
fn method(ctx: &Ctx<'_>, r: &Routine, default_body: bool) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let err = quote!(return;);
    let ps = params(ctx, r, &err)?;
    let name = ident(&r.server_name);
    let ids = ps.iter().map(|p| &p.id);
    let decls = ps.iter().map(|p| {
        let (i, t) = (&p.id, &p.ty);
        quote!(#i: #t)
    });
    let out = out_type(ctx, r, None)?;
    let doc = routine_doc(ctx, r);
    let args_doc = args_doc(ctx, r);
    let ids2: Vec<_> = ps.iter().map(|p| &p.id).collect();
    let body = if default_body {
        quote! {{
            let _ = (#(#ids,)*);
            Err(#rt::KernReturn::MIG_BAD_ID)
        }}
    } else {
        quote!(;)
    };
    let into_method = match into_array(ctx, r, Side::Server) {
        None => quote!(),
        Some(i) => {
            let a = r.arg(i.field.arg);
            let arr = arg_ident(a);
            let e = ctx.elem_type(&i.elem);
            let into_name = ident(&format!("{}_into", r.server_name));
            let out_into = out_type(ctx, r, Some(&i))?;
            let decls = ps.iter().map(|p| {
                let (i, t) = (&p.id, &p.ty);
                quote!(#i: #t)
            });
            let too_large = quote!(return Err(#rt::KernReturn::MIG_ARRAY_TOO_LARGE));
            let copy = quote! {
                let __n = #arr.len();
                match out.get_mut(..__n) {
                    Some(__d) => __d.copy_from_slice(&#arr),
                    None => #too_large,
                }
            };
            let o = outs(ctx, r)?;
            let default = if o.len() == 1 {
                quote! {
                    let #arr = self.#name(#(#ids2),*)?;
                    #copy
                    Ok(__n)
                }
            } else {
                let n = reply_struct_name(r, false);
                let ni = reply_struct_name(r, true);
                let all: Vec<_> = o.iter().map(|(i, _, _)| i).collect();
                let cnt = i.count_ident(r);
                let rest = o
                    .iter()
                    .filter(|(_, _, f)| f.arg != i.field.arg)
                    .map(|(i, _, _)| i);
                quote! {
                    let #n { #(#all),* } = self.#name(#(#ids2),*)?;
                    #copy
                    Ok(#ni { #cnt: __n, #(#rest),* })
                }
            };
            let into_doc = format!(
                " `{}` writing `{}` straight into the reply, as GNU MIG's C server functions \
                 do: `out` is the reply's room for the array ({} elements; a `CountInOut` \
                 count, if the routine has one, says how many the client asked for); return \
                 how many elements you \
                 wrote (more than `out.len()` answers `MIG_ARRAY_TOO_LARGE`). This is what \
                 the demux calls; the provided implementation calls [`Self::{}`] and copies \
                 its `Vec`, so implement this one to avoid the allocation.",
                r.name, a.name, i.max, name
            );
            quote! {
                #[doc = #into_doc]
                #[allow(clippy::too_many_arguments, non_snake_case, unused_variables)]
                fn #into_name(&self, #(#decls,)* out: &mut [#e]) -> ::core::result::Result<#out_into, #rt::KernReturn> {
                    #default
                }
            }
        }
    };
    Ok(quote! {
        #[doc = #doc]
        #[doc = ""]
        #[doc = #args_doc]
        #[allow(clippy::too_many_arguments, non_snake_case, unused_variables)]
        fn #name(&self, #(#decls),*) -> ::core::result::Result<#out, #rt::KernReturn> #body
        #into_method
    })
}

/// The stub of one routine: check, extract, call, reply.
fn stub(ctx: &Ctx<'_>, r: &Routine, tr: &Ident) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let req = &r.request;
    let rep = &r.reply;
    let bad = quote! {
        #rt::stub::set_retcode(__rep.bytes_mut(), #tt, #rt::KernReturn::MIG_BAD_ARGUMENTS);
        return;
    };
    let min = lit_usize(req.min_size);
    let mut out = vec![quote! {
        let __msize = #rt::stub::msgh_size(__m.bytes()) as usize;
        let __simple = #rt::stub::msgh_bits(__m.bytes()) & #rt::wire::msgh_bits::COMPLEX == 0;
    }];
    let size_bad = if req.num_var > 0 {
        quote!(__msize < #min)
    } else {
        quote!(__msize != #min)
    };
    let complex_bad = if req.check.fixed {
        if req.check.simple {
            quote!(|| !__simple)
        } else {
            quote!(|| __simple)
        }
    } else {
        quote!()
    };
    out.push(quote! {
        // Past this check the request's bytes are known to hold `__msize` (for a fixed-size
        // request, a constant): the field reads below need no check of their own.
        if #size_bad #complex_bad || __msize > __m.bytes().len() { #bad }
        let mut __msgh_size: usize = __msize;
        let _ = &mut __msgh_size;
    });
    let mut k = 0u32;
    for f in &req.fields {
        out.push(type_check(ctx, r, f, true, &quote!(__simple), &bad)?);
        if f.variable {
            let shape = ctx.shape_of(r, f.arg)?;
            out.push(var_size_check(
                ctx,
                r,
                f,
                &shape,
                k,
                req.num_var,
                req.min_size,
                &bad,
            ));
            k += 1;
        }
    }
    // Extraction: from here on, rights and out-of-line memory move into typed values.
    let ps = params(ctx, r, &bad)?;
    out.push(quote!(let __space = __m.space(); let _ = __space;));
    for p in &ps {
        out.push(p.bind.clone());
    }
    for p in &ps {
        out.push(p.borrow.clone());
    }
    let name = ident(&r.server_name);
    let ids: Vec<_> = ps.iter().map(|p| &p.id).collect();
    let into = into_array(ctx, r, Side::Server);
    let o = outs_for(ctx, r, into.as_ref())?;
    let call = match &into {
        None => quote!(let __res = __server.#name(#(#ids),*);),
        Some(i) => {
            // The method writes the array into the reply's room for it (the field is the
            // reply's only variable-size one, so its offset is fixed).
            let into_name = ident(&format!("{}_into", r.server_name));
            let e = ctx.elem_type(&i.elem);
            let o = At::data(&i.field).tokens();
            let m = lit_usize(i.max);
            quote! {
                let __res = #rt::stub::with_elems_mut::<#e, _>(__rep.init_mut(), #o, #m, |__out| {
                    __server.#into_name(#(#ids,)* __out)
                });
            }
        }
    };
    out.push(call);
    if r.is_simple() || r.no_reply_args || o.is_empty() {
        out.push(quote! {
            let __code = match __res { Ok(_) => #rt::KernReturn::KERN_SUCCESS, Err(__e) => __e };
            #rt::stub::set_retcode(__rep.bytes_mut(), #tt, __code);
        });
        let body = quote!(#(#out)*);
        return Ok(wrap_stub(ctx, r, tr, body));
    }
    let bind_outs = if o.len() == 1 {
        let id = &o[0].0;
        quote!(let #id = __val;)
    } else {
        let n = reply_struct_name(r, into.is_some());
        let ids = o.iter().map(|(i, _, _)| i);
        quote!(let #n { #(#ids),* } = __val;)
    };
    let too_large = match &into {
        Some(i) => {
            let cnt = i.count_ident(r);
            let m = lit_usize(i.max);
            quote! {
                if #cnt > #m {
                    #rt::stub::set_retcode(__rep.bytes_mut(), #tt, #rt::KernReturn::MIG_ARRAY_TOO_LARGE);
                    return;
                }
            }
        }
        None => quote!(),
    };
    out.push(quote! {
        let __val = match __res {
            Ok(__v) => __v,
            Err(__e) => {
                #rt::stub::set_retcode(__rep.bytes_mut(), #tt, __e);
                return;
            }
        };
        #bind_outs
        #too_large
        let mut __m = #rt::MsgView::new(&mut *__rep);
    });
    // Reply packing.
    let dyn_simple = !rep.send.fixed;
    if dyn_simple {
        out.push(quote!(let mut __simple = true;));
    }
    let mut k = 0u32;
    for f in &rep.fields {
        let a = r.arg(f.arg);
        if a.kind.ident() == ArgKind::RET_CODE {
            continue;
        }
        let shape = ctx.shape_of(r, f.arg)?;
        let id = arg_ident(a);
        let code = match into.as_ref().filter(|i| i.field.arg == f.arg) {
            // Already in place: the descriptor, its count and the padding.
            Some(i) => {
                let cnt = i.count_ident(r);
                let d = At::desc(f).tokens();
                let tmpl = ctx.send_template(r, f, Side::Server)?;
                let tail = var_array_tail(ctx, r, f, &i.elem, quote!(#cnt));
                quote! {
                    #rt::stub::wr_desc(__m.init_mut(), #d, &#tmpl);
                    #tail
                }
            }
            None => encode(ctx, r, f, Side::Server, &shape, quote!(#id), dyn_simple)?.0,
        };
        out.push(code);
        if f.variable {
            let prev = if k == 0 {
                quote!(0usize)
            } else {
                let s = shift_var(k);
                quote!(#s)
            };
            let next = shift_var(k + 1);
            out.push(quote!(let #next: usize = #prev + __delta;));
            k += 1;
        }
    }
    let rmin = lit_usize(rep.min_size);
    let size = if rep.num_var > 0 {
        let s = shift_var(rep.num_var);
        quote!(#rmin + #s)
    } else {
        quote!(#rmin)
    };
    let complex = if rep.send.fixed {
        if rep.send.simple {
            quote!(false)
        } else {
            quote!(true)
        }
    } else {
        quote!(!__simple)
    };
    // `RetCode = KERN_SUCCESS`, the complex bit and `msgh_size` in one pass over the
    // header (an encoder that fails above has set its own `RetCode` and returned).
    out.push(quote! {
        #rt::stub::finish_reply(__m.bytes_mut(), #tt, #complex, (#size) as u32);
    });
    let body = quote!(#(#out)*);
    Ok(wrap_stub(ctx, r, tr, body))
}

fn stub_name(r: &Routine) -> Ident {
    format_ident!("__x_{}", r.name)
}

fn wrap_stub(ctx: &Ctx<'_>, r: &Routine, tr: &Ident, body: TokenStream) -> TokenStream {
    let rt = &ctx.rt;
    let n = stub_name(r);
    let doc = format!(" Server stub of `{}` (GNU MIG's `_X{}`).", r.name, r.name);
    quote! {
        #[doc = #doc]
        #[allow(clippy::all, non_snake_case, unused_variables, unused_mut, unused_parens)]
        fn #n<S: #tr + ?Sized>(__server: &S, __req: &mut #rt::MsgBuf<'_>, __rep: &mut #rt::MsgBuf<'_>) {
            // The request's bytes looked up once (see `MsgView`); the reply's likewise below.
            let mut __m = #rt::MsgView::new(&mut *__req);
            #body
        }
    }
}

/// The whole server part: trait, reply structs, stubs, demux and routine lookup.
pub fn server(ctx: &Ctx<'_>, default_bodies: bool) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let tr = trait_name(ctx);
    let mut methods = Vec::new();
    let mut structs = Vec::new();
    let mut stubs = Vec::new();
    let mut arms = Vec::new();
    let mut lookup = Vec::new();
    for r in &ctx.sub.routines {
        methods.push(method(ctx, r, default_bodies)?);
        if let Some(s) = reply_struct(ctx, r, None)? {
            structs.push(s);
        }
        if let Some(i) = into_array(ctx, r, Side::Server) {
            if let Some(s) = reply_struct(ctx, r, Some(&i))? {
                structs.push(s);
            }
        }
        stubs.push(stub(ctx, r, &tr)?);
        let n = lit_u32(r.number);
        let s = stub_name(r);
        arms.push(quote!(#n => #s(server, request, reply),));
        lookup.push(quote!(#n => Some(#s::<S>),));
    }
    let demux = ident(&ctx.sub.demux_name);
    let routine_fn = format_ident!("{}_routine", ctx.sub.demux_name);
    let base = proc_macro2::Literal::u32_suffixed(ctx.sub.base);
    let trait_doc = format!(
        " The server side of subsystem `{}` (base {}): implement it and pass it to [`{}`].",
        ctx.sub.name, ctx.sub.base, ctx.sub.demux_name
    );
    let trait_doc2 = if default_bodies {
        " Methods you do not implement answer `MIG_BAD_ID`, as if this server did not know the routine."
    } else {
        " Every method must be implemented."
    };
    let demux_doc = format!(
        " Demultiplexes a request of subsystem `{}` (ids {}..{}): prepares `reply` as GNU MIG's \
         demux does, calls the routine's stub and returns `true`, or returns `false` with \
         `RetCode = MIG_BAD_ID` for an id outside the subsystem, so demuxers can be chained. \
         `reply` must hold at least [`MAX_REPLY_SIZE`] bytes (owned buffers grow).",
        ctx.sub.name,
        ctx.sub.base,
        ctx.sub.base + ctx.sub.num_slots
    );
    let max_reply = lit_usize(
        ctx.sub
            .routines
            .iter()
            .map(|r| r.reply.max_size)
            .max()
            .unwrap_or(0)
            .max(ctx.t.reply_header_size()),
    );
    let _ = type_name::POLYMORPHIC;
    Ok(quote! {
        #[doc = #trait_doc]
        #[doc = ""]
        #[doc = #trait_doc2]
        pub trait #tr {
            #(#methods)*
        }

        #(#structs)*

        #(#stubs)*

        #[doc = #demux_doc]
        pub fn #demux<S: #tr + ?Sized>(server: &S, request: &mut #rt::MsgBuf<'_>, reply: &mut #rt::MsgBuf<'_>) -> bool {
            if !#rt::stub::reply_capacity(reply, #max_reply) {
                return false;
            }
            let id = #rt::stub::reply_setup(request.bytes(), reply.init_mut(), #tt);
            match (id as u32).wrapping_sub(#base) {
                #(#arms)*
                _ => return false,
            }
            true
        }

        /// The stub for a request id, or `None` if the id is not this subsystem's (GNU MIG's
        /// `<demux>_routine`, used to chain demuxers).
        pub fn #routine_fn<S: #tr + ?Sized>(id: i32) -> Option<fn(&S, &mut #rt::MsgBuf<'_>, &mut #rt::MsgBuf<'_>)> {
            match (id as u32).wrapping_sub(#base) {
                #(#lookup)*
                _ => None,
            }
        }
    })
}
