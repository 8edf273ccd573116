//! Serialization buffers kept for reuse. Every tenant's apply serializes its partition file
//! (about 1 KB a contact) and its history lines; a fresh buffer for each grows by doubling
//! and touches new pages each time (the kernel zeroes them), which cost about a tenth of a
//! first sync's CPU. A few buffers are kept instead: at most [`KEPT`] (about as many as
//! tenants are written at once), none larger than [`KEPT_CAPACITY`]: a bounded amount
//! (typically a few MB, at most 64 MiB) that never grows with the fleet.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers kept when not in use.
const KEPT: usize = 16;
/// The largest buffer kept (a larger one, for a very large tenant, is freed after use).
const KEPT_CAPACITY: usize = 4 << 20;

/// Buffers kept for reuse.
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    const fn new() -> Pool {
        Pool(Mutex::new(Vec::new()))
    }

    fn take(&'static self) -> Buffer {
        let kept = self.0.lock().ok().and_then(|mut kept| kept.pop());
        Buffer {
            bytes: kept.unwrap_or_default(),
            pool: self,
        }
    }

    fn give_back(&self, mut bytes: Vec<u8>) {
        if bytes.capacity() == 0 || bytes.capacity() > KEPT_CAPACITY {
            return;
        }
        bytes.clear();
        if let Ok(mut kept) = self.0.lock()
            && kept.len() < KEPT
        {
            kept.push(bytes);
        }
    }
}

static POOL: Pool = Pool::new();

/// An empty byte buffer, taken from the kept ones when there is one; given back on drop.
pub struct Buffer {
    bytes: Vec<u8>,
    pool: &'static Pool,
}

impl Buffer {
    pub fn take() -> Buffer {
        POOL.take()
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
        &self.bytes
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_and_the_pool_stays_bounded() {
        // A pool of its own: other tests use the shared one meanwhile.
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        let mut first = pool.take();
        first.extend_from_slice(&[7; 100_000]);
        let (capacity, address) = (first.capacity(), first.as_ptr());
        drop(first);
        let again = pool.take();
        assert_eq!(
            again.as_ptr(),
            address,
            "the buffer given back is taken again"
        );
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
        drop(again);
        let mut huge = pool.take();
        huge.reserve(KEPT_CAPACITY + 1);
        drop(huge);
        assert!(
            pool.take().capacity() <= KEPT_CAPACITY,
            "a huge buffer is not kept"
        );
        let many: Vec<Buffer> = (0..KEPT + 5)
            .map(|_| {
                let mut b = pool.take();
                b.push(1);
                b
            })
            .collect();
        drop(many);
        assert_eq!(pool.0.lock().unwrap().len(), KEPT, "at most KEPT are kept");
    }
}
