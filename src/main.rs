//! The `flowc` binary: hands the command line to [`flowc::cli`], on the mimalloc allocator
//! (thread-local heaps: the daemon's core, sled's threads and the HTTP workers allocate and
//! free across threads, which contends on glibc's arena locks), built without transparent
//! huge pages (the `no_thp` feature: with them, `flowc simulate`'s growing heap faulted in
//! and zeroed 2 MiB pages and ran at about 60 % of glibc's speed; docs/performance.md).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    flowc::cli::main()
}
