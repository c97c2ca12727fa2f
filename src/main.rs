//! The `portsentry` binary: argv in, exit code out; everything else is in the library.

fn main() {
    std::process::exit(portsentry::app::main(std::env::args_os().collect()));
}
