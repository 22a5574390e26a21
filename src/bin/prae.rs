//! `prae`: see `prae --help` and the README.
fn main() {
    std::process::exit(prae::cli::prae::main());
}
