//! The binary's allocator settings (the binary itself installs mimalloc as its global
//! allocator; see `src/main.rs`).

/// mimalloc's option numbers (`mi_option_e` in its v3 `mimalloc.h`; the sys crate names only
/// its v2 ones). A test checks each against its documented default.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Gives freed memory back within a few milliseconds and commits arenas as they are used: a
/// plan's peak is what it holds, not what it held a moment ago (a purge delay of mimalloc's
/// default second was about 15% of a 10,000-tenant plan's peak, and a fifth of a 1,000-tenant
/// one's). Not at once: with several threads planning and recording tenants, purging every
/// freed page at once cost a first end-user sync a sixth of its time in page faults and TLB
/// shootdowns, for 2% less peak. `MIMALLOC_PURGE_DELAY` / `MIMALLOC_ARENA_EAGER_COMMIT` in
/// the environment still win (for measuring). Call before any thread starts.
pub fn configure() {
    // SAFETY: plain setters of the allocator's global options.
    unsafe {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
    }
}

/// How long freed memory stays with the process before it is given back.
const PURGE_DELAY_MS: std::ffi::c_long = 5;

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
