//! The planner: every case of a fixture set, in Jaeger's order, with its Jaeger-style name, its
//! top-level test and why it is skipped, if it is.

use std::fmt;

use crate::fixtures::FixtureSet;
use crate::options::Excused;

/// The top-level tests, in Jaeger's order (then `GetDependencies`). Clean-up runs after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// `GetServices`.
    GetServices,
    /// `GetOperations`.
    GetOperations,
    /// `GetTrace`.
    GetTrace,
    /// `GetLargeTrace`.
    GetLargeTrace,
    /// `GetTraceWithDuplicateSpans`.
    GetTraceWithDuplicateSpans,
    /// `FindTraces`.
    FindTraces,
    /// `FindTraceSummaries`.
    FindTraceSummaries,
    /// `FindTracesWithoutServiceName`.
    FindTracesWithoutServiceName,
    /// `FindTracesWithFilter`: the structured-filter spec's worked examples (ours, not
    /// Jaeger's).
    FindTracesWithFilter,
    /// `FindTracesFilterForm`: each `FindTraces` query's filter form returns the legacy
    /// answer (ours, not Jaeger's).
    FindTracesFilterForm,
    /// `GetDependencies`.
    GetDependencies,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a group writes once before its first case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Setup {
    Nothing,
    ExampleTrace,
    QueryFixtures,
    FilterExamples,
}

impl Group {
    pub(super) fn setup(self) -> Setup {
        match self {
            Self::GetServices | Self::GetOperations | Self::GetTrace | Self::FindTraceSummaries => {
                Setup::ExampleTrace
            }
            Self::FindTraces | Self::FindTracesFilterForm => Setup::QueryFixtures,
            Self::FindTracesWithFilter => Setup::FilterExamples,
            Self::GetLargeTrace
            | Self::GetTraceWithDuplicateSpans
            | Self::FindTracesWithoutServiceName
            | Self::GetDependencies => Setup::Nothing,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CaseKind {
    GetServices,
    GetOperations,
    GetOperationsKindFilter,
    GetTrace,
    GetTraceNotFound,
    GetLargeTrace,
    GetTraceWithDuplicateSpans,
    FindTraces(usize),
    FindTraceSummaries,
    FindTracesWithoutServiceName,
    FindTracesWithFilter(usize),
    FindTracesFilterForm(usize),
    GetDependencies,
}

/// One test or sub-test of the plan.
#[derive(Debug, Clone)]
pub struct PlannedCase {
    /// Jaeger-style name, e.g. `FindTraces/Tags_+_Operation_name`.
    pub name: String,
    /// Its top-level test.
    pub group: Group,
    /// Why it is skipped, if it is.
    pub skip_reason: Option<String>,
    pub(super) kind: CaseKind,
}

/// Lists every case for a fixture set; `prefix` is prepended (with `/`) to names for skip-list
/// matching, as Jaeger matches against the full test path.
pub fn plan(fixtures: &FixtureSet, excused: &Excused, prefix: &str) -> Vec<PlannedCase> {
    let mut cases = vec![
        (
            Group::GetServices,
            "GetServices".to_owned(),
            CaseKind::GetServices,
        ),
        (
            Group::GetOperations,
            "GetOperations".to_owned(),
            CaseKind::GetOperations,
        ),
        (
            Group::GetOperations,
            "GetOperations/Span_kind_filter".to_owned(),
            CaseKind::GetOperationsKindFilter,
        ),
        (Group::GetTrace, "GetTrace".to_owned(), CaseKind::GetTrace),
        (
            Group::GetTrace,
            "GetTrace/NotFound_error".to_owned(),
            CaseKind::GetTraceNotFound,
        ),
        (
            Group::GetLargeTrace,
            "GetLargeTrace".to_owned(),
            CaseKind::GetLargeTrace,
        ),
        (
            Group::GetTraceWithDuplicateSpans,
            "GetTraceWithDuplicateSpans".to_owned(),
            CaseKind::GetTraceWithDuplicateSpans,
        ),
    ];
    for (index, case) in fixtures.queries().iter().enumerate() {
        cases.push((
            Group::FindTraces,
            case.test_name(),
            CaseKind::FindTraces(index),
        ));
    }
    cases.push((
        Group::FindTraceSummaries,
        "FindTraceSummaries".to_owned(),
        CaseKind::FindTraceSummaries,
    ));
    cases.push((
        Group::FindTracesWithoutServiceName,
        "FindTracesWithoutServiceName".to_owned(),
        CaseKind::FindTracesWithoutServiceName,
    ));
    for (index, example) in super::filters::examples().iter().enumerate() {
        cases.push((
            Group::FindTracesWithFilter,
            format!("FindTracesWithFilter/{}", example.name),
            CaseKind::FindTracesWithFilter(index),
        ));
    }
    for (index, case) in fixtures.queries().iter().enumerate() {
        cases.push((
            Group::FindTracesFilterForm,
            format!("FindTracesFilterForm/{}", case.caption.replace(' ', "_")),
            CaseKind::FindTracesFilterForm(index),
        ));
    }
    cases.push((
        Group::GetDependencies,
        "GetDependencies".to_owned(),
        CaseKind::GetDependencies,
    ));

    cases
        .into_iter()
        .map(|(group, name, kind)| {
            let full = |name: &str| {
                if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}/{name}")
                }
            };
            let skipped = |full_name: &str| match excused.skip_entry_for(full_name) {
                Some(entry) => Some(format!("skip list entry {entry:?}")),
                None => excused.explanation_for(full_name).map(str::to_owned),
            };
            let mut skip_reason = skipped(&full(&name));
            // A filter form is compared with its legacy query's answer: none when that is skipped.
            if let (None, CaseKind::FindTracesFilterForm(index)) = (&skip_reason, kind) {
                skip_reason = fixtures
                    .queries()
                    .get(index)
                    .and_then(|case| skipped(&full(&case.test_name())))
                    .map(|reason| format!("its legacy query is skipped: {reason}"));
            }
            PlannedCase {
                name,
                group,
                skip_reason,
                kind,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{DateRewrite, FixtureSet};

    #[test]
    fn plan_names_follow_jaeger_and_apply_skips() {
        let set = FixtureSet::own_with_dates(DateRewrite::now()).unwrap();
        let excused = Excused::none()
            .skip("Scope_Attributes")
            .explain("memory/own/FindTracesWithoutServiceName", "a reason");
        let cases = plan(&set, &excused, "memory/own");
        let names: Vec<&str> = cases.iter().map(|case| case.name.as_str()).collect();
        assert_eq!(names[0], "GetServices");
        assert!(names.contains(&"GetTrace/NotFound_error"));
        assert!(names.contains(&"FindTraces/Tags_+_Operation_name"));
        let skipped: Vec<&str> = cases
            .iter()
            .filter(|case| case.skip_reason.is_some())
            .map(|case| case.name.as_str())
            .collect();
        assert_eq!(
            skipped,
            [
                "FindTraces/Scope_Attributes",
                "FindTracesWithoutServiceName",
                "FindTracesFilterForm/Scope_Attributes"
            ]
        );
    }
}
