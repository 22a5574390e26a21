//! Live samples from libvirt's cumulative counters: two readings of a domain's stats become one
//! per-interval [`UsageSample`]. Pure: the caller reads the stats and the clock.
//!
//! - CPU: the difference of `cpu.time`.
//! - Memory: the guest's own view at the second reading, `balloon.available - balloon.usable`
//!   (memory the guest cannot hand out without swapping), else `available - unused`, else the
//!   QEMU process's resident set (`balloon.rss`, the host's view, includes QEMU itself).
//! - Disk and network: the sum over devices present in both readings of the differences of
//!   `rd/wr.bytes` and `rx/tx.bytes`.
//!
//! A counter that went backwards (the domain restarted) or is missing from either reading makes
//! its field unmeasured for that interval (NULL in the store), so a restart never shows up as a
//! burst or a negative value.

use super::trace::Fields;
use crate::hypervisor::DomainStats;
use crate::model::UsageSample;

/// The sample for the interval between two readings (`prev_at < cur_at`, Unix seconds), with
/// the fields it measures; `None` when the interval is empty, backwards or absurdly long.
/// Store it with [`super::Store::append_fields`].
pub fn sample_between(
    prev: &DomainStats,
    prev_at: i64,
    cur: &DomainStats,
    cur_at: i64,
) -> Option<(UsageSample, Fields)> {
    let interval = u32::try_from(cur_at.checked_sub(prev_at)?)
        .ok()
        .filter(|&s| s > 0)?;
    let mut s = UsageSample {
        timestamp: cur_at,
        interval_s: interval,
        ..UsageSample::default()
    };
    let mut fields = Fields::default();
    let mut set = |f: Fields, v: Option<u64>, slot: &mut u64| {
        if let Some(v) = v {
            *slot = v;
            fields = fields.union(f);
        }
    };
    set(
        Fields::CPU_TIME,
        delta(prev.cpu_time_ns, cur.cpu_time_ns),
        &mut s.cpu_time_ns,
    );
    set(Fields::MEMORY, memory_used_kib(cur), &mut s.memory_used_kib);
    let blocks = |f: fn(&crate::hypervisor::BlockStats) -> u64| {
        sum_deltas(
            prev.blocks.iter().map(|b| (b.name.as_str(), f(b))),
            cur.blocks.iter().map(|b| (b.name.as_str(), f(b))),
        )
    };
    set(
        Fields::DISK_READ,
        blocks(|b| b.rd_bytes),
        &mut s.disk_read_bytes,
    );
    set(
        Fields::DISK_WRITE,
        blocks(|b| b.wr_bytes),
        &mut s.disk_write_bytes,
    );
    let nets = |f: fn(&crate::hypervisor::NetStats) -> u64| {
        sum_deltas(
            prev.nets.iter().map(|n| (n.name.as_str(), f(n))),
            cur.nets.iter().map(|n| (n.name.as_str(), f(n))),
        )
    };
    set(Fields::NET_RX, nets(|n| n.rx_bytes), &mut s.net_rx_bytes);
    set(Fields::NET_TX, nets(|n| n.tx_bytes), &mut s.net_tx_bytes);
    Some((s, fields))
}

/// Memory the guest uses, KiB, from one reading (see the module doc).
pub fn memory_used_kib(st: &DomainStats) -> Option<u64> {
    let avail = st.balloon_available_kib;
    avail
        .zip(st.balloon_usable_kib)
        .or(avail.zip(st.balloon_unused_kib))
        .and_then(|(a, free)| a.checked_sub(free))
        .or(st.balloon_rss_kib)
}

fn delta(prev: Option<u64>, cur: Option<u64>) -> Option<u64> {
    cur?.checked_sub(prev?)
}

/// Sum of per-device differences over devices in both readings; `None` if a counter went
/// backwards or no device is in both.
fn sum_deltas<'a>(
    prev: impl Iterator<Item = (&'a str, u64)>,
    cur: impl Iterator<Item = (&'a str, u64)>,
) -> Option<u64> {
    let prev: Vec<(&str, u64)> = prev.collect();
    let mut total: Option<u64> = None;
    for (name, c) in cur {
        if let Some(&(_, p)) = prev.iter().find(|(n, _)| *n == name) {
            total = Some(total.unwrap_or(0).saturating_add(c.checked_sub(p)?));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::{BlockStats, NetStats};

    fn reading(cpu: u64, rd: u64, rx: u64) -> DomainStats {
        DomainStats {
            name: "d".into(),
            cpu_time_ns: Some(cpu),
            balloon_available_kib: Some(1_000_000),
            balloon_usable_kib: Some(600_000),
            balloon_unused_kib: Some(500_000),
            balloon_rss_kib: Some(900_000),
            blocks: vec![
                BlockStats {
                    name: "vda".into(),
                    rd_bytes: rd,
                    wr_bytes: 10,
                    ..Default::default()
                },
                BlockStats {
                    name: "vdb".into(),
                    rd_bytes: rd * 2,
                    wr_bytes: 0,
                    ..Default::default()
                },
            ],
            nets: vec![NetStats {
                name: "vnet0".into(),
                rx_bytes: rx,
                tx_bytes: 1,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn differences_over_the_interval() {
        let (s, f) =
            sample_between(&reading(1_000, 100, 5), 10, &reading(3_000, 150, 9), 15).unwrap();
        assert_eq!(f, Fields::ALL.without(Fields::CPU_PERCENT));
        assert_eq!(
            s,
            UsageSample {
                timestamp: 15,
                interval_s: 5,
                cpu_time_ns: 2_000,
                cpu_percent: None,
                memory_used_kib: 400_000,
                disk_read_bytes: 150,
                disk_write_bytes: 0,
                net_rx_bytes: 4,
                net_tx_bytes: 0,
            }
        );
    }

    #[test]
    fn a_restart_leaves_fields_unmeasured() {
        let (s, f) = sample_between(&reading(9_000, 100, 5), 0, &reading(10, 1, 9), 5).unwrap();
        assert!(!f.contains(Fields::CPU_TIME) && !f.contains(Fields::DISK_READ));
        assert!(f.contains(Fields::NET_RX) && f.contains(Fields::MEMORY));
        assert_eq!((s.cpu_time_ns, s.net_rx_bytes), (0, 4));
        assert!(sample_between(&reading(0, 0, 0), 5, &reading(0, 0, 0), 5).is_none());
        assert!(sample_between(&reading(0, 0, 0), 6, &reading(0, 0, 0), 5).is_none());
    }

    #[test]
    fn memory_prefers_the_guests_view() {
        let mut r = reading(0, 0, 0);
        assert_eq!(memory_used_kib(&r), Some(400_000));
        r.balloon_usable_kib = None;
        assert_eq!(memory_used_kib(&r), Some(500_000));
        r.balloon_available_kib = None;
        assert_eq!(memory_used_kib(&r), Some(900_000));
        r.balloon_rss_kib = None;
        assert_eq!(memory_used_kib(&r), None);
        // The test driver reports only state: nothing is measured.
        let bare = DomainStats::default();
        let (_, f) = sample_between(&bare, 0, &bare, 1).unwrap();
        assert_eq!(f, Fields::default());
    }
}
