//! The `ec2-serial-expect` command: everything lives in the library's private
//! `cli` module (clap, the terminal), which only the binary reaches.

/// Counts heap bytes so the script sandbox can hold scripts to a memory
/// budget (src/script/memory.rs).
#[global_allocator]
static ALLOCATOR: ec2_serial_expect::script::memory::CountingAllocator =
    ec2_serial_expect::script::memory::CountingAllocator;

fn main() {
    std::process::exit(ec2_serial_expect::run_command_line());
}
