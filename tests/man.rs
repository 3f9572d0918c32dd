//! The man pages in man/ are exactly what the CLI definition generates.
//! `OBSCTL_UPDATE_MAN=1 cargo test --test man` rewrites them.

use std::path::Path;

#[test]
fn man_pages_match_the_cli() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("OBSCTL_UPDATE_MAN").is_some();
    for (name, page) in obsctl::man::pages().unwrap() {
        let path = dir.join(&name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &page).unwrap();
            continue;
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(on_disk == page, "man/{name} is out of date: run OBSCTL_UPDATE_MAN=1 cargo test --test man");
    }
}
