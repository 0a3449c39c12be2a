//! Retrieving: oldest or by id, races, tenants, and racing a recall.

use super::*;
use crate::{RecallFailure, Retrieve, RetrieveError, Retrieved};

fn oldest(ext: &str) -> Retrieve {
    Retrieve::Oldest { ext: ext.into() }
}

#[test]
fn oldest_first_then_the_next_then_nothing() {
    let mut sim = Sim::new(3);
    let first = sim.park_on(1, "103");
    let second = sim.park_on(2, "103");
    let got = sim
        .engine
        .retrieve(5, T, "104", oldest("103"))
        .expect("retrieved");
    assert_eq!(
        got,
        Retrieved {
            park: first,
            call: 1,
            parked: alice(),
            parked_on: "103".into(),
            parker: "101".into()
        }
    );
    let outs = sim.drain();
    assert_eq!(kinds(&outs), [EventKind::Retrieved { by: "104".into() }]);
    assert_eq!(outs.last(), Some(&changed("103")));
    assert_eq!(
        sim.engine
            .retrieve(5, T, "104", oldest("103"))
            .map(|r| r.park),
        Ok(second)
    );
    sim.drain();
    assert_eq!(
        sim.engine.retrieve(6, T, "104", oldest("103")),
        Err(RetrieveError::NotFound)
    );
    let outs = sim.drain();
    let failed = &events(&outs)[0];
    let reason = RetrieveError::NotFound;
    assert_eq!(
        failed.kind,
        EventKind::RetrieveFailed {
            by: "104".into(),
            reason
        }
    );
    assert_eq!(
        (failed.park, failed.parked_on.as_deref(), failed.at_ms),
        (None, Some("103"), 6)
    );
    assert_eq!(outs.len(), 1, "nothing changed");
    assert_eq!(sim.engine.next_deadline(), None);
}

#[test]
fn by_id_takes_that_one() {
    let mut sim = Sim::new(3);
    let first = sim.park_on(1, "103");
    let second = sim.park_on(2, "103");
    assert_eq!(
        sim.engine
            .retrieve(0, T, "103", Retrieve::Id(second))
            .map(|r| r.call),
        Ok(2)
    );
    assert_eq!(sim.engine.parked_on(T, "103")[0].id, first);
}

#[test]
fn of_two_retrievers_exactly_one_wins() {
    let mut sim = Sim::new(3);
    let id = sim.park_on(1, "103");
    assert!(sim.engine.retrieve(0, T, "104", Retrieve::Id(id)).is_ok());
    sim.drain();
    assert_eq!(
        sim.engine.retrieve(0, T, "105", Retrieve::Id(id)),
        Err(RetrieveError::AlreadyRetrieved)
    );
    let reason = RetrieveError::AlreadyRetrieved;
    assert_eq!(
        kinds(&sim.drain()),
        [EventKind::RetrieveFailed {
            by: "105".into(),
            reason
        }]
    );
    // By extension, the loser finds nothing left.
    sim.park_on(2, "103");
    assert!(sim.engine.retrieve(0, T, "104", oldest("103")).is_ok());
    assert_eq!(
        sim.engine.retrieve(0, T, "105", oldest("103")),
        Err(RetrieveError::NotFound)
    );
}

#[test]
fn another_tenant_cannot_see_or_take_a_park() {
    let mut sim = Sim::new(3);
    let id = sim.park_on(1, "103");
    assert_eq!(
        sim.engine.retrieve(0, "other", "103", Retrieve::Id(id)),
        Err(RetrieveError::NotFound)
    );
    assert_eq!(
        sim.engine.retrieve(0, "other", "103", oldest("103")),
        Err(RetrieveError::NotFound)
    );
    let outs = sim.drain();
    for e in events(&outs) {
        assert_eq!(e.tenant, "other", "logged for the tenant that asked");
        assert_eq!(
            (e.call, e.parker, e.parked),
            (None, None, None),
            "nothing of the park revealed"
        );
    }
    assert_eq!(outs.len(), 2, "no Changed");
    assert_eq!(sim.engine.parked(T).len(), 1);
    // Once taken, the id is "already retrieved" for its tenant only.
    sim.engine
        .retrieve(0, T, "103", Retrieve::Id(id))
        .expect("retrieved");
    assert_eq!(
        sim.engine.retrieve(0, "other", "103", Retrieve::Id(id)),
        Err(RetrieveError::NotFound)
    );
}

#[test]
fn an_abandoned_park_is_not_found() {
    let mut sim = Sim::new(3);
    let id = sim.park_on(1, "103");
    sim.engine.abandon(0, 1);
    assert_eq!(
        sim.engine.retrieve(0, T, "103", Retrieve::Id(id)),
        Err(RetrieveError::NotFound)
    );
}

#[test]
fn a_retrieve_during_a_recall_wins_and_cancels_the_ringing_attempt() {
    let mut sim = Sim::new(3);
    let id = sim.park_on(1, "103");
    assert_eq!(rings(&sim.at(45_000)), [(1, ext("101"), 20)]);
    assert!(sim
        .engine
        .retrieve(46_000, T, "103", Retrieve::Id(id))
        .is_ok());
    let outs = sim.drain();
    assert_eq!(
        outs[0],
        Output::CancelRecall {
            park: id,
            attempt: 1
        }
    );
    assert_eq!(kinds(&outs), [EventKind::Retrieved { by: "103".into() }]);
    assert_eq!(outs.last(), Some(&changed("103")));
    assert_eq!(outs.len(), 3);
    // The recalled phone answers a moment later: too late.
    assert!(!sim.engine.recall_answered(46_001, id, 1, "101"));
    sim.engine
        .recall_failed(46_001, id, 1, RecallFailure::NoAnswer);
    assert_eq!(sim.drain(), []);
    assert_eq!(sim.engine.next_deadline(), None);
    assert_eq!(sim.at(200_000), []);
}

#[test]
fn a_retrieve_between_recall_attempts_has_nothing_to_cancel() {
    let mut sim = Sim::new(3);
    let id = sim.park_on(1, "103");
    sim.at(45_000);
    sim.engine.recall_failed(46_000, id, 1, RecallFailure::Busy);
    assert_eq!(sim.drain(), [], "a failure alone changes nothing visible");
    assert!(sim.engine.retrieve(50_000, T, "103", oldest("103")).is_ok());
    let outs = sim.drain();
    assert!(!outs
        .iter()
        .any(|o| matches!(o, Output::CancelRecall { .. })));
    assert_eq!(sim.at(56_000), [], "the retry died with the park");
}

#[test]
fn a_park_answered_by_its_recall_is_already_retrieved() {
    let mut sim = Sim::new(3);
    let id = sim.park_on(1, "103");
    sim.at(45_000);
    assert!(sim.engine.recall_answered(45_500, id, 1, "101"));
    assert_eq!(
        sim.engine.retrieve(45_500, T, "103", Retrieve::Id(id)),
        Err(RetrieveError::AlreadyRetrieved)
    );
    assert_eq!(
        sim.engine.retrieve(45_500, T, "103", oldest("103")),
        Err(RetrieveError::NotFound)
    );
}
