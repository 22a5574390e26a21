//! `prae-virsh`: virsh with prae's allocation on `define` and `create`.
fn main() {
    std::process::exit(prae::cli::virsh::main());
}
