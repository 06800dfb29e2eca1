//! Load for the benchmarks: clients calling in a loop, each on a thread of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs each client (one call per loop) on a thread of its own for `seconds`: the
/// calls completed and the seconds they took, from when every thread was started.
pub fn run_for<F: FnMut() + Send + 'static>(seconds: u64, clients: Vec<F>) -> (u64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut one| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    one();
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a client thread panicked");
    }
    (count.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}
