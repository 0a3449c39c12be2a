//! Parking: on an extension, its bound and order, group hunting, refusals.

use super::*;
use crate::{ParkState, ParkedInfo, PolicyError, RecallTo, Retrieve};

fn default() -> RecallPolicy {
    RecallPolicy::default()
}

#[test]
fn parks_on_an_extension_and_lists_it() {
    let mut sim = Sim::new(3);
    sim.now = 1_000;
    let id = sim
        .park(7, Target::Extension("103".into()), default())
        .expect("parked");
    let outs = sim.drain();
    assert_eq!(
        outs,
        [
            Output::Event(ParkEvent {
                at_ms: 1_000,
                tenant: T.into(),
                park: Some(id),
                parked_on: Some("103".into()),
                call: Some(7),
                parker: Some("101".into()),
                parked: Some(alice()),
                kind: EventKind::Parked,
            }),
            changed("103"),
        ]
    );
    let info = ParkedInfo {
        id,
        call: 7,
        tenant: T.into(),
        parked_on: "103".into(),
        parker: "101".into(),
        parked: alice(),
        parked_at_ms: 1_000,
        recall_at_ms: Some(46_000),
        state: ParkState::Parked,
    };
    assert_eq!(sim.engine.parked_on(T, "103"), std::slice::from_ref(&info));
    assert_eq!(sim.engine.parked(T), [info]);
    assert!(sim.engine.parked_on(T, "101").is_empty());
    assert_eq!(sim.engine.next_deadline(), Some(46_000));
}

#[test]
fn an_extension_holds_at_most_the_bound() {
    let mut sim = Sim::new(2);
    sim.park_on(1, "103");
    sim.park_on(2, "103");
    let err = sim.park(3, Target::Extension("103".into()), default());
    assert_eq!(err, Err(ParkError::ExtensionFull));
    let outs = sim.drain();
    let failed = &events(&outs)[0];
    assert_eq!(
        failed.kind,
        EventKind::ParkFailed {
            reason: ParkError::ExtensionFull
        }
    );
    assert_eq!(
        (failed.park, failed.parked_on.as_deref(), failed.call),
        (None, Some("103"), Some(3))
    );
    assert_eq!(outs.len(), 1, "no Changed: the list did not change");
    assert_eq!(sim.engine.parked_on(T, "103").len(), 2);
    // Another extension is not affected, and a freed place can be reused.
    assert!(sim
        .park(3, Target::Extension("104".into()), default())
        .is_ok());
    sim.engine
        .retrieve(0, T, "103", Retrieve::Oldest { ext: "103".into() })
        .expect("retrieved");
    assert!(sim
        .park(4, Target::Extension("103".into()), default())
        .is_ok());
}

#[test]
fn a_call_is_parked_only_once() {
    let mut sim = Sim::new(3);
    sim.park_on(1, "103");
    assert_eq!(
        sim.park(1, Target::Extension("104".into()), default()),
        Err(ParkError::AlreadyParked)
    );
    assert_eq!(
        kinds(&sim.drain()),
        [EventKind::ParkFailed {
            reason: ParkError::AlreadyParked
        }]
    );
    assert!(sim.engine.parked_on(T, "104").is_empty());
}

#[test]
fn calls_on_one_extension_keep_arrival_order() {
    let mut sim = Sim::new(5);
    let ids: Vec<ParkId> = (1..=4)
        .map(|call| {
            sim.now += 5;
            sim.park_on(call, "103")
        })
        .collect();
    let listed = |sim: &Sim| {
        sim.engine
            .parked_on(T, "103")
            .iter()
            .map(|p| p.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(&sim), ids);
    sim.engine
        .retrieve(sim.now, T, "104", Retrieve::Id(ids[1]))
        .expect("retrieved");
    assert_eq!(listed(&sim), [ids[0], ids[2], ids[3]]);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn an_extension_target_need_not_be_available() {
    let mut sim = Sim::new(1);
    sim.away.insert("103".into());
    assert!(sim
        .park(1, Target::Extension("103".into()), default())
        .is_ok());
}

#[test]
fn group_park_hunts_in_order_skipping_unavailable_and_occupied() {
    let mut sim = Sim::new(3);
    let members = ["102", "103", "104", "105"];
    sim.away.insert("102".into());
    let on = |sim: &mut Sim, call| {
        let id = sim.park(call, group(&members), default()).expect("parked");
        let outs = sim.drain();
        assert_eq!(
            outs.last(),
            Some(&changed(
                &sim.engine.parked(T).last().expect("listed").parked_on
            ))
        );
        (
            id,
            events(&outs)[0].parked_on.clone().expect("an extension"),
        )
    };
    assert_eq!(on(&mut sim, 1).1, "103", "102 is away");
    assert_eq!(on(&mut sim, 2).1, "104", "103 holds a call");
    sim.away.remove("102");
    assert_eq!(
        on(&mut sim, 3).1,
        "102",
        "hunting starts at the first member again"
    );
    let (id, _) = on(&mut sim, 4);
    assert_eq!(sim.engine.parked_on(T, "105")[0].id, id);
    // A retrieve frees 103; 102 still holds a call, so 103 is the first free member.
    sim.engine
        .retrieve(0, T, "103", Retrieve::Oldest { ext: "103".into() })
        .expect("retrieved");
    assert_eq!(on(&mut sim, 5).1, "103");
}

#[test]
fn group_park_fails_when_no_member_is_available() {
    let mut sim = Sim::new(3);
    sim.park_on(1, "102");
    sim.away.insert("103".into());
    assert_eq!(
        sim.park(2, group(&["102", "103"]), default()),
        Err(ParkError::NoMemberAvailable)
    );
    let outs = sim.drain();
    let failed = &events(&outs)[0];
    assert_eq!(
        failed.kind,
        EventKind::ParkFailed {
            reason: ParkError::NoMemberAvailable
        }
    );
    assert_eq!((failed.parked_on.as_ref(), failed.call), (None, Some(2)));
    assert_eq!(outs.len(), 1);
    assert_eq!(
        sim.park(2, group(&[]), default()),
        Err(ParkError::NoMemberAvailable)
    );
    assert_eq!(sim.engine.len(), 1, "the parker keeps the call");
}

#[test]
fn an_invalid_policy_is_refused() {
    let mut sim = Sim::new(3);
    let policy = RecallPolicy {
        recall_to: RecallTo::ParkerThenRingGroup,
        ..default()
    };
    let err = sim.park(1, Target::Extension("103".into()), policy);
    assert_eq!(
        err,
        Err(ParkError::InvalidPolicy(PolicyError::MissingRingGroup))
    );
    let policy = RecallPolicy {
        recall_time_s: 0,
        ..default()
    };
    let err = sim.park(1, Target::Extension("103".into()), policy);
    assert_eq!(
        err,
        Err(ParkError::InvalidPolicy(PolicyError::RecallTime(0)))
    );
    assert!(sim.engine.is_empty());
    assert_eq!(sim.engine.next_deadline(), None);
}

#[test]
fn ids_are_never_reused() {
    let mut sim = Sim::new(1);
    let first = sim.park_on(1, "103");
    sim.engine.abandon(0, 1);
    let second = sim.park_on(1, "103");
    assert!(second > first);
}

#[test]
fn tenants_are_separate() {
    let mut sim = Sim::new(1);
    sim.park_on(1, "102");
    // Another tenant's 102 is free: its bound and its hunting ignore ours.
    let mut req = sim.request(2, Target::Extension("102".into()), default());
    req.tenant = "other".into();
    sim.park_req(req).expect("parked in the other tenant");
    let mut req = sim.request(3, group(&["102", "103"]), default());
    req.tenant = "third".into();
    sim.park_req(req).expect("parked");
    let outs = sim.drain();
    assert_eq!(events(&outs)[1].parked_on.as_deref(), Some("102"));
    assert_eq!(sim.engine.parked(T).len(), 1);
    assert_eq!(sim.engine.parked("other")[0].call, 2);
    assert!(outs.contains(&Output::Changed {
        tenant: "other".into(),
        ext: "102".into()
    }));
}
