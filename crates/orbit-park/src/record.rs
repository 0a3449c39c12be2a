//! One parked call as the engine keeps it, and how it is reported.

use crate::model::{CallRef, ParkId, ParkedInfo, Party};
use crate::output::{EventKind, Output, ParkEvent};
use crate::recall::Recall;

/// A parked call: who, where, since when, and its recall.
#[derive(Debug)]
pub(crate) struct Park {
    pub(crate) tenant: String,
    pub(crate) call: CallRef,
    pub(crate) parker: String,
    pub(crate) parked: Party,
    pub(crate) parked_on: String,
    pub(crate) parked_at_ms: u64,
    pub(crate) recall: Recall,
}

impl Park {
    pub(crate) fn event(&self, id: ParkId, at_ms: u64, kind: EventKind) -> Output {
        Output::Event(ParkEvent {
            at_ms,
            tenant: self.tenant.clone(),
            park: Some(id),
            parked_on: Some(self.parked_on.clone()),
            call: Some(self.call),
            parker: Some(self.parker.clone()),
            parked: Some(self.parked.clone()),
            kind,
        })
    }

    pub(crate) fn info(&self, id: ParkId) -> ParkedInfo {
        ParkedInfo {
            id,
            call: self.call,
            tenant: self.tenant.clone(),
            parked_on: self.parked_on.clone(),
            parker: self.parker.clone(),
            parked: self.parked.clone(),
            parked_at_ms: self.parked_at_ms,
            recall_at_ms: self.recall.recall_at(),
            state: self.recall.state(),
        }
    }
}
