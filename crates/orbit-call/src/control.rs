//! Commands from the API: park a call in progress, ring an extension to
//! take a parked call, hang up a parked call.

use orbit_media::{LegId, Negotiated};
use orbit_park::Retrieve;
use orbit_store::{CallCommand, CommandError};

use crate::call::{other, CallKey, CallState, LegKey};
use crate::codes::Feature;
use crate::hunt::Shown;
use crate::manager::Manager;

impl Manager {
    pub(crate) async fn on_command(&mut self, cmd: CallCommand) -> Result<(), CommandError> {
        match cmd {
            CallCommand::Park {
                tenant_id,
                call_id,
                on,
                group,
            } => self.api_park(&tenant_id, &call_id, on, group).await,
            CallCommand::Retrieve {
                tenant_id,
                park_id,
                to,
            } => self.api_retrieve(&tenant_id, &park_id, &to).await,
            CallCommand::CheckSync {
                tenant_id,
                extension,
            } => {
                self.check_sync(&tenant_id, &extension).await;
                Ok(())
            }
            CallCommand::HangUp { tenant_id, park_id } => {
                let ck = self.parked_call(&tenant_id, &park_id)?;
                self.end_call(ck, "hung_up_parked", None).await;
                Ok(())
            }
        }
    }

    fn parked_call(&self, tenant_id: &str, park_id: &str) -> Result<CallKey, CommandError> {
        let id: u64 = park_id
            .parse()
            .map_err(|_| CommandError::NotFound("parked call"))?;
        self.park
            .engine
            .parked(tenant_id)
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.call)
            .ok_or(CommandError::NotFound("parked call"))
    }

    /// Park a call from the API: its caller is parked, the answering
    /// party (side B) is released as if it had parked the call itself.
    async fn api_park(
        &mut self,
        tenant_id: &str,
        call_id: &str,
        on: Option<String>,
        group: bool,
    ) -> Result<(), CommandError> {
        let found = self
            .calls
            .values()
            .find(|c| c.id == call_id && c.tenant.id == tenant_id)
            .map(|c| {
                (
                    c.key,
                    c.state,
                    c.parked.is_some() || c.transfer.is_some(),
                    c.leg_on(LegId::B),
                )
            });
        let Some((ck, state, busy, parker)) = found else {
            return Err(CommandError::NotFound("call"));
        };
        let field = if group { "group" } else { "on" };
        let (Some(parker), CallState::Answered, false) = (parker, state, busy) else {
            return Err(CommandError::Conflict {
                field: "call",
                message:
                    "only a connected call that is not parked or being transferred can be parked"
                        .into(),
            });
        };
        let feature = if group {
            Feature::GroupPark
        } else {
            Feature::Park { on }
        };
        self.park_leg(ck, parker, feature, false)
            .await
            .map_err(|(status, reason)| match status {
                404 => CommandError::Invalid {
                    field: "on",
                    message: "no such extension".into(),
                },
                _ => CommandError::Conflict {
                    field,
                    message: reason.to_string(),
                },
            })
    }

    /// Ring `to` for a parked call; the first of its phones to answer gets
    /// the call if it is still parked then (the engine decides, so a
    /// retrieve by code or a recall answer at the same time cannot both win).
    async fn api_retrieve(
        &mut self,
        tenant_id: &str,
        park_id: &str,
        to: &str,
    ) -> Result<(), CommandError> {
        let ck = self.parked_call(tenant_id, park_id)?;
        if self.store.directory().extension(tenant_id, to).is_none() {
            return Err(CommandError::Invalid {
                field: "to",
                message: format!("{to} is not an extension of the tenant"),
            });
        }
        let Some((side, parked_party)) = self.calls.get(&ck).and_then(|c| {
            let p = c.parked.as_ref()?;
            let party = c
                .leg_on(other(p.side))
                .and_then(|l| self.legs.get(&l))
                .map(|l| l.party.clone())?;
            Some((p.side, party))
        }) else {
            return Err(CommandError::NotFound("parked call"));
        };
        let forks = self
            .ring(ck, &[to.to_string()], side, &Shown::caller(parked_party))
            .await;
        if forks.is_empty() {
            return Err(CommandError::Conflict {
                field: "to",
                message: format!("{to} has no registered phone"),
            });
        }
        if let Some(p) = self.calls.get_mut(&ck).and_then(|c| c.parked.as_mut()) {
            p.retrievers.extend(forks);
        }
        self.touch_parties(ck);
        Ok(())
    }

    pub(crate) fn is_retriever_fork(&self, ck: CallKey, key: LegKey) -> bool {
        self.calls
            .get(&ck)
            .and_then(|c| c.parked.as_ref())
            .is_some_and(|p| p.retrievers.contains(&key))
    }

    /// A phone the API rang answered: it gets the parked call if the
    /// engine still has it.
    pub(crate) async fn retriever_answered(&mut self, ck: CallKey, key: LegKey, neg: Negotiated) {
        let Some((p, tenant)) = self
            .calls
            .get(&ck)
            .and_then(|c| Some((c.parked.clone()?, c.tenant.id.clone())))
        else {
            return self.hang_up_leg(key).await;
        };
        let by = self
            .legs
            .get(&key)
            .map(|l| l.party.number.clone())
            .unwrap_or_default();
        let now = self.park_now();
        if self
            .park
            .engine
            .retrieve(now, &tenant, &by, Retrieve::Id(p.id))
            .is_err()
        {
            return self.hang_up_leg(key).await;
        }
        self.cancel_recall_forks(ck).await;
        let others: Vec<LegKey> = p.retrievers.iter().copied().filter(|f| *f != key).collect();
        self.take_parked_side(
            ck,
            key,
            neg,
            &others,
            format!("retrieved by {by} (from the API)"),
        )
        .await;
    }
}
