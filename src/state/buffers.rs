//! Serialization buffers kept for reuse. Every tenant's apply serializes its partition file
//! (about 1 KB a contact) and its history lines; a fresh buffer for each grows by doubling
//! and touches new pages each time (the kernel zeroes them), which cost about a tenth of a
//! first sync's CPU. A few buffers are kept instead: at most [`KEPT`] (about as many as
//! tenants are written at once), none larger than [`KEPT_CAPACITY`], so what is kept grows
//! with parallelism and never with the fleet.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers kept when not in use.
const KEPT: usize = 16;
/// The largest buffer kept (a larger one, for a very large tenant, is freed after use).
const KEPT_CAPACITY: usize = 4 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty byte buffer, taken from the kept ones when there is one; given back on drop.
pub struct Buffer(Vec<u8>);

impl Buffer {
    pub fn take() -> Buffer {
        let kept = POOL.lock().ok().and_then(|mut pool| pool.pop());
        Buffer(kept.unwrap_or_default())
    }
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer::take()
    }
}

impl Deref for Buffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0);
        if bytes.capacity() == 0 || bytes.capacity() > KEPT_CAPACITY {
            return;
        }
        bytes.clear();
        if let Ok(mut pool) = POOL.lock()
            && pool.len() < KEPT
        {
            pool.push(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_with_its_capacity() {
        let mut first = Buffer::take();
        first.extend_from_slice(&[7; 100_000]);
        let capacity = first.capacity();
        let address = first.as_ptr();
        drop(first);
        // Other tests may take buffers meanwhile: look for ours among a few.
        let taken: Vec<Buffer> = (0..KEPT).map(|_| Buffer::take()).collect();
        let ours = taken
            .iter()
            .find(|b| b.as_ptr() == address)
            .expect("the buffer given back is kept");
        assert!(ours.is_empty());
        assert_eq!(ours.capacity(), capacity);
        drop(taken);
        let mut huge = Buffer::take();
        huge.reserve(KEPT_CAPACITY + 1);
        let address = huge.as_ptr();
        drop(huge);
        let taken: Vec<Buffer> = (0..KEPT).map(|_| Buffer::take()).collect();
        assert!(
            taken.iter().all(|b| b.as_ptr() != address),
            "a huge buffer is not kept"
        );
    }
}
