//! The filter forms of the legacy FindTraces queries (issue 17, item 6): each legacy query of
//! the v2 set again, as the structured filter the spec calls its exact equivalent
//! ([`legacy_filter_form`] with the spec's span-or-resource reach), timed next to it so their
//! p99s compare. Only when the server declares filter support in `GetCapabilities`
//! (`search.filter` with levels and operators, and `without_service_name`: a filter names no
//! service); otherwise a note says why they are not timed.

use std::num::NonZeroUsize;

use anyhow::Result;
use jaeger_remote_proto::storage::v2::GetCapabilitiesRequest;
use jaeger_remote_proto::storage::v2::capabilities_client::CapabilitiesClient;
use remote_storage_core::TraceQuery;
use remote_storage_core::filter::{AttributeReach, legacy_filter_form};
use remote_storage_core::query::AttributeFilter;

use crate::queries::{Ctx, QueryResult, Target, time_query};

/// Why the server's filters are not timed, or `None` when it declares them.
async fn unsupported(ctx: &Ctx) -> Option<String> {
    let mut client = CapabilitiesClient::new(ctx.channel.clone());
    match client
        .get_capabilities(ctx.tenant.request(GetCapabilitiesRequest {}))
        .await
    {
        Err(status) => Some(format!("GetCapabilities failed: {}", status.message())),
        Ok(response) => {
            let search = response.into_inner().search.unwrap_or_default();
            let filter = search.filter.unwrap_or_default();
            if filter.levels.is_empty() || filter.operators.is_empty() {
                Some("the server declares no filter support".to_owned())
            } else if !search.without_service_name {
                Some("the server declares filters but not searches without a service".to_owned())
            } else {
                None
            }
        }
    }
}

/// The legacy conditions of one timed query, as the core query the filter form is made from.
fn legacy(
    service: &str,
    operation: &str,
    tag: Option<&Target>,
    durations: Option<&Target>,
) -> TraceQuery {
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    TraceQuery {
        service_name: non_empty(service),
        operation_name: non_empty(operation),
        attributes: tag
            .map(|target| AttributeFilter {
                key: target.tag_key.clone(),
                value: target.tag_value.clone(),
            })
            .into_iter()
            .collect(),
        duration_min: durations.map(|target| nanos(target.duration_min)),
        duration_max: durations.map(|target| nanos(target.duration_max)),
        ..TraceQuery::all(NonZeroUsize::MIN)
    }
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Times the filter forms, or prints why not and times nothing.
pub(crate) async fn run(ctx: &Ctx, target: &Target) -> Result<Vec<QueryResult>> {
    if let Some(reason) = unsupported(ctx).await {
        eprintln!("loadgen: filter queries not timed: {reason}");
        return Ok(Vec::new());
    }
    let t = target;
    let forms = [
        ("service", legacy(&t.service, "", None, None)),
        (
            "service+operation",
            legacy(&t.service, &t.operation, None, None),
        ),
        ("service+tag", legacy(&t.service, "", Some(t), None)),
        ("service+duration", legacy(&t.service, "", None, Some(t))),
        ("tag (no service)", legacy("", "", Some(t), None)),
    ];
    let mut out = Vec::new();
    for (label, query) in forms {
        let filter = legacy_filter_form(&query, AttributeReach::SpanOrResource);
        out.push(
            time_query(&ctx.cfg, &format!("FindTraces filter {label}"), || {
                let mut params = ctx.params("");
                params.filter.clone_from(&filter);
                ctx.find_traces(params)
            })
            .await?,
        );
    }
    Ok(out)
}
