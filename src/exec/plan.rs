//! Pure decisions of the orchestrator: what to give a domain for a command, whether the host can
//! afford it, how to grow while it runs, and which queued command goes next.

use super::analysis::Usage;
use crate::model::IoTune;
use crate::store::exec::{QueueState, Queued, Reservation};
use serde::{Deserialize, Serialize};

/// What a domain has when the command arrives (restored afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub vcpus: u32,
    pub max_vcpus: u32,
    /// Current (balloon) memory, KiB.
    pub memory_kib: u64,
    /// The most the balloon can give without a restart, KiB.
    pub max_memory_kib: u64,
}

/// What the host can give, net of what running commands and reservations hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoom {
    pub cpus: u32,
    /// Memory free for new allocations, KiB.
    pub memory_kib: u64,
}

/// The allocation a command runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub vcpus: u32,
    pub memory_kib: u64,
    /// Limits that cut the plan below the prediction (max memory, max vCPUs, host CPUs).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn extra_vcpus(&self, base: &Baseline) -> u32 {
        self.vcpus.saturating_sub(base.vcpus)
    }
    pub fn extra_memory_kib(&self, base: &Baseline) -> u64 {
        self.memory_kib.saturating_sub(base.memory_kib)
    }
}

/// Memory kept free in the guest on top of what it uses and the command needs: the larger of
/// 64 MiB and 10% of the total (page cache, the agent, the kernel's own watermarks).
pub fn headroom_kib(total_kib: u64) -> u64 {
    (64 * 1024).max(total_kib / 10)
}

/// The allocation for a command predicted (at its tier) to need `need`, in a guest that now
/// uses `guest_used_kib`. Never shrinks below the baseline; capped at the domain's maximums and
/// the host's CPUs. `Err` names what the host lacks (the command must wait).
pub fn plan(
    need: &Usage,
    guest_used_kib: u64,
    base: &Baseline,
    room: &HostRoom,
) -> std::result::Result<Plan, String> {
    let mut notes = Vec::new();
    let want_mem = guest_used_kib + need.memory_kib.max(0.0).ceil() as u64;
    let want_mem = want_mem + headroom_kib(want_mem);
    let mut memory_kib = want_mem.max(base.memory_kib);
    if memory_kib > base.max_memory_kib {
        notes.push(format!(
            "memory wanted {} is above the domain's maximum {}",
            crate::units::format_kib(memory_kib),
            crate::units::format_kib(base.max_memory_kib)
        ));
        memory_kib = base.max_memory_kib.max(base.memory_kib);
    }
    let want_cpus = (need.cpu_cores - 0.05).ceil().max(1.0) as u32;
    let mut vcpus = want_cpus.max(base.vcpus);
    if vcpus > base.max_vcpus {
        notes.push(format!(
            "vCPUs wanted {vcpus} is above the domain's maximum {}",
            base.max_vcpus
        ));
        vcpus = base.max_vcpus.max(base.vcpus);
    }
    if vcpus > room.cpus.max(base.vcpus) {
        notes.push(format!(
            "vCPUs wanted {vcpus} is above the host's {} CPUs",
            room.cpus
        ));
        vcpus = room.cpus.max(base.vcpus);
    }
    let extra = memory_kib.saturating_sub(base.memory_kib);
    if extra > room.memory_kib {
        return Err(format!(
            "the command needs {} more memory, the host has {} free after reservations and \
             running commands",
            crate::units::format_kib(extra),
            crate::units::format_kib(room.memory_kib)
        ));
    }
    Ok(Plan {
        vcpus,
        memory_kib,
        notes,
    })
}

/// A disk's limits raised so that `rate_bps` (the command's predicted bytes per second, read
/// and write together) fits with 20% to spare; `None` when the disk has no byte limit or the
/// rate already fits. Only byte limits are raised; the rest is kept as it is.
pub fn raise_iotune(current: &IoTune, rate_bps: f64) -> Option<IoTune> {
    let want = (rate_bps * 1.2).ceil() as u64;
    let mut next = *current;
    let mut raised = false;
    if let Some(t) = current.total_bytes_sec
        && t < want
    {
        next.total_bytes_sec = Some(want);
        raised = true;
    }
    for slot in [&mut next.read_bytes_sec, &mut next.write_bytes_sec] {
        if let Some(v) = *slot
            && v < want
        {
            *slot = Some(want);
            raised = true;
        }
    }
    raised.then_some(next)
}

/// Fraction of the allocation whose use triggers growth while a command runs.
pub const GROW_AT: f64 = 0.90;
/// How much one growth step adds, as a fraction of the current allocation.
pub const GROW_BY: f64 = 0.25;

/// The feedback loop's step: a new memory size when the guest uses more than [`GROW_AT`] of
/// `current_kib`, bounded by the domain's maximum and `room_kib` more than now; `None` to stay.
pub fn grow(used_kib: u64, current_kib: u64, max_kib: u64, room_kib: u64) -> Option<u64> {
    if (used_kib as f64) < GROW_AT * current_kib as f64 {
        return None;
    }
    let step = ((current_kib as f64 * GROW_BY) as u64).min(room_kib);
    let next = (current_kib + step).min(max_kib);
    (next > current_kib).then_some(next)
}

/// Seconds of waiting that are worth one priority step: a command waiting an hour outranks one
/// that arrives with priority 60 higher, so low priority never waits forever.
pub const AGING_SECS: i64 = 60;

/// The effective priority of a waiting command at `now`.
pub fn effective_priority(q: &Queued, now: i64) -> i64 {
    i64::from(q.priority) + (now - q.enqueued_at).max(0) / AGING_SECS
}

/// The waiting commands in the order they should run: effective priority (highest first), then
/// age (oldest first), then id.
pub fn order(entries: &[Queued], now: i64) -> Vec<i64> {
    let mut w: Vec<&Queued> = entries
        .iter()
        .filter(|q| q.state == QueueState::Waiting)
        .collect();
    w.sort_by(|a, b| {
        effective_priority(b, now)
            .cmp(&effective_priority(a, now))
            .then(a.enqueued_at.cmp(&b.enqueued_at))
            .then(a.id.cmp(&b.id))
    });
    w.into_iter().map(|q| q.id).collect()
}

/// What the host can give a command that may use reservation `mine`: free memory and CPUs minus
/// what running commands hold and what other active reservations hold.
pub fn room(
    cpus: u32,
    free_memory_kib: u64,
    running: &[Queued],
    reservations: &[Reservation],
    mine: Option<&str>,
    now: i64,
) -> HostRoom {
    let held_mem: u64 = running
        .iter()
        .filter(|q| q.state == QueueState::Running)
        .map(|q| q.extra_memory_kib)
        .sum();
    let held_cpu: u32 = running
        .iter()
        .filter(|q| q.state == QueueState::Running)
        .map(|q| q.extra_vcpus)
        .sum();
    let (res_mem, res_cpu) = reservations
        .iter()
        .filter(|r| r.active_at(now) && Some(r.name.as_str()) != mine)
        .fold((0u64, 0u32), |(m, c), r| (m + r.memory_kib, c + r.vcpus));
    HostRoom {
        cpus: cpus.saturating_sub(held_cpu + res_cpu).max(1),
        memory_kib: free_memory_kib.saturating_sub(held_mem + res_mem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024;

    fn base() -> Baseline {
        Baseline {
            vcpus: 1,
            max_vcpus: 2,
            memory_kib: 192 * MIB,
            max_memory_kib: 1024 * MIB,
        }
    }

    fn need(cpu: f64, mem_mib: f64) -> Usage {
        Usage {
            cpu_cores: cpu,
            memory_kib: mem_mib * MIB as f64,
            ..Usage::default()
        }
    }

    #[test]
    fn plan_adds_memory_before_the_command() {
        let room = HostRoom {
            cpus: 2,
            memory_kib: 4096 * MIB,
        };
        let p = plan(&need(1.0, 300.0), 100 * MIB, &base(), &room).unwrap();
        // 100 used + 300 needed + 64 headroom.
        assert_eq!(p.memory_kib, 464 * MIB);
        assert_eq!(p.vcpus, 1);
        assert_eq!(p.extra_memory_kib(&base()), 272 * MIB);
        assert!(p.notes.is_empty());
    }

    #[test]
    fn plan_never_shrinks_and_respects_maximums() {
        let room = HostRoom {
            cpus: 2,
            memory_kib: 8192 * MIB,
        };
        let p = plan(&need(0.1, 1.0), 10 * MIB, &base(), &room).unwrap();
        assert_eq!((p.vcpus, p.memory_kib), (1, 192 * MIB));
        let p = plan(&need(8.0, 2000.0), 100 * MIB, &base(), &room).unwrap();
        assert_eq!((p.vcpus, p.memory_kib), (2, 1024 * MIB));
        assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
        let small = HostRoom { cpus: 1, ..room };
        let p = plan(&need(2.0, 1.0), 10 * MIB, &base(), &small).unwrap();
        assert_eq!(p.vcpus, 1);
    }

    #[test]
    fn plan_refuses_what_the_host_lacks() {
        let room = HostRoom {
            cpus: 2,
            memory_kib: 100 * MIB,
        };
        let e = plan(&need(1.0, 300.0), 100 * MIB, &base(), &room).unwrap_err();
        assert!(
            e.contains("272MiB more memory") && e.contains("100MiB free"),
            "{e}"
        );
    }

    #[test]
    fn iotune_is_raised_only_where_a_byte_limit_is_too_low() {
        let none = IoTune::default();
        assert_eq!(raise_iotune(&none, 1e9), None);
        let io = IoTune {
            total_bytes_sec: Some(1_000_000),
            total_iops_sec: Some(100),
            ..IoTune::default()
        };
        assert_eq!(raise_iotune(&io, 500_000.0), None);
        let r = raise_iotune(&io, 10_000_000.0).unwrap();
        assert_eq!(r.total_bytes_sec, Some(12_000_000));
        assert_eq!(r.total_iops_sec, Some(100));
        let rw = IoTune {
            read_bytes_sec: Some(20_000_000),
            write_bytes_sec: Some(1_000),
            ..IoTune::default()
        };
        let r = raise_iotune(&rw, 10_000_000.0).unwrap();
        assert_eq!(
            (r.read_bytes_sec, r.write_bytes_sec),
            (Some(20_000_000), Some(12_000_000))
        );
    }

    #[test]
    fn grow_only_near_the_allocation() {
        assert_eq!(grow(80, 100, 1000, 1000), None);
        assert_eq!(grow(95, 100, 1000, 1000), Some(125));
        assert_eq!(grow(95, 100, 110, 1000), Some(110));
        assert_eq!(grow(95, 100, 1000, 10), Some(110));
        assert_eq!(grow(95, 100, 100, 1000), None);
    }

    fn q(id: i64, prio: i32, at: i64) -> Queued {
        Queued {
            id,
            domain: "d".into(),
            argv: vec!["x".into()],
            priority: prio,
            user: "u".into(),
            reservation: None,
            enqueued_at: at,
            state: QueueState::Waiting,
            owner: None,
            extra_vcpus: 0,
            extra_memory_kib: 0,
            started_at: None,
            finished_at: None,
            result: None,
        }
    }

    #[test]
    fn order_is_priority_then_age_and_ages() {
        let e = vec![q(1, 0, 100), q(2, 10, 110), q(3, 10, 105), q(4, 0, 90)];
        assert_eq!(order(&e, 120), vec![3, 2, 4, 1]);
        // Ten minutes later the old low-priority commands still trail by the same margin...
        assert_eq!(order(&e, 720), vec![3, 2, 4, 1]);
        // ...but a new high-priority arrival no longer jumps an old low one forever.
        let mut e2 = e.clone();
        e2.push(q(5, 10, 100 + 20 * AGING_SECS));
        let o = order(&e2, 100 + 20 * AGING_SECS);
        assert_eq!(o[0], 3);
        assert!(
            o.iter().position(|&i| i == 4) < o.iter().position(|&i| i == 5),
            "{o:?}"
        );
        let mut done = q(6, 99, 0);
        done.state = QueueState::Done;
        e2.push(done);
        assert!(!order(&e2, 0).contains(&6));
    }

    #[test]
    fn room_subtracts_running_and_other_reservations() {
        let mut r = q(1, 0, 0);
        r.state = QueueState::Running;
        r.extra_memory_kib = 100;
        r.extra_vcpus = 1;
        let res = vec![
            Reservation {
                name: "a".into(),
                user: "u".into(),
                vcpus: 1,
                memory_kib: 300,
                starts_at: 0,
                ends_at: None,
            },
            Reservation {
                name: "later".into(),
                user: "u".into(),
                vcpus: 1,
                memory_kib: 5000,
                starts_at: 1000,
                ends_at: None,
            },
        ];
        let h = room(4, 1000, std::slice::from_ref(&r), &res, None, 10);
        assert_eq!((h.cpus, h.memory_kib), (2, 600));
        let h = room(4, 1000, &[r], &res, Some("a"), 10);
        assert_eq!((h.cpus, h.memory_kib), (3, 900));
    }
}
