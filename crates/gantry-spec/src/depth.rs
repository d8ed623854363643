//! A linear pre-scan that refuses nesting deeper than [`MAX_DEPTH`] before the TOML parser runs, pointing at the first key or bracket beyond it.
//!
//! The toml crate bounds arrays and inline tables (80 levels, with a position) and
//! dotted keys (80 segments, but with no position: `recursion limit`), yet a file may
//! combine them (`{a.a…a = {a.a…a = …}}`) into thousands of levels that every later
//! recursive walk (decoding, dropping the tree) must survive. gantry's own keys are at
//! most five levels deep, so a small, documented limit on the sum costs nothing and
//! gives every such file the same error as any other syntax error: file:line:column
//! and what to do.
//!
//! The scanner knows just enough TOML to tell keys, strings, comments and brackets
//! apart. It never rejects what it does not understand: on anything unexpected it
//! moves on and leaves the real syntax error to the parser. Scanned once, no
//! recursion, at most [`MAX_DEPTH`] open brackets remembered.

use crate::diag::Diagnostic;
use crate::source::Span;

/// How deep a value may sit below the top of the file. Every segment of a table
/// header (`[a.b]` is two levels), every segment of a dotted key, every array and every
/// inline table is one level.
pub const MAX_DEPTH: usize = 32;

/// The error for the first key segment or bracket deeper than [`MAX_DEPTH`], if any.
pub fn too_deep(text: &str) -> Option<Diagnostic> {
    let mut scan = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    if text.starts_with('\u{feff}') {
        scan.i = 3;
    }
    let (span, noun) = match scan.run()? {
        (span, What::Key) => (span, "key"),
        (span, What::Array) => (span, "array"),
        (span, What::Table) => (span, "inline table"),
    };
    Some(
        Diagnostic::error(
            "too-deep",
            format!("this {noun} is nested more than {MAX_DEPTH} levels deep"),
        )
        .at(span)
        .hint(
            "flatten this part of the file: each table header segment, dotted-key segment, \
             array and inline table is a level, and gantry's own keys need at most 5; \
             see docs/config.md#limits",
        ),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Key,
    Array,
    Table,
}

/// Why a statement ended early: too deep (the answer), or not understood (skip ahead).
enum Stop {
    Deep(Span, What),
    Lost,
}

/// What the value scanner expects next.
enum Want {
    /// A value belonging to a key or array slot at this level.
    Value(usize),
    /// A separator or closing bracket after a value.
    After,
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

fn bare(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c >= 0x80
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at(&self, s: &[u8]) -> bool {
        self.b.get(self.i..).is_some_and(|rest| rest.starts_with(s))
    }

    /// Spaces and tabs.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Whitespace, newlines and comments (inside arrays and inline tables).
    fn trivia(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.i += 1,
                Some(b'#') => self.comment(),
                _ => return,
            }
        }
    }

    /// To the end of the line (not past it).
    fn comment(&mut self) {
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.i += 1;
        }
    }

    /// Past one character, so that scanning always moves on and stays on a char boundary.
    fn skip_char(&mut self) {
        self.i += 1;
        while matches!(self.peek(), Some(0x80..=0xBF)) {
            self.i += 1;
        }
    }

    /// The whole file, statement by statement.
    fn run(&mut self) -> Option<(Span, What)> {
        let mut header = 0;
        while let Some(c) = {
            self.ws();
            self.peek()
        } {
            let start = self.i;
            let outcome = match c {
                b'\n' | b'\r' => {
                    self.i += 1;
                    Ok(())
                }
                b'#' => {
                    self.comment();
                    Ok(())
                }
                b'[' => {
                    self.i += if self.at(b"[[") { 2 } else { 1 };
                    self.key(1).map(|n| header = n)
                }
                _ => self.key_value(header + 1),
            };
            match outcome {
                Err(Stop::Deep(span, what)) => return Some((span, what)),
                Ok(()) if c == b'[' => {
                    // `]` or `]]`, then only a comment may follow.
                    self.ws();
                    if self.at(b"]]") {
                        self.i += 2;
                    } else if self.at(b"]") {
                        self.i += 1;
                    }
                    self.end_of_line();
                }
                Ok(()) => self.end_of_line(),
                Err(Stop::Lost) => {
                    if self.i == start {
                        self.skip_char();
                    }
                }
            }
        }
        None
    }

    /// After a statement: a comment may follow; anything else is scanned as the next
    /// statement (the parser reports it, and may read on from there).
    fn end_of_line(&mut self) {
        self.ws();
        if self.peek() == Some(b'#') {
            self.comment();
        }
    }

    /// A possibly dotted key whose first segment is at level `level`; its segment count.
    fn key(&mut self, level: usize) -> Result<usize, Stop> {
        let mut n = 0;
        loop {
            self.ws();
            let start = self.i;
            match self.peek() {
                Some(b'"') => self.one_line_string(b'"')?,
                Some(b'\'') => self.one_line_string(b'\'')?,
                Some(c) if bare(c) => {
                    while self.peek().is_some_and(bare) {
                        self.i += 1;
                    }
                }
                _ => return Err(Stop::Lost),
            }
            if level + n > MAX_DEPTH {
                return Err(Stop::Deep(start..self.i, What::Key));
            }
            n += 1;
            self.ws();
            if self.peek() != Some(b'.') {
                return Ok(n);
            }
            self.i += 1;
        }
    }

    /// `key = value` with the key's first segment at `level`.
    fn key_value(&mut self, level: usize) -> Result<(), Stop> {
        let owner = self.key_and_equals(level)?;
        self.value(owner)
    }

    /// A key and its `=`; the level the value belongs to.
    fn key_and_equals(&mut self, level: usize) -> Result<usize, Stop> {
        let n = self.key(level)?;
        self.ws();
        if self.peek() != Some(b'=') {
            return Err(Stop::Lost);
        }
        self.i += 1;
        Ok(level + n - 1)
    }

    /// One value with everything nested in it, iteratively: `open` holds, per open
    /// bracket, whether it is an array and the level of what it contains.
    fn value(&mut self, owner: usize) -> Result<(), Stop> {
        let mut open: Vec<(bool, usize)> = Vec::new();
        let mut want = Want::Value(owner);
        loop {
            want = match want {
                Want::Value(owner) => {
                    if open.is_empty() {
                        self.ws();
                    } else {
                        self.trivia();
                    }
                    let start = self.i;
                    match self.peek() {
                        Some(c @ (b'[' | b'{')) => {
                            let array = c == b'[';
                            let inner = owner + 1;
                            if inner > MAX_DEPTH {
                                let what = if array { What::Array } else { What::Table };
                                return Err(Stop::Deep(start..start + 1, what));
                            }
                            self.i += 1;
                            open.push((array, inner));
                            self.first_in(array, inner)?
                        }
                        Some(b'"') => {
                            self.string(b'"')?;
                            Want::After
                        }
                        Some(b'\'') => {
                            self.string(b'\'')?;
                            Want::After
                        }
                        Some(b',' | b']' | b'}' | b'#' | b'\n' | b'\r') | None => {
                            return Err(Stop::Lost);
                        }
                        Some(_) => {
                            self.scalar();
                            Want::After
                        }
                    }
                }
                Want::After => {
                    let Some(&(array, inner)) = open.last() else {
                        return Ok(());
                    };
                    self.trivia();
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            self.first_in(array, inner)?
                        }
                        Some(b']') if array => {
                            self.i += 1;
                            open.pop();
                            Want::After
                        }
                        Some(b'}') if !array => {
                            self.i += 1;
                            open.pop();
                            Want::After
                        }
                        _ => return Err(Stop::Lost),
                    }
                }
            };
        }
    }

    /// After `[`, `{` or a `,` inside one: the closing bracket (an empty container or a
    /// trailing comma), else the next element or `key =`.
    fn first_in(&mut self, array: bool, inner: usize) -> Result<Want, Stop> {
        self.trivia();
        let close = if array { b']' } else { b'}' };
        if self.peek() == Some(close) {
            // Closed by the next `After` step.
            return Ok(Want::After);
        }
        if array {
            Ok(Want::Value(inner))
        } else {
            Ok(Want::Value(self.key_and_equals(inner)?))
        }
    }

    /// A quoted key: one line, `\` escapes in basic strings.
    fn one_line_string(&mut self, quote: u8) -> Result<(), Stop> {
        self.i += 1;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(Stop::Lost),
                Some(b'\\') if quote == b'"' => self.i += 2,
                Some(c) if c == quote => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// A string value: basic or literal, one line or multi-line (`"""`, `'''`).
    fn string(&mut self, quote: u8) -> Result<(), Stop> {
        let triple = [quote; 3];
        if !self.at(&triple) {
            return self.one_line_string(quote);
        }
        self.i += 3;
        loop {
            if self.i >= self.b.len() {
                return Err(Stop::Lost);
            }
            if quote == b'"' && self.peek() == Some(b'\\') {
                self.i += 2;
            } else if self.at(&triple) {
                self.i += 3;
                // Up to two quotes right before the delimiter belong to the string.
                for _ in 0..2 {
                    if self.peek() == Some(quote) {
                        self.i += 1;
                    }
                }
                return Ok(());
            } else {
                self.i += 1;
            }
        }
    }

    /// A number, boolean or date-time: up to the next delimiter. A space ends it too,
    /// except between the date and the time of `1979-05-27 07:32:00`.
    fn scalar(&mut self) {
        let start = self.i;
        loop {
            match self.peek() {
                None | Some(b',' | b']' | b'}' | b'#' | b'\n' | b'\r' | b'\t') => return,
                Some(b' ') => {
                    let date = self.i - start == 10
                        && self.b[start..self.i].iter().enumerate().all(|(k, c)| {
                            if k == 4 || k == 7 {
                                *c == b'-'
                            } else {
                                c.is_ascii_digit()
                            }
                        });
                    if !(date && self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit)) {
                        return;
                    }
                    self.i += 1;
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str) -> Option<(usize, usize)> {
        too_deep(text).map(|d| {
            let span = d.span.unwrap();
            (span.start, span.end)
        })
    }

    fn dotted(n: usize) -> String {
        vec!["a"; n].join(".")
    }

    #[test]
    fn keys_up_to_the_limit_pass_and_the_next_segment_is_named() {
        assert_eq!(depth_error(&format!("{} = 1\n", dotted(MAX_DEPTH))), None);
        let text = format!("{} = 1\n", dotted(MAX_DEPTH + 1));
        let at = 2 * MAX_DEPTH;
        assert_eq!(depth_error(&text), Some((at, at + 1)));
    }

    #[test]
    fn header_keys_and_brackets_add_up() {
        // 10 (header) + 10 (dotted) + 12 (brackets) = 32: fine; one more bracket is not.
        let ok = format!(
            "[{}]\n{} = {}{}\n",
            dotted(10),
            dotted(10),
            "[".repeat(12),
            "]".repeat(12)
        );
        assert_eq!(depth_error(&ok), None, "{ok}");
        let bad = format!(
            "[{}]\n{} = {}1{}\n",
            dotted(10),
            dotted(10),
            "[".repeat(13),
            "]".repeat(13)
        );
        let open = bad.find("= ").unwrap() + 2 + 12;
        assert_eq!(depth_error(&bad), Some((open, open + 1)));
        assert_eq!(
            too_deep(&bad).unwrap().message,
            format!("this array is nested more than {MAX_DEPTH} levels deep")
        );
    }

    #[test]
    fn dotted_keys_inside_inline_tables_count() {
        let text = format!("x = {{ {} = {{ {} = 1 }} }}\n", dotted(15), dotted(20));
        let d = too_deep(&text).expect("too deep");
        assert_eq!(d.message, "this key is nested more than 32 levels deep");
    }

    #[test]
    fn strings_comments_and_dates_hide_nothing_and_fake_nothing() {
        let brackets = "[".repeat(100);
        let keys = dotted(100);
        let text = format!(
            "# {brackets} {keys}\n\
             a = \"{brackets} \\\" {keys}\"\n\
             b = '{brackets}'\n\
             c = \"\"\"\n{brackets}\n\"\" \\\"\"\" {keys}\n\"\"\"\n\
             d = '''\n{keys} = {brackets}\n'''\n\
             e = [1979-05-27 07:32:00, {{ \"{keys}\" = 1 }}, # {brackets}\n  2 ]\n\
             \"{keys}\" = 1\n\
             [\"x{keys}\".'{keys}']\n"
        );
        assert_eq!(depth_error(&text), None, "{text}");
        let (_, errors) = toml::de::DeTable::parse_recoverable(&text);
        assert!(errors.is_empty(), "the sample is valid TOML: {errors:?}");
        // The same nesting outside the strings is caught.
        let deep = format!("{text}f = [1979-05-27 07:32:00, {brackets}\n");
        assert!(depth_error(&deep).is_some());
    }

    #[test]
    fn a_syntax_error_earlier_does_not_hide_a_deep_key_later() {
        for junk in [
            "x = 1 2\n",
            "x = [1 2\n",
            "[a\n",
            "= = =\n",
            "x = \"open\n",
            "é\n",
        ] {
            let text = format!("{junk}{} = 1\n", dotted(100));
            assert!(depth_error(&text).is_some(), "{junk:?}");
        }
    }

    #[test]
    fn a_hundred_thousand_levels_are_scanned_without_recursion() {
        let n = 100_000;
        for text in [
            format!("{} = 1", dotted(n)),
            format!("x = {}{}", "[".repeat(n), "]".repeat(n)),
            format!("x = {}1{}", "{a=".repeat(n), "}".repeat(n)),
            format!("[{}]", dotted(n)),
        ] {
            assert!(depth_error(&text).is_some());
        }
    }
}
