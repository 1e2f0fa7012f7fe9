//! Time series of invocations for charts and the console's function table: requests,
//! errors, duration percentiles, cold starts, concurrency and list-price cost per time
//! step, folded from invocation records one at a time (the records are never all held:
//! memory is bounded by the number of steps and functions, not of invocations).
//!
//! Percentiles come from a log-linear histogram (32 linear sub-bins per power of two of
//! microseconds), so a reported percentile is within about 3% of the exact one, and never
//! outside the smallest and largest duration seen. Peak concurrency is exact for the
//! invocations in the window (a sweep over start and end times, which needs the records
//! in start order, and it also counts runs still going at each step's start); average
//! concurrency is the busy time inside a step (a long run is spread over the steps it
//! overlaps) divided by the step's length (the elapsed part of the newest step).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use rust_decimal::Decimal;

use crate::bill::{gb_seconds, list_cost, mb_ms};
use crate::price::Prices;

/// Linear sub-bins per power of two: 2^5 = 32, a relative bin width of at most 1/32.
const SUB_BIN_BITS: u32 = 5;

/// One invocation as the series needs it.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The function.
    pub function: &'a str,
    /// Start, ms since the Unix epoch.
    pub started_at_ms: i64,
    /// Wall time in microseconds.
    pub duration_us: i64,
    /// Whether it ran and was billed (a throttled invocation did not run).
    pub billed: bool,
    /// Whether it failed or timed out.
    pub error: bool,
    /// Whether it paid a cold start.
    pub cold_start: bool,
    /// Memory limit it ran with.
    pub memory_mb: u32,
    /// Billed milliseconds.
    pub billed_ms: i64,
}

/// Counters of a step, a function or the whole window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Invocations that ran.
    pub requests: u64,
    /// Of those, failed or timed out.
    pub errors: u64,
    /// Refused before running.
    pub throttled: u64,
    /// Invocations that paid a cold start.
    pub cold_starts: u64,
    /// Duration percentiles and maximum in ms (`None` without requests).
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Longest run.
    pub max_ms: Option<f64>,
    /// Most invocations running at one moment.
    pub peak_concurrency: u64,
    /// Busy time ÷ the step (only meaningful for a step).
    pub avg_concurrency: f64,
    /// GB-seconds used.
    pub gb_seconds: Decimal,
    /// Cost at list price, without the free tier.
    pub cost: Decimal,
}

impl Stats {
    /// Share of invocations (run or refused) that paid a cold start, 0 without any.
    pub fn cold_start_share(&self) -> f64 {
        let all = self.requests + self.throttled;
        if all == 0 {
            0.0
        } else {
            self.cold_starts as f64 / all as f64
        }
    }
}

/// The folded series of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Start of the first step (aligned to the step), ms since the Unix epoch.
    pub since_ms: i64,
    /// End of the window.
    pub until_ms: i64,
    /// Length of a step in ms.
    pub step_ms: i64,
    /// The whole window.
    pub total: Stats,
    /// Per function, most requests first.
    pub functions: Vec<(String, Stats)>,
    /// One per step from `since_ms`, zero-filled.
    pub points: Vec<(i64, Stats)>,
}

/// Step lengths a window is divided into when the caller names none.
const NICE_STEPS_MS: [i64; 17] = [
    1_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/// Most steps a series may have.
pub const MAX_POINTS: i64 = 1_440;

/// The smallest nice step that divides `window_ms` into at most `points` steps.
pub fn nice_step_ms(window_ms: i64, points: i64) -> i64 {
    let wanted = ceil_div(window_ms.max(1), points.max(1));
    NICE_STEPS_MS
        .iter()
        .copied()
        .find(|step| *step >= wanted)
        .unwrap_or_else(|| ceil_div(wanted, 86_400_000) * 86_400_000)
}

/// `a / b` rounded up, for positive `a` and `b` (`i64::div_ceil` is not stable).
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// Start of the step containing `ms`.
pub fn align_ms(ms: i64, step_ms: i64) -> i64 {
    ms.div_euclid(step_ms) * step_ms
}

/// A log-linear histogram of durations in µs; sparse (few distinct bins per step).
#[derive(Debug, Clone, Default)]
struct Histogram {
    bins: BTreeMap<u32, u64>,
    count: u64,
    min_us: u64,
    max_us: u64,
}

impl Histogram {
    fn add(&mut self, us: u64) {
        *self.bins.entry(bin_of(us)).or_default() += 1;
        if self.count == 0 || us < self.min_us {
            self.min_us = us;
        }
        self.max_us = self.max_us.max(us);
        self.count += 1;
    }

    /// The `q` quantile in ms: the middle of the bin holding rank ⌈q·n⌉, kept inside
    /// [min, max].
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (bin, n) in &self.bins {
            seen += n;
            if seen >= rank {
                let (low, high) = bin_bounds(*bin);
                let middle = (low + high) / 2.0;
                let us = middle.clamp(self.min_us as f64, self.max_us as f64);
                return Some(us / 1000.0);
            }
        }
        Some(self.max_us as f64 / 1000.0)
    }
}

/// Bin of a duration: values below 32 µs get a bin each; above, each power of two is cut
/// into 32 equal sub-bins.
fn bin_of(us: u64) -> u32 {
    let sub = 1u64 << SUB_BIN_BITS;
    if us < sub {
        return us as u32;
    }
    let exponent = 63 - us.leading_zeros();
    let shift = exponent - SUB_BIN_BITS;
    let offset = ((us >> shift) - sub) as u32;
    (exponent - SUB_BIN_BITS + 1) * sub as u32 + offset
}

/// The `[low, high)` µs range of a bin.
fn bin_bounds(bin: u32) -> (f64, f64) {
    let sub = 1u32 << SUB_BIN_BITS;
    if bin < sub {
        return (f64::from(bin), f64::from(bin) + 1.0);
    }
    let group = bin / sub; // ≥ 1
    let offset = bin % sub;
    let shift = group - 1;
    let low = f64::from(sub + offset) * 2f64.powi(shift as i32);
    (low, low + 2f64.powi(shift as i32))
}

/// Running counters of one scope (step, function or window).
#[derive(Debug, Default)]
struct Acc {
    requests: u64,
    errors: u64,
    throttled: u64,
    cold_starts: u64,
    busy_us: u64,
    peak: u64,
    mb_ms: u64,
    durations: Histogram,
}

impl Acc {
    fn add(&mut self, sample: &Sample<'_>, running: u64) {
        self.cold_starts += u64::from(sample.cold_start);
        if !sample.billed {
            self.throttled += 1;
            return;
        }
        let us = sample.duration_us.max(0) as u64;
        self.requests += 1;
        self.errors += u64::from(sample.error);
        self.peak = self.peak.max(running);
        self.mb_ms = self.mb_ms.saturating_add(mb_ms(
            u64::from(sample.memory_mb),
            sample.billed_ms.max(0) as u64,
        ));
        self.durations.add(us);
    }

    /// `step_ms`: the length of the step this covers (none for a function or the window).
    fn finish(&self, prices: &Prices, step_ms: Option<i64>) -> Stats {
        Stats {
            requests: self.requests,
            errors: self.errors,
            throttled: self.throttled,
            cold_starts: self.cold_starts,
            p50_ms: self.durations.quantile_ms(0.50),
            p95_ms: self.durations.quantile_ms(0.95),
            p99_ms: self.durations.quantile_ms(0.99),
            max_ms: (self.durations.count > 0).then(|| self.durations.max_us as f64 / 1000.0),
            peak_concurrency: self.peak,
            avg_concurrency: step_ms
                .filter(|step| *step > 0)
                .map_or(0.0, |step| self.busy_us as f64 / (step as f64 * 1000.0)),
            gb_seconds: gb_seconds(self.mb_ms),
            cost: list_cost(prices, self.requests, self.mb_ms),
        }
    }
}

/// Invocations still running at the latest start seen: their end times, soonest first.
#[derive(Debug, Default)]
struct Running(BinaryHeap<Reverse<i64>>);

impl Running {
    /// How many still run at `at_us` (the ones that ended by then are forgotten).
    fn at(&mut self, at_us: i64) -> u64 {
        while self.0.peek().is_some_and(|Reverse(end)| *end <= at_us) {
            self.0.pop();
        }
        self.0.len() as u64
    }

    /// Counts the invocation starting at `start_us` and ending at `end_us`; returns how
    /// many run at its start (itself included).
    fn start(&mut self, start_us: i64, end_us: i64) -> u64 {
        self.at(start_us);
        self.0.push(Reverse(end_us));
        self.0.len() as u64
    }
}

/// Folds samples, given in start order, into a [`Series`].
#[derive(Debug)]
pub struct SeriesBuilder {
    since_ms: i64,
    until_ms: i64,
    step_ms: i64,
    total: (Acc, Running),
    functions: HashMap<String, (Acc, Running)>,
    points: Vec<Acc>,
    /// Steps whose start has been swept (runs still going then count towards their
    /// peak, so a step where long runs continue and nothing starts is not 0).
    swept: usize,
}

impl SeriesBuilder {
    /// A window from `since_ms` (aligned down to the step) to `until_ms`.
    pub fn new(since_ms: i64, until_ms: i64, step_ms: i64) -> SeriesBuilder {
        let step_ms = step_ms.max(1);
        let since_ms = align_ms(since_ms, step_ms);
        let steps = ceil_div((until_ms - since_ms).max(1), step_ms).max(1) as usize;
        SeriesBuilder {
            since_ms,
            until_ms,
            step_ms,
            total: Default::default(),
            functions: HashMap::new(),
            points: (0..steps).map(|_| Acc::default()).collect(),
            swept: 0,
        }
    }

    /// Start of step `index`, in µs.
    fn step_start_us(&self, index: usize) -> i64 {
        (self.since_ms + index as i64 * self.step_ms).saturating_mul(1000)
    }

    /// Records the runs still going at the start of every step up to `index`.
    fn sweep_to(&mut self, index: usize) {
        // There is always at least one step.
        let last = index.min(self.points.len() - 1);
        while self.swept <= last {
            let running = self.total.1.at(self.step_start_us(self.swept));
            let point = &mut self.points[self.swept];
            point.peak = point.peak.max(running);
            self.swept += 1;
        }
    }

    /// Start of the window (aligned); records from here on belong in it.
    pub fn since_ms(&self) -> i64 {
        self.since_ms
    }

    /// Adds one invocation; samples outside the window are ignored.
    pub fn add(&mut self, sample: &Sample<'_>) {
        if sample.started_at_ms < self.since_ms || sample.started_at_ms >= self.until_ms {
            return;
        }
        let start_us = sample.started_at_ms.saturating_mul(1000);
        let end_us = start_us.saturating_add(sample.duration_us.max(0));
        let ran = sample.billed;
        let index = ((sample.started_at_ms - self.since_ms) / self.step_ms) as usize;
        self.sweep_to(index);
        let running = if ran {
            self.total.1.start(start_us, end_us)
        } else {
            0
        };
        self.total.0.add(sample, running);
        if let Some(point) = self.points.get_mut(index) {
            point.add(sample, running);
        }
        if ran {
            // Busy time goes to every step the run overlaps, not only the one it began in.
            let step_us = self.step_ms.saturating_mul(1000);
            let mut step = index;
            while step < self.points.len() {
                let from = self.step_start_us(step);
                let overlap = end_us.min(from + step_us) - start_us.max(from);
                if overlap <= 0 {
                    break;
                }
                self.points[step].busy_us += overlap as u64;
                step += 1;
            }
        }
        let function = match self.functions.get_mut(sample.function) {
            Some(function) => function,
            None => self
                .functions
                .entry(sample.function.to_string())
                .or_default(),
        };
        let running = if ran {
            function.1.start(start_us, end_us)
        } else {
            0
        };
        function.0.add(sample, running);
    }

    /// The series, priced with `prices`.
    pub fn finish(mut self, prices: &Prices) -> Series {
        self.sweep_to(self.points.len());
        let mut functions: Vec<(String, Stats)> = self
            .functions
            .into_iter()
            .map(|(name, (acc, _))| (name, acc.finish(prices, None)))
            .collect();
        functions.sort_by(|a, b| {
            (b.1.requests + b.1.throttled)
                .cmp(&(a.1.requests + a.1.throttled))
                .then_with(|| a.0.cmp(&b.0))
        });
        let step_ms = self.step_ms;
        let since_ms = self.since_ms;
        let until_ms = self.until_ms;
        Series {
            since_ms,
            until_ms: self.until_ms,
            step_ms,
            total: self.total.0.finish(prices, None),
            functions,
            points: self
                .points
                .iter()
                .enumerate()
                .map(|(i, acc)| {
                    let t_ms = since_ms + i as i64 * step_ms;
                    // The newest step is still going: average over its elapsed part.
                    let length = step_ms.min(until_ms - t_ms).max(1);
                    (t_ms, acc.finish(prices, Some(length)))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(function: &str, started_at_ms: i64, duration_ms: i64) -> Sample<'_> {
        Sample {
            function,
            started_at_ms,
            duration_us: duration_ms * 1000,
            billed: true,
            error: false,
            cold_start: false,
            memory_mb: 128,
            billed_ms: duration_ms.max(1),
        }
    }

    #[test]
    fn bins_cover_every_duration_in_order() {
        let mut last = 0;
        for us in [0u64, 1, 31, 32, 33, 63, 64, 100, 1_000, 65_535, 1 << 40] {
            let bin = bin_of(us);
            assert!(bin >= last, "bin of {us} went backwards");
            last = bin;
            let (low, high) = bin_bounds(bin);
            assert!(
                (low..high).contains(&(us as f64)),
                "{us} µs outside its bin {bin} = [{low}, {high})"
            );
            assert!((high - low) / low.max(1.0) <= 1.0 / 32.0 + f64::EPSILON || us < 32);
        }
    }

    #[test]
    fn percentiles_are_within_three_percent_and_inside_the_range() {
        let mut histogram = Histogram::default();
        for ms in 1..=1000u64 {
            histogram.add(ms * 1000);
        }
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = histogram.quantile_ms(q).unwrap();
            assert!(
                (got - exact).abs() / exact <= 0.03,
                "p{} = {got}, exact {exact}",
                q * 100.0
            );
        }
        let mut one = Histogram::default();
        one.add(1234);
        assert_eq!(
            one.quantile_ms(0.99),
            Some(1.234),
            "a single value is exact"
        );
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
    }

    #[test]
    fn steps_are_zero_filled_and_aligned() {
        let mut builder = SeriesBuilder::new(60_500, 300_000, 60_000);
        assert_eq!(builder.since_ms(), 60_000);
        builder.add(&sample("a", 61_000, 10));
        builder.add(&sample("a", 250_000, 30));
        builder.add(&sample("b", 250_100, 20));
        builder.add(&sample("a", 59_000, 10)); // before the window
        builder.add(&sample("a", 300_000, 10)); // at its end
        let series = builder.finish(&Prices::default());
        let times: Vec<i64> = series.points.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [60_000, 120_000, 180_000, 240_000]);
        let requests: Vec<u64> = series.points.iter().map(|(_, s)| s.requests).collect();
        assert_eq!(requests, [1, 0, 0, 2]);
        assert_eq!(series.points[1].1.p50_ms, None);
        assert_eq!(series.total.requests, 3);
        assert_eq!(series.functions[0].0, "a");
        assert_eq!(series.functions[0].1.requests, 2);
        assert_eq!(series.functions[1].0, "b");
        // 30 ms + 20 ms of busy time in a 60 s step.
        let avg = series.points[3].1.avg_concurrency;
        assert!((avg - 0.05 / 60.0).abs() < 1e-9, "avg concurrency {avg}");
    }

    #[test]
    fn peak_concurrency_counts_overlapping_runs() {
        let mut builder = SeriesBuilder::new(0, 10_000, 1_000);
        // Three overlap at t = 120 ms; the fourth starts after the first two ended.
        builder.add(&sample("a", 100, 50));
        builder.add(&sample("a", 110, 50));
        builder.add(&sample("b", 120, 500));
        builder.add(&sample("a", 200, 10));
        let series = builder.finish(&Prices::default());
        assert_eq!(series.total.peak_concurrency, 3);
        assert_eq!(series.points[0].1.peak_concurrency, 3);
        let a = &series.functions.iter().find(|(n, _)| n == "a").unwrap().1;
        assert_eq!(a.peak_concurrency, 2);
    }

    #[test]
    fn long_runs_count_in_every_step_they_overlap() {
        // 10 s steps; one run from 5 s to 35 s, nothing else starts.
        let mut builder = SeriesBuilder::new(0, 50_000, 10_000);
        builder.add(&sample("a", 5_000, 30_000));
        let series = builder.finish(&Prices::default());
        let avg: Vec<f64> = series
            .points
            .iter()
            .map(|(_, s)| s.avg_concurrency)
            .collect();
        assert_eq!(avg, [0.5, 1.0, 1.0, 0.5, 0.0]);
        let peak: Vec<u64> = series
            .points
            .iter()
            .map(|(_, s)| s.peak_concurrency)
            .collect();
        assert_eq!(peak, [1, 1, 1, 1, 0], "running at the starts of steps 1–3");
        assert!(
            series
                .points
                .iter()
                .all(|(_, s)| s.avg_concurrency <= s.peak_concurrency as f64),
            "an average never exceeds the peak"
        );
    }

    #[test]
    fn the_newest_step_is_averaged_over_its_elapsed_part() {
        // The window ends 2 s into its last 10 s step; a 1 s run there is 0.5 busy.
        let mut builder = SeriesBuilder::new(0, 12_000, 10_000);
        builder.add(&sample("a", 10_500, 1_000));
        let series = builder.finish(&Prices::default());
        assert!((series.points[1].1.avg_concurrency - 0.5).abs() < 1e-9);
    }

    #[test]
    fn errors_throttles_cold_starts_and_cost() {
        let mut builder = SeriesBuilder::new(0, 1_000, 1_000);
        let mut failed = sample("a", 1, 100);
        failed.error = true;
        failed.cold_start = true;
        builder.add(&failed);
        let mut refused = sample("a", 2, 0);
        refused.billed = false;
        refused.billed_ms = 0;
        builder.add(&refused);
        builder.add(&sample("a", 3, 1000));
        let series = builder.finish(&Prices::default());
        let total = &series.total;
        assert_eq!(
            (
                total.requests,
                total.errors,
                total.throttled,
                total.cold_starts
            ),
            (2, 1, 1, 1)
        );
        assert!((total.cold_start_share() - 1.0 / 3.0).abs() < 1e-9);
        // 128 MB × 1,100 ms = 140,800 MB-ms = 0.1375 GB-s.
        assert_eq!(total.gb_seconds, Decimal::new(1375, 4));
        assert_eq!(
            total.cost,
            list_cost(&Prices::default(), 2, 140_800),
            "list price of the two runs; the refused one is free"
        );
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step_ms(3_600_000, 60), 60_000);
        assert_eq!(nice_step_ms(900_000, 60), 15_000);
        assert_eq!(nice_step_ms(7 * 86_400_000, 60), 10_800_000);
        assert_eq!(nice_step_ms(365 * 86_400_000, 60), 7 * 86_400_000);
        assert_eq!(align_ms(61_234, 60_000), 60_000);
    }
}
