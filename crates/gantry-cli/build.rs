//! Links the `gantry` binary as a position-dependent executable (see the comment below).

fn main() {
    // A PIE binary has its pointers to code and constants patched at every start
    // (relative relocations): the dynamic loader writes to every page that holds one,
    // which costs page faults on each `gantry` start and keeps those pages private to
    // each process. Linked with -no-pie the linker resolves them once, so start-up is
    // faster and the pages stay shared clean file pages. Linux/glibc only; the objects
    // are still position-independent, so this only changes the final link.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
