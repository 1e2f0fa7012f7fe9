//! Process metrics with their conventional names (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), read from `/proc/self` at scrape time. On a
//! system without `/proc` the collector reports nothing rather than failing the scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Reads `/proc/self` on every scrape.
#[derive(Debug)]
pub(crate) struct ProcessCollector;

/// What one scrape reads.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: f64,
    resident_bytes: i64,
    virtual_bytes: i64,
    threads: i64,
    start_time_seconds: f64,
    open_fds: i64,
    max_fds: i64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(sample) = read_sample() else {
            return Ok(());
        };
        let metric = encoder.encode_descriptor(
            "process_cpu",
            "User and system CPU time spent",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        ConstCounter::new(sample.cpu_seconds).encode(metric)?;
        let gauges = [
            (
                "process_resident_memory",
                "Resident memory size",
                Some(Unit::Bytes),
                sample.resident_bytes,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size",
                Some(Unit::Bytes),
                sample.virtual_bytes,
            ),
            ("process_threads", "OS threads", None, sample.threads),
            (
                "process_open_fds",
                "Open file descriptors",
                None,
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Limit of open file descriptors",
                None,
                sample.max_fds,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        ConstGauge::new(sample.start_time_seconds).encode(metric)?;
        Ok(())
    }
}

fn read_sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| parse_boot_time(&text));
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|entries| entries.count() as i64)
        .unwrap_or(0);
    let mut sample = parse_stat(&stat, USER_HZ, boot_time.unwrap_or(0))?;
    // Resident size from `status` (in kB) rather than pages × page size, which varies.
    sample.resident_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_resident_kb(&status))
        .map_or(0, |kb| kb * 1024);
    sample.open_fds = open_fds;
    sample.max_fds = limits
        .as_deref()
        .and_then(parse_max_fds)
        .unwrap_or_default();
    Some(sample)
}

/// Parses `/proc/self/stat`: fields after the parenthesised command name, which may
/// itself contain spaces and parentheses.
fn parse_stat(stat: &str, ticks: f64, boot_time: i64) -> Option<Sample> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field numbers from proc(5), minus 3 (pid, comm and state come before `rest[1]`).
    let field = |number: usize| fields.get(number - 3).and_then(|v| v.parse::<i64>().ok());
    let utime = field(14)?;
    let stime = field(15)?;
    let threads = field(20)?;
    let start_ticks = field(22)?;
    let virtual_bytes = field(23)?;
    Some(Sample {
        cpu_seconds: (utime + stime) as f64 / ticks,
        virtual_bytes,
        threads,
        start_time_seconds: boot_time as f64 + start_ticks as f64 / ticks,
        ..Sample::default()
    })
}

fn parse_boot_time(stat: &str) -> Option<i64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

fn parse_max_fds(limits: &str) -> Option<i64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// USER_HZ: `/proc` reports times in these ticks, fixed at 100 by the Linux ABI on
/// every architecture (unlike the kernel's internal HZ), so no `sysconf` call is needed.
const USER_HZ: f64 = 100.0;

fn parse_resident_kb(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        // 52 fields as in proc(5); the command contains ") (" and spaces.
        let stat = "4242 (gu) (re um) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 \
                    7 0 1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 \
                    0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let sample = parse_stat(stat, 100.0, 1_700_000_000).unwrap();
        assert_eq!(
            sample,
            Sample {
                cpu_seconds: 4.0,
                virtual_bytes: 123_456_789,
                threads: 7,
                start_time_seconds: 1_700_000_010.0,
                ..Sample::default()
            }
        );
    }

    #[test]
    fn parses_boot_time_and_fd_limit() {
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_resident_kb("Name:\tgureum\nVmRSS:\t   20480 kB\nThreads: 3\n"),
            Some(20_480)
        );
    }

    #[test]
    fn reads_this_process() {
        let sample = read_sample().expect("/proc/self is readable on Linux");
        assert!(sample.resident_bytes > 0);
        assert!(sample.threads >= 1);
        assert!(sample.open_fds > 0 && sample.max_fds >= sample.open_fds);
    }
}
