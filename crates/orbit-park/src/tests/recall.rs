//! Recall: exact timing, retries, the ring group, the final destination.

use super::*;
use crate::{ParkState, RecallFailure, RecallTo};

fn rg(name: &str) -> Destination {
    Destination::RingGroup(name.into())
}

fn number(n: &str) -> Destination {
    Destination::Number(n.into())
}

/// Parks call 1 on 103 at time 0 with `policy`, outputs drained.
fn parked(policy: RecallPolicy) -> (Sim, ParkId) {
    let mut sim = Sim::new(3);
    let id = sim
        .park(1, Target::Extension("103".into()), policy)
        .expect("parked");
    sim.drain();
    (sim, id)
}

fn then_ring_group(wait_s: u32) -> RecallPolicy {
    RecallPolicy {
        recall_to: RecallTo::ParkerThenRingGroup,
        ring_group: Some("600".into()),
        ring_group_wait_s: wait_s,
        ..RecallPolicy::default()
    }
}

#[test]
fn the_recall_starts_exactly_at_its_deadline() {
    let mut sim = Sim::new(3);
    sim.now = 1_000;
    let id = sim.park_on(1, "103");
    assert_eq!(sim.at(45_999), [], "one millisecond early");
    assert_eq!(sim.engine.next_deadline(), Some(46_000));
    let outs = sim.at(46_000);
    let started = &events(&outs)[0];
    assert_eq!(
        started.kind,
        EventKind::RecallStarted {
            attempt: 1,
            to: ext("101")
        }
    );
    assert_eq!((started.at_ms, started.park), (46_000, Some(id)));
    assert_eq!(outs[1..], [ring(id, 1, 1, ext("101"), 20), changed("103")]);
    let info = &sim.engine.parked_on(T, "103")[0];
    assert_eq!(
        info.state,
        ParkState::Recalling {
            attempt: 1,
            to: ext("101")
        }
    );
    assert_eq!(info.recall_at_ms, None);
    assert_eq!(sim.engine.next_deadline(), Some(66_000));
}

#[test]
fn the_parker_is_retried_at_exact_times_then_the_call_is_hung_up() {
    let (mut sim, id) = parked(RecallPolicy::default());
    sim.at(45_000);
    assert_eq!(sim.at(64_999), []);
    assert_eq!(
        sim.at(65_000),
        [Output::CancelRecall {
            park: id,
            attempt: 1
        }],
        "ring time over, no new attempt yet"
    );
    assert_eq!(sim.at(74_999), []);
    assert_eq!(rings(&sim.at(75_000)), [(2, ext("101"), 20)]);
    assert!(
        !sim.engine.recall_answered(75_001, id, 1, "101"),
        "attempt 1 is over"
    );
    assert_eq!(
        sim.at(95_000),
        [Output::CancelRecall {
            park: id,
            attempt: 2
        }]
    );
    assert_eq!(rings(&sim.at(105_000)), [(3, ext("101"), 20)]);
    let outs = sim.at(125_000);
    assert_eq!(
        outs[..2],
        [
            Output::CancelRecall {
                park: id,
                attempt: 3
            },
            Output::HangUp { park: id, call: 1 }
        ]
    );
    let ended = EventKind::Ended {
        reason: crate::EndReason::RecallExhausted,
    };
    assert_eq!(kinds(&outs), [ended]);
    assert_eq!(outs.last(), Some(&changed("103")));
    assert!(sim.engine.is_empty());
    assert_eq!(sim.engine.next_deadline(), None);
}

#[test]
fn a_busy_parker_is_rung_again_after_the_retry_interval() {
    let (mut sim, id) = parked(RecallPolicy::default());
    sim.at(45_000);
    sim.now = 47_000;
    sim.engine.recall_failed(47_000, id, 1, RecallFailure::Busy);
    assert_eq!(
        sim.drain(),
        [],
        "the I/O layer ended that leg: no CancelRecall"
    );
    assert_eq!(sim.engine.next_deadline(), Some(57_000));
    assert_eq!(sim.at(56_999), []);
    assert_eq!(rings(&sim.at(57_000)), [(2, ext("101"), 20)]);
    sim.engine.recall_failed(57_000, id, 1, RecallFailure::Busy);
    assert_eq!(sim.drain(), [], "a stale failure is ignored");
    assert_eq!(sim.engine.next_deadline(), Some(77_000));
}

#[test]
fn the_final_destination_is_rung_once_after_the_attempts() {
    let policy = RecallPolicy {
        max_recall_attempts: 2,
        final_destination: Some("200".into()),
        ..Default::default()
    };
    let (mut sim, id) = parked(policy);
    sim.at(45_000);
    sim.engine
        .recall_failed(45_000, id, 1, RecallFailure::Unreachable);
    sim.at(55_000);
    sim.engine
        .recall_failed(55_000, id, 2, RecallFailure::Unreachable);
    let outs = sim.drain();
    assert_eq!(
        rings(&outs),
        [(3, number("200"), 20)],
        "at once, no retry pause"
    );
    assert_eq!(
        kinds(&outs),
        [EventKind::RecallStarted {
            attempt: 3,
            to: number("200")
        }]
    );
    sim.engine.recall_failed(56_000, id, 3, RecallFailure::Busy);
    let outs = sim.drain();
    assert_eq!(outs[0], Output::HangUp { park: id, call: 1 });
    assert!(sim.engine.is_empty());
}

#[test]
fn the_final_destination_can_answer() {
    let policy = RecallPolicy {
        max_recall_attempts: 1,
        final_destination: Some("200".into()),
        ..Default::default()
    };
    let (mut sim, id) = parked(policy);
    sim.at(45_000);
    assert_eq!(rings(&sim.at(65_000)), [(2, number("200"), 20)]);
    assert!(sim.engine.recall_answered(70_000, id, 2, "200"));
    let outs = sim.drain();
    assert_eq!(
        kinds(&outs),
        [EventKind::RecallAnswered { by: "200".into() }]
    );
    assert_eq!(outs.len(), 2, "the event and Changed; nothing to cancel");
}

#[test]
fn parker_then_ring_group_moves_on_after_the_wait_and_never_reverts() {
    let (mut sim, id) = parked(then_ring_group(15));
    assert_eq!(
        rings(&sim.at(45_000)),
        [(1, ext("101"), 15)],
        "the parker rings for the wait"
    );
    let outs = sim.at(60_000);
    assert_eq!(
        outs[0],
        Output::CancelRecall {
            park: id,
            attempt: 1
        }
    );
    assert_eq!(rings(&outs), [(2, rg("600"), 60)], "same tick, no pause");
    assert_eq!(outs.last(), Some(&changed("103")));
    let state = sim.engine.parked_on(T, "103")[0].state.clone();
    assert_eq!(
        state,
        ParkState::Recalling {
            attempt: 2,
            to: rg("600")
        }
    );
    // The ring group is retried, up to max_recall_attempts, never the parker.
    assert_eq!(
        sim.at(120_000),
        [Output::CancelRecall {
            park: id,
            attempt: 2
        }]
    );
    assert_eq!(rings(&sim.at(130_000)), [(3, rg("600"), 60)]);
    sim.engine
        .recall_failed(131_000, id, 3, RecallFailure::Busy);
    assert_eq!(rings(&sim.at(141_000)), [(4, rg("600"), 60)]);
    let outs = sim.at(201_000);
    assert_eq!(outs[1], Output::HangUp { park: id, call: 1 });
}

#[test]
fn parker_then_ring_group_moves_on_at_once_when_the_parker_fails() {
    let (mut sim, id) = parked(then_ring_group(20));
    sim.at(45_000);
    sim.engine.recall_failed(46_000, id, 1, RecallFailure::Busy);
    let outs = sim.drain();
    assert_eq!(rings(&outs), [(2, rg("600"), 60)]);
    assert_eq!(
        outs.len(),
        3,
        "RecallStarted, Ring, Changed; the parker leg ended itself"
    );
    assert!(
        !sim.engine.recall_answered(46_500, id, 1, "101"),
        "the parker cannot come back"
    );
    assert!(sim.engine.recall_answered(47_000, id, 2, "602"));
}

#[test]
fn ring_group_only_rings_the_group_from_the_start() {
    let policy = RecallPolicy {
        recall_to: RecallTo::RingGroupOnly,
        ring_group: Some("600".into()),
        ..Default::default()
    };
    let (mut sim, _) = parked(policy);
    assert_eq!(rings(&sim.at(45_000)), [(1, rg("600"), 60)]);
    sim.at(105_000);
    assert_eq!(rings(&sim.at(115_000)), [(2, rg("600"), 60)]);
}

#[test]
fn a_number_is_rung_like_the_parker() {
    let policy = RecallPolicy {
        recall_to: RecallTo::Number("300".into()),
        ..Default::default()
    };
    let (mut sim, _) = parked(policy);
    assert_eq!(rings(&sim.at(45_000)), [(1, number("300"), 20)]);
    sim.at(65_000);
    assert_eq!(rings(&sim.at(75_000)), [(2, number("300"), 20)]);
}

#[test]
fn an_answered_recall_ends_the_park_once() {
    let (mut sim, id) = parked(RecallPolicy::default());
    sim.at(45_000);
    assert!(
        !sim.engine.recall_answered(45_100, id, 2, "101"),
        "no such attempt"
    );
    assert!(sim.engine.recall_answered(45_200, id, 1, "101"));
    let outs = sim.drain();
    assert_eq!(
        kinds(&outs),
        [EventKind::RecallAnswered { by: "101".into() }]
    );
    assert_eq!(outs.last(), Some(&changed("103")));
    assert!(
        !sim.engine.recall_answered(45_300, id, 1, "101"),
        "only once"
    );
    sim.engine
        .recall_failed(45_300, id, 1, RecallFailure::NoAnswer);
    assert_eq!(sim.drain(), []);
    assert_eq!(sim.engine.next_deadline(), None);
}

#[test]
fn an_answer_racing_the_ring_timeout_loses() {
    let (mut sim, id) = parked(RecallPolicy::default());
    sim.at(45_000);
    sim.at(65_000);
    assert!(!sim.engine.recall_answered(65_000, id, 1, "101"));
    assert_eq!(sim.engine.len(), 1, "still parked, waiting to retry");
}

#[test]
fn a_late_tick_times_the_next_step_from_when_it_ran() {
    let (mut sim, _) = parked(RecallPolicy::default());
    let outs = sim.at(50_000);
    assert_eq!(events(&outs)[0].at_ms, 50_000);
    assert_eq!(
        sim.engine.next_deadline(),
        Some(70_000),
        "the full ring time from the late start"
    );
}

#[test]
fn the_display_carries_the_prefix() {
    let (mut sim, _) = parked(RecallPolicy {
        display_prefix: "Back:".into(),
        ..Default::default()
    });
    let outs = sim.at(45_000);
    let display = outs.iter().find_map(|o| match o {
        Output::Ring { display, .. } => Some(display.clone()),
        _ => None,
    });
    assert_eq!(display.as_deref(), Some("Back: Alice"));
}

#[test]
fn changed_follows_new_attempts_only() {
    let (mut sim, id) = parked(RecallPolicy::default());
    assert!(sim.at(45_000).contains(&changed("103")));
    assert!(
        !sim.at(65_000).contains(&changed("103")),
        "a timeout alone shows nothing new"
    );
    assert!(sim.at(75_000).contains(&changed("103")), "attempt 2");
    sim.engine.recall_failed(76_000, id, 2, RecallFailure::Busy);
    assert_eq!(sim.drain(), []);
}
