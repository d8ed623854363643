//! A sock_diag bytecode filter on local ports: the kernel then fills a message only for the listeners a scan asks about.
//!
//! A LISTEN dump walks the kernel's listening hash either way (cheap), but building,
//! copying and parsing a message per listener is what made a dump of 1,000 listeners cost
//! ~150 µs: during a boot the held probes wait for a few hundred ports while a thousand
//! services already listen. The filter is `INET_DIAG_REQ_BYTECODE`, a list of port ranges
//! (at most [`MAX_RANGES`]; nearby ports are merged, and a listener in a merged gap only
//! costs its message: the caller matches targets against the result anyway).
//!
//! Bytecode (linux/inet_diag.h, `inet_diag_bc_run`): each op is `{code: u8, yes: u8, no:
//! u16}`; the program walks by `yes` on a true test and by `no` on a false one, and accepts
//! a socket when it ends exactly at the end. A port test is followed by a word whose `no`
//! holds the port. The kernel's audit requires every `no` target to lie on the chain of
//! `yes` steps from the start, so each range is laid out in sequence:
//!
//! ```text
//! S_GE lo (yes: next op, no: next range) | port lo
//! S_LE hi (yes: next op, no: next range) | port hi
//! JMP     (no: the end, i.e. accept)
//! ```
//!
//! and the last range's "next range" is 4 bytes past the end, which rejects.

/// Most ranges one filter holds (20 bytes each; the kernel runs the program per listener).
pub(super) const MAX_RANGES: usize = 16;

const INET_DIAG_BC_JMP: u8 = 1;
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
/// Bytes of one range's ops.
const RANGE_LEN: usize = 20;

/// `ports` (any order, duplicates allowed) as at most [`MAX_RANGES`] inclusive ranges that
/// cover every one of them, merging across the smallest gaps first.
pub(super) fn ranges(ports: &[u16]) -> Vec<(u16, u16)> {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for p in sorted {
        match ranges.last_mut() {
            Some((_, hi)) if *hi as u32 + 1 == p as u32 => *hi = p,
            _ => ranges.push((p, p)),
        }
    }
    if ranges.len() <= MAX_RANGES {
        return ranges;
    }
    // Keep the MAX_RANGES - 1 widest gaps; merge across the others.
    let mut gaps: Vec<(u16, usize)> = ranges
        .windows(2)
        .enumerate()
        .map(|(i, w)| (w[1].0 - w[0].1, i))
        .collect();
    let keep = MAX_RANGES - 1;
    let cut = gaps.len() - keep;
    gaps.select_nth_unstable_by(cut, |a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut split: Vec<usize> = gaps[cut..].iter().map(|&(_, i)| i).collect();
    split.sort_unstable();
    let mut out = Vec::with_capacity(MAX_RANGES);
    let mut start = 0;
    for i in split.into_iter().chain(std::iter::once(ranges.len() - 1)) {
        out.push((ranges[start].0, ranges[i].1));
        start = i + 1;
    }
    out
}

/// Appends the bytecode that accepts a local port within one of `ranges` (non-empty).
pub(super) fn encode(ranges: &[(u16, u16)], out: &mut Vec<u8>) {
    let total = ranges.len() * RANGE_LEN;
    let op = |out: &mut Vec<u8>, code: u8, yes: u8, no: usize| {
        out.push(code);
        out.push(yes);
        out.extend_from_slice(&(no as u16).to_ne_bytes());
    };
    let port = |out: &mut Vec<u8>, port: u16| {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&port.to_ne_bytes());
    };
    for (i, &(lo, hi)) in ranges.iter().enumerate() {
        let at = i * RANGE_LEN;
        let last = i + 1 == ranges.len();
        // Where a failed test goes, as a jump from an op at `from`.
        let next = |from: usize| {
            if last {
                total - from + 4
            } else {
                at + RANGE_LEN - from
            }
        };
        op(out, INET_DIAG_BC_S_GE, 8, next(at));
        port(out, lo);
        op(out, INET_DIAG_BC_S_LE, 8, next(at + 8));
        port(out, hi);
        op(out, INET_DIAG_BC_JMP, 4, total - (at + 16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `inet_diag_bc_run` for the ops [`encode`] uses, as the kernel runs it.
    fn run(bc: &[u8], sport: u16) -> bool {
        let mut at = 0usize;
        let mut len = bc.len() as i64;
        while len > 0 {
            let (code, yes, no) = (
                bc[at],
                bc[at + 1] as i64,
                u16::from_ne_bytes([bc[at + 2], bc[at + 3]]) as i64,
            );
            let arg = || u16::from_ne_bytes([bc[at + 6], bc[at + 7]]);
            let pass = match code {
                INET_DIAG_BC_JMP => false,
                INET_DIAG_BC_S_GE => sport >= arg(),
                INET_DIAG_BC_S_LE => sport <= arg(),
                _ => panic!("unexpected op {code}"),
            };
            let step = if pass { yes } else { no };
            len -= step;
            if len < 0 {
                break;
            }
            at += step as usize;
        }
        len == 0
    }

    /// The kernel's `inet_diag_bc_audit` for these ops: every jump lands on an op boundary
    /// of the `yes` chain, the end, or just past it.
    fn audit(bc: &[u8]) -> bool {
        let valid_cc = |cc: i64| {
            let (mut at, mut len) = (0usize, bc.len() as i64);
            while len >= 0 {
                if cc > len {
                    return false;
                }
                if cc == len {
                    return true;
                }
                let yes = bc[at + 1] as i64;
                if yes < 4 || yes & 3 != 0 {
                    return false;
                }
                len -= yes;
                at += yes as usize;
            }
            false
        };
        let (mut at, mut len) = (0usize, bc.len() as i64);
        while len > 0 {
            let (code, yes, no) = (
                bc[at],
                bc[at + 1] as i64,
                u16::from_ne_bytes([bc[at + 2], bc[at + 3]]) as i64,
            );
            let min = if code == INET_DIAG_BC_JMP { 4 } else { 8 };
            if len < min {
                return false;
            }
            if no < min || no > len + 4 || no & 3 != 0 {
                return false;
            }
            if no < len && !valid_cc(len - no) {
                return false;
            }
            if yes < min || yes > len + 4 || yes & 3 != 0 {
                return false;
            }
            at += yes as usize;
            len -= yes;
        }
        len == 0
    }

    #[test]
    fn ports_become_few_ranges_that_cover_them() {
        assert_eq!(ranges(&[5, 3, 4, 4, 9]), [(3, 5), (9, 9)]);
        let ports: Vec<u16> = (0..1000).map(|i| 20000 + 3 * i).collect();
        let r = ranges(&ports);
        assert_eq!(r.len(), MAX_RANGES);
        for p in &ports {
            assert!(
                r.iter().any(|&(lo, hi)| lo <= *p && *p <= hi),
                "{p} uncovered"
            );
        }
        // The widest gaps are the ones kept.
        let r = ranges(&[1, 2, 1000, 1001, 3, 60000]);
        assert_eq!(r, [(1, 3), (1000, 1001), (60000, 60000)]);
        let mut many: Vec<u16> = (0..40).map(|i| i * 10).collect();
        many.push(50000);
        let r = ranges(&many);
        assert_eq!(r.len(), MAX_RANGES);
        assert_eq!(*r.last().unwrap(), (50000, 50000));
    }

    #[test]
    fn the_program_passes_the_audit_and_accepts_exactly_the_ranges() {
        for rs in [
            vec![(80, 80)],
            vec![(0, 0), (65535, 65535)],
            vec![(10, 20), (30, 40), (50, 50)],
            ranges(&(0..200).map(|i| 1000 + 7 * i).collect::<Vec<_>>()),
        ] {
            let mut bc = Vec::new();
            encode(&rs, &mut bc);
            assert_eq!(bc.len(), rs.len() * RANGE_LEN);
            assert!(audit(&bc), "{rs:?}");
            for port in (0..=u16::MAX).step_by(1) {
                let want = rs.iter().any(|&(lo, hi)| lo <= port && port <= hi);
                assert_eq!(run(&bc, port), want, "port {port} in {rs:?}");
            }
        }
    }
}
