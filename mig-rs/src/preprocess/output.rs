//! The preprocessed text being built, with its segments and GCC-style line markers.

use crate::source::{CtxId, Loc, Segment};
use std::fmt::Write as _;

/// The last token written on the current output line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Last {
    pub loc: Loc,
    /// Its spelling is exactly the source text at `loc`.
    pub verbatim: bool,
}

/// Which presumed file the output is in: the inclusion and its `#line` generation.
pub(super) type OutKey = (CtxId, u32);

#[derive(Default)]
pub(super) struct Output {
    pub text: String,
    pub segments: Vec<Segment>,
    /// The presumed file of the current output line (None before anything was written).
    pub cur: Option<OutKey>,
    /// The presumed line number of the current output line.
    pub line: u32,
    line_start: usize,
    pub last: Option<Last>,
    /// Whether the last segment may be extended by a contiguous one.
    last_seg_open: bool,
}

/// Escapes a file name for a line marker (as GCC does: `\` and `"` get a backslash,
/// control characters become octal escapes).
pub(super) fn escape_name(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' | '"' => {
                s.push('\\');
                s.push(c);
            }
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(s, "\\{:03o}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

impl Output {
    pub fn at_line_start(&self) -> bool {
        self.text.len() == self.line_start
    }

    pub fn newline(&mut self) {
        self.text.push('\n');
        self.line = self.line.saturating_add(1);
        self.line_start = self.text.len();
        self.last = None;
        self.last_seg_open = false;
    }

    /// Writes `# line "name" flags` on a line of its own.
    pub fn marker(&mut self, line: u32, name: &str, flags: &str, key: OutKey) {
        if !self.at_line_start() {
            self.text.push('\n');
        }
        let _ = writeln!(self.text, "# {line} \"{}\"{flags}", escape_name(name));
        self.line = line;
        self.line_start = self.text.len();
        self.last = None;
        self.last_seg_open = false;
        self.cur = Some(key);
    }

    /// Moves the output to presumed line `line` of `key`: newlines for small forward
    /// jumps, a line marker otherwise. Never moves backwards within the same file.
    pub fn sync(&mut self, key: OutKey, line: u32, name: &str) {
        if self.cur != Some(key) {
            self.marker(line, name, "", key);
            return;
        }
        if line > self.line {
            let diff = line - self.line;
            if diff <= 8 {
                for _ in 0..diff {
                    self.newline();
                }
            } else {
                self.marker(line, name, "", key);
            }
        }
    }

    /// Appends `s` (which came from `origin`, byte for byte unless `synth`) to the output
    /// and records its segment.
    pub fn push(&mut self, s: &str, origin: Loc, synth: bool) {
        if s.is_empty() {
            return;
        }
        let out_start = self.text.len() as u32;
        let len = s.len() as u32;
        self.text.push_str(s);
        if self.last_seg_open {
            if let Some(seg) = self.segments.last_mut() {
                let o = seg.origin;
                if !synth
                    && seg.out_start + seg.len == out_start
                    && o.file == origin.file
                    && o.ctx == origin.ctx
                    && o.expansion == origin.expansion
                    && o.start + seg.len == origin.start
                {
                    seg.len += len;
                    return;
                }
            }
        }
        self.segments.push(Segment {
            out_start,
            len,
            origin: Loc {
                end: origin.start.saturating_add(len),
                ..origin
            },
        });
        self.last_seg_open = !synth;
    }

    /// Appends padding as wide as `like`: a tab for each of its tabs, a space for each other
    /// character, at most `max` characters.
    pub fn push_blanks_like(&mut self, like: &str, max: usize) {
        let before = self.text.len();
        self.text.extend(
            like.chars()
                .take(max)
                .map(|c| if c == '\t' { '\t' } else { ' ' }),
        );
        if self.text.len() != before {
            self.last_seg_open = false;
        }
    }

    /// Appends text that has no source (padding).
    pub fn push_plain(&mut self, s: &str) {
        self.text.push_str(s);
        if !s.is_empty() {
            self.last_seg_open = false;
        }
    }
}
