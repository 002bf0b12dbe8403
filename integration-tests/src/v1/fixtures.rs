//! Fixtures as a v1 client writes and reads them, and the searches the v1 model cannot serve.
//!
//! A v1 client sends OTLP fixtures translated to the v1 model and reads answers translated
//! back, so what it can expect is each fixture after one pass through v1
//! ([`trace_through_v1`], what a v1 target's `expected_back` gives): the losses listed in [`remote_storage_core::v1`] are forced by the model,
//! not by the server. A search is excused only when the model loses what it looks for: a
//! searched tag that a fixture holds nowhere but in scope or link attributes, which v1 has no
//! place for ([`forced_losses`]). Nothing else is skipped.

use jaeger_remote_proto::otlp::common::KeyValue;
use remote_storage_core::attribute::any_value_text;
use remote_storage_core::v1::from_otlp::resource_spans_to_v1;
use remote_storage_core::v1::to_otlp::resource_spans_from_v1;

use crate::fixtures::FixtureSet;
use crate::target::OtlpTrace;

/// One OTLP trace after a write through v1 and a read back: what a v1 client can expect.
pub fn trace_through_v1(trace: &OtlpTrace) -> anyhow::Result<OtlpTrace> {
    let spans = resource_spans_to_v1(&trace.resource_spans);
    let resource_spans = resource_spans_from_v1(spans)
        .map_err(|error| anyhow::anyhow!("does not translate back from v1: {error}"))?;
    Ok(OtlpTrace::new(resource_spans))
}

/// A search the v1 model cannot serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcedLoss {
    /// The case's test name, e.g. `FindTraces/Scope_Attributes`.
    pub test_name: String,
    /// What v1 cannot carry.
    pub reason: String,
}

/// The FindTraces cases of `fixtures` (the original OTLP set) whose searched tags an expected
/// fixture holds only in scope or link attributes.
pub fn forced_losses(fixtures: &FixtureSet) -> anyhow::Result<Vec<ForcedLoss>> {
    let mut losses = Vec::new();
    for case in fixtures.queries() {
        let mut reasons = Vec::new();
        for name in &case.expected_fixtures {
            let trace = fixtures.trace(name)?;
            for (key, value) in &case.search.attributes {
                let text = any_value_text(Some(value));
                let places = places_of(trace, key, &text);
                if !places.kept && (places.in_scope || places.in_link) {
                    let where_ = match (places.in_scope, places.in_link) {
                        (true, true) => "scope and link attributes",
                        (true, false) => "scope attributes",
                        _ => "link attributes",
                    };
                    reasons.push(format!("{key}={text} is only in {where_} of {name}"));
                }
            }
        }
        if !reasons.is_empty() {
            losses.push(ForcedLoss {
                test_name: case.test_name(),
                reason: format!("v1 has no scope or link attributes: {}", reasons.join("; ")),
            });
        }
    }
    Ok(losses)
}

/// Where a `key = text` pair occurs in a trace.
#[derive(Debug, Default)]
struct Places {
    /// On a resource, span or event: v1 keeps it (process tags, tags, log fields).
    kept: bool,
    in_scope: bool,
    in_link: bool,
}

fn places_of(trace: &OtlpTrace, key: &str, text: &str) -> Places {
    let has = |attributes: &[KeyValue]| {
        attributes.iter().any(|attribute| {
            attribute.key == key && any_value_text(attribute.value.as_ref()) == text
        })
    };
    let mut places = Places::default();
    for group in &trace.resource_spans {
        if group
            .resource
            .as_ref()
            .is_some_and(|resource| has(&resource.attributes))
        {
            places.kept = true;
        }
        for scope_group in &group.scope_spans {
            if scope_group
                .scope
                .as_ref()
                .is_some_and(|scope| has(&scope.attributes))
            {
                places.in_scope = true;
            }
            for span in &scope_group.spans {
                if has(&span.attributes) || span.events.iter().any(|event| has(&event.attributes)) {
                    places.kept = true;
                }
                if span.links.iter().any(|link| has(&link.attributes)) {
                    places.in_link = true;
                }
            }
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_searches_for_scope_and_link_attributes_are_lost() {
        let fixtures = FixtureSet::own().unwrap();
        let lost: Vec<String> = forced_losses(&fixtures)
            .unwrap()
            .into_iter()
            .map(|loss| loss.test_name)
            .collect();
        assert_eq!(
            lost,
            [
                "FindTraces/Tags_in_different_spots",
                "FindTraces/Scope_Attributes",
                "FindTraces/Link_Attributes",
            ]
        );
    }

    #[test]
    fn fixtures_through_v1_are_stable() {
        let fixtures = FixtureSet::own().unwrap();
        let once = fixtures.map_traces(trace_through_v1).unwrap();
        let twice = once.map_traces(trace_through_v1).unwrap();
        for name in once.query_fixture_names() {
            assert_eq!(
                once.trace(name).unwrap(),
                twice.trace(name).unwrap(),
                "{name}"
            );
        }
    }
}
