/// mimalloc rather than the system allocator: manifests are parsed on worker threads and
/// resolved on the main one, and glibc keeps what the workers freed in their own arenas, out
/// of the main thread's reach (a 10,000-tenant plan held both); mimalloc reuses it, and its
/// faster small allocations matter when a plan allocates millions of strings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tenantform::allocator::configure();
    tenantform::cli::main()
}
