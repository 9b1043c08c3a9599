//! The `flowc` binary: hands the command line to [`flowc::cli`], on the mimalloc allocator
//! (thread-local heaps: the daemon's core, sled's threads and the HTTP workers allocate and
//! free across threads, which contends on glibc's arena locks; docs/performance.md).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    flowc::cli::main()
}
