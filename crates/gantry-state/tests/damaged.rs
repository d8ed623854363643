//! A damaged state store is an error the API and CLI report, never an empty history.

use gantry_state::StateDir;
use gantry_state::store::Store;

#[test]
fn a_damaged_store_reads_as_an_error_not_as_no_boots() {
    let root = std::env::temp_dir().join(format!("gantry-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = StateDir::new(&root);
    gantry_state::secure::prepare(&dir).unwrap();
    {
        let store = Store::open(dir.root()).unwrap();
        let id = store
            .begin_boot("2026-01-01T00:00:00.000Z", "gantry.toml")
            .unwrap();
        assert!(id > 0);
        assert_eq!(store.history().unwrap().len(), 1);
        assert!(store.missions(false).unwrap().is_empty());
    }
    for f in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(root.join(f));
    }
    std::fs::write(dir.state_db(), vec![0x5a; 8192]).unwrap();
    let store = Store::open_existing(dir.root()).expect("the file exists");
    let err = store.history().unwrap_err();
    assert!(
        err.contains("damaged") && err.contains("move it aside"),
        "{err}"
    );
    assert!(store.missions(true).is_err());
    let _ = std::fs::remove_dir_all(&root);
}
