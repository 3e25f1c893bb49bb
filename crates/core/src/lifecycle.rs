//! The instance lifecycle as an explicit state machine.
//!
//! States and codes are AWS's. Two kinds of events move an instance: requests
//! from the API (start, stop, reboot, terminate) and observations reported by the
//! runtime (the VM is running, has stopped, is gone, failed). Every legal move is
//! in the two functions below and nowhere else; the table test at the bottom
//! checks every (state, event) pair.
//!
//! Requests only ever move an instance toward a transitional state (`pending`,
//! `stopping`, `shutting-down`); the resting states (`running`, `stopped`,
//! `terminated`) are reached only when the runtime says so. An observation that
//! no longer fits the current state (a late "running" for an instance the user
//! has since asked to stop) is ignored rather than applied.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub const ALL: [InstanceState; 6] = [
        Self::Pending,
        Self::Running,
        Self::ShuttingDown,
        Self::Terminated,
        Self::Stopping,
        Self::Stopped,
    ];

    /// The low byte of `instanceState.code`.
    pub fn code(self) -> u16 {
        match self {
            Self::Pending => 0,
            Self::Running => 16,
            Self::ShuttingDown => 32,
            Self::Terminated => 48,
            Self::Stopping => 64,
            Self::Stopped => 80,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|st| st.name() == s)
    }

    /// States in which the instance holds a VM (or is about to).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running | Self::Stopping)
    }

    /// States in which the instance still occupies its subnet address, groups
    /// and volumes: everything but `terminated`.
    pub fn holds_resources(self) -> bool {
        self != Self::Terminated
    }
}

/// What the API asks of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Start,
    Stop,
    Reboot,
    Terminate,
}

impl Request {
    /// The verb in "…not in a state from which it can be {verb}".
    pub fn verb(self) -> &'static str {
        match self {
            Self::Start => "started",
            Self::Stop => "stopped",
            Self::Reboot => "rebooted",
            Self::Terminate => "terminated",
        }
    }
}

/// The result of a request against the current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Move to this state and ask the runtime to act.
    Move(InstanceState),
    /// Already there or on the way: report the current state, nothing to do.
    /// (Stopping a stopping instance again may still escalate to a forced stop.)
    AlreadyThere,
    /// Stay in the state but ask the runtime to act (reboot).
    Act,
    /// `IncorrectInstanceState`.
    Illegal,
}

pub fn on_request(from: InstanceState, req: Request) -> RequestOutcome {
    use InstanceState::*;
    use Request::*;
    use RequestOutcome::*;
    match (from, req) {
        (Stopped, Start) => Move(Pending),
        (Pending | Running, Start) => AlreadyThere,
        (Stopping | ShuttingDown | Terminated, Start) => Illegal,

        (Running, Stop) => Move(Stopping),
        (Stopping | Stopped, Stop) => AlreadyThere,
        (Pending | ShuttingDown | Terminated, Stop) => Illegal,

        (Running, Reboot) => Act,
        (Pending | Stopping | Stopped | ShuttingDown | Terminated, Reboot) => Illegal,

        (Pending | Running | Stopping | Stopped, Terminate) => Move(ShuttingDown),
        (ShuttingDown | Terminated, Terminate) => AlreadyThere,
    }
}

/// What the runtime reports about an instance's VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observation {
    /// The VM is up.
    Running,
    /// The VM is off; its disks remain.
    Stopped,
    /// The VM and everything it had are gone.
    Gone,
    /// The VM could not be started or died; the string says why.
    Failed(String),
}

/// What a guest-initiated power-off means (`InstanceInitiatedShutdownBehavior`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownBehavior {
    #[default]
    Stop,
    Terminate,
}

/// The result of applying an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObservationOutcome {
    /// Ignore: stale or irrelevant to the current state.
    Ignore,
    /// Move to this state.
    Move(InstanceState),
    /// Move to this state, then ask the runtime to tear the VM down.
    MoveAndDestroy(InstanceState),
}

pub fn on_observation(from: InstanceState, obs: &Observation, shutdown: ShutdownBehavior) -> ObservationOutcome {
    use InstanceState::*;
    use ObservationOutcome::*;
    // A VM that went off on its own (guest power-off, crash) follows the
    // instance's shutdown behaviour, as on AWS.
    let went_down = || match shutdown {
        ShutdownBehavior::Stop => Move(Stopped),
        ShutdownBehavior::Terminate => MoveAndDestroy(ShuttingDown),
    };
    match (from, obs) {
        (Pending, Observation::Running) => Move(Running),
        (Pending, Observation::Stopped) => went_down(),
        // A launch that fails ends in `terminated`, as AWS's
        // `Server.InternalError` launch failures do.
        (Pending, Observation::Failed(_)) => MoveAndDestroy(ShuttingDown),
        (Pending, Observation::Gone) => Move(Terminated),

        (Running, Observation::Running) => Ignore,
        (Running, Observation::Stopped | Observation::Failed(_)) => went_down(),
        (Running, Observation::Gone) => Move(Stopped),

        (Stopping, Observation::Stopped | Observation::Gone | Observation::Failed(_)) => Move(Stopped),
        (Stopping, Observation::Running) => Ignore,

        (ShuttingDown, Observation::Gone) => Move(Terminated),
        (ShuttingDown, _) => Ignore,

        (Stopped | Terminated, _) => Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::InstanceState::*;
    use super::*;

    #[test]
    fn codes_and_names_are_aws() {
        let expected = [(Pending, 0, "pending"), (Running, 16, "running"), (ShuttingDown, 32, "shutting-down"),
            (Terminated, 48, "terminated"), (Stopping, 64, "stopping"), (Stopped, 80, "stopped")];
        for (s, code, name) in expected {
            assert_eq!(s.code(), code);
            assert_eq!(s.name(), name);
            assert_eq!(InstanceState::from_name(name), Some(s));
        }
        assert_eq!(InstanceState::from_name("bogus"), None);
    }

    /// Every (state, request) pair, written out.
    #[test]
    fn request_table() {
        use Request::*;
        use RequestOutcome::*;
        let table = [
            (Pending, Start, AlreadyThere), (Pending, Stop, Illegal), (Pending, Reboot, Illegal), (Pending, Terminate, Move(ShuttingDown)),
            (Running, Start, AlreadyThere), (Running, Stop, Move(Stopping)), (Running, Reboot, Act), (Running, Terminate, Move(ShuttingDown)),
            (ShuttingDown, Start, Illegal), (ShuttingDown, Stop, Illegal), (ShuttingDown, Reboot, Illegal), (ShuttingDown, Terminate, AlreadyThere),
            (Terminated, Start, Illegal), (Terminated, Stop, Illegal), (Terminated, Reboot, Illegal), (Terminated, Terminate, AlreadyThere),
            (Stopping, Start, Illegal), (Stopping, Stop, AlreadyThere), (Stopping, Reboot, Illegal), (Stopping, Terminate, Move(ShuttingDown)),
            (Stopped, Start, Move(Pending)), (Stopped, Stop, AlreadyThere), (Stopped, Reboot, Illegal), (Stopped, Terminate, Move(ShuttingDown)),
        ];
        assert_eq!(table.len(), 6 * 4, "every pair is listed");
        for (from, req, want) in table {
            assert_eq!(on_request(from, req), want, "{from:?} + {req:?}");
        }
    }

    /// Every (state, observation) pair under both shutdown behaviours.
    #[test]
    fn observation_table() {
        use ObservationOutcome::*;
        let fail = Observation::Failed("boom".into());
        let obs = [Observation::Running, Observation::Stopped, Observation::Gone, fail];
        for behaviour in [ShutdownBehavior::Stop, ShutdownBehavior::Terminate] {
            let down = match behaviour {
                ShutdownBehavior::Stop => Move(Stopped),
                ShutdownBehavior::Terminate => MoveAndDestroy(ShuttingDown),
            };
            let expect = |from: InstanceState, o: &Observation| -> ObservationOutcome {
                match (from, o) {
                    (Pending, Observation::Running) => Move(Running),
                    (Pending, Observation::Stopped) => down,
                    (Pending, Observation::Gone) => Move(Terminated),
                    (Pending, Observation::Failed(_)) => MoveAndDestroy(ShuttingDown),
                    (Running, Observation::Running) => Ignore,
                    (Running, Observation::Stopped) | (Running, Observation::Failed(_)) => down,
                    (Running, Observation::Gone) => Move(Stopped),
                    (Stopping, Observation::Running) => Ignore,
                    (Stopping, _) => Move(Stopped),
                    (ShuttingDown, Observation::Gone) => Move(Terminated),
                    (ShuttingDown, _) => Ignore,
                    (Stopped, _) | (Terminated, _) => Ignore,
                }
            };
            let mut n = 0;
            for from in InstanceState::ALL {
                for o in &obs {
                    assert_eq!(on_observation(from, o, behaviour), expect(from, o), "{from:?} + {o:?} ({behaviour:?})");
                    n += 1;
                }
            }
            assert_eq!(n, 24);
        }
    }

    /// No request ever lands directly in a resting state: only the runtime's
    /// reports do that.
    #[test]
    fn requests_only_reach_transitional_states() {
        for from in InstanceState::ALL {
            for req in [Request::Start, Request::Stop, Request::Reboot, Request::Terminate] {
                if let RequestOutcome::Move(to) = on_request(from, req) {
                    assert!(matches!(to, Pending | Stopping | ShuttingDown), "{from:?}+{req:?} -> {to:?}");
                }
            }
        }
    }

    /// Terminated is final.
    #[test]
    fn terminated_is_final() {
        for req in [Request::Start, Request::Stop, Request::Reboot] {
            assert_eq!(on_request(Terminated, req), RequestOutcome::Illegal);
        }
        for o in [Observation::Running, Observation::Stopped, Observation::Gone] {
            assert_eq!(on_observation(Terminated, &o, ShutdownBehavior::Stop), ObservationOutcome::Ignore);
        }
    }
}
