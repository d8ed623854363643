//! The one formatter of byte counts (`64MiB`, `1500B`): the spec's sizes and the OOM reasons of exit statuses.

/// Binary units only, as gantry.toml writes them (the spec's size parser reads these).
pub const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Formats bytes the way a user would write them: the largest unit that divides them.
pub fn format_size(bytes: u64) -> String {
    let (unit, scale) = SIZE_UNITS
        .iter()
        .rev()
        .find(|(_, scale)| bytes >= *scale && bytes.is_multiple_of(*scale))
        .copied()
        .unwrap_or(("B", 1));
    format!("{}{unit}", bytes / scale)
}
