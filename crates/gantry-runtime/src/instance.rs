//! Is a `gantry up` already running for this state dir? The instance lock it holds says so (gantry-state's `secure.rs`).
//!
//! The running instance holds an exclusive `flock` on `state_dir/instance.lock` for its
//! whole life (released by the kernel when it dies, SIGKILL included) and has written its
//! host pid and API address into it. Asking does not take the lock.

use gantry_state::StateDir;
use gantry_state::secure::InstanceLock;
use std::path::Path;

pub use gantry_state::secure::Running;

/// The instance running for `state_dir`, if one holds its lock.
pub fn running(state_dir: &Path) -> Option<Running> {
    InstanceLock::holder(&StateDir::new(state_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_held_lock_is_a_running_instance() {
        let dir = std::env::temp_dir().join(format!("gantry-instance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::new(&dir);
        gantry_state::secure::prepare(&state).unwrap();
        assert_eq!(running(&dir), None, "no lock file");
        let lock = InstanceLock::acquire(&state).unwrap();
        let r = running(&dir).expect("held");
        assert!(r.pid.is_some());
        drop(lock);
        assert_eq!(running(&dir), None, "a stale file from a dead instance");
        let _ = std::fs::remove_dir_all(dir);
    }
}
