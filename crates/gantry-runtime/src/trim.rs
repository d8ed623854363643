//! Releasing the pages of code and read-only data that only start-up needed, so a long-running gantry holds its working set, not everything it ever ran.
//!
//! Start-up runs a lot of code once: argument parsing, the TOML decoder, the planner,
//! the pre-flight, the SQLite schema set-up, the HTTP router's construction. Every page
//! of the binary it touched stays mapped in the process (and counted in its RSS) for
//! the rest of its life, although steady-state supervision — the event loop, probes,
//! the engine — uses a fraction of them: measured with 100 services, 7.1 MB of the
//! binary was resident in the init and 3.1 MB in the namespace stub.
//!
//! [`release_startup_pages`] asks the kernel to drop the page-table entries of every
//! *clean, private, read-only file mapping* of the process (`r-xp` code and `r--p`
//! read-only data whose smaps entry shows no anonymous, i.e. privately modified, page)
//! with `madvise(MADV_DONTNEED)`. For such a mapping that is exactly what memory
//! pressure would do: the pages stay in the page cache, and the next access refaults
//! the same bytes from it (a minor fault, well under a microsecond). Mappings with any
//! private page (the RELRO segment after relocation, anything written) are never
//! touched — dropping those would lose their contents. Writable and anonymous mappings
//! (heap, stacks) are never touched either.
//!
//! Called by the stub right after the fork (it then only waits and forwards signals)
//! and by the driver once the boot is decided. `GANTRY_KEEP_PAGES=1` turns it off
//! (the benchmark uses that to report both figures).

use std::io::BufRead as _;

/// Makes every thread allocate from glibc's main arena. The spawn pool's threads would
/// otherwise each get an arena of their own, whose pages stay resident after the
/// threads have gone; gantry allocates little off the event loop, so sharing one arena
/// costs no contention worth measuring. Call before any thread starts. No-op elsewhere.
pub fn single_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes a tunable of glibc's allocator; M_ARENA_MAX is valid
    // at any time, and no other thread exists yet to race with.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

/// Gives the free pages of the heap back to the kernel (`malloc_trim(0)`): the boot's
/// transient allocations (the pre-flight, the plan's construction, a spawn per service)
/// leave free chunks between live ones that glibc keeps resident otherwise (1.4 MB at
/// 1,000 services). No-op elsewhere and when `GANTRY_KEEP_PAGES` is set.
pub fn release_free_heap() {
    if disabled() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only returns free memory of glibc's arenas to the kernel; it
    // takes the arena locks itself and touches no live allocation.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// What one call released.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Mappings advised.
    pub mappings: usize,
    /// Resident kilobytes those mappings had before (from smaps).
    pub resident_kb: u64,
}

/// Whether the user turned trimming off (`GANTRY_KEEP_PAGES` set and not `0`).
pub fn disabled() -> bool {
    std::env::var_os("GANTRY_KEEP_PAGES").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Drops the resident pages of every clean, private, read-only file mapping (see the
/// module docs). Best effort: errors (no /proc, a kernel without MADV_DONTNEED) leave
/// everything as it was.
pub fn release_startup_pages() -> Released {
    if disabled() {
        return Released::default();
    }
    let Ok(file) = std::fs::File::open("/proc/self/smaps") else {
        return Released::default();
    };
    let mut released = Released::default();
    let mut current: Option<Candidate> = None;
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        if let Some(region) = parse_header(&line) {
            if let Some(c) = current.take() {
                c.release(&mut released);
            }
            current = region;
            continue;
        }
        let Some(c) = current.as_mut() else { continue };
        if let Some(v) = field_kb(&line, "Rss:") {
            c.rss_kb = v;
        } else if let Some(v) = field_kb(&line, "Anonymous:") {
            c.anon_kb = v;
        }
    }
    if let Some(c) = current.take() {
        c.release(&mut released);
    }
    released
}

/// A mapping that qualifies by its header line; its smaps fields decide.
#[derive(Debug, PartialEq, Eq)]
struct Candidate {
    start: usize,
    end: usize,
    rss_kb: u64,
    anon_kb: u64,
}

impl Candidate {
    fn release(self, released: &mut Released) {
        if self.anon_kb != 0 || self.rss_kb == 0 || self.end <= self.start {
            return;
        }
        if advise_dontneed(self.start, self.end - self.start) {
            released.mappings += 1;
            released.resident_kb += self.rss_kb;
        }
    }
}

/// `Some(Some(c))` for the header of a qualifying mapping, `Some(None)` for the header
/// of any other mapping, `None` for a field line.
fn parse_header(line: &str) -> Option<Option<Candidate>> {
    let mut parts = line.split_ascii_whitespace();
    let range = parts.next()?;
    let (start, end) = range.split_once('-')?;
    let (Ok(start), Ok(end)) = (
        usize::from_str_radix(start, 16),
        usize::from_str_radix(end, 16),
    ) else {
        return None;
    };
    let perms = parts.next()?;
    let _offset = parts.next()?;
    let _dev = parts.next()?;
    let inode = parts.next()?;
    let path = parts.next().unwrap_or("");
    let qualifies = matches!(perms, "r-xp" | "r--p")
        && inode != "0"
        && path.starts_with('/')
        // "(deleted)": the file is gone; its pages could not be refaulted from a path
        // anyone can see, and such a mapping is rare enough not to bother.
        && !line.ends_with("(deleted)");
    Some(qualifies.then_some(Candidate {
        start,
        end,
        rss_kb: 0,
        anon_kb: u64::MAX,
    }))
}

fn field_kb(line: &str, name: &str) -> Option<u64> {
    let rest = line.strip_prefix(name)?;
    rest.trim().strip_suffix("kB")?.trim().parse().ok()
}

#[allow(unsafe_code)]
fn advise_dontneed(start: usize, len: usize) -> bool {
    let Some(ptr) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) else {
        return false;
    };
    // SAFETY: the range is a whole mapping of this process, taken from /proc/self/smaps
    // just now, that is private, not writable and has no anonymous (privately modified)
    // page: MADV_DONTNEED only drops page-table entries whose contents the kernel
    // refaults unchanged from the mapped file, so no memory Rust code can observe
    // changes. Mappings are not created or removed concurrently in a way that matters:
    // at worst the call fails (ENOMEM for an unmapped range) and nothing happens.
    unsafe { nix::sys::mman::madvise(ptr, len, nix::sys::mman::MmapAdvise::MADV_DONTNEED).is_ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_select_clean_private_read_only_file_mappings() {
        let code = "55d0-55e0 r-xp 002af000 fe:00 5309432   /usr/bin/gantry";
        let c = parse_header(code).expect("header").expect("qualifies");
        assert_eq!((c.start, c.end), (0x55d0, 0x55e0));
        for other in [
            "55d0-55e0 rw-p 00000000 fe:00 5309432   /usr/bin/gantry",
            "55d0-55e0 r--s 00000000 fe:00 5309432   /tmp/shared",
            "55d0-55e0 r--p 00000000 00:00 0         [vvar]",
            "55d0-55e0 r--p 00000000 00:00 0 ",
            "55d0-55e0 r-xp 00000000 fe:00 12   /tmp/old (deleted)",
        ] {
            assert_eq!(parse_header(other), Some(None), "{other}");
        }
        assert_eq!(parse_header("Rss:                 748 kB"), None);
        assert_eq!(
            field_kb("Anonymous:          296 kB", "Anonymous:"),
            Some(296)
        );
        assert_eq!(field_kb("Rss:  12 kB", "Anonymous:"), None);
    }

    #[test]
    fn a_mapping_with_private_pages_is_never_released() {
        let mut released = Released::default();
        Candidate {
            start: 0x1000,
            end: 0x2000,
            rss_kb: 4,
            anon_kb: 4,
        }
        .release(&mut released);
        assert_eq!(released, Released::default());
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        // Drop this test binary's own code pages, then keep running code and reading
        // constant data from them: everything must refault unchanged.
        let before: Vec<u64> = (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        let released = release_startup_pages();
        if !disabled() {
            assert!(released.mappings > 0, "nothing released: {released:?}");
        }
        let after: Vec<u64> = (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        assert_eq!(before, after);
        assert_eq!(format!("{:?}", Some("still here")), "Some(\"still here\")");
    }
}
