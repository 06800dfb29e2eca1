//! Load for the benchmarks: clients calling in a loop, each on a thread of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The benchmarks' gateway read (bench_edge, bench_gateway, so that both send the same
/// request): any valid CID, since the router checks it and the backend answers every request
/// alike.
pub const READ_CID: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
/// A clean last segment: the native read route takes the read, without any Wasm filter.
pub const CLEAN: &str = "readme";
/// A last segment with an escape, so that the router decides the read rather than the native
/// read route. A space, not an unreserved character: Envoy Gateway's path normalisation
/// decodes `%6D` to `m` before routing, and the read would be a clean one there.
pub const ESCAPED: &str = "read%20me";

/// `GET /ipfs/<READ_CID>/<segment>` to `host`; with `marked`, carrying the router's mark for
/// the gateway, as a baseline without the router sends it itself.
pub fn gateway_read(host: &str, segment: &str, marked: bool) -> Vec<u8> {
    let mark = if marked { format!("{}: gateway\r\n", edge_logic::backend::BACKEND_HEADER) } else { String::new() };
    format!("GET /ipfs/{READ_CID}/{segment} HTTP/1.1\r\nHost: {host}\r\n{mark}\r\n").into_bytes()
}

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
