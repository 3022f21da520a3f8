//! Preprocessing tokens as the engine passes them around, and the string interner.

use crate::source::{CtxId, FileId, Loc};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// A small, fast, non-cryptographic hasher (the "Fx" multiply-rotate scheme) for the
/// preprocessor's internal tables. Inputs are not adversarial in a way that matters: the
/// work per run is bounded anyway.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub(super) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// An interned string (token spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Sym(pub u32);

/// Interns token spellings so that comparing and hashing them is cheap.
#[derive(Default)]
pub(super) struct Interner {
    map: FxMap<Rc<str>, Sym>,
    strs: Vec<Rc<str>>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.map.get(s) {
            return sym;
        }
        let rc: Rc<str> = Rc::from(s);
        let sym = Sym(self.strs.len() as u32);
        self.strs.push(rc.clone());
        self.map.insert(rc, sym);
        sym
    }

    pub fn get(&self, sym: Sym) -> &str {
        self.strs.get(sym.0 as usize).map(|s| &**s).unwrap_or("")
    }
}

/// The kind of a preprocessing token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Ident,
    Number,
    /// A string literal (with its prefix and quotes).
    Str,
    /// A character constant (with its prefix and quotes).
    Char,
    Punct,
    /// Any other character, or an unterminated literal (the rest of its line).
    Other,
    /// End of a directive line, of a macro argument or of the input.
    Eof,
    /// The empty result of an empty macro argument next to `##`.
    Placemarker,
    /// A use of parameter N in a function-like macro's body.
    Param(u16),
}

/// Preceded by white space (or the start of a line).
pub(super) const WS: u8 = 1;
/// Never expand this identifier again ("painted blue").
pub(super) const NO_EXPAND: u8 = 2;
/// Followed by `##` in a macro body (or an argument's last token in that place).
pub(super) const PASTE_LEFT: u8 = 4;
/// A parameter preceded by `#` in a macro body.
pub(super) const STRINGIFY: u8 = 8;
/// The spelling differs from the source text at `loc` (pasted, stringified, spliced or
/// built-in): never merged with neighbouring output.
pub(super) const SYNTH: u8 = 16;
/// The end-of-argument marker of a macro argument being pre-expanded.
pub(super) const BARRIER: u8 = 32;

/// Where a token goes in the output: the source position of the outermost macro
/// invocation it came from (or of the token itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Anchor {
    pub file: FileId,
    pub ctx: CtxId,
    /// Byte offset in the file.
    pub off: u32,
    /// The presumed (after `#line`) one-based line.
    pub line: u32,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub kind: Kind,
    pub flags: u8,
    pub sym: Sym,
    pub loc: Loc,
    pub anchor: Anchor,
}

impl Token {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}
