//! Preprocessing tokens as the engine passes them around, and the string interner.

use crate::source::{CtxId, FileId, Loc};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A small, fast, non-cryptographic hasher (the "Fx" multiply-rotate scheme) for the
/// front end's internal tables (the preprocessor's, the checker's type names). Inputs are not adversarial in a way that matters: the
/// work per run is bounded anyway.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

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
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A `HashSet` with [`FxHasher`].
pub(crate) type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// An interned string (token spelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Sym(pub u32);

/// Interns token spellings so that comparing and hashing them is cheap.
///
/// All spellings live in one string (no allocation per spelling); an open-addressing table
/// of symbol numbers, probed linearly, finds them by their Fx hash.
pub(super) struct Interner {
    /// Every interned spelling, one after the other.
    text: String,
    /// `(start, len)` of each symbol's spelling in `text`.
    spans: Vec<(u32, u32)>,
    /// Symbol number + 1, or 0 for an empty slot. Its length is a power of two, at least
    /// twice the number of symbols.
    table: Vec<u32>,
    /// Symbol number + 1 (or 0) of each one-byte ASCII spelling: punctuators, short names,
    /// the most frequent tokens, found without hashing.
    ascii: [u32; 128],
}

impl Default for Interner {
    fn default() -> Interner {
        Interner::with_capacity(16)
    }
}

impl Interner {
    /// An interner with room for about `n` spellings before it grows.
    pub fn with_capacity(n: usize) -> Interner {
        Interner {
            text: String::with_capacity(n * 8),
            spans: Vec::with_capacity(n),
            table: vec![0; (n * 2).next_power_of_two()],
            ascii: [0; 128],
        }
    }

    fn hash(s: &str) -> u64 {
        let mut h = FxHasher::default();
        h.write(s.as_bytes());
        h.finish()
    }

    pub fn intern(&mut self, s: &str) -> Sym {
        let one_byte = match s.as_bytes() {
            &[b] if b.is_ascii() => Some(b as usize),
            _ => None,
        };
        if let Some(b) = one_byte {
            if self.ascii[b] != 0 {
                return Sym(self.ascii[b] - 1);
            }
        }
        let sym = self.intern_hashed(s);
        if let Some(b) = one_byte {
            self.ascii[b] = sym.0 + 1;
        }
        sym
    }

    fn intern_hashed(&mut self, s: &str) -> Sym {
        let mask = self.table.len() - 1;
        let mut slot = Self::hash(s) as usize & mask;
        loop {
            match self.table[slot] {
                0 => break,
                n => {
                    if self.get(Sym(n - 1)) == s {
                        return Sym(n - 1);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        let sym = Sym(self.spans.len() as u32);
        self.spans.push((self.text.len() as u32, s.len() as u32));
        self.text.push_str(s);
        self.table[slot] = sym.0 + 1;
        if self.spans.len() * 2 > self.table.len() {
            self.grow();
        }
        sym
    }

    /// Doubles the table and re-inserts every symbol.
    fn grow(&mut self) {
        let mut table = vec![0u32; self.table.len() * 2];
        let mask = table.len() - 1;
        for i in 0..self.spans.len() {
            let mut slot = Self::hash(self.get(Sym(i as u32))) as usize & mask;
            while table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            table[slot] = i as u32 + 1;
        }
        self.table = table;
    }

    pub fn get(&self, sym: Sym) -> &str {
        self.spans
            .get(sym.0 as usize)
            .and_then(|&(start, len)| {
                let start = start as usize;
                self.text.get(start..start + len as usize)
            })
            .unwrap_or("")
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
