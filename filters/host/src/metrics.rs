//! Proxy-Wasm metrics without the SDK's panics: defined once by name (when
//! a filter is configured), then counted by id.

use crate::HostError;
use proxy_wasm::types::LogLevel;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_define_metric(metric_type: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
}

/// `MetricType` of the ABI.
const COUNTER: u32 = 0;
const GAUGE: u32 = 1;

/// The ids of a filter's series, in the order of their names; a series the
/// host would not define is `None` and never counted.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    ids: Vec<Option<u32>>,
}

impl Metrics {
    /// Defines every series (`true`: a gauge), logging the first the host
    /// refuses: a metric must not stop the filter.
    pub fn define<'a>(series: impl IntoIterator<Item = (&'a str, bool)>) -> Metrics {
        let mut failed = None;
        let ids = series
            .into_iter()
            .map(|(name, gauge)| {
                let mut id = 0;
                let kind = if gauge { GAUGE } else { COUNTER };
                match unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) } {
                    0 => Some(id),
                    s => {
                        failed.get_or_insert((name.to_string(), HostError(s)));
                        None
                    }
                }
            })
            .collect();
        if let Some((name, e)) = failed {
            crate::log(LogLevel::Warn, &format!("cannot define metric {name}: host status {e}"));
        }
        Metrics { ids }
    }

    /// Adds one to counter `i` (nothing to do when it is not defined; the
    /// host's status is of no use to a request).
    pub fn count(&self, i: usize) {
        self.add(i, 1);
    }

    /// Adds `n` to counter `i`.
    pub fn add(&self, i: usize, n: u64) {
        if let Some(Some(id)) = self.ids.get(i) {
            unsafe {
                let _ = proxy_increment_metric(*id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Sets gauge `i`.
    pub fn set(&self, i: usize, value: u64) {
        if let Some(Some(id)) = self.ids.get(i) {
            unsafe {
                let _ = proxy_record_metric(*id, value);
            }
        }
    }
}
