//! Golden bodies: exact bytes for each shape Orbit sends.

use crate::dialog_info::{PARKED_DIRECTION, PARKED_STATE};
use crate::{
    render, render_park_info, ClearReason, DialogEntry, DialogInfo, DialogState, Direction,
    ParkAction, ParkInfo, ParkedMark, Participant,
};

fn info(entity: &str, dialogs: Vec<DialogEntry>) -> DialogInfo {
    DialogInfo {
        entity: entity.into(),
        full: true,
        dialogs,
    }
}

fn alice() -> Participant {
    Participant {
        uri: "sip:106@acme.example".into(),
        display: Some("Alice".into()),
        target: Some("sip:106@acme.example".into()),
    }
}

fn parked_entry(id: &str, call_id: &str, caller: Participant, on: &str, since: i64) -> DialogEntry {
    DialogEntry {
        id: id.into(),
        call_id: Some(call_id.into()),
        local_tag: Some(format!("orb-{id}")),
        remote_tag: Some(format!("ph-{id}")),
        direction: Some(PARKED_DIRECTION),
        state: PARKED_STATE,
        local: Some(Participant {
            uri: format!("sip:{on}@acme.example"),
            display: None,
            target: None,
        }),
        remote: Some(caller),
        parked: Some(ParkedMark {
            parked_on: on.into(),
            since_ms_unix: Some(since),
        }),
    }
}

#[test]
fn idle_extension() {
    let body = render(&info("sip:103@acme.example", vec![]), 0);
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"0\" state=\"full\" entity=\"sip:103@acme.example\">\n\
         </dialog-info>\n"
    );
}

#[test]
fn ringing_incoming_call() {
    let d = DialogEntry {
        id: "c42".into(),
        call_id: Some("a84b4c76e66710@orbit".into()),
        local_tag: Some("1928301774".into()),
        remote_tag: Some("456887766".into()),
        direction: Some(Direction::Recipient),
        state: DialogState::Early,
        local: None,
        remote: Some(alice()),
        parked: None,
    };
    let body = render(&info("sip:103@acme.example", vec![d]), 3);
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"3\" state=\"full\" entity=\"sip:103@acme.example\">\n\
         \x20 <dialog id=\"c42\" call-id=\"a84b4c76e66710@orbit\" local-tag=\"1928301774\" remote-tag=\"456887766\" direction=\"recipient\">\n\
         \x20   <state>early</state>\n\
         \x20   <remote>\n\
         \x20     <identity display=\"Alice\">sip:106@acme.example</identity>\n\
         \x20     <target uri=\"sip:106@acme.example\"/>\n\
         \x20   </remote>\n\
         \x20 </dialog>\n\
         </dialog-info>\n"
    );
}

#[test]
fn confirmed_outgoing_call_partial() {
    let d = DialogEntry {
        id: "c7".into(),
        call_id: None,
        local_tag: None,
        remote_tag: None,
        direction: Some(Direction::Initiator),
        state: DialogState::Confirmed,
        local: Some(Participant {
            uri: "sip:103@acme.example".into(),
            display: Some("Reception".into()),
            target: None,
        }),
        remote: Some(Participant {
            uri: "sip:+4930123@acme.example".into(),
            display: None,
            target: None,
        }),
        parked: None,
    };
    let mut i = info("sip:103@acme.example", vec![d]);
    i.full = false;
    assert_eq!(
        render(&i, 1),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"1\" state=\"partial\" entity=\"sip:103@acme.example\">\n\
         \x20 <dialog id=\"c7\" direction=\"initiator\">\n\
         \x20   <state>confirmed</state>\n\
         \x20   <local>\n\
         \x20     <identity display=\"Reception\">sip:103@acme.example</identity>\n\
         \x20   </local>\n\
         \x20   <remote>\n\
         \x20     <identity>sip:+4930123@acme.example</identity>\n\
         \x20   </remote>\n\
         \x20 </dialog>\n\
         </dialog-info>\n"
    );
}

const PARKED_ALICE: &str = "\
\x20 <dialog id=\"p17\" call-id=\"call-17@orbit\" local-tag=\"orb-p17\" remote-tag=\"ph-p17\" direction=\"recipient\">\n\
\x20   <state>confirmed</state>\n\
\x20   <local>\n\
\x20     <identity>sip:103@acme.example</identity>\n\
\x20   </local>\n\
\x20   <remote>\n\
\x20     <identity display=\"Alice\">sip:106@acme.example</identity>\n\
\x20     <target uri=\"sip:106@acme.example\"/>\n\
\x20   </remote>\n\
\x20   <bw:callpark>\n\
\x20     <bw:parked><identity display=\"Alice\">sip:106@acme.example</identity></bw:parked>\n\
\x20   </bw:callpark>\n\
\x20   <orbit:park on=\"103\" since-ms=\"1764045000000\"/>\n\
\x20 </dialog>\n";

const PARK_ROOT: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" xmlns:bw=\"http://schema.broadsoft.com/callpark\" xmlns:orbit=\"urn:x-orbit:park\"";

#[test]
fn parked_call_on_an_extension() {
    let d = parked_entry("p17", "call-17@orbit", alice(), "103", 1_764_045_000_000);
    let body = render(&info("sip:park-103@acme.example", vec![d]), 5);
    let want = format!(
        "{PARK_ROOT} version=\"5\" state=\"full\" entity=\"sip:park-103@acme.example\">\n{PARKED_ALICE}</dialog-info>\n"
    );
    assert_eq!(body, want);
}

#[test]
fn group_view_with_several_parked_calls() {
    let bob = Participant {
        uri: "sip:+4930555@acme.example".into(),
        display: Some("Bob & Sons <GmbH>".into()),
        target: Some("sip:+4930555@acme.example".into()),
    };
    let dialogs = vec![
        parked_entry("p17", "call-17@orbit", alice(), "103", 1_764_045_000_000),
        parked_entry("p18", "call-18@orbit", bob, "104", 1_764_045_060_000),
    ];
    let body = render(&info("sip:group-front@acme.example", dialogs), 9);
    let bob_entry = "\
\x20 <dialog id=\"p18\" call-id=\"call-18@orbit\" local-tag=\"orb-p18\" remote-tag=\"ph-p18\" direction=\"recipient\">\n\
\x20   <state>confirmed</state>\n\
\x20   <local>\n\
\x20     <identity>sip:104@acme.example</identity>\n\
\x20   </local>\n\
\x20   <remote>\n\
\x20     <identity display=\"Bob &amp; Sons &lt;GmbH&gt;\">sip:+4930555@acme.example</identity>\n\
\x20     <target uri=\"sip:+4930555@acme.example\"/>\n\
\x20   </remote>\n\
\x20   <bw:callpark>\n\
\x20     <bw:parked><identity display=\"Bob &amp; Sons &lt;GmbH&gt;\">sip:+4930555@acme.example</identity></bw:parked>\n\
\x20   </bw:callpark>\n\
\x20   <orbit:park on=\"104\" since-ms=\"1764045060000\"/>\n\
\x20 </dialog>\n";
    let want = format!(
        "{PARK_ROOT} version=\"9\" state=\"full\" entity=\"sip:group-front@acme.example\">\n{PARKED_ALICE}{bob_entry}</dialog-info>\n"
    );
    assert_eq!(body, want);
    assert_eq!(body.matches("<dialog ").count(), 2);
}

#[test]
fn everything_is_escaped() {
    let evil = "\"'<&>";
    let d = DialogEntry {
        id: evil.into(),
        call_id: Some(evil.into()),
        local_tag: Some(evil.into()),
        remote_tag: Some(evil.into()),
        direction: None,
        state: DialogState::Trying,
        local: Some(Participant {
            uri: evil.into(),
            display: Some(evil.into()),
            target: Some(evil.into()),
        }),
        remote: None,
        parked: Some(ParkedMark {
            parked_on: evil.into(),
            since_ms_unix: None,
        }),
    };
    let body = render(&info(evil, vec![d]), 0);
    let esc = "&quot;&apos;&lt;&amp;&gt;";
    assert_eq!(body.matches(esc).count(), 9, "{body}");
    // No raw specials survive outside markup: strip the tags we wrote and
    // check what is left between them.
    for text in body.split('>').filter_map(|s| s.split('<').next()) {
        assert!(!text.contains('&') || text.contains(';'), "{text}");
    }
    assert!(!body.contains(evil));
    assert!(body.contains("<bw:parked></bw:parked>"));
}

fn park_info(action: ParkAction) -> ParkInfo {
    ParkInfo {
        action,
        park_id: 17,
        parked_on: "103".into(),
        group: Some("front".into()),
        parked_by: "101".into(),
        caller_number: "106".into(),
        caller_name: Some("Alice".into()),
        retrieve: "*88103".into(),
        recall_s: Some(300),
        since_ms_unix: Some(1_764_045_000_000),
    }
}

#[test]
fn park_info_parked() {
    assert_eq!(
        render_park_info(&park_info(ParkAction::Parked)),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <park-info xmlns=\"urn:x-orbit:park\" action=\"parked\" park-id=\"17\">\n\
         \x20 <parked-on>103</parked-on>\n\
         \x20 <group>front</group>\n\
         \x20 <parked-by>101</parked-by>\n\
         \x20 <caller number=\"106\" name=\"Alice\"/>\n\
         \x20 <retrieve>*88103</retrieve>\n\
         \x20 <recall-s>300</recall-s>\n\
         \x20 <since-ms>1764045000000</since-ms>\n\
         </park-info>\n"
    );
}

#[test]
fn park_info_cleared_minimal_and_escaped() {
    let mut p = park_info(ParkAction::Cleared(ClearReason::Retrieved));
    p.group = None;
    p.caller_name = Some("O'Hara & <Co>".into());
    p.recall_s = None;
    p.since_ms_unix = None;
    assert_eq!(
        render_park_info(&p),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <park-info xmlns=\"urn:x-orbit:park\" action=\"cleared\" reason=\"retrieved\" park-id=\"17\">\n\
         \x20 <parked-on>103</parked-on>\n\
         \x20 <parked-by>101</parked-by>\n\
         \x20 <caller number=\"106\" name=\"O&apos;Hara &amp; &lt;Co&gt;\"/>\n\
         \x20 <retrieve>*88103</retrieve>\n\
         </park-info>\n"
    );
    for (r, s) in [
        (ClearReason::RecallAnswered, "recall-answered"),
        (ClearReason::Abandoned, "abandoned"),
        (ClearReason::RecallExhausted, "recall-exhausted"),
    ] {
        p.action = ParkAction::Cleared(r);
        assert!(render_park_info(&p).contains(&format!("reason=\"{s}\"")));
    }
}
