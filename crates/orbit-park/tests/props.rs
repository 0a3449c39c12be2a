//! Property tests: random sequences of parks, retrieves (sometimes two at
//! once), hang-ups, recall answers and failures (current or stale),
//! availability changes and clock jumps, checked after every engine call
//! against a model of what must hold whatever the order.

mod model;

use model::Driver;
use orbit_park::*;
use proptest::prelude::*;

pub const TENANTS: [&str; 2] = ["a", "b"];
pub const EXTS: [&str; 5] = ["101", "102", "103", "104", "105"];
pub const BOUND: usize = 2;

#[derive(Debug, Clone)]
pub struct Policy {
    recall_s: u32,
    /// 0 parker only, 1 parker then ring group, 2 ring group only, 3 number.
    to: u8,
    wait_s: u32,
    ring_s: u32,
    rg_ring_s: u32,
    retry_s: u32,
    max: u32,
    last_resort: bool,
}

impl Policy {
    pub fn build(&self) -> RecallPolicy {
        RecallPolicy {
            recall_time_s: self.recall_s,
            recall_to: match self.to {
                0 => RecallTo::ParkerOnly,
                1 => RecallTo::ParkerThenRingGroup,
                2 => RecallTo::RingGroupOnly,
                _ => RecallTo::Number("300".into()),
            },
            ring_group: Some("600".into()),
            ring_group_wait_s: self.wait_s,
            ring_s: self.ring_s,
            ring_group_ring_s: self.rg_ring_s,
            retry_interval_s: self.retry_s,
            max_recall_attempts: self.max,
            final_destination: self.last_resort.then(|| "200".into()),
            display_prefix: "Recall:".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum What {
    Oldest(usize),
    /// Any park id seen so far, alive or not.
    Seen(usize),
    Unknown(u64),
}

#[derive(Debug, Clone)]
pub enum Op {
    Park {
        tenant: usize,
        call: CallRef,
        parker: usize,
        target: Result<usize, Vec<usize>>,
        policy: Policy,
    },
    Retrieve {
        tenant: usize,
        by: usize,
        what: What,
        twice: bool,
    },
    Abandon(CallRef),
    /// Answer the ringing leg of some park, or (`stale`) any leg ever rung.
    Answer {
        leg: usize,
        stale: bool,
    },
    /// Report a failure of a leg, picked as for `Answer`.
    Fail {
        leg: usize,
        stale: bool,
        why: u8,
    },
    Available(usize, usize, bool),
    Advance(u64),
    ToDeadline,
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        1..15u32,
        0..4u8,
        1..4u32,
        1..4u32,
        1..4u32,
        1..4u32,
        1..4u32,
        any::<bool>(),
    )
        .prop_map(
            |(recall_s, to, wait_s, ring_s, rg_ring_s, retry_s, max, last_resort)| Policy {
                recall_s,
                to,
                wait_s,
                ring_s,
                rg_ring_s,
                retry_s,
                max,
                last_resort,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let members =
        proptest::sample::subsequence((0..EXTS.len()).collect::<Vec<_>>(), 0..=EXTS.len())
            .prop_shuffle();
    // Direct parks favour two extensions, so the bound is reached too.
    let target = prop_oneof![
        (0..2usize).prop_map(Ok),
        (0..EXTS.len()).prop_map(Ok),
        members.prop_map(Err)
    ];
    let what = prop_oneof![
        1 => (0..EXTS.len()).prop_map(What::Oldest),
        3 => any::<usize>().prop_map(What::Seen),
        1 => (0..50u64).prop_map(What::Unknown),
    ];
    prop_oneof![
        4 => (0..2usize, 0..16u64, 0..EXTS.len(), target, policy())
            .prop_map(|(tenant, call, parker, target, policy)| Op::Park { tenant, call, parker, target, policy }),
        3 => (0..2usize, 0..EXTS.len(), what, any::<bool>())
            .prop_map(|(tenant, by, what, twice)| Op::Retrieve { tenant, by, what, twice }),
        1 => (0..16u64).prop_map(Op::Abandon),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(leg, stale)| Op::Answer { leg, stale }),
        2 => (any::<usize>(), any::<bool>(), 0..3u8).prop_map(|(leg, stale, why)| Op::Fail { leg, stale, why }),
        1 => (0..2usize, 0..EXTS.len(), any::<bool>()).prop_map(|(t, e, up)| Op::Available(t, e, up)),
        3 => (0..20_000u64).prop_map(Op::Advance),
        3 => Just(Op::ToDeadline),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_park_ends_exactly_once(
        ops in proptest::collection::vec(op(), 1..60),
        up in proptest::collection::vec(any::<bool>(), TENANTS.len() * EXTS.len()),
    ) {
        let mut d = Driver::new(BOUND, up);
        for op in ops {
            d.step(op);
        }
        // Nobody answers any more: every recall must run out by itself.
        let mut steps = 0;
        while d.jump_to_deadline() {
            steps += 1;
            prop_assert!(steps < 10_000, "recalls end");
        }
        prop_assert!(d.engine.is_empty());
        for (id, p) in &d.parks {
            prop_assert!(!p.alive && p.ending.is_some(), "park {} never ended", id);
            let taken = matches!(p.ending, Some("retrieved" | "recall_answered"));
            prop_assert_eq!(p.handed, u32::from(taken), "park {} handed out once if taken", id);
            prop_assert!(p.live.is_none());
        }
    }
}
