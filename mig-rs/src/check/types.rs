//! MIG types: what a type declaration means (mig-language.md §2.1).
//!
//! A [`Type`] carries the fields of a typed-message descriptor (`in_name`, `out_name`,
//! `size` in bits per element, `number` of elements, inline, long form, deallocate), the
//! shape flags GNU MIG derives (struct, string, variable array, indefinite), the C type
//! names and translation functions, and the size information every layout computation
//! uses (`type_size`, `pad_size`, `min_type_size`, `alignment`). Types live in an arena
//! ([`Types`]) and refer to their element type by [`TypeId`].

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::preprocess::token::FxMap;
use crate::source::Loc;
use mig_runtime::wire::{type_name, Target};

/// Index of a type in [`Types`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// `MACH_MSG_TYPE_POLYMORPHIC`.
pub const POLY: u32 = type_name::POLYMORPHIC;

/// Whether out-of-line memory is deallocated from the sender on send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dealloc {
    /// Never (`notdealloc`, the default).
    No,
    /// Always (`dealloc`).
    Yes,
    /// Chosen at run time by an implicit `<arg>Dealloc` argument (`dealloc[]`).
    Maybe,
}

/// IPC flags as written (`islong`, `dealloc`, `dealloc[]`…), before they are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u32);

impl Flags {
    pub const NONE: Flags = Flags(0);
    pub const LONG: u32 = 0x01;
    pub const NOT_LONG: u32 = 0x02;
    pub const DEALLOC: u32 = 0x04;
    pub const NOT_DEALLOC: u32 = 0x08;
    pub const MAYBE_DEALLOC: u32 = 0x10;
    pub const SERVER_COPY: u32 = 0x20;
    pub const COUNT_IN_OUT: u32 = 0x40;

    pub fn has(self, bits: u32) -> bool {
        self.0 & bits != 0
    }
}

/// A MIG type (GNU MIG's `ipc_type_t`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Type {
    /// The declared name (`None` for anonymous types such as array elements).
    pub name: Option<String>,
    /// `msgt_name` when sending (may be [`POLY`]).
    pub in_name: u32,
    /// `msgt_name` when receiving (may be [`POLY`]).
    pub out_name: u32,
    /// The symbolic spelling of `in_name`, if it was written symbolically.
    pub in_name_str: Option<String>,
    pub out_name_str: Option<String>,
    /// Bits per element (`msgt_size`).
    pub size: u32,
    /// Element count (`msgt_number`): the maximum for variable arrays, 0 for `^` types.
    pub number: u32,
    pub inline: bool,
    pub long_form: bool,
    pub dealloc: Dealloc,
    pub flags: Flags,
    /// Passed by value and assigned with `=` in C.
    pub is_struct: bool,
    /// A NUL-terminated string (`c_string`).
    pub is_string: bool,
    pub var_array: bool,
    /// `array[]`/`array[*]`: inline up to 2048 bytes, else out-of-line, chosen at run time.
    pub indefinite: bool,
    /// A port type of a userland subsystem: inline ports take `port_size` bytes
    /// (`mach_port_name_inlined_t` on x86_64).
    pub userland_port: bool,
    /// A port type on the kernel side of a KernelUser/KernelServer subsystem.
    pub kernel_port: bool,
    /// The type this one was built from (element of arrays; the original of `type b = a`).
    pub element: Option<TypeId>,
    pub user_type: Option<String>,
    pub server_type: Option<String>,
    pub trans_type: Option<String>,
    pub in_trans: Option<String>,
    pub in_trans_payload: Option<String>,
    pub out_trans: Option<String>,
    pub destructor: Option<String>,
    /// Alignment in bytes (`MIN(complex_alignof, size/8)` for basic types).
    pub alignment: u32,
    /// Bytes of the data (inline) or of the pointer (out-of-line).
    pub type_size: u32,
    /// Padding after inline data up to the body alignment.
    pub pad_size: u32,
    /// `type_size + pad_size`, or 0 for variable arrays.
    pub min_type_size: u32,
    /// Where the type was declared (its spec).
    pub loc: Option<Loc>,
    /// This type stands for an erroneous declaration; no further diagnostics about it.
    pub poisoned: bool,
}

impl Type {
    fn blank() -> Type {
        Type {
            name: None,
            in_name: 0,
            out_name: 0,
            in_name_str: None,
            out_name_str: None,
            size: 0,
            number: 1,
            inline: true,
            long_form: false,
            dealloc: Dealloc::No,
            flags: Flags::NONE,
            is_struct: true,
            is_string: false,
            var_array: false,
            indefinite: false,
            userland_port: false,
            kernel_port: false,
            element: None,
            user_type: None,
            server_type: None,
            trans_type: None,
            in_trans: None,
            in_trans_payload: None,
            out_trans: None,
            destructor: None,
            alignment: 0,
            type_size: 0,
            pad_size: 0,
            min_type_size: 0,
            loc: None,
            poisoned: false,
        }
    }

    /// Whether this is a port type (`MACH_MSG_TYPE_PORT_ANY` on either side, or poly on both).
    pub fn is_port(&self) -> bool {
        (self.in_name == POLY && self.out_name == POLY)
            || type_name::is_port_any(self.in_name)
            || type_name::is_port_any(self.out_name)
    }

    /// The name for messages: the declared name or `(anonymous)`.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("(anonymous)")
    }
}

/// Built-in types every subsystem has, created by `subsystem` (GNU MIG's `init_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtins {
    /// `unsigned char` (BYTE, 8): the element of byte structs.
    pub byte: TypeId,
    /// `kern_return_t` (INTEGER_32).
    pub ret_code: TypeId,
    /// `mach_port_t` COPY_SEND|PORT_SEND: the default request port type.
    pub request_port: TypeId,
    /// `mach_port_t` with names 0: the dummy reply port of simpleroutines.
    pub zero_reply_port: TypeId,
    /// `mach_port_t` MAKE_SEND_ONCE|PORT_SEND_ONCE: the default reply port.
    pub real_reply_port: TypeId,
    /// `mach_msg_timeout_t`.
    pub wait_time: TypeId,
    /// `mach_msg_option_t`.
    pub msg_option: TypeId,
    pub short: TypeId,
    pub int: TypeId,
    pub int64: TypeId,
}

/// The type arena plus the symbol table of named types.
#[derive(Clone, Debug)]
pub struct Types {
    arena: Vec<Type>,
    /// Named types in declaration order; a redefinition adds a later entry that wins.
    names: Vec<(String, TypeId)>,
    /// The winning entry of `names` for each name.
    by_name: FxMap<String, TypeId>,
    pub target: Target,
    pub kernel_user: bool,
    pub kernel_server: bool,
    pub builtins: Option<Builtins>,
}

/// Which descriptor form a type calls for (GNU MIG's `itUseLong`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[allow(clippy::enum_variant_names)]
enum UseLong {
    NotLong,
    CanBeLong,
    ShouldBeLong,
    MustBeLong,
    TooLong,
}

impl Types {
    pub fn new(target: Target) -> Types {
        Types::with_capacity(target, 0)
    }

    /// [`Types::new`] with room for `n` types.
    pub fn with_capacity(target: Target, n: usize) -> Types {
        Types {
            arena: Vec::with_capacity(n),
            names: Vec::with_capacity(n / 2),
            by_name: FxMap::default(),
            target,
            kernel_user: false,
            kernel_server: false,
            builtins: None,
        }
    }

    pub fn get(&self, id: TypeId) -> &Type {
        &self.arena[id.0 as usize]
    }
    pub fn get_mut(&mut self, id: TypeId) -> &mut Type {
        &mut self.arena[id.0 as usize]
    }
    pub fn add(&mut self, t: Type) -> TypeId {
        self.arena.push(t);
        TypeId(self.arena.len() as u32 - 1)
    }
    /// All types.
    pub fn all(&self) -> &[Type] {
        &self.arena
    }
    /// Named types, latest definition last.
    pub fn named(&self) -> &[(String, TypeId)] {
        &self.names
    }

    fn complex_align(&self) -> u32 {
        self.target.align()
    }
    fn pointer_size(&self) -> u32 {
        self.target.pointer_size()
    }
    /// `port_size_in_bits`.
    pub fn port_size_bits(&self) -> u32 {
        self.target.word_size() * 8
    }

    /// Looks up a named type without diagnostics.
    pub fn find(&self, name: &str) -> Option<TypeId> {
        self.by_name.get(name).copied()
    }

    /// Adds `name` for `id` to the symbol table (after any earlier entry, which it hides).
    fn add_name(&mut self, name: &str, id: TypeId) {
        self.names.push((name.to_string(), id));
        self.by_name.insert(name.to_string(), id);
    }

    /// `itLookUp`: fails with GNU MIG's error before `subsystem` (the error is already
    /// reported when this returns `Err`).
    #[allow(clippy::result_unit_err)]
    pub fn lookup(
        &self,
        name: &str,
        loc: Loc,
        diags: &mut Diagnostics,
    ) -> Result<Option<TypeId>, ()> {
        if self.builtins.is_none() {
            diags.push(
                Diagnostic::error(format!(
                    "Basic types not initialized when looking up type {name}. Did you forget to define the subsystem?"
                ))
                .at(loc)
                .label("used before the `subsystem` statement")
                .note("GNU MIG creates the built-in types when it reads `subsystem`, so it must come first"),
            );
            return Err(());
        }
        Ok(self.find(name))
    }

    /// `itInsert`.
    pub fn insert(&mut self, name: &str, id: TypeId) {
        self.get_mut(id).name = Some(name.to_string());
        self.add_name(name, id);
    }

    /// `itCalculateSizeInfo`.
    fn calc_size(&mut self, id: TypeId, diags: &mut Diagnostics) {
        let a = self.complex_align();
        let ptr = self.pointer_size();
        let t = self.get_mut(id);
        if t.inline {
            let bytes = (t.number as u64 * t.size as u64).div_ceil(8) as u32;
            let padding = (a - bytes % a) % a;
            t.type_size = bytes;
            t.pad_size = padding;
            t.min_type_size = if t.var_array {
                0
            } else {
                bytes.wrapping_add(padding)
            };
        } else {
            t.type_size = ptr;
            t.pad_size = 0;
            t.min_type_size = ptr;
        }
        let loc = t.loc;
        if (t.number as u64 * t.size as u64) % 8 != 0 && !t.poisoned {
            diags.push(
                Diagnostic::warning("size of C types must be multiples of 8 bits").at_opt(loc),
            );
        }
        if t.type_size == 0 && !t.var_array && !t.poisoned {
            diags.push(
                Diagnostic::warning(format!(
                    "sizeof({}) == 0",
                    t.name.as_deref().unwrap_or("(null)")
                ))
                .at_opt(loc),
            );
        }
    }

    /// `itCalculateNameInfo`: default C type names and the port flags.
    pub fn calc_name_info(&mut self, id: TypeId) {
        let (ku, ks) = (self.kernel_user, self.kernel_server);
        let t = self.get_mut(id);
        if t.in_name_str.is_none() {
            t.in_name_str = Some(t.in_name.to_string());
        }
        if t.out_name_str.is_none() {
            t.out_name_str = Some(t.out_name.to_string());
        }
        if t.user_type.is_none() {
            t.user_type = t.name.clone();
        }
        if t.server_type.is_none() {
            t.server_type = t.name.clone();
        }
        let is_port = t.is_port();
        let server_port = is_port && t.server_type.as_deref() == Some("mach_port_t");
        let user_port = is_port && t.user_type.as_deref() == Some("mach_port_t");
        if ks && server_port {
            t.server_type = Some("ipc_port_t".into());
            t.kernel_port = true;
        } else if ku && user_port {
            t.user_type = Some("ipc_port_t".into());
            t.kernel_port = true;
        } else {
            t.kernel_port = false;
        }
        t.userland_port = is_port && !ku && !ks;
        if t.trans_type.is_none() {
            t.trans_type = t.server_type.clone();
        }
    }

    /// `itCheckFlags`: resolves contradictory flags with warnings.
    pub fn check_flags(
        flags: Flags,
        name: &str,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> Flags {
        let mut f = flags.0;
        if f & (Flags::LONG | Flags::NOT_LONG) == (Flags::LONG | Flags::NOT_LONG) {
            diags.push(
                Diagnostic::warning(format!("{name}: IsLong and IsNotLong cancel out")).at_opt(loc),
            );
            f &= !(Flags::LONG | Flags::NOT_LONG);
        }
        if f & Flags::MAYBE_DEALLOC != 0 && f & (Flags::DEALLOC | Flags::NOT_DEALLOC) != 0 {
            diags.push(
                Diagnostic::warning(format!(
                    "{name}: Dealloc and NotDealloc ignored with Dealloc[]"
                ))
                .at_opt(loc),
            );
            f &= !(Flags::DEALLOC | Flags::NOT_DEALLOC);
        }
        if f & (Flags::DEALLOC | Flags::NOT_DEALLOC) == (Flags::DEALLOC | Flags::NOT_DEALLOC) {
            diags.push(
                Diagnostic::warning(format!("{name}: Dealloc and NotDealloc cancel out"))
                    .at_opt(loc),
            );
            f &= !(Flags::DEALLOC | Flags::NOT_DEALLOC);
        }
        Flags(f)
    }

    /// `itCheckDeallocate`.
    pub fn check_dealloc(
        t: &Type,
        flags: Flags,
        dfault: Dealloc,
        name: &str,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> Dealloc {
        let mut d = dfault;
        if flags.has(Flags::MAYBE_DEALLOC) {
            d = Dealloc::Maybe;
        }
        if flags.has(Flags::DEALLOC) {
            d = Dealloc::Yes;
        }
        if flags.has(Flags::NOT_DEALLOC) {
            d = Dealloc::No;
        }
        if d == dfault {
            for (bit, word) in [
                (Flags::MAYBE_DEALLOC, "Dealloc[]"),
                (Flags::DEALLOC, "Dealloc"),
                (Flags::NOT_DEALLOC, "NotDealloc"),
            ] {
                if flags.has(bit) {
                    diags.push(
                        Diagnostic::warning(format!("{name}: {word} is redundant")).at_opt(loc),
                    );
                }
            }
        }
        if flags.has(Flags::MAYBE_DEALLOC | Flags::DEALLOC | Flags::NOT_DEALLOC)
            && d != Dealloc::No
            && t.inline
            && !t.indefinite
        {
            diags.push(
                Diagnostic::warning(format!("{name}: Dealloc will cause an IPC error"))
                    .at_opt(loc)
                    .note("the kernel rejects deallocation of inline data with MACH_SEND_INVALID_TYPE"),
            );
        }
        d
    }

    fn use_long(t: &Type, loc: Option<Loc>, diags: Option<&mut Diagnostics>) -> UseLong {
        let mut u = UseLong::NotLong;
        if t.in_name == POLY || t.out_name == POLY || t.var_array {
            u = UseLong::CanBeLong;
        }
        if (t.var_array && !t.inline) || t.indefinite {
            u = UseLong::ShouldBeLong;
        }
        if (t.in_name != POLY && t.in_name >= 256) || (t.out_name != POLY && t.out_name >= 256) {
            if let Some(d) = diags {
                d.push(Diagnostic::error("Cannot have msgt_name greater than 255").at_opt(loc));
            }
            u = UseLong::TooLong;
        }
        if t.size >= 1 << 8 || t.number >= 1 << 12 {
            u = UseLong::MustBeLong;
        }
        if t.size >= 1 << 16 {
            u = UseLong::TooLong;
        }
        u
    }

    /// `itCheckIsLong`.
    pub fn check_is_long(
        t: &Type,
        flags: Flags,
        dfault: bool,
        name: &str,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> bool {
        let mut long = dfault;
        if flags.has(Flags::LONG) {
            long = true;
        }
        if flags.has(Flags::NOT_LONG) {
            long = false;
        }
        if long == dfault {
            if flags.has(Flags::LONG) {
                diags.push(Diagnostic::warning(format!("{name}: IsLong is redundant")).at_opt(loc));
            }
            if flags.has(Flags::NOT_LONG) {
                diags.push(
                    Diagnostic::warning(format!("{name}: IsNotLong is redundant")).at_opt(loc),
                );
            }
        }
        if flags.has(Flags::LONG | Flags::NOT_LONG) {
            let u = Self::use_long(t, loc, None);
            if long && u <= UseLong::NotLong {
                diags.push(Diagnostic::warning(format!("{name}: doesn't need IsLong")).at_opt(loc));
            }
            if !long && u >= UseLong::MustBeLong {
                diags.push(
                    Diagnostic::warning(format!("{name}: too big for IsNotLong")).at_opt(loc),
                );
            }
        }
        long
    }

    /// `itCheckDecl`: names the type and settles its C names, deallocation and form.
    pub fn check_decl(&mut self, name: &str, id: TypeId, diags: &mut Diagnostics) {
        self.get_mut(id).name = Some(name.to_string());
        self.calc_name_info(id);
        let t = self.get(id);
        let loc = t.loc;
        if t.poisoned {
            return;
        }
        if t.var_array {
            if t.in_trans.is_some() || t.in_trans_payload.is_some() || t.out_trans.is_some() {
                diags.push(
                    Diagnostic::error(format!("{name}: can't translate variable-sized arrays"))
                        .at_opt(loc),
                );
            }
            if t.destructor.is_some() {
                diags.push(
                    Diagnostic::error(format!("{name}: can't destroy variable-sized array"))
                        .at_opt(loc),
                );
            }
        }
        if t.var_array && t.inline {
            let named = t
                .element
                .map(|e| {
                    let e = self.get(e);
                    e.user_type.is_some() && e.server_type.is_some()
                })
                .unwrap_or(false);
            if !named {
                diags.push(
                    Diagnostic::error(format!(
                        "{name}: variable-sized in-line arrays need a named base type"
                    ))
                    .at_opt(loc)
                    .note("declare the element type with `type` first and use its name"),
                );
            }
        }
        let flags = Self::check_flags(t.flags, name, loc, diags);
        let dealloc = Self::check_dealloc(t, flags, Dealloc::No, name, loc, diags);
        // `use_long` and `check_is_long` read neither the flags nor the deallocation, so the
        // type as it is stands for the type with `flags` and `dealloc` applied.
        let u = Self::use_long(t, loc, Some(diags));
        if u == UseLong::TooLong {
            diags.push(
                Diagnostic::error(format!("{name}: too big for mach_msg_type_long_t")).at_opt(loc),
            );
        }
        let long = Self::check_is_long(t, flags, u >= UseLong::ShouldBeLong, name, loc, diags);
        let t = self.get_mut(id);
        t.flags = flags;
        t.dealloc = dealloc;
        t.long_form = long;
    }

    /// `itShortDecl`: `type x = NAME;` (default size required).
    #[allow(clippy::too_many_arguments)]
    pub fn short_decl(
        &mut self,
        in_name: u32,
        in_str: Option<&str>,
        out_name: u32,
        out_str: Option<&str>,
        default_size: u32,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> TypeId {
        let mut poisoned = false;
        if default_size == 0 {
            diags.push(
                Diagnostic::error("must use full IPC type decl")
                    .at_opt(loc)
                    .label("this IPC type has no default size")
                    .note("write `(NAME, size-in-bits)` instead"),
            );
            poisoned = true;
        }
        // With no default size, the error above says it all: `long_decl` would add "size
        // of 0 bits is smaller than a byte" for the same token.
        let mut sink = Diagnostics::new();
        let d = if poisoned { &mut sink } else { diags };
        let id = self.long_decl(
            in_name,
            in_str,
            out_name,
            out_str,
            default_size,
            default_size,
            Flags::NONE,
            loc,
            d,
        );
        if poisoned {
            self.get_mut(id).poisoned = true;
        }
        id
    }

    /// `itLongDecl`: `(NAME, size, flags…)`.
    #[allow(clippy::too_many_arguments)]
    pub fn long_decl(
        &mut self,
        in_name: u32,
        in_str: Option<&str>,
        out_name: u32,
        out_str: Option<&str>,
        default_size: u32,
        size: u32,
        flags: Flags,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> TypeId {
        if default_size != 0 && default_size != size {
            diags.push(
                Diagnostic::warning(format!(
                    "IPC type decl has strange size ({size} instead of {default_size})"
                ))
                .at_opt(loc),
            );
        }
        let mut t = Type::blank();
        t.in_name = in_name;
        t.in_name_str = in_str.map(str::to_string);
        t.out_name = out_name;
        t.out_name_str = out_str.map(str::to_string);
        t.size = size;
        t.alignment = self.complex_align().min(size / 8);
        if in_name == type_name::STRING_C {
            t.is_struct = false;
            t.is_string = true;
        }
        t.flags = flags;
        t.loc = loc;
        if t.alignment == 0 {
            // GNU MIG asserts here (and aborts); report it instead.
            diags.push(
                Diagnostic::error(format!(
                    "IPC type size of {size} bits is smaller than a byte"
                ))
                .at_opt(loc)
                .note("GNU MIG aborts on this declaration"),
            );
            t.poisoned = true;
            t.alignment = 1;
        }
        let id = self.add(t);
        self.calc_size(id, diags);
        id
    }

    /// `itCopyType`: a fresh anonymous copy whose element is the original.
    pub fn copy_type(&mut self, old: TypeId) -> TypeId {
        let mut t = self.get(old).clone();
        t.name = None;
        t.element = Some(old);
        self.add(t)
    }

    /// `itCopyType` followed by `itResetType`: a fresh anonymous copy without translation
    /// and C type information (without copying those strings first).
    fn copy_type_reset(&mut self, old: TypeId) -> TypeId {
        let o = self.get(old);
        let t = Type {
            name: None,
            in_name_str: o.in_name_str.clone(),
            out_name_str: o.out_name_str.clone(),
            element: Some(old),
            user_type: None,
            server_type: None,
            trans_type: None,
            in_trans: None,
            in_trans_payload: None,
            out_trans: None,
            destructor: None,
            loc: o.loc,
            ..*o
        };
        self.add(t)
    }

    /// `itResetType`: drop translation and C type information.
    pub fn reset_type(&mut self, id: TypeId) -> TypeId {
        let t = self.get_mut(id);
        t.in_trans = None;
        t.in_trans_payload = None;
        t.out_trans = None;
        t.destructor = None;
        t.user_type = None;
        t.server_type = None;
        t.trans_type = None;
        id
    }

    /// A poisoned placeholder for an erroneous type.
    pub fn error_type(&mut self, loc: Option<Loc>) -> TypeId {
        let mut t = Type::blank();
        t.poisoned = true;
        t.alignment = 1;
        t.loc = loc;
        self.add(t)
    }

    /// `itPrevDecl`: a copy of a named type.
    pub fn prev_decl(&mut self, name: &str, loc: Loc, diags: &mut Diagnostics) -> TypeId {
        self.prev_decl_impl(name, loc, false, diags)
    }

    /// [`Types::prev_decl`] followed by [`Types::reset_type`].
    pub fn prev_decl_reset(&mut self, name: &str, loc: Loc, diags: &mut Diagnostics) -> TypeId {
        self.prev_decl_impl(name, loc, true, diags)
    }

    fn prev_decl_impl(
        &mut self,
        name: &str,
        loc: Loc,
        reset: bool,
        diags: &mut Diagnostics,
    ) -> TypeId {
        match self.lookup(name, loc, diags) {
            Ok(Some(old)) => {
                let id = if reset {
                    self.copy_type_reset(old)
                } else {
                    self.copy_type(old)
                };
                self.get_mut(id).loc = Some(loc);
                id
            }
            Ok(None) => {
                diags.push(
                    Diagnostic::error(format!("type '{name}' not defined"))
                        .at(loc)
                        .label("no type of this name is declared before this point"),
                );
                self.error_type(Some(loc))
            }
            Err(()) => self.error_type(Some(loc)),
        }
    }

    fn too_complicated(&self, old: TypeId, loc: Option<Loc>, diags: &mut Diagnostics) -> bool {
        let t = self.get(old);
        if t.poisoned {
            return true;
        }
        if !t.inline || t.var_array {
            diags.push(
                Diagnostic::error("IPC type decl is too complicated")
                    .at_opt(loc)
                    .note("the element of an array must be a fixed-size inline type"),
            );
            return true;
        }
        false
    }

    /// `itVarArrayDecl`: `array[] of T` (number 0) or `array[*:n] of T`.
    pub fn var_array_decl(
        &mut self,
        number: u32,
        old: TypeId,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> TypeId {
        let bad = self.too_complicated(old, loc, diags);
        let id = self.copy_type_reset(old);
        let t = self.get_mut(id);
        t.loc = loc;
        if number != 0 {
            t.number = t.number.wrapping_mul(number);
        } else {
            let bytes = (t.number as u64 * t.size as u64).div_ceil(8) as u32;
            match 2048u32.checked_div(bytes) {
                Some(per) => t.number = per.wrapping_mul(t.number),
                None => {
                    if !bad && !t.poisoned {
                        diags.push(
                            Diagnostic::error("array element has size 0")
                                .at_opt(loc)
                                .note("GNU MIG divides by the element size here and crashes"),
                        );
                    }
                    t.poisoned = true;
                }
            }
            t.indefinite = true;
        }
        t.var_array = true;
        t.is_struct = false;
        t.is_string = false;
        if bad {
            t.poisoned = true;
        }
        self.calc_size(id, diags);
        id
    }

    /// `itArrayDecl`: `array[n] of T`.
    pub fn array_decl(
        &mut self,
        number: u32,
        old: TypeId,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> TypeId {
        let bad = self.too_complicated(old, loc, diags);
        let align = self.get(old).alignment;
        let id = self.copy_type_reset(old);
        let t = self.get_mut(id);
        t.loc = loc;
        t.number = t.number.wrapping_mul(number);
        t.is_struct = false;
        t.is_string = false;
        t.alignment = align;
        if bad {
            t.poisoned = true;
        }
        self.calc_size(id, diags);
        id
    }

    /// `itPtrDecl`: `^ T` (modifies `id` in place, as GNU MIG does).
    pub fn ptr_decl(&mut self, id: TypeId, loc: Option<Loc>, diags: &mut Diagnostics) -> TypeId {
        let ptr = self.pointer_size();
        let t = self.get_mut(id);
        if !t.poisoned && (!t.inline || (t.var_array && !t.indefinite && t.number > 0)) {
            diags.push(
                Diagnostic::error("IPC type decl is too complicated")
                    .at_opt(loc)
                    .note("`^` applies to fixed types and to `array[]`, not to `array[*:n]` or another `^`"),
            );
            t.poisoned = true;
        }
        t.number = 0;
        t.indefinite = false;
        t.inline = false;
        t.is_struct = true;
        t.is_string = false;
        t.alignment = ptr;
        t.loc = loc;
        self.calc_size(id, diags);
        id
    }

    /// `itStructArrayDecl`: `struct[n] of T`.
    pub fn struct_array_decl(
        &mut self,
        number: u32,
        old: TypeId,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> TypeId {
        let bad = self.too_complicated(old, loc, diags);
        let align = self.get(old).alignment;
        let id = self.copy_type_reset(old);
        let t = self.get_mut(id);
        t.loc = loc;
        t.number = t.number.wrapping_mul(number);
        t.is_struct = true;
        t.is_string = false;
        t.alignment = align;
        if bad {
            t.poisoned = true;
        }
        self.calc_size(id, diags);
        id
    }

    /// `itStructDecl`: `struct { … }` of a computed size and alignment, as an array of the
    /// integer type matching the alignment.
    pub fn struct_decl(
        &mut self,
        size_bytes: u32,
        align: u32,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> TypeId {
        let Some(b) = self.builtins else {
            return self.error_type(loc);
        };
        let align = align.max(1);
        let total = size_bytes.div_ceil(align) * align;
        let (elem, n) = match align {
            2 => (b.short, total / 2),
            4 => (b.int, total / 4),
            8 => (b.int64, total / 8),
            _ => (b.byte, total),
        };
        let id = self.copy_type_reset(elem);
        let t = self.get_mut(id);
        t.number = n;
        t.is_struct = true;
        t.is_string = false;
        t.alignment = align;
        t.loc = loc;
        self.calc_size(id, diags);
        id
    }

    /// `itCStringDecl`: `c_string[n]` = `array[n] of (STRING_C, 8)`; varying for `[*:n]`.
    pub fn cstring_decl(
        &mut self,
        count: u32,
        varying: bool,
        loc: Option<Loc>,
        diags: &mut Diagnostics,
    ) -> TypeId {
        let elem = self.short_decl(
            type_name::STRING_C,
            Some("MACH_MSG_TYPE_STRING_C"),
            type_name::STRING_C,
            Some("MACH_MSG_TYPE_STRING_C"),
            8,
            loc,
            diags,
        );
        self.check_decl("char", elem, diags);
        let align = self.get(elem).alignment;
        let id = self.copy_type_reset(elem);
        let t = self.get_mut(id);
        t.number = count;
        t.var_array = varying;
        t.is_struct = false;
        t.is_string = true;
        t.alignment = align;
        t.loc = loc;
        self.calc_size(id, diags);
        id
    }

    /// An `int`-shaped internal type (count, poly, dealloc, natural).
    fn natural(&mut self, name: &str, in_name: u32, sym: &str) -> TypeId {
        let mut t = Type::blank();
        t.name = Some(name.to_string());
        t.in_name = in_name;
        t.out_name = in_name;
        t.in_name_str = Some(sym.to_string());
        t.out_name_str = Some(sym.to_string());
        t.size = 32;
        t.alignment = 4;
        let id = self.add(t);
        let mut sink = Diagnostics::new();
        self.calc_size(id, &mut sink);
        self.calc_name_info(id);
        id
    }

    /// `itMakeCountType`: `mach_msg_type_number_t`.
    pub fn make_count_type(&mut self) -> TypeId {
        self.natural(
            "mach_msg_type_number_t",
            type_name::INTEGER_32,
            "MACH_MSG_TYPE_INTEGER_32",
        )
    }
    /// `itMakePolyType`: `mach_msg_type_name_t`.
    pub fn make_poly_type(&mut self) -> TypeId {
        self.natural(
            "mach_msg_type_name_t",
            type_name::INTEGER_32,
            "MACH_MSG_TYPE_INTEGER_32",
        )
    }
    /// `itMakeDeallocType`: `boolean_t`.
    pub fn make_dealloc_type(&mut self) -> TypeId {
        self.natural("boolean_t", type_name::BOOLEAN, "MACH_MSG_TYPE_BOOLEAN")
    }

    fn port_like(&mut self, in_name: u32, in_str: &str, out_name: u32, out_str: &str) -> TypeId {
        let bits = self.port_size_bits();
        let mut t = Type::blank();
        t.name = Some("mach_port_t".into());
        t.in_name = in_name;
        t.in_name_str = Some(in_str.into());
        t.out_name = out_name;
        t.out_name_str = Some(out_str.into());
        t.size = bits;
        t.alignment = bits / 8;
        let id = self.add(t);
        let mut sink = Diagnostics::new();
        self.calc_size(id, &mut sink);
        self.calc_name_info(id);
        id
    }

    fn c_int(&mut self, name: &str, bytes: u32) -> TypeId {
        let (n, s) = match bytes {
            1 => (type_name::CHAR, "MACH_MSG_TYPE_CHAR"),
            2 => (type_name::INTEGER_16, "MACH_MSG_TYPE_INTEGER_16"),
            4 => (type_name::INTEGER_32, "MACH_MSG_TYPE_INTEGER_32"),
            _ => (type_name::INTEGER_64, "MACH_MSG_TYPE_INTEGER_64"),
        };
        let mut sink = Diagnostics::new();
        let id = self.short_decl(n, Some(s), n, Some(s), bytes * 8, None, &mut sink);
        self.get_mut(id).name = Some(name.to_string());
        self.calc_name_info(id);
        id
    }

    /// `init_type`: the built-in types, created when `subsystem` is read.
    pub fn init_builtins(&mut self) {
        let mut t = Type::blank();
        t.name = Some("unsigned char".into());
        t.in_name = type_name::BYTE;
        t.out_name = type_name::BYTE;
        t.in_name_str = Some("MACH_MSG_TYPE_BYTE".into());
        t.out_name_str = Some("MACH_MSG_TYPE_BYTE".into());
        t.size = 8;
        t.alignment = 1;
        let byte = self.add(t);
        let mut sink = Diagnostics::new();
        self.calc_size(byte, &mut sink);
        self.calc_name_info(byte);

        let ret_code = self.natural(
            "kern_return_t",
            type_name::INTEGER_32,
            "MACH_MSG_TYPE_INTEGER_32",
        );
        let request_port = self.port_like(
            type_name::COPY_SEND,
            "MACH_MSG_TYPE_COPY_SEND",
            type_name::PORT_SEND,
            "MACH_MSG_TYPE_PORT_SEND",
        );
        let zero_reply_port = self.port_like(0, "0", 0, "0");
        let real_reply_port = self.port_like(
            type_name::MAKE_SEND_ONCE,
            "MACH_MSG_TYPE_MAKE_SEND_ONCE",
            type_name::PORT_SEND_ONCE,
            "MACH_MSG_TYPE_PORT_SEND_ONCE",
        );
        let wait_time = self.natural(
            "mach_msg_timeout_t",
            type_name::INTEGER_32,
            "MACH_MSG_TYPE_INTEGER_32",
        );
        let msg_option = self.natural(
            "mach_msg_option_t",
            type_name::INTEGER_32,
            "MACH_MSG_TYPE_INTEGER_32",
        );

        let word = self.target.word_size();
        let char_t = self.c_int("char", 1);
        self.add_name("char", char_t);
        let short = self.c_int("short", 2);
        self.add_name("short", short);
        let int = self.c_int("int", 4);
        self.add_name("int", int);
        let int64 = self.c_int("int64", 8);
        self.add_name("int64", int64);
        let uintptr = self.c_int("uintptr_t", word);
        self.add_name("uintptr_t", uintptr);
        let intptr = self.c_int("intptr_t", word);
        self.add_name("intptr_t", intptr);

        self.builtins = Some(Builtins {
            byte,
            ret_code,
            request_port,
            zero_reply_port,
            real_reply_port,
            wait_time,
            msg_option,
            short,
            int,
            int64,
        });
    }
}
