//! The `ec2-serial-expect` command: everything lives in the library's `cli` module.

fn main() {
    std::process::exit(ec2_serial_expect::cli::main());
}
