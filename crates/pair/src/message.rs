//! What travels from the primary to the backup: one JSON object per datagram.
//!
//! ```json
//! {"pair":"counter","generation":3,"pid":4242,"body":{"heartbeat":{"sequence":17}}}
//! {"pair":"counter","generation":3,"pid":4242,"body":{"checkpoint":{"sequence":17,"takeovers":0,"state":18}}}
//! {"pair":"counter","generation":3,"pid":4242,"body":"stop"}
//! ```
//!
//! JSON because the state is any serde type and a datagram is read whole: a self-describing
//! format needs no framing and shows in `strace`. Every message names its pair and carries
//! the sender's generation, so a backup can ignore a stranger's datagrams and a fenced
//! primary's.

use serde::{Deserialize, Serialize};

/// One datagram: who sent it, and what it says.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Message<S> {
    /// The pair's name ([`Options::name`](crate::Options::name)).
    pub pair: String,
    /// The sender's generation: a backup ignores a message from an older one.
    pub generation: u64,
    /// The sender's pid, for the messages the backup logs.
    pub pid: u32,
    pub body: Body<S>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Body<S> {
    /// "Still here", every interval, with the sequence of the latest checkpoint.
    Heartbeat { sequence: u64 },
    /// A state to resume from: the `sequence`-th checkpoint, and how many takeovers already
    /// happened at it (for poison counting).
    Checkpoint {
        sequence: u64,
        takeovers: u32,
        state: S,
    },
    /// The work is over ([`Flow::Stop`](crate::Flow::Stop)): the backup exits instead of
    /// taking over. Never a sign of death: a primary that dies says nothing.
    Stop,
}

/// `message` as the bytes of one datagram.
pub(crate) fn encode<S: Serialize>(message: &Message<S>) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(message)
}

/// The message in `datagram`; an error when it is not one of ours or its state does not fit
/// `S`.
pub(crate) fn decode<S: serde::de::DeserializeOwned>(
    datagram: &[u8],
) -> Result<Message<S>, serde_json::Error> {
    serde_json::from_slice(datagram)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<S>(body: Body<S>) -> Message<S> {
        Message {
            pair: "counter".into(),
            generation: 3,
            pid: 4242,
            body,
        }
    }

    #[test]
    fn every_message_survives_encoding() {
        let messages = [
            message(Body::Heartbeat { sequence: 17 }),
            message(Body::Checkpoint {
                sequence: 17,
                takeovers: 2,
                state: vec![1u64, 2, 3],
            }),
            message(Body::Stop),
        ];
        for sent in messages {
            let bytes = encode(&sent).expect("encode");
            let received: Message<Vec<u64>> = decode(&bytes).expect("decode");
            assert_eq!(received, sent);
        }
    }

    #[test]
    fn the_wire_format_is_the_documented_one() {
        let bytes = encode(&message(Body::Checkpoint {
            sequence: 17,
            takeovers: 0,
            state: 18u64,
        }))
        .expect("encode");
        assert_eq!(
            String::from_utf8(bytes).expect("JSON is UTF-8"),
            r#"{"pair":"counter","generation":3,"pid":4242,"body":{"checkpoint":{"sequence":17,"takeovers":0,"state":18}}}"#
        );
        let stop = encode(&message::<u64>(Body::Stop)).expect("encode");
        assert!(String::from_utf8_lossy(&stop).ends_with(r#""body":"stop"}"#));
    }

    #[test]
    fn a_heartbeat_decodes_whatever_the_state_type() {
        let bytes = encode(&message::<()>(Body::Heartbeat { sequence: 5 })).expect("encode");
        let received: Message<String> = decode(&bytes).expect("decode");
        assert_eq!(received.body, Body::Heartbeat { sequence: 5 });
    }

    #[test]
    fn a_state_of_another_type_and_a_stray_datagram_are_errors() {
        let bytes = encode(&message(Body::Checkpoint {
            sequence: 1,
            takeovers: 0,
            state: "text",
        }))
        .expect("encode");
        assert!(decode::<u64>(&bytes).is_err());
        assert!(decode::<u64>(b"hello").is_err());
    }
}
