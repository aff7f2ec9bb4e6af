//! Thread counts: run native code on the calling thread, the global rayon pool, or a cached pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Run `f(n)` with `threads` native threads, n their number: 1 on the calling thread (the native code
/// then makes no rayon calls, which saves handing each call to a pool thread and back, ~15 µs), 0 on the
/// global rayon pool (all cores or RAYON_NUM_THREADS), more on a cached pool of that many workers.
pub fn on_pool<R: Send>(threads: usize, f: impl FnOnce(usize) -> R + Send) -> R {
    if threads <= 1 {
        return f(if threads == 1 { 1 } else { rayon::current_num_threads() });
    }
    pool_of(threads).install(|| f(threads))
}

/// Run `f` on a rayon pool of `threads` workers (0 = the global pool), for code that uses rayon directly
/// (so that threads = 1 means one thread, not the global pool).
pub fn pooled<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    if threads == 0 {
        return f();
    }
    pool_of(threads).install(f)
}

/// The cached rayon pool of `threads` workers.
fn pool_of(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: Mutex<Option<HashMap<usize, Arc<rayon::ThreadPool>>>> = Mutex::new(None);
    POOLS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(threads)
        .or_insert_with(|| Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()))
        .clone()
}
