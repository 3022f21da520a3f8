//! Client stubs: one function per routine (GNU MIG's `<sub>User.c`, mig-language.md §6).
//!
//! A stub packs the request as GNU MIG's C stub does (descriptor templates, values,
//! variable-size fields shifting later ones, header last), calls `mach_msg` through the
//! [`mig_runtime::Transport`], then checks the reply in GNU MIG's order (id, size and
//! complex bit, `RetCode`, each descriptor) and decodes the out arguments. A rejected reply
//! is destroyed (its rights and memory released) before the error is returned.

use super::common::*;
use super::fields::{
    decode, encode, into_array, recv_type, send_type, shift_var, type_check, var_size_check,
    IntoArray, Side,
};
use super::shape::{Shape, Unsupported};
use crate::ir::{ArgKind, Routine};
use mig_runtime::wire::type_name;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The value of a `msgoption`/`waittime` word as a Rust expression.
pub fn option_value(ctx: &Ctx<'_>, word: &str) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    if let Ok(n) = word.parse::<u32>() {
        let l = lit_u32(n);
        return Ok(quote!(#l));
    }
    let c = match word {
        "MACH_MSG_OPTION_NONE" => "NONE",
        "MACH_SEND_MSG" => "SEND_MSG",
        "MACH_RCV_MSG" => "RCV_MSG",
        "MACH_SEND_TIMEOUT" => "SEND_TIMEOUT",
        "MACH_SEND_NOTIFY" => "SEND_NOTIFY",
        "MACH_SEND_INTERRUPT" => "SEND_INTERRUPT",
        "MACH_SEND_CANCEL" => "SEND_CANCEL",
        "MACH_RCV_TIMEOUT" => "RCV_TIMEOUT",
        "MACH_RCV_NOTIFY" => "RCV_NOTIFY",
        "MACH_RCV_INTERRUPT" => "RCV_INTERRUPT",
        "MACH_RCV_LARGE" => "RCV_LARGE",
        "MACH_SEND_ALWAYS" => "SEND_ALWAYS",
        "MACH_MSG_TIMEOUT_NONE" => return Ok(quote!(0u32)),
        other => {
            return Err(Unsupported(format!(
                "`{other}` is not a known mach_msg option or a number; mig-rs needs its value"
            )))
        }
    };
    let id = format_ident!("{}", c);
    Ok(quote!(#rt::wire::option::#id))
}

/// Size of a stub's message buffer: the larger of the request and reply maximums.
pub fn buffer_size(r: &Routine) -> u32 {
    let n = r
        .request
        .max_size
        .max(if r.is_simple() { 0 } else { r.reply.max_size });
    (n + 7) & !7
}

/// The doc line of a routine's items.
pub fn routine_doc(ctx: &Ctx<'_>, r: &Routine) -> String {
    let kind = if r.is_simple() {
        "SimpleRoutine"
    } else {
        "Routine"
    };
    let reply = if r.is_simple() {
        String::new()
    } else {
        format!(", reply id {}", r.reply_id)
    };
    format!(
        " {kind} `{}` of subsystem `{}`: request id {}{reply}; declared at `{}`.",
        r.name,
        ctx.sub.name,
        r.msg_id,
        ctx.location(r)
    )
}

/// The out values of a routine, in reply order: (binding, type).
/// With `into`, the out values of the `_into` variant: the array written into the caller's
/// slice is replaced by its count.
fn outs_for(
    ctx: &Ctx<'_>,
    r: &Routine,
    into: Option<&IntoArray>,
) -> Result<Vec<(Ident, TokenStream)>, Unsupported> {
    let mut v = Vec::new();
    if r.is_simple() {
        return Ok(v);
    }
    for f in &r.reply.fields {
        let a = r.arg(f.arg);
        if !a.kind.any(ArgKind::RETURN_RCV) || a.kind.ident() == ArgKind::RET_CODE {
            continue;
        }
        if into.is_some_and(|i| i.field.arg == f.arg) {
            if let Some(i) = into {
                v.push((i.count_ident(r), quote!(usize)));
            }
            continue;
        }
        let shape = ctx.shape_of(r, f.arg)?;
        v.push((arg_ident(a), recv_type(ctx, Side::Client, a, &shape)?));
    }
    Ok(v)
}

/// The reply struct of a routine with several out values.
pub fn reply_struct(ctx: &Ctx<'_>, r: &Routine) -> Result<Option<TokenStream>, Unsupported> {
    reply_struct_for(ctx, r, None)
}

/// The client function's name (`into`: its `_into` variant's).
fn fn_name(r: &Routine, into: bool) -> Ident {
    if into {
        ident(&format!("{}_into", r.user_name))
    } else {
        ident(&r.user_name)
    }
}

fn reply_struct_for(
    ctx: &Ctx<'_>,
    r: &Routine,
    into: Option<&IntoArray>,
) -> Result<Option<TokenStream>, Unsupported> {
    let o = outs_for(ctx, r, into)?;
    if o.len() < 2 {
        return Ok(None);
    }
    let name = reply_struct_name(r, into.is_some());
    let fields = o.iter().map(|(n, t)| quote!(pub #n: #t));
    let doc = format!(" Out values of [`{}`].", fn_name(r, into.is_some()));
    Ok(Some(quote! {
        #[doc = #doc]
        #[derive(Debug)]
        #[allow(non_snake_case)]
        pub struct #name { #(#fields),* }
    }))
}

/// The client stub of one routine.
pub fn routine(ctx: &Ctx<'_>, r: &Routine) -> Result<TokenStream, Unsupported> {
    routine_for(ctx, r, None)
}

/// The `_into` variant of a routine's client stub and its reply struct, for routines with a
/// variable-size inline array out (see [`into_array`]); empty otherwise.
pub fn routine_into(ctx: &Ctx<'_>, r: &Routine) -> Result<TokenStream, Unsupported> {
    let Some(into) = into_array(ctx, r, Side::Client) else {
        return Ok(quote!());
    };
    let s = reply_struct_for(ctx, r, Some(&into))?;
    let f = routine_for(ctx, r, Some(&into))?;
    Ok(quote!(#s #f))
}

fn routine_for(
    ctx: &Ctx<'_>,
    r: &Routine,
    into: Option<&IntoArray>,
) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let req = &r.request;
    let dyn_simple = !req.send.fixed;
    let mut params = Vec::new();
    let mut enc = Vec::new();
    let mut undo = Vec::new();

    // Request port.
    let rp = r.arg(r.request_port);
    let rp_ty = ctx.sub.ty(rp.ty);
    let rp_id = arg_ident(rp);
    let ty = client_port_in_type(rt, rp_ty.in_name)?;
    params.push(quote!(#rp_id: #ty));
    let (req_name, req_disp) = match rp_ty.in_name {
        type_name::POLYMORPHIC => {
            enc.push(quote!(let (__req_name, __req_disp) = #rp_id.into_wire();));
            undo.push(quote! {
                if #rt::wire::type_name::is_port_any_right(__req_disp) {
                    #rt::stub::release_name(__space, __req_name, #rt::wire::type_name::received_form(__req_disp));
                }
            });
            (quote!(__req_name), quote!(__req_disp))
        }
        n @ (type_name::MOVE_SEND | type_name::MOVE_SEND_ONCE | type_name::MOVE_RECEIVE) => {
            let d = lit_u32(n);
            let recv = lit_u32(type_name::received_form(n));
            enc.push(quote!(let __req_name = #rp_id.into_raw();));
            undo.push(quote!(#rt::stub::release_name(__space, __req_name, #recv);));
            (quote!(__req_name), quote!(#d))
        }
        n => {
            let d = lit_u32(n);
            (quote!(#rp_id.name()), quote!(#d))
        }
    };

    // Reply port: the caller's (`ureplyport`), none (simpleroutine) or MIG's per-thread one.
    let ur = r.arg(r.user_reply_port);
    let ur_ty = ctx.sub.ty(ur.ty);
    let mut mig_reply = false;
    let (reply_name, reply_disp) = if ur.kind.any(ArgKind::USER_ARG) {
        let id = arg_ident(ur);
        let ty = client_port_in_type(rt, ur_ty.in_name)?;
        params.push(quote!(#id: #ty));
        match ur_ty.in_name {
            type_name::POLYMORPHIC => {
                enc.push(quote!(let (__reply, __reply_disp) = #id.into_wire();));
                (quote!(__reply), quote!(__reply_disp))
            }
            n @ (type_name::MOVE_SEND | type_name::MOVE_SEND_ONCE | type_name::MOVE_RECEIVE) => {
                let d = lit_u32(n);
                enc.push(quote!(let __reply = #id.into_raw();));
                (quote!(__reply), quote!(#d))
            }
            n => {
                let d = lit_u32(n);
                enc.push(quote!(let __reply = #id.name();));
                (quote!(__reply), quote!(#d))
            }
        }
    } else if r.is_simple() {
        (quote!(#rt::PortName::NULL), quote!(0u32))
    } else {
        mig_reply = true;
        let d = lit_u32(ur_ty.in_name);
        (quote!(__reply), quote!(#d))
    };

    // msgoption and waittime, as arguments or from the positional statements.
    let mo = r.arg(r.msg_option);
    let option = if mo.kind.any(ArgKind::USER_ARG) {
        let id = arg_ident(mo);
        params.push(quote!(#id: u32));
        quote!(#id)
    } else {
        option_value(ctx, &mo.var_name)?
    };
    let wait = match r.wait_time {
        Some(w) => {
            let a = r.arg(w);
            if a.kind.any(ArgKind::USER_ARG) {
                let id = arg_ident(a);
                params.push(quote!(#id: u32));
                Some(quote!(#id))
            } else {
                Some(option_value(ctx, &a.var_name)?)
            }
        }
        None => None,
    };

    // Request body.
    let mut k = 0u32;
    for f in &req.fields {
        let a = r.arg(f.arg);
        let id = arg_ident(a);
        if a.kind.ident() == ArgKind::COUNT_IN_OUT {
            let max = a
                .c_in_out
                .and_then(|c| r.arg(c).parent)
                .and_then(|p| ctx.shape_of(r, p).ok())
                .and_then(|s| match s {
                    Shape::VarArray { max, .. } | Shape::Indefinite { max, .. } => Some(max),
                    _ => None,
                })
                .unwrap_or(0);
            let m = lit_u32(max);
            let d = super::fields::At::desc(f).tokens();
            let o = super::fields::At::data(f).tokens();
            let tmpl = ctx.send_template(r, f, super::fields::Side::Client)?;
            let array = a.c_in_out.and_then(|c| r.arg(c).parent);
            match into {
                // The `_into` variant asks for as many elements as the caller's slice holds.
                Some(i) if Some(i.field.arg) == array => {
                    let arr = arg_ident(r.arg(i.field.arg));
                    let ml = lit_usize(max);
                    enc.push(quote! {
                        let #id: u32 = if #arr.len() < #ml { #arr.len() as u32 } else { #m };
                    });
                }
                _ => params.push(quote!(#id: u32)),
            }
            enc.push(quote! {
                #rt::stub::wr_desc(__m.init_mut(), #d, &#tmpl);
                #rt::stub::wr_u32(__m.init_mut(), #o, if #id < #m { #id } else { #m });
            });
            continue;
        }
        let shape = ctx.shape_of(r, f.arg)?;
        params.push({
            let ty = send_type(ctx, Side::Client, a, &shape)?;
            quote!(#id: #ty)
        });
        let mut poly_array = None;
        if let Shape::VarArray { elem, .. } | Shape::Indefinite { elem, .. } | Shape::Ool { elem } =
            &shape
        {
            if let super::shape::ElemKind::Port {
                in_name: type_name::POLYMORPHIC,
                ..
            } = elem.kind
            {
                // One disposition for the whole array (GNU MIG's `<arg>Poly`).
                let pid = format_ident!("{}Poly", a.name);
                params.push(quote!(#pid: u32));
                poly_array = Some(pid);
            }
        }
        let (code, u) = encode(ctx, r, f, Side::Client, &shape, quote!(#id), dyn_simple)?;
        enc.push(code);
        undo.push(u);
        if let Some(pid) = poly_array {
            let d = super::fields::At::desc(f).tokens();
            let long = a.long_form;
            enc.push(quote!(#rt::stub::desc_set_name(__m.init_mut(), #d, #tt, #long, #pid);));
            if dyn_simple {
                enc.push(quote!(if #rt::wire::type_name::is_port_any(#pid) { __simple = false; }));
            }
        }
        if f.variable {
            let prev = if k == 0 {
                quote!(0usize)
            } else {
                let s = shift_var(k);
                quote!(#s)
            };
            let next = shift_var(k + 1);
            enc.push(quote!(let #next: usize = #prev + __delta;));
            k += 1;
        }
    }

    if let Some(i) = into {
        let arr = arg_ident(r.arg(i.field.arg));
        let e = ctx.elem_type(&i.elem);
        params.push(quote!(#arr: &mut [#e]));
    }

    let complex = if req.send.fixed {
        if req.send.simple {
            quote!(0u32)
        } else {
            quote!(#rt::wire::msgh_bits::COMPLEX)
        }
    } else {
        quote!(if __simple { 0u32 } else { #rt::wire::msgh_bits::COMPLEX })
    };
    let min = lit_usize(req.min_size);
    let size = if req.num_var > 0 {
        let s = shift_var(req.num_var);
        quote!((#min + #s))
    } else {
        quote!(#min)
    };
    let id_lit = lit_i32(r.msg_id);
    let cap = buffer_size(r);
    let capl = lit_usize(cap);
    let capu = proc_macro2::Literal::u32_suffixed(cap);
    // On the stack up to 8 KiB (GNU MIG's stubs use a stack union of any size), left
    // uninitialized but for the request: the reply is written by the transport before it is
    // read, so only the bytes sent (at most the request's maximum size) are zeroed first.
    let req_max = lit_usize(ctx.t.align_up(r.request.max_size).min(cap));
    let buf = if cap <= 8192 {
        quote! {
            let mut __storage = #rt::UninitBuf::<#capl>::new();
            let mut __m = #rt::MsgBuf::new_uninit(&mut __storage.0);
            __m.init_to(#req_max);
        }
    } else {
        quote!(let mut __m = #rt::MsgBuf::with_capacity(#capl);)
    };
    let simple_decl = if dyn_simple {
        quote!(let mut __simple = true;)
    } else {
        quote!()
    };
    let get_reply = if mig_reply {
        quote!(let __reply = __t.get_reply_port();)
    } else {
        quote!()
    };
    let head = quote! {
        #buf
        #simple_decl
        let __space = __t.space();
        #(#enc)*
        #get_reply
        let __size: usize = #size;
        #rt::stub::wr_header(
            __m.init_mut(), #tt,
            #rt::wire::msgh_bits::make(#req_disp, #reply_disp) | #complex,
            __size as u32, #req_name, #reply_name, #id_lit,
        );
    };

    let body = if r.is_simple() {
        quote! {
            #head
            let __r = __t.mach_msg(&mut __m, #rt::wire::option::SEND_MSG | #option, __size as u32, 0,
                #rt::PortName::NULL, #rt::wire::MSG_TIMEOUT_NONE, #rt::PortName::NULL);
            if __r.0 != 0 {
                #(#undo)*
                return Err(#rt::RpcError::Transport(__r));
            }
            Ok(())
        }
    } else {
        let (rcv_timeout, timeout) = match &wait {
            Some(w) => (quote!(| #rt::wire::option::RCV_TIMEOUT), w.clone()),
            None => (quote!(), quote!(#rt::wire::MSG_TIMEOUT_NONE)),
        };
        let dealloc_reply = if mig_reply {
            quote!(__t.dealloc_reply_port(__reply);)
        } else {
            quote!()
        };
        let put_reply = if mig_reply {
            quote!(__t.put_reply_port(__reply);)
        } else {
            quote!()
        };
        let reply_id = lit_i32(r.reply_id);
        let decode = reply(ctx, r, into)?;
        let undo_if_sent = if undo.iter().all(|u| u.is_empty()) {
            quote!()
        } else {
            quote! {
                if #rt::wire::msg_return::is_send_error(__r.0 as u32) {
                    // MACH_SEND_*: the request was not sent, moved rights are still ours.
                    #(#undo)*
                }
            }
        };
        quote! {
            #head
            let __r = __t.mach_msg(&mut __m,
                #rt::wire::option::SEND_MSG | #rt::wire::option::RCV_MSG | #option #rcv_timeout,
                __size as u32, #capu, #reply_name, #timeout, #rt::PortName::NULL);
            if __r.0 != 0 {
                #dealloc_reply
                #undo_if_sent
                return Err(#rt::RpcError::Transport(__r));
            }
            #put_reply
            let __id = #rt::stub::msgh_id(__m.bytes(), #tt);
            if __id != #reply_id {
                if __id == #rt::wire::notify::SEND_ONCE {
                    return Err(#rt::RpcError::Mig(#rt::KernReturn::MIG_SERVER_DIED));
                }
                __t.dealloc_reply_port(#reply_name);
                #rt::stub::destroy_body(&mut __m, #tt);
                return Err(#rt::RpcError::Mig(#rt::KernReturn::MIG_REPLY_MISMATCH));
            }
            #decode
        }
    };

    let fname = fn_name(r, into.is_some());
    let o = outs_for(ctx, r, into)?;
    let ret = match o.len() {
        0 => quote!(()),
        1 => o[0].1.clone(),
        _ => {
            let n = reply_struct_name(r, into.is_some());
            quote!(#n)
        }
    };
    let doc = routine_doc(ctx, r);
    let args_doc = args_doc(ctx, r);
    let into_doc = match into {
        Some(i) => {
            let a = r.arg(i.field.arg);
            let cnt = i.count_ident(r);
            format!(
                " Variant of [`{}`] writing `{}` into the caller's slice, as GNU MIG's C client \
                 writes into the caller's buffer: no allocation. The slice's length is the \
                 capacity{}; the result holds the number of elements written (`{cnt}`). A reply \
                 with more elements than the slice holds is destroyed and fails with \
                 `MIG_ARRAY_TOO_LARGE`.",
                ident(&r.user_name),
                a.name,
                if r.request.fields.iter().any(|f| {
                    r.arg(f.arg).kind.ident() == ArgKind::COUNT_IN_OUT
                        && r.arg(f.arg).c_in_out.and_then(|c| r.arg(c).parent) == Some(i.field.arg)
                }) {
                    format!(" (sent as the `CountInOut`, at most {})", i.max)
                } else {
                    String::new()
                }
            )
        }
        None => String::new(),
    };
    let into_doc = if into_doc.is_empty() {
        quote!()
    } else {
        quote!(#[doc = ""] #[doc = #into_doc])
    };
    Ok(quote! {
        #[doc = #doc]
        #[doc = ""]
        #[doc = #args_doc]
        #into_doc
        #[allow(clippy::all, non_snake_case, unused_variables, unused_mut, unused_parens)]
        pub fn #fname<T: #rt::Transport + ?Sized>(__t: &T, #(#params),*) -> ::core::result::Result<#ret, #rt::RpcError> {
            #body
        }
    })
}

/// Documentation of the arguments as declared.
pub fn args_doc(ctx: &Ctx<'_>, r: &Routine) -> String {
    let mut s = String::from(" MIG arguments:");
    for a in &r.args {
        if a.loc.is_none() {
            continue;
        }
        let dir = if a.kind.ident() == ArgKind::REQUEST_PORT {
            "request port"
        } else if a.kind.ident() == ArgKind::REPLY_PORT {
            "reply port"
        } else if a.kind.ident() == ArgKind::MSG_SEQNO {
            "msgseqno"
        } else if a.kind.ident() == ArgKind::WAIT_TIME {
            "waittime"
        } else if a.kind.ident() == ArgKind::MSG_OPTION {
            "msgoption"
        } else if a.kind.all(ArgKind::REQUEST | ArgKind::REPLY) {
            "inout"
        } else if a.kind.any(ArgKind::REPLY) {
            "out"
        } else {
            "in"
        };
        s.push_str(&format!(
            " `{}` ({dir}, {});",
            a.name,
            describe_type(ctx.sub, a.ty)
        ));
    }
    s
}

/// Reply checks and decoding (GNU MIG's `WriteCheckIdentity`, `WriteReplyArgs`).
fn reply(ctx: &Ctx<'_>, r: &Routine, into: Option<&IntoArray>) -> Result<TokenStream, Unsupported> {
    let rt = &ctx.rt;
    let tt = ctx.target_tokens();
    let rep = &r.reply;
    let min = lit_usize(rep.min_size);
    let hdr = lit_usize(ctx.t.reply_header_size());
    let cmp = if rep.num_var > 0 {
        quote!(<)
    } else {
        quote!(!=)
    };
    let err = quote! {
        #rt::stub::destroy_body(&mut __m, #tt);
        return Err(#rt::RpcError::Mig(#rt::KernReturn::MIG_TYPE_ERROR));
    };
    let mut out = vec![quote! {
        let __msize = #rt::stub::msgh_size(__m.bytes()) as usize;
        let __complex = #rt::stub::msgh_bits(__m.bytes()) & #rt::wire::msgh_bits::COMPLEX != 0;
        let __rc = #rt::stub::retcode(__m.bytes(), #tt);
    }];
    if rep.check.fixed && rep.check.simple {
        if r.no_reply_args {
            out.push(quote!(if __complex || __msize != #min { #err }));
        } else {
            out.push(quote!(if __complex || ((__msize #cmp #min) && (__msize != #hdr || __rc.0 == 0)) { #err }));
        }
    } else {
        let must_complex = if rep.check.fixed {
            quote!(|| !__complex)
        } else {
            quote!()
        };
        out.push(quote! {
            if ((__msize #cmp #min) #must_complex) && (__msize != #hdr || __complex || __rc.0 == 0) { #err }
        });
    }
    out.push(quote! {
        if __msize > __m.bytes().len() { #err }
        let mut __msgh_size: usize = __msize;
    });
    let simple = quote!((!__complex));
    let mut k = 0u32;
    let mut checks = Vec::new();
    for f in &rep.fields {
        let a = r.arg(f.arg);
        checks.push(type_check(ctx, r, f, false, &simple, &err)?);
        if a.kind.ident() == ArgKind::RET_CODE {
            checks.push(quote! {
                if __rc.0 != 0 {
                    #rt::stub::destroy_body(&mut __m, #tt);
                    return Err(#rt::RpcError::Server(__rc));
                }
            });
            continue;
        }
        if f.variable {
            let shape = ctx.shape_of(r, f.arg)?;
            checks.push(var_size_check(
                ctx,
                r,
                f,
                &shape,
                k,
                rep.num_var,
                rep.min_size,
                &err,
            ));
            if let Some(i) = into.filter(|i| i.field.arg == f.arg) {
                // The caller's slice must hold the array, before anything is taken.
                let arr = arg_ident(a);
                let d = super::fields::At::desc(f).tokens();
                let g = lit_usize(i.elem.group);
                checks.push(quote! {
                    if #rt::stub::rd_desc(__m.bytes(), #d, #tt).desc.number as usize / #g > #arr.len() {
                        #rt::stub::destroy_body(&mut __m, #tt);
                        return Err(#rt::RpcError::Mig(#rt::KernReturn::MIG_ARRAY_TOO_LARGE));
                    }
                });
            }
            k += 1;
        }
    }
    out.extend(checks);
    out.push(quote! {
        let __space = __m.space();
        let _ = (__space, &mut __msgh_size);
    });
    let o = outs_for(ctx, r, into)?;
    for f in &rep.fields {
        let a = r.arg(f.arg);
        if !a.kind.any(ArgKind::RETURN_RCV) || a.kind.ident() == ArgKind::RET_CODE {
            continue;
        }
        if let Some(i) = into.filter(|i| i.field.arg == f.arg) {
            let arr = arg_ident(a);
            let cnt = i.count_ident(r);
            let d = super::fields::At::desc(f).tokens();
            let o = super::fields::At::data(f).tokens();
            let g = lit_usize(i.elem.group);
            out.push(quote! {
                let #cnt = #rt::stub::rd_desc(__m.bytes(), #d, #tt).desc.number as usize / #g;
                if let Some(__d) = #arr.get_mut(..#cnt) {
                    #rt::stub::rd_elems_into(__m.bytes(), #o, __d);
                }
            });
            continue;
        }
        let shape = ctx.shape_of(r, f.arg)?;
        let (pre, post) = decode(ctx, r, f, Side::Client, &shape, &arg_ident(a), &err)?;
        out.push(pre);
        out.push(post);
    }
    out.push(match o.len() {
        0 => quote!(Ok(())),
        1 => {
            let id = &o[0].0;
            quote!(Ok(#id))
        }
        _ => {
            let n = reply_struct_name(r, into.is_some());
            let ids = o.iter().map(|(i, _)| i);
            quote!(Ok(#n { #(#ids),* }))
        }
    });
    Ok(quote!(#(#out)*))
}
