//! Man pages, generated from the same clap definition as the parser, so they cannot
//! drift from what the binary accepts. `man/` holds the generated pages; a test compares.

use clap::CommandFactory;

use crate::cli::Cli;

/// `(file name, roff)` for `obsctl(1)` and one page per subcommand (`obsctl-digest(1)`).
pub fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let cmd = Cli::command();
    let mut pages = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut top)?;
    pages.push(("obsctl.1".to_string(), top));
    for sub in cmd.get_subcommands() {
        let name = format!("obsctl-{}", sub.get_name());
        let version = cmd.get_version().unwrap_or_default().to_string();
        let sub = sub.clone().name(name.clone()).version(version);
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}
