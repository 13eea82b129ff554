//! Checkpoints as the backup keeps them, and the poison count: pure logic, no I/O.
//!
//! Restoring the state that crashed the primary may crash the new primary the same way, and
//! the next, forever. So every checkpoint carries the number of takeovers that already
//! happened at it: a takeover resumes from the latest checkpoint with that number plus one,
//! and forwards it to the next backup with the state. When it reaches the poison limit, the
//! state is declared poisoned and the program's hook (by default: the state checkpointed
//! before it) decides what to resume from instead; the count starts again from zero.

/// A checkpoint: the `sequence`-th state the primary saved, and how many takeovers happened
/// at it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Saved<S> {
    pub sequence: u64,
    pub takeovers: u32,
    pub state: S,
}

/// The backup's last two checkpoints: the latest, and the one before it for a poisoned
/// latest.
#[derive(Debug, PartialEq)]
pub(crate) struct Kept<S> {
    pub latest: Option<Saved<S>>,
    pub previous: Option<Saved<S>>,
}

impl<S> Kept<S> {
    pub fn new() -> Self {
        Kept {
            latest: None,
            previous: None,
        }
    }

    /// Takes a checkpoint in. A newer one pushes the latest back to `previous`; the latest
    /// again (a resend, or the same one with a new takeover count) replaces it; an older one
    /// (the previous checkpoint a primary resends to a new backup) fills `previous`.
    pub fn receive(&mut self, saved: Saved<S>) {
        match &self.latest {
            Some(latest) if saved.sequence < latest.sequence => {
                if self
                    .previous
                    .as_ref()
                    .is_none_or(|previous| previous.sequence <= saved.sequence)
                {
                    self.previous = Some(saved);
                }
            }
            Some(latest) if saved.sequence == latest.sequence => self.latest = Some(saved),
            _ => self.previous = self.latest.replace(saved),
        }
    }
}

/// What a takeover resumes from.
#[derive(Debug, PartialEq)]
pub(crate) enum Resume<S> {
    /// The latest checkpoint, its takeover count incremented.
    Latest {
        resumed: Saved<S>,
        previous: Option<Saved<S>>,
    },
    /// The latest checkpoint reached the poison limit: the program decides, given it and the
    /// checkpoint before it (the initial state, as checkpoint 0, when there is none).
    Poisoned {
        /// The poisoned checkpoint, its count incremented to the limit.
        poisoned: Saved<S>,
        before: Saved<S>,
    },
}

/// Plans a takeover from what the backup `kept`. Without any checkpoint the pair resumes
/// from `initial`, as checkpoint 0.
pub(crate) fn plan_takeover<S: Clone>(kept: Kept<S>, initial: &S, poison_limit: u32) -> Resume<S> {
    let initial_checkpoint = || Saved {
        sequence: 0,
        takeovers: 0,
        state: initial.clone(),
    };
    let mut resumed = kept.latest.unwrap_or_else(initial_checkpoint);
    resumed.takeovers = resumed.takeovers.saturating_add(1);
    if resumed.takeovers >= poison_limit {
        Resume::Poisoned {
            poisoned: resumed,
            before: kept.previous.unwrap_or_else(initial_checkpoint),
        }
    } else {
        Resume::Latest {
            resumed,
            previous: kept.previous,
        }
    }
}

/// The checkpoint a pair resumes from after `poisoned`: `state` (the hook's choice, or the
/// state before), as a new checkpoint after the poisoned one, with a fresh count.
pub(crate) fn after_poison<S>(poisoned: &Saved<S>, state: S) -> Saved<S> {
    Saved {
        sequence: poisoned.sequence + 1,
        takeovers: 0,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(sequence: u64, takeovers: u32) -> Saved<u64> {
        Saved {
            sequence,
            takeovers,
            state: sequence * 10,
        }
    }

    fn kept(latest: Option<Saved<u64>>, previous: Option<Saved<u64>>) -> Kept<u64> {
        Kept { latest, previous }
    }

    #[test]
    fn the_backup_keeps_the_last_two_checkpoints() {
        let mut backup = Kept::new();
        for sequence in 1..=4 {
            backup.receive(saved(sequence, 0));
        }
        assert_eq!(backup, kept(Some(saved(4, 0)), Some(saved(3, 0))));
    }

    #[test]
    fn the_latest_again_replaces_it_and_keeps_the_previous() {
        let mut backup = kept(Some(saved(4, 0)), Some(saved(3, 0)));
        backup.receive(saved(4, 1));
        assert_eq!(backup, kept(Some(saved(4, 1)), Some(saved(3, 0))));
    }

    #[test]
    fn a_new_backup_gets_the_previous_then_the_latest() {
        let mut backup = Kept::new();
        backup.receive(saved(3, 0));
        backup.receive(saved(4, 1));
        assert_eq!(backup, kept(Some(saved(4, 1)), Some(saved(3, 0))));
        // The same pair resent after a checkpoint already arrived directly.
        let mut backup = Kept::new();
        backup.receive(saved(4, 1));
        backup.receive(saved(3, 0));
        backup.receive(saved(4, 1));
        assert_eq!(backup, kept(Some(saved(4, 1)), Some(saved(3, 0))));
    }

    #[test]
    fn a_takeover_counts_one_more_takeover_at_the_latest_checkpoint() {
        let plan = plan_takeover(kept(Some(saved(4, 1)), Some(saved(3, 0))), &0, 3);
        assert_eq!(
            plan,
            Resume::Latest {
                resumed: saved(4, 2),
                previous: Some(saved(3, 0)),
            }
        );
    }

    #[test]
    fn without_a_checkpoint_the_pair_resumes_from_the_initial_state() {
        let plan = plan_takeover(Kept::new(), &7, 3);
        assert_eq!(
            plan,
            Resume::Latest {
                resumed: Saved {
                    sequence: 0,
                    takeovers: 1,
                    state: 7,
                },
                previous: None,
            }
        );
    }

    #[test]
    fn the_limit_th_takeover_at_one_checkpoint_declares_it_poisoned() {
        let plan = plan_takeover(kept(Some(saved(4, 2)), Some(saved(3, 0))), &0, 3);
        assert_eq!(
            plan,
            Resume::Poisoned {
                poisoned: saved(4, 3),
                before: saved(3, 0),
            }
        );
        let resumed = after_poison(&saved(4, 3), 30);
        assert_eq!(
            resumed,
            Saved {
                sequence: 5,
                takeovers: 0,
                state: 30,
            }
        );
    }

    #[test]
    fn a_poisoned_first_checkpoint_falls_back_to_the_initial_state() {
        let plan = plan_takeover(kept(Some(saved(1, 0)), None), &7, 1);
        assert_eq!(
            plan,
            Resume::Poisoned {
                poisoned: saved(1, 1),
                before: Saved {
                    sequence: 0,
                    takeovers: 0,
                    state: 7,
                },
            }
        );
    }

    /// Takeovers one after another at the same checkpoint, as the pair forwards the count:
    /// poisoned at the third, then counting again from zero at the checkpoint after it.
    #[test]
    fn the_count_travels_from_backup_to_backup_and_resets_after_poison() {
        let mut latest = saved(4, 0);
        let mut outcomes = Vec::new();
        for _ in 0..4 {
            match plan_takeover(kept(Some(latest.clone()), Some(saved(3, 0))), &0, 3) {
                Resume::Latest { resumed, .. } => {
                    outcomes.push(format!(
                        "resume {} at {}",
                        resumed.sequence, resumed.takeovers
                    ));
                    latest = resumed;
                }
                Resume::Poisoned { poisoned, before } => {
                    outcomes.push(format!("poisoned {}", poisoned.sequence));
                    latest = after_poison(&poisoned, before.state);
                }
            }
        }
        assert_eq!(
            outcomes,
            [
                "resume 4 at 1",
                "resume 4 at 2",
                "poisoned 4",
                "resume 5 at 1"
            ]
        );
        assert_eq!(latest.state, 30, "resumed from the state before the poison");
    }
}
