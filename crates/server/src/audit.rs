//! The audit log's hash chain: how an event's hash is computed and how a chain is checked.
//!
//! Each event stores the hash of the one before it (`GENESIS_HASH` for the first), and its own
//! hash is SHA-256 over that previous hash and every field of the event, so editing, deleting or
//! reordering any entry breaks the chain at that entry. Deleting the newest entries leaves a
//! valid shorter chain; `verify` reports the head so it can be compared with a copy kept
//! elsewhere.

use sha2::{Digest, Sha256};

use crate::store::AuditEvent;

/// The previous hash of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 (hex) over the previous hash and the event's fields, each length-prefixed so no two
/// different events hash the same bytes.
pub fn event_hash(event: &AuditEvent) -> String {
    let mut hasher = Sha256::new();
    let seq = event.seq.to_string();
    let at_ms = event.at_ms.to_string();
    for field in [
        event.prev_hash.as_str(),
        seq.as_str(),
        at_ms.as_str(),
        event.actor.as_str(),
        event.action.as_str(),
        event.target.as_str(),
        event.outcome.as_str(),
    ] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The first entry at which a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("audit log broken at entry {seq}: {problem}")]
pub struct ChainBreak {
    /// Sequence number of the first bad entry (the position where it was expected).
    pub seq: i64,
    pub problem: String,
}

/// Checks a chain given in storage order; returns the number of entries and the head hash.
pub fn verify(events: &[AuditEvent]) -> Result<(usize, String), ChainBreak> {
    let mut prev_hash = GENESIS_HASH.to_string();
    for (index, event) in events.iter().enumerate() {
        let expected_seq = index as i64 + 1;
        if event.seq != expected_seq {
            return Err(ChainBreak {
                seq: expected_seq,
                problem: format!(
                    "expected entry {expected_seq} but found {} (deleted or reordered)",
                    event.seq
                ),
            });
        }
        if event.prev_hash != prev_hash {
            return Err(ChainBreak {
                seq: event.seq,
                problem:
                    "previous-hash link does not match the entry before it (deleted or reordered)"
                        .into(),
            });
        }
        if event_hash(event) != event.hash {
            return Err(ChainBreak {
                seq: event.seq,
                problem: "contents do not match the entry's hash (edited)".into(),
            });
        }
        prev_hash = event.hash.clone();
    }
    Ok((events.len(), prev_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(count: i64) -> Vec<AuditEvent> {
        let mut events: Vec<AuditEvent> = Vec::new();
        for seq in 1..=count {
            let mut event = AuditEvent {
                seq,
                at_ms: 1000 * seq,
                actor: "alice".into(),
                action: "POST /api/v1/jobs".into(),
                target: format!("job {seq}"),
                outcome: "201".into(),
                prev_hash: events
                    .last()
                    .map_or(GENESIS_HASH.to_string(), |e| e.hash.clone()),
                hash: String::new(),
            };
            event.hash = event_hash(&event);
            events.push(event);
        }
        events
    }

    #[test]
    fn an_intact_chain_verifies_with_its_head() {
        let events = chain(5);
        assert_eq!(verify(&events), Ok((5, events[4].hash.clone())));
        assert_eq!(verify(&[]), Ok((0, GENESIS_HASH.to_string())));
    }

    #[test]
    fn edits_deletions_and_reorders_name_the_first_bad_entry() {
        let mut edited = chain(5);
        edited[2].actor = "mallory".into();
        assert_eq!(verify(&edited).unwrap_err().seq, 3);

        // Rehashing the edited entry does not help: the next link breaks.
        edited[2].hash = event_hash(&edited[2]);
        assert_eq!(verify(&edited).unwrap_err().seq, 4);

        let mut deleted = chain(5);
        deleted.remove(1);
        let broken = verify(&deleted).unwrap_err();
        assert_eq!(broken.seq, 2);
        assert!(broken.problem.contains("deleted or reordered"));

        // Swapping two entries, renumbered to hide the swap, breaks at the first moved one.
        let mut reordered = chain(5);
        reordered.swap(1, 2);
        reordered[1].seq = 2;
        reordered[2].seq = 3;
        assert_eq!(verify(&reordered).unwrap_err().seq, 2);
    }

    #[test]
    fn fields_cannot_bleed_into_each_other() {
        let mut a = chain(1).remove(0);
        let mut b = a.clone();
        a.actor = "ab".into();
        a.action = "c".into();
        b.actor = "a".into();
        b.action = "bc".into();
        assert_ne!(event_hash(&a), event_hash(&b));
    }
}
