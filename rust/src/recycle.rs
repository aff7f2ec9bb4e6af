//! Recycled memory for large native outputs.
//!
//! A batch of neighbour lists can be hundreds of MB, and writing into freshly mapped pages costs more
//! than computing the pairs (on this project's VM, page faults and zeroing take ~0.8 ms per MB: 2,000
//! 64-atom structures with "ijSdD" spend ~80 ms computing pairs and ~190 ms faulting in 240 MB of
//! output). So the memory of a large output array is not returned to the OS when Python frees it: it
//! is kept here, within fixed bounds, and the next call that needs a buffer of that size reuses it.
//! Loops that compute and drop lists batch after batch (data pipelines, MD) then touch no fresh pages.

use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Buffers smaller than this are left to the allocator (it reuses small blocks itself).
const MIN_BYTES: usize = 1 << 20;
/// At most this many bytes, in at most this many buffers, are kept for reuse.
const MAX_BYTES: usize = 1 << 30;
const MAX_BUFFERS: usize = 256;
/// A kept buffer serves a request only if it is at most this many times larger.
const MAX_WASTE: usize = 8;
/// Bytes kept in all pools.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// Element types whose buffers are recycled, one pool each.
pub trait Recycled: Copy + Send + Sized + 'static {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;
}

impl Recycled for f64 {
    fn pool() -> &'static Mutex<Vec<Vec<f64>>> {
        static POOL: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());
        &POOL
    }
}

impl Recycled for i64 {
    fn pool() -> &'static Mutex<Vec<Vec<i64>>> {
        static POOL: Mutex<Vec<Vec<i64>>> = Mutex::new(Vec::new());
        &POOL
    }
}

fn bytes<T>(capacity: usize) -> usize {
    capacity * std::mem::size_of::<T>()
}

/// An empty Vec with room for at least `len` elements: the smallest kept buffer that fits, if any,
/// else a new allocation.
pub fn take<T: Recycled>(len: usize) -> Vec<T> {
    if bytes::<T>(len) >= MIN_BYTES {
        let mut pool = T::pool().lock().unwrap_or_else(|e| e.into_inner());
        let fits = |v: &Vec<T>| v.capacity() >= len && v.capacity() <= MAX_WASTE * len;
        let best = (0..pool.len()).filter(|&k| fits(&pool[k])).min_by_key(|&k| pool[k].capacity());
        if let Some(k) = best {
            let v = pool.swap_remove(k);
            KEPT.fetch_sub(bytes::<T>(v.capacity()), Ordering::Relaxed);
            return v;
        }
    }
    Vec::with_capacity(len)
}

/// Keep `v`'s memory for a later `take` when it is large and the pools have room; else free it.
pub fn give<T: Recycled>(mut v: Vec<T>) {
    let size = bytes::<T>(v.capacity());
    if size < MIN_BYTES {
        return;
    }
    v.clear();
    let mut pool = T::pool().lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < MAX_BUFFERS && KEPT.load(Ordering::Relaxed) + size <= MAX_BYTES {
        KEPT.fetch_add(size, Ordering::Relaxed);
        pool.push(v);
    }
}

/// Slices one after the other in a new (recycled) Vec, copied in parallel on the current rayon pool if
/// `parallel`.
pub fn concat<T: Recycled + Sync>(parts: Vec<&[T]>, parallel: bool) -> Vec<T> {
    let total = parts.iter().map(|p| p.len()).sum();
    let mut out: Vec<T> = take(total);
    let mut chunks = Vec::with_capacity(parts.len());
    let mut rest = &mut out.spare_capacity_mut()[..total];
    for p in parts {
        let (head, tail) = rest.split_at_mut(p.len());
        chunks.push((head, p));
        rest = tail;
    }
    let copy = |(dst, src): (&mut [std::mem::MaybeUninit<T>], &[T])| {
        for (d, s) in dst.iter_mut().zip(src) {
            d.write(*s);
        }
    };
    if parallel {
        chunks.into_par_iter().for_each(copy);
    } else {
        chunks.into_iter().for_each(copy);
    }
    // SAFETY: every element of 0..total was written above.
    unsafe { out.set_len(total) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(sizes: &[usize], start: i64) -> Vec<Vec<i64>> {
        let mut next = start;
        sizes
            .iter()
            .map(|&n| {
                next += n as i64;
                (next - n as i64..next).collect()
            })
            .collect()
    }

    #[test]
    fn concat_equals_naive_concatenation() {
        let big = MIN_BYTES / 8 + 1000; // recycled sizes, and small ones left to the allocator
        for sizes in [vec![], vec![0, 0], vec![3, 0, 5], vec![big, 7, big / 3], vec![0, big]] {
            let owned = parts(&sizes, 1);
            let expected: Vec<i64> = owned.concat();
            for parallel in [false, true] {
                let got = concat(owned.iter().map(|p| p.as_slice()).collect(), parallel);
                assert_eq!(got, expected, "sizes {sizes:?}, parallel {parallel}");
                give(got);
            }
        }
    }

    #[test]
    fn kept_buffers_are_reused_empty_and_overwritten() {
        let len = MIN_BYTES / 8 * 2;
        let mut stale: Vec<f64> = take(len);
        stale.resize(len, f64::NAN); // fills the memory that a later take may reuse
        give(stale);
        let reused: Vec<f64> = take(len);
        assert!(reused.is_empty() && reused.capacity() >= len);
        give(reused);
        let a: Vec<f64> = (0..len / 2).map(|k| k as f64).collect();
        let b: Vec<f64> = (0..len / 2).map(|k| -(k as f64)).collect();
        let joined = concat(vec![&a, &b], true);
        assert_eq!(joined.len(), len);
        assert!(joined[..len / 2] == a[..] && joined[len / 2..] == b[..]);
        let small: Vec<f64> = take(10); // below MIN_BYTES: a plain allocation
        assert!(small.is_empty() && small.capacity() >= 10);
        assert!(KEPT.load(Ordering::Relaxed) <= MAX_BYTES);
    }
}
