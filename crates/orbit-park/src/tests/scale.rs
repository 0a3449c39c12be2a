//! Ten thousand parks: one tick handles all recalls falling due together.

use super::*;
use crate::Retrieve;

#[test]
fn ten_thousand_recalls_due_in_one_millisecond_fire_in_one_tick() {
    const N: u64 = 10_000;
    let mut sim = Sim::new(1);
    let started = std::time::Instant::now();
    for call in 0..N {
        sim.park(
            call,
            Target::Extension(format!("{}", 1000 + call)),
            RecallPolicy::default(),
        )
        .expect("parked");
    }
    assert_eq!(sim.drain().len(), 2 * N as usize, "Parked and Changed each");
    assert_eq!(sim.at(44_999), []);
    let outs = sim.at(45_000);
    let count = |f: fn(&Output) -> bool| outs.iter().filter(|o| f(o)).count();
    assert_eq!(count(|o| matches!(o, Output::Ring { .. })), N as usize);
    assert_eq!(count(|o| matches!(o, Output::Event(_))), N as usize);
    assert_eq!(count(|o| matches!(o, Output::Changed { .. })), N as usize);
    assert!(outs
        .iter()
        .all(|o| !matches!(o, Output::Event(e) if e.at_ms != 45_000)));
    assert_eq!(
        sim.engine.next_deadline(),
        Some(65_000),
        "every recall moved on"
    );
    // Per-park operations stay cheap with everything parked.
    for call in (0..N).step_by(7) {
        let ext = format!("{}", 1000 + call);
        sim.engine
            .retrieve(45_001, T, "101", Retrieve::Oldest { ext })
            .expect("retrieved");
    }
    eprintln!(
        "10,000 parks, one tick, 1,429 retrieves: {:?}",
        started.elapsed()
    );
}
