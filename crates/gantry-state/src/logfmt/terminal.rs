//! Service output made safe for an operator's terminal: control sequences are shown, not obeyed.
//!
//! A service's output is not trusted: an escape sequence in it could set the terminal's
//! title, write the clipboard (OSC 52), clear the screen or move the cursor over gantry's own
//! lines. Every control character is shown escaped (`\e`, `\r`, `\x07`, `\u{9b}`), except a
//! tab and, on a terminal that shows colour anyway, SGR colour sequences (`ESC [ … m`).

use std::borrow::Cow;

/// `line` with its control characters escaped; SGR sequences pass when `allow_sgr`.
pub fn terminal_safe(line: &str, allow_sgr: bool) -> Cow<'_, str> {
    if !line.chars().any(is_control) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if allow_sgr
            && c == '\x1b'
            && let Some(len) = sgr_len(rest)
        {
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        if is_control(c) {
            match c {
                '\x1b' => out.push_str("\\e"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// C0 (but tab), DEL and C1 controls.
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// The length of an SGR sequence `ESC [ digits;… m` at the start of `s`.
fn sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("\x1b[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_are_borrowed_and_tabs_pass() {
        assert!(matches!(terminal_safe("ok\tfine", false), Cow::Borrowed(_)));
    }

    #[test]
    fn control_sequences_are_shown_not_obeyed() {
        // OSC 52 clipboard write, a title, clear screen, a bell, a C1 CSI.
        let hostile = "\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\x1b[2J\r\u{9b}6n";
        let shown = terminal_safe(hostile, true);
        assert!(!shown.chars().any(is_control), "{shown:?}");
        assert_eq!(
            shown,
            "\\e]52;c;ZXZpbA==\\x07\\e]0;pwned\\x07\\e[2J\\r\\x9b6n"
        );
    }

    #[test]
    fn colour_passes_only_when_allowed() {
        let red = "\x1b[1;31merror\x1b[0m done";
        assert_eq!(terminal_safe(red, true), red);
        assert_eq!(terminal_safe(red, false), "\\e[1;31merror\\e[0m done");
        // Not SGR: a cursor move stays escaped even on a terminal.
        assert_eq!(terminal_safe("\x1b[5A", true), "\\e[5A");
    }
}
