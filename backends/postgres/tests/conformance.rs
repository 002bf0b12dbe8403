//! The storage conformance suite (`storage-conformance`), in process, against a real
//! PostgreSQL from `CONFORMANCE_POSTGRES_URL` (see `scripts/postgres-test-env.sh`), then the
//! backend checks (`postgres/Backend/<Check>`). Each fixture set and each check gets its own
//! fresh schema, dropped at the end. Nothing is excused; what is expected follows the
//! backend's declared `CAPABILITIES`, and every answer must equal the memory backend's.

mod common;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use storage_conformance::{ReferenceBackend, SuiteOptions, run_in_process};

fn main() -> ExitCode {
    let Some(url) = common::database_url() else {
        return ExitCode::SUCCESS;
    };
    let schemas: Arc<Mutex<Vec<String>>> = Arc::default();
    let opened = Arc::clone(&schemas);
    let url_for_suite = url.clone();
    let reference = ReferenceBackend::new("memory", || async {
        Ok(backend_memory::open(backend_memory::MemoryConfig::default()))
    });
    let code = run_in_process(
        "postgres",
        move || {
            let schema = common::unique_schema("conformance");
            opened
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(schema.clone());
            let config = common::test_config(&url_for_suite, &schema);
            async move { Ok(backend_postgres::open(config).await?) }
        },
        SuiteOptions::declared(backend_postgres::CAPABILITIES).with_reference(reference),
    );
    drop_schemas(&url, &schemas.lock().unwrap_or_else(|e| e.into_inner()));
    code
}

fn drop_schemas(url: &str, schemas: &[String]) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let Ok(pool) = sqlx::PgPool::connect(url).await else {
            return;
        };
        for schema in schemas {
            let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await {
                eprintln!("could not drop test schema {schema}: {error}");
            }
        }
        pool.close().await;
    });
}
