//! W3C Trace Context (`traceparent`): the trace of the write that caused a change, recorded with the
//! change and sent on every sink request for it, so a receiver can join its trace to the write. Only
//! the version-00 format is produced; a header that does not parse is ignored, as the
//! recommendation asks, and the write starts a trace of its own.

use std::fmt;

/// A `traceparent` value: `00-<trace id>-<parent span id>-<flags>`, lowercase hex, ids not all zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

impl TraceParent {
    /// A new trace, sampled, with this write as its root span.
    pub fn root() -> TraceParent {
        TraceParent {
            trace_id: nonzero(fastrand::u128(..)),
            span_id: nonzero(fastrand::u64(..)),
            flags: 1,
        }
    }

    /// The span of a write made on behalf of this parent: the same trace and flags, a new span id.
    pub fn child(&self) -> TraceParent {
        TraceParent {
            span_id: nonzero(fastrand::u64(..)),
            ..self.clone()
        }
    }

    /// Parses a header value. Future versions are read by their first four fields, as the
    /// recommendation asks; version `ff`, uppercase hex and all-zero ids are refused.
    pub fn parse(text: &str) -> Option<TraceParent> {
        let text = text.trim();
        let mut fields = text.split('-');
        let version = hex_field(fields.next()?, 2)?;
        let trace_id = hex_field(fields.next()?, 32)?;
        let span_id = hex_field(fields.next()?, 16)?;
        let flags = hex_field(fields.next()?, 2)?;
        let exact = fields.next().is_none();
        if version == 0xff || (version == 0 && !exact) || trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id: span_id as u64,
            flags: flags as u8,
        })
    }

    /// The 32 hex digits that name the trace.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

fn hex_field(text: &str, digits: usize) -> Option<u128> {
    let lower_hex = text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if text.len() != digits || !lower_hex {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

fn nonzero<T: PartialEq + From<u8>>(id: T) -> T {
    if id == T::from(0) { T::from(1) } else { id }
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    /// The example header of the W3C Trace Context recommendation.
    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_recommendations_example_parses_and_prints_unchanged() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(parent.to_string(), EXAMPLE);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_a_new_span() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        let child = parent.child().to_string();
        assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(child.ends_with("-01"));
        assert_ne!(child, EXAMPLE);
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        let later = format!("{}-what-comes-next", EXAMPLE.replacen("00", "cc", 1));
        let parent = TraceParent::parse(&later).unwrap();
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn new_traces_are_well_formed_and_distinct() {
        let (a, b) = (TraceParent::root(), TraceParent::root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceParent::parse(&a.to_string()), Some(a));
    }
}
