//! Source files, locations, include chains and macro expansions.
//!
//! Every token the parser sees comes from the preprocessor's output text. A [`SourceMap`]
//! records where each piece of that text came from: a byte range of a [`SourceFile`], the
//! [`IncludeCtx`] it was read in (so diagnostics can show the include chain), and the
//! [`Expansion`] it was produced by, if a macro produced it.

use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Index of an inclusion (one `#include` of one file, or the main file) in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxId(pub u32);

/// Index of a macro expansion in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpansionId(pub u32);

/// A loaded source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in diagnostics (the path as found, e.g. `mach/std_types.defs` joined to
    /// its include directory).
    pub name: String,
    /// The path on disk, if the file came from disk.
    pub path: Option<PathBuf>,
    /// The text. Invalid UTF-8 was replaced by U+FFFD; the preprocessor reports it. Shared
    /// (not copied) with the preprocessor's lexer.
    pub text: Rc<String>,
    line_starts: Vec<u32>,
}

/// Byte offsets where the lines of `text` start (the first is 0).
pub fn line_starts(text: &str) -> Vec<u32> {
    const NL: u64 = u64::from_le_bytes([b'\n'; 8]);
    const LOW: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let bytes = text.as_bytes();
    let mut starts = Vec::with_capacity(bytes.len() / 32 + 2);
    starts.push(0);
    let mut push_from = |base: usize, chunk: &[u8]| {
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\n' {
                starts.push((base + i) as u32 + 1);
            }
        }
    };
    // Eight bytes at a time, looking closer only at words that hold a newline.
    let mut words = bytes.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b) ^ NL;
        if x.wrapping_sub(LOW) & !x & HIGH != 0 {
            push_from(base, w);
        }
        base += 8;
    }
    push_from(base, words.remainder());
    starts
}

impl SourceFile {
    /// Creates a file and indexes its lines.
    pub fn new(
        name: impl Into<String>,
        path: Option<PathBuf>,
        text: impl Into<String>,
    ) -> SourceFile {
        let text = Rc::new(text.into());
        let line_starts = line_starts(&text);
        SourceFile {
            name: name.into(),
            path,
            text,
            line_starts,
        }
    }

    /// Zero-based line index of a byte offset.
    pub fn line_index(&self, offset: u32) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// Byte offsets where the lines start (the first is 0).
    pub fn line_starts(&self) -> &[u32] {
        &self.line_starts
    }

    /// Byte offset where zero-based line `line` starts.
    pub fn line_start(&self, line: usize) -> Option<u32> {
        self.line_starts.get(line).copied()
    }

    /// Number of lines.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// One-based (line, column) of a byte offset; the column counts characters.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = offset.min(self.text.len() as u32);
        let line = self.line_index(offset);
        let start = self.line_starts[line] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of zero-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line + 1)
            .map(|&e| e as usize - 1)
            .unwrap_or(self.text.len());
        let start = start as usize;
        self.text.get(start..end.max(start)).unwrap_or("")
    }
}

/// One inclusion of a file: the main file (no parent) or an `#include` of it.
#[derive(Debug, Clone)]
pub struct IncludeCtx {
    pub file: FileId,
    /// Where the `#include` directive was: its location (with its own context).
    pub included_at: Option<Loc>,
}

/// One macro expansion.
#[derive(Debug, Clone)]
pub struct Expansion {
    /// The macro's name.
    pub name: String,
    /// Where the macro was invoked (the name token at the call site).
    pub call_site: Loc,
    /// Where the macro was defined (its name in the `#define`), if known.
    pub def_site: Option<Loc>,
}

/// A location in a source file, with the inclusion it was read in and the macro expansion
/// that produced it (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: FileId,
    /// Byte offset of the start in the file.
    pub start: u32,
    /// Byte offset of the end in the file (exclusive). `start == end` for a point.
    pub end: u32,
    pub ctx: CtxId,
    pub expansion: Option<ExpansionId>,
}

impl Loc {
    /// The same location with a different length.
    pub fn with_len(self, len: u32) -> Loc {
        Loc {
            end: self.start.saturating_add(len),
            ..self
        }
    }
    /// The location spanning from `self` to `other` (same file), or `self`.
    pub fn to(self, other: Loc) -> Loc {
        if self.file == other.file && self.ctx == other.ctx && other.end >= self.start {
            Loc {
                end: other.end,
                ..self
            }
        } else {
            self
        }
    }
}

/// A contiguous piece of preprocessed output copied from one place of one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Start offset in the preprocessed output text.
    pub out_start: u32,
    /// Length in bytes (in the output and in the source alike).
    pub len: u32,
    /// Where the first byte came from.
    pub origin: Loc,
}

/// All files, inclusions and expansions of one compilation.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
    ctxs: Vec<IncludeCtx>,
    expansions: Vec<Expansion>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Adds a file and returns its id.
    pub fn add_file(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    /// Finds an already loaded file by path.
    pub fn file_by_path(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path.as_deref() == Some(path))
            .map(|i| FileId(i as u32))
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    /// Records an inclusion of `file`, from `included_at` (None for the main file).
    pub fn add_ctx(&mut self, file: FileId, included_at: Option<Loc>) -> CtxId {
        self.ctxs.push(IncludeCtx { file, included_at });
        CtxId(self.ctxs.len() as u32 - 1)
    }

    pub fn ctx(&self, id: CtxId) -> &IncludeCtx {
        &self.ctxs[id.0 as usize]
    }

    pub fn add_expansion(&mut self, e: Expansion) -> ExpansionId {
        self.expansions.push(e);
        ExpansionId(self.expansions.len() as u32 - 1)
    }

    pub fn expansion(&self, id: ExpansionId) -> &Expansion {
        &self.expansions[id.0 as usize]
    }

    /// A location for the whole of zero-based line `line` of `ctx`'s file (used when only a
    /// line is known, e.g. from an external preprocessor's line markers).
    pub fn line_loc(&self, ctx: CtxId, line: usize) -> Loc {
        let file = self.ctx(ctx).file;
        let f = self.file(file);
        let start = f.line_start(line).unwrap_or(f.text.len() as u32);
        Loc {
            file,
            start,
            end: start,
            ctx,
            expansion: None,
        }
    }

    /// The include chain of `ctx`, innermost first: the locations of the `#include`
    /// directives that led to it.
    pub fn include_chain(&self, ctx: CtxId) -> Vec<Loc> {
        let mut out = Vec::new();
        let mut cur = ctx;
        // Inclusion depth is bounded by the preprocessor; the bound here guards cycles.
        for _ in 0..1024 {
            match self.ctx(cur).included_at {
                Some(at) => {
                    out.push(at);
                    cur = at.ctx;
                }
                None => break,
            }
        }
        out
    }

    /// The chain of macro expansions of `loc`, innermost first.
    pub fn expansion_chain(&self, loc: Loc) -> Vec<&Expansion> {
        let mut out = Vec::new();
        let mut cur = loc.expansion;
        for _ in 0..1024 {
            match cur {
                Some(id) => {
                    let e = self.expansion(id);
                    out.push(e);
                    cur = e.call_site.expansion;
                }
                None => break,
            }
        }
        out
    }

    /// `file:line:col` of a location.
    pub fn describe(&self, loc: Loc) -> String {
        let f = self.file(loc.file);
        let (line, col) = f.line_col(loc.start);
        format!("{}:{line}:{col}", f.name)
    }
}

/// Output of the preprocessor: text for the lexer plus where each piece came from.
#[derive(Debug, Clone, Default)]
pub struct Preprocessed {
    /// The preprocessed text. Lines starting with `#` are line markers or directives the
    /// preprocessor passed through (e.g. `#pragma`); the lexer handles them as GNU MIG does.
    pub text: String,
    /// Sorted by `out_start`, non-overlapping.
    pub segments: Vec<Segment>,
    /// Every file the preprocessor read, in order of first reading (for dependency tracking).
    pub files_read: Vec<PathBuf>,
    /// Environment variables the preprocessor consulted (for build-script rerun tracking).
    pub env_read: Vec<String>,
}

impl Preprocessed {
    /// The index of the segment `off` falls in (the last one starting at or before it).
    fn segment_index(&self, off: u32) -> Option<usize> {
        match self.segments.binary_search_by(|s| s.out_start.cmp(&off)) {
            Ok(i) => Some(i),
            Err(0) => None,
            Err(i) => Some(i - 1),
        }
    }

    /// The origin of `off` in segment `i` (which starts at or before `off`).
    fn origin_in(&self, i: usize, off: u32) -> Option<Loc> {
        let s = self.segments[i];
        let delta = off - s.out_start;
        if delta > s.len {
            return None;
        }
        let start = s.origin.start + delta;
        Some(Loc {
            start,
            end: start,
            ..s.origin
        })
    }

    /// The source location of output byte `off`, if that byte came from a source file.
    pub fn origin(&self, off: u32) -> Option<Loc> {
        self.origin_in(self.segment_index(off)?, off)
    }

    /// The source location of output range `start..end`: the origin of `start`, extended to
    /// `end` when both ends come from the same segment.
    pub fn origin_range(&self, start: u32, end: u32) -> Option<Loc> {
        OriginCursor::new(self).origin_range(start, end)
    }

    /// A cursor for looking up the origins of increasing offsets (as a lexer does) in
    /// amortized constant time instead of a binary search each.
    pub fn cursor(&self) -> OriginCursor<'_> {
        OriginCursor::new(self)
    }

    /// The location of the last segment's end (for "unexpected end of input").
    pub fn end_origin(&self) -> Option<Loc> {
        let s = self.segments.last()?;
        let p = s.origin.start + s.len;
        Some(Loc {
            start: p,
            end: p,
            ..s.origin
        })
    }
}

/// Looks up origins in a [`Preprocessed`] text, fast for increasing offsets: it remembers
/// the segment of the last lookup and walks forward from there (falling back to a binary
/// search for a backward or far jump). Results are those of [`Preprocessed::origin`] and
/// [`Preprocessed::origin_range`].
#[derive(Clone, Debug)]
pub struct OriginCursor<'a> {
    pp: &'a Preprocessed,
    /// The segment of the last lookup.
    seg: usize,
}

impl<'a> OriginCursor<'a> {
    pub fn new(pp: &'a Preprocessed) -> OriginCursor<'a> {
        OriginCursor { pp, seg: 0 }
    }

    fn segment_index(&mut self, off: u32) -> Option<usize> {
        let segs = &self.pp.segments;
        let mut i = self.seg;
        if segs.get(i).is_some_and(|s| s.out_start <= off) {
            // Segments are sorted and non-empty: walk a few forward, then search.
            let mut steps = 0;
            while segs.get(i + 1).is_some_and(|s| s.out_start <= off) {
                i += 1;
                steps += 1;
                if steps == 8 {
                    i = self.pp.segment_index(off)?;
                    break;
                }
            }
        } else {
            i = self.pp.segment_index(off)?;
        }
        self.seg = i;
        Some(i)
    }

    /// [`Preprocessed::origin`].
    pub fn origin(&mut self, off: u32) -> Option<Loc> {
        let i = self.segment_index(off)?;
        self.pp.origin_in(i, off)
    }

    /// [`Preprocessed::origin_range`].
    pub fn origin_range(&mut self, start: u32, end: u32) -> Option<Loc> {
        let a = self.origin(start)?;
        let b = self.origin(end.saturating_sub(1).max(start));
        Some(match b {
            Some(b) if b.file == a.file && b.ctx == a.ctx && b.expansion == a.expansion => Loc {
                end: b.start + u32::from(end > start),
                ..a
            },
            _ => a.with_len(end.saturating_sub(start).min(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col() {
        let f = SourceFile::new("a", None, "ab\ncdé\n\nx");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(7), (2, 4));
        assert_eq!(f.line_col(9), (4, 1));
        assert_eq!(f.line_text(1), "cdé");
        assert_eq!(f.line_text(2), "");
        assert_eq!(f.line_text(3), "x");
        assert_eq!(f.line_text(9), "");
    }

    #[test]
    fn line_starts_everywhere() {
        for text in [
            "",
            "\n",
            "a",
            "a\nb",
            "0123456\n89abcdef\n\n",
            "\n\n\n\n\n\n\n\n\n",
            "é\nü",
        ] {
            let slow: Vec<u32> = std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i as u32 + 1))
                .collect();
            assert_eq!(line_starts(text), slow, "{text:?}");
        }
    }

    #[test]
    fn origins() {
        let mut m = SourceMap::new();
        let f = m.add_file(SourceFile::new("a", None, "hello world"));
        let c = m.add_ctx(f, None);
        let loc = |start| Loc {
            file: f,
            start,
            end: start,
            ctx: c,
            expansion: None,
        };
        let p = Preprocessed {
            text: "world hello".into(),
            segments: vec![
                Segment {
                    out_start: 0,
                    len: 5,
                    origin: loc(6),
                },
                Segment {
                    out_start: 6,
                    len: 5,
                    origin: loc(0),
                },
            ],
            ..Default::default()
        };
        assert_eq!(p.origin(1).map(|l| l.start), Some(7));
        assert_eq!(p.origin(7).map(|l| l.start), Some(1));
        assert_eq!(
            p.origin_range(6, 11).map(|l| (l.start, l.end)),
            Some((0, 5))
        );
        // A cursor gives the same answers, forwards, backwards and past the end.
        let mut c = p.cursor();
        for off in (0..13).chain((0..13).rev()).chain([12, 0, 7, 3, 11]) {
            assert_eq!(c.origin(off), p.origin(off), "{off}");
            assert_eq!(
                c.origin_range(off, off + 2),
                OriginCursor::new(&p).origin_range(off, off + 2)
            );
        }
    }
}
