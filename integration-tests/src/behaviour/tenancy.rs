//! Tenant isolation and purge.

use remote_storage_core::testing::span;
use remote_storage_core::{Backend, Tenant, TraceQuery};

use super::{
    CheckContext, depth, ensure_eq, find, get, ids, in_service, operations, recent_base, services,
    write,
};

/// No call sees another tenant's spans, services or operations; a purge wipes every tenant and
/// the backend stays writable.
pub async fn tenants_are_isolated(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let t = recent_base();
    let red = Tenant::new("red");
    let blue = Tenant::new("blue");
    write(
        backend,
        &red,
        vec![span(1, 1, None, "red-svc", "op", t + 10, t + 20, false)],
    )
    .await?;
    write(
        backend,
        &blue,
        vec![span(2, 1, None, "blue-svc", "op", t + 10, t + 20, false)],
    )
    .await?;
    ensure_eq!(
        services(backend, &red).await?,
        ["red-svc"],
        "services of red"
    );
    ensure_eq!(
        get(backend, &blue, 1).await?.len(),
        0,
        "blue gets red's trace"
    );
    ensure_eq!(
        ids(&find(backend, &blue, TraceQuery::all(depth(10))).await?),
        [2],
        "blue finds"
    );
    let by_service = in_service(TraceQuery::all(depth(10)), "red-svc");
    ensure_eq!(
        find(backend, &blue, by_service).await?.len(),
        0,
        "blue finds red-svc"
    );
    ensure_eq!(
        operations(backend, &red, "blue-svc", None).await?.len(),
        0,
        "red gets operations of blue-svc"
    );

    backend.purger.purge().await?;
    ensure_eq!(
        services(backend, &red).await?.len(),
        0,
        "services of red after purge"
    );
    ensure_eq!(
        get(backend, &blue, 2).await?.len(),
        0,
        "blue's trace after purge"
    );
    ensure_eq!(
        find(backend, &red, TraceQuery::all(depth(10))).await?.len(),
        0,
        "red finds after purge"
    );

    // The backend keeps working after a purge.
    write(
        backend,
        &red,
        vec![span(3, 1, None, "again", "op", t + 10, t + 20, false)],
    )
    .await?;
    ensure_eq!(
        get(backend, &red, 3).await?.len(),
        1,
        "a trace written after purge"
    );
    ensure_eq!(
        services(backend, &red).await?,
        ["again"],
        "services after purge"
    );
    Ok(())
}
