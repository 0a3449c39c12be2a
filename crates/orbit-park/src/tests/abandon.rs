//! The parked caller hangs up: at every stage, everything pending goes.

use super::*;
use crate::{RecallFailure, RecallTo};

/// Parks call 1 on 103 with a policy that has every stage (parker, ring
/// group, final destination), moves to `until` and abandons there.
fn abandon_at(until: impl FnOnce(&mut Sim, ParkId)) -> (Sim, ParkId, Vec<Output>) {
    let policy = RecallPolicy {
        recall_to: RecallTo::ParkerThenRingGroup,
        ring_group: Some("600".into()),
        max_recall_attempts: 2,
        final_destination: Some("200".into()),
        ..RecallPolicy::default()
    };
    let mut sim = Sim::new(3);
    let id = sim
        .park(1, Target::Extension("103".into()), policy)
        .expect("parked");
    sim.drain();
    until(&mut sim, id);
    sim.drain();
    sim.engine.abandon(sim.now, 1);
    let outs = sim.drain();
    assert_eq!(kinds(&outs), [EventKind::Abandoned]);
    assert_eq!(outs.last(), Some(&changed("103")));
    assert!(sim.engine.is_empty());
    assert_eq!(sim.engine.next_deadline(), None);
    assert!(sim.engine.parked(T).is_empty());
    assert_eq!(sim.at(1_000_000), [], "no timer survives the park");
    (sim, id, outs)
}

fn cancels(outs: &[Output]) -> Vec<u32> {
    outs.iter()
        .filter_map(|o| match o {
            Output::CancelRecall { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect()
}

#[test]
fn while_waiting_for_the_recall() {
    let (_, _, outs) = abandon_at(|sim, _| sim.now = 10_000);
    assert!(cancels(&outs).is_empty());
}

#[test]
fn while_the_parker_rings() {
    let (mut sim, id, outs) = abandon_at(|sim, _| {
        sim.at(46_000);
    });
    assert_eq!(cancels(&outs), [1]);
    assert_eq!(
        outs[0],
        Output::CancelRecall {
            park: id,
            attempt: 1
        },
        "cancel before the event"
    );
    assert!(
        !sim.engine.recall_answered(46_001, id, 1, "101"),
        "a stale answer is refused"
    );
}

#[test]
fn while_the_ring_group_rings() {
    let (_, _, outs) = abandon_at(|sim, id| {
        sim.at(45_000);
        sim.engine.recall_failed(45_000, id, 1, RecallFailure::Busy);
    });
    assert_eq!(cancels(&outs), [2]);
}

#[test]
fn between_ring_group_attempts() {
    let (_, _, outs) = abandon_at(|sim, id| {
        sim.at(45_000);
        sim.engine.recall_failed(45_000, id, 1, RecallFailure::Busy);
        sim.engine
            .recall_failed(45_000, id, 2, RecallFailure::NoAnswer);
        sim.now = 50_000;
    });
    assert!(cancels(&outs).is_empty());
}

#[test]
fn while_the_final_destination_rings() {
    let (_, _, outs) = abandon_at(|sim, id| {
        sim.at(45_000);
        sim.engine.recall_failed(45_000, id, 1, RecallFailure::Busy);
        sim.engine
            .recall_failed(45_000, id, 2, RecallFailure::NoAnswer);
        sim.at(55_000);
        sim.engine
            .recall_failed(55_000, id, 3, RecallFailure::NoAnswer);
        assert_eq!(
            rings(&sim.drain()),
            [(4, Destination::Number("200".into()), 20)]
        );
    });
    assert_eq!(cancels(&outs), [4]);
}

#[test]
fn an_unknown_or_repeated_hang_up_is_ignored() {
    let mut sim = Sim::new(3);
    sim.park_on(1, "103");
    sim.engine.abandon(0, 99);
    assert_eq!(sim.drain(), []);
    sim.engine.abandon(0, 1);
    sim.drain();
    sim.engine.abandon(0, 1);
    assert_eq!(sim.drain(), []);
}
