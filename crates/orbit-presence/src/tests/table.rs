//! The subscription table, one rule per test, in fake time.

use super::{park, req, Sim, A, B};
use crate::{Bound, Limits, Notify, Refused, Resource, SavedSubscription, SubState, TermReason};

fn active(left: u32) -> SubState {
    SubState::Active {
        expires_left_s: left,
    }
}

fn ended(reason: TermReason) -> SubState {
    SubState::Terminated { reason }
}

/// `(id, version, state)` of each NOTIFY.
fn brief(outs: &[Notify]) -> Vec<(u64, u32, SubState)> {
    outs.iter().map(|n| (n.id, n.version, n.state)).collect()
}

fn sim() -> Sim {
    Sim::new(Limits::default())
}

/// No burst: one change-driven NOTIFY per 50 ms.
fn one_per_50ms() -> Sim {
    Sim::new(Limits {
        coalesce_ms: 50,
        notify_burst: 1,
        ..Limits::default()
    })
}

#[test]
fn first_notify_is_immediate_full_version_0() {
    let mut s = sim();
    s.now = 1_000;
    let id = s
        .subs
        .subscribe(s.now, req(A, "c1", park("103"), 600))
        .unwrap();
    let n = s.subs.poll().expect("queued at once");
    assert_eq!(
        n,
        Notify {
            id,
            tenant: A.into(),
            resource: park("103"),
            version: 0,
            state: active(600),
        }
    );
    assert_eq!(s.subs.poll(), None);
    assert_eq!(s.subs.get(id).unwrap().granted_s(), 600);
    assert_eq!(s.subs.next_deadline(), Some(601_000));
}

#[test]
fn expires_above_the_maximum_is_shortened() {
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 86_400));
    assert_eq!(s.subs.get(id).unwrap().granted_s(), 3600);
    assert_eq!(
        brief(&s.log.iter().map(|l| l.1.clone()).collect::<Vec<_>>()),
        [(id, 0, active(3600))]
    );
}

#[test]
fn too_brief_is_423_with_the_minimum() {
    let mut s = sim();
    let r = s.subs.subscribe(0, req(A, "c1", park("103"), 59));
    assert_eq!(r, Err(Refused::TooBrief { min_s: 60 }));
    assert_eq!(r.unwrap_err().status(), 423);
    assert!(s.subs.is_empty());
    assert_eq!(s.subs.poll(), None);
}

#[test]
fn a_burst_beyond_the_budget_becomes_one_notify_when_it_allows() {
    // Budget: 3 at once, then one per 10 ms.
    let mut s = Sim::new(Limits {
        coalesce_ms: 10,
        notify_burst: 3,
        ..Limits::default()
    });
    let id = s.subscribe(req(A, "c1", park("103"), 600)); // version 0 at 0
    s.run_to(1);
    for v in [1, 2] {
        s.subs.changed(1, A, &park("103"));
        assert_eq!(brief(&s.drain()), [(id, v, active(600))], "at once");
    }
    // The budget is spent (theoretical time 30, tolerance 20): the rest of
    // the burst waits until 10 and goes as one.
    for t in [2, 5, 9] {
        s.run_to(t);
        s.subs.changed(t, A, &park("103"));
        assert!(s.drain().is_empty(), "coalesced at {t}");
    }
    assert_eq!(s.subs.next_deadline(), Some(10));
    assert!(s.run_to(9).is_empty());
    assert_eq!(brief(&s.run_to(10)), [(id, 3, active(600))]);
    // Quiet since: the budget is back, a change goes out at once.
    s.run_to(1_000);
    s.subs.changed(1_000, A, &park("103"));
    assert_eq!(brief(&s.drain()), [(id, 4, active(599))]);
}

#[test]
fn changes_at_the_sustained_rate_are_never_delayed() {
    // One change every 5 ms, the default spacing, for a second: every
    // NOTIFY goes out the moment its change happens.
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 600));
    for (i, t) in (5..=1_000).step_by(5).enumerate() {
        s.run_to(t);
        s.subs.changed(t, A, &park("103"));
        let out = s.drain();
        assert_eq!(out.len(), 1, "at {t}");
        assert_eq!(out[0].id, id);
        assert_eq!(out[0].version as usize, i + 1);
    }
}

#[test]
fn a_change_while_a_notify_is_queued_needs_no_second_one() {
    let mut s = sim();
    let id = s.subs.subscribe(0, req(A, "c1", park("103"), 600)).unwrap();
    s.subs.changed(0, A, &park("103"));
    s.subs.changed(0, A, &park("103"));
    assert_eq!(brief(&s.drain()), [(id, 0, active(600))]);
    assert_eq!(s.subs.next_deadline(), Some(600_000), "nothing due");
}

#[test]
fn expiry_is_exact_in_simulated_time() {
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 60));
    assert!(s.run_to(59_999).is_empty());
    assert_eq!(s.subs.len(), 1);
    assert_eq!(
        brief(&s.run_to(60_000)),
        [(id, 1, ended(TermReason::Timeout))]
    );
    assert!(s.subs.is_empty());
    assert_eq!(s.subs.next_deadline(), None);
    s.subs.changed(60_001, A, &park("103"));
    assert_eq!(s.subs.poll(), None);
    assert_eq!(
        s.subs.refresh(60_001, id, 600),
        Err(Refused::NoSuchSubscription)
    );
}

#[test]
fn refresh_moves_the_expiry_and_notifies_at_once() {
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 60));
    s.run_to(30_000);
    assert_eq!(s.subs.refresh(30_000, id, 120), Ok(120));
    assert_eq!(brief(&s.drain()), [(id, 1, active(120))]);
    assert!(s.run_to(149_999).is_empty());
    assert_eq!(
        brief(&s.run_to(150_000)),
        [(id, 2, ended(TermReason::Timeout))]
    );
}

#[test]
fn a_refused_refresh_leaves_the_subscription_as_it_was() {
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 60));
    assert_eq!(
        s.subs.refresh(1_000, id, 10),
        Err(Refused::TooBrief { min_s: 60 })
    );
    assert_eq!(s.subs.get(id).unwrap().expires_at_ms(), 60_000);
    assert_eq!(s.subs.poll(), None);
}

#[test]
fn refresh_absorbs_a_pending_coalesced_notify() {
    let mut s = one_per_50ms();
    let id = s.subscribe(req(A, "c1", park("103"), 600));
    s.run_to(10);
    s.subs.changed(10, A, &park("103"));
    assert_eq!(s.subs.refresh(20, id, 600), Ok(600));
    assert_eq!(brief(&s.drain()), [(id, 1, active(600))]);
    assert!(
        s.run_to(100).is_empty(),
        "the refresh NOTIFY carried the change"
    );
}

#[test]
fn unsubscribe_sends_the_final_notify() {
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 600));
    s.run_to(5_000);
    assert_eq!(s.subs.refresh(5_000, id, 0), Ok(0));
    let n = s.subs.poll().unwrap();
    assert_eq!(
        (n.id, n.version, n.state),
        (id, 1, ended(TermReason::Timeout))
    );
    assert_eq!(n.state.header(), "terminated;reason=timeout");
    assert_eq!(
        s.subs.get_mut(id).unwrap().dialog,
        7,
        "readable until the next poll"
    );
    assert_eq!(s.subs.poll(), None);
    assert!(s.subs.get(id).is_none());
    assert_eq!(s.subs.refresh(5_000, id, 600).unwrap_err().status(), 481);
}

#[test]
fn fetch_gets_one_terminated_notify_and_counts_against_nothing() {
    let mut s = Sim::new(Limits {
        max_per_contact: 1,
        max_per_tenant: 1,
        ..Limits::default()
    });
    s.subscribe(req(A, "c1", park("103"), 600));
    let id = s.subs.subscribe(0, req(A, "c1", park("103"), 0)).unwrap();
    assert_eq!(s.subs.get(id).unwrap().granted_s(), 0);
    let n = s.subs.poll().unwrap();
    assert_eq!(
        (n.id, n.version, n.state),
        (id, 0, ended(TermReason::Timeout))
    );
    assert_eq!(s.subs.poll(), None);
    assert_eq!(s.subs.len(), 1);
    assert_eq!(s.subs.watchers(A, &park("103")).count(), 1);
}

#[test]
fn bound_per_contact_is_403_and_frees_up() {
    let mut s = Sim::new(Limits {
        max_per_contact: 2,
        ..Limits::default()
    });
    let first = s.subscribe(req(A, "c1", park("101"), 600));
    s.subscribe(req(A, "c1", park("102"), 600));
    let r = s.subs.subscribe(0, req(A, "c1", park("103"), 600));
    assert_eq!(r, Err(Refused::TooMany(Bound::Contact)));
    assert_eq!(r.unwrap_err().status(), 403);
    s.subscribe(req(A, "c2", park("103"), 600));
    s.subscribe(req(B, "c1", park("103"), 600));
    s.subs.refresh(0, first, 0).unwrap();
    s.drain();
    s.subscribe(req(A, "c1", park("103"), 600));
}

#[test]
fn bound_per_tenant_is_503_and_per_tenant_only() {
    let mut s = Sim::new(Limits {
        max_per_tenant: 3,
        ..Limits::default()
    });
    for c in ["c1", "c2", "c3"] {
        s.subscribe(req(A, c, park("103"), 600));
    }
    let r = s.subs.subscribe(0, req(A, "c4", park("103"), 600));
    assert_eq!(r, Err(Refused::TooMany(Bound::Tenant)));
    assert_eq!(r.unwrap_err().status(), 503);
    s.subscribe(req(B, "c4", park("103"), 600));
}

#[test]
fn a_change_in_one_tenant_never_notifies_another() {
    let mut s = sim();
    let a = s.subscribe(req(A, "c1", park("103"), 600));
    let b = s.subscribe(req(B, "c1", park("103"), 600));
    let ext = s.subscribe(req(A, "c1", Resource::Extension("103".into()), 600));
    s.run_to(1_000);
    s.subs.changed(1_000, A, &park("103"));
    let outs = s.drain();
    assert_eq!(brief(&outs), [(a, 1, active(599))]);
    assert_eq!(s.subs.watchers(A, &park("103")).collect::<Vec<_>>(), [a]);
    assert_eq!(s.subs.watchers(B, &park("103")).collect::<Vec<_>>(), [b]);
    assert!(
        outs.iter().all(|n| n.id != ext),
        "other resources untouched"
    );
}

#[test]
fn removals_end_with_their_reasons() {
    let mut s = sim();
    let mut r = req(A, "c1", park("103"), 600);
    r.subscriber = "105".into();
    let by_105 = s.subscribe(r);
    let on_103 = s.subscribe(req(A, "c2", Resource::Extension("103".into()), 600));
    let group = s.subscribe(req(A, "c2", Resource::ParkGroup("front".into()), 600));
    let other = s.subscribe(req(B, "c2", Resource::ParkGroup("front".into()), 600));
    s.subs.remove_subscriber(A, "105");
    s.subs
        .remove_resource(A, &Resource::Extension("103".into()));
    assert_eq!(
        brief(&s.drain()),
        [
            (by_105, 1, ended(TermReason::Rejected)),
            (on_103, 1, ended(TermReason::NoResource))
        ]
    );
    s.subs.remove_tenant(A);
    assert_eq!(
        brief(&s.drain()),
        [(group, 1, ended(TermReason::NoResource))]
    );
    assert_eq!(s.subs.len(), 1);
    assert!(s.subs.get(other).is_some());
}

#[test]
fn restore_keeps_the_version_and_the_time_left() {
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 600));
    s.run_to(100_000);
    s.subs.changed(100_000, A, &park("103"));
    s.drain();
    let saved = s.subs.saved(id, 100_000).unwrap();
    assert_eq!(
        (saved.next_version, saved.expires_left_s, saved.dialog),
        (2, 500, 7)
    );

    let mut after = sim();
    after.now = 7;
    let new = after.subs.restore(7, saved.clone());
    assert_eq!(brief(&after.drain()), [(new, 2, active(500))]);
    assert_eq!(after.subs.get(new).unwrap().expires_at_ms(), 500_007);
    assert_eq!(
        brief(&after.run_to(500_007)),
        [(new, 3, ended(TermReason::Timeout))]
    );

    let gone = after.subs.restore(
        500_007,
        SavedSubscription {
            expires_left_s: 0,
            ..saved
        },
    );
    assert_eq!(
        brief(&after.drain()),
        [(gone, 2, ended(TermReason::Timeout))]
    );
    assert!(after.subs.is_empty());
}

#[test]
fn forget_drops_queued_notifies_without_a_final_one() {
    let mut s = sim();
    let id = s.subs.subscribe(0, req(A, "c1", park("103"), 600)).unwrap();
    let sub = s.subs.forget(id).expect("known");
    assert_eq!(sub.dialog, 7);
    assert_eq!(s.subs.poll(), None);
    assert!(s.subs.is_empty());
    assert_eq!(s.subs.next_deadline(), None);
    assert!(s.subs.forget(id).is_none());
}

#[test]
fn next_deadline_is_the_earliest_of_expiry_and_coalescing() {
    let mut s = one_per_50ms();
    s.subscribe(req(A, "c1", park("103"), 60));
    s.run_to(10);
    s.subs.changed(10, A, &park("103"));
    assert_eq!(s.subs.next_deadline(), Some(50));
    s.run_to(50);
    assert_eq!(s.subs.next_deadline(), Some(60_000));
}

#[test]
fn get_mut_reaches_the_dialog() {
    let mut s = sim();
    let id = s.subscribe(req(A, "c1", park("103"), 60));
    s.subs.get_mut(id).unwrap().dialog += 1;
    let sub = s.subs.get(id).unwrap();
    assert_eq!(
        (
            sub.dialog,
            sub.tenant(),
            sub.subscriber(),
            sub.contact(),
            sub.resource()
        ),
        (8, A, "101", "c1", &park("103"))
    );
    assert_eq!(sub.next_version(), 1);
    assert_eq!(sub.ended(), None);
}

#[test]
fn header_values() {
    assert_eq!(active(600).header(), "active;expires=600");
    assert_eq!(
        ended(TermReason::NoResource).header(),
        "terminated;reason=noresource"
    );
    assert_eq!(TermReason::Deactivated.as_str(), "deactivated");
    assert_eq!(TermReason::Rejected.as_str(), "rejected");
}

#[test]
fn a_change_touches_only_its_watchers_at_scale() {
    let mut s = Sim::new(Limits {
        max_per_tenant: 100_000,
        ..Limits::default()
    });
    // 200 tenants × 100 phones × 5 keys = 100 000 subscriptions.
    for t in 0..200 {
        let tenant = format!("t{t}");
        for phone in 0..100 {
            for key in 0..5 {
                let r = park(&format!("{}", 100 + (phone + key) % 100));
                s.subs
                    .subscribe(0, req(&tenant, &format!("c{phone}"), r, 600))
                    .unwrap();
            }
        }
    }
    s.drain();
    assert_eq!(s.subs.len(), 100_000);
    s.run_to(1_000);
    s.subs.changed(1_000, "t7", &park("150"));
    let outs = s.drain();
    assert_eq!(outs.len(), 5);
    assert!(outs
        .iter()
        .all(|n| n.tenant == "t7" && n.resource == park("150")));
}
