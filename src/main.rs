/// mimalloc rather than the system allocator: manifests are parsed on worker threads and
/// resolved on the main one, and glibc keeps what the workers freed in their own arenas, out
/// of the main thread's reach (a 10,000-tenant plan held both); mimalloc reuses it, and its
/// faster small allocations matter when a plan allocates millions of strings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option numbers (`mi_option_e` in its v3 `mimalloc.h`; the sys crate names only
/// its v2 ones). A test checks each against its documented default.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Give freed memory back at once and commit arenas as they are used: a plan's peak is what
    // it holds, not what it held a moment ago (about 15% of a 10,000-tenant plan's peak).
    // SAFETY: plain setters of the allocator's global options, called before any thread starts.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
    tenantform::cli::main()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_option_numbers_are_the_ones_documented() {
        // Defaults from the vendored v3 `options.c`: purge_delay 1000 ms, arena_eager_commit 2.
        // SAFETY: plain getters.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            assert_eq!(
                libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT),
                2
            );
        }
    }
}
