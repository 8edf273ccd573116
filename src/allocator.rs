//! The binary's allocator settings (the binary itself installs mimalloc as its global
//! allocator; see `src/main.rs`).

/// mimalloc's option numbers (`mi_option_e` in its v3 `mimalloc.h`; the sys crate names only
/// its v2 ones). A test checks each against its documented default.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Gives freed memory back at once and commits arenas as they are used: a plan's peak is what
/// it holds, not what it held a moment ago (about 15% of a 10,000-tenant plan's peak, and a
/// fifth of a 1,000-tenant one's). Call before any thread starts.
pub fn configure() {
    // SAFETY: plain setters of the allocator's global options.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
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
