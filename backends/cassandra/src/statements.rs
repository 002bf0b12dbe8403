//! Every CQL statement the store sends, as templates over the keyspace (`{ks}`). A unit test
//! checks each one against the schema's DDL: its table and columns exist, an insert sets the
//! whole primary key, and a select restricts the whole partition key by equality and nothing
//! but clustering columns otherwise (so no statement needs `ALLOW FILTERING`, and every read
//! touches one bounded partition).

/// Writes a span whole (one row of its trace's partition).
pub const INSERT_SPAN: &str = "INSERT INTO {ks}.spans (tenant, trace_id, document_id, \
     write_batch, write_position, start_ns, end_ns, resource_id, scope, span) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     USING TTL ?";
/// Writes a resource, once per write that carries it (refreshing its TTL).
pub const INSERT_RESOURCE: &str = "INSERT INTO {ks}.resources (tenant, resource_id, resource) \
     VALUES (?, ?, ?) USING TTL ?";
// The three index tables take the same values in the same order (the key a partition adds,
// `service` or `term`, last), and their reads return the same columns, so one code path
// writes and reads all three.

/// Indexes a span in its (bucket, shard): searches without a service.
pub const INSERT_SPAN_INDEX: &str = "INSERT INTO {ks}.span_index (tenant, bucket, shard, \
     start_ns, document_id, trace_id, service, operation, kind, status, duration_ns) VALUES (?, \
     ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?";
/// Indexes a span under its service (the `service` value is this partition's key).
pub const INSERT_SERVICE_INDEX: &str = "INSERT INTO {ks}.service_index (tenant, bucket, shard, \
     start_ns, document_id, trace_id, service, operation, kind, status, duration_ns) VALUES (?, \
     ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?";
/// Indexes a span under one of its attribute terms.
pub const INSERT_TAG_INDEX: &str = "INSERT INTO {ks}.tag_index (tenant, bucket, shard, start_ns, \
     document_id, trace_id, service, operation, kind, status, duration_ns, term) VALUES (?, ?, ?, \
     ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?";
/// Records that a bucket holds spans (searches skip the buckets that hold none).
pub const INSERT_BUCKET: &str = "INSERT INTO {ks}.active_buckets (tenant, bucket, last_write) \
     VALUES (?, ?, ?) USING TTL ?";
/// Stores a settled bucket's dependency links.
pub const INSERT_ROLLUP: &str = "INSERT INTO {ks}.dependency_rollups (tenant, bucket, \
     computed_at, links) VALUES (?, ?, ?, ?) USING TTL ?";
/// Records a service.
pub const INSERT_SERVICE: &str =
    "INSERT INTO {ks}.services (tenant, service) VALUES (?, ?) USING TTL ?";
/// Records an operation with its span kind.
pub const INSERT_OPERATION: &str = "INSERT INTO {ks}.operations (tenant, service, kind, \
     operation) VALUES (?, ?, ?, ?) USING TTL ?";
/// Records the schema version applied.
pub const INSERT_SCHEMA_VERSION: &str = "INSERT INTO {ks}.schema_version (component, version, \
     applied_at) VALUES (?, ?, toTimestamp(now()))";

/// Every span of a trace.
pub const SELECT_TRACE: &str = "SELECT document_id, write_batch, write_position, start_ns, end_ns, \
     resource_id, scope, span FROM {ks}.spans WHERE tenant = ? AND trace_id = ?";
/// The start and end of every span of a trace (its time hints).
pub const SELECT_TRACE_EXTENTS: &str =
    "SELECT start_ns, end_ns FROM {ks}.spans WHERE tenant = ? AND trace_id = ?";
/// One resource.
pub const SELECT_RESOURCE: &str =
    "SELECT resource FROM {ks}.resources WHERE tenant = ? AND resource_id = ?";
/// One span, by document ID (a candidate the index rows cannot decide alone).
pub const SELECT_SPAN: &str = "SELECT document_id, write_batch, write_position, start_ns, end_ns, \
     resource_id, scope, span FROM {ks}.spans WHERE tenant = ? \
     AND trace_id = ? AND document_id = ?";
/// A (bucket, shard) partition's rows in a start window, newest first.
pub const SELECT_SPAN_INDEX: &str = "SELECT start_ns, document_id, trace_id, service, operation, \
     kind, status, duration_ns FROM {ks}.span_index WHERE tenant = ? AND bucket = ? AND shard = ? \
     AND start_ns >= ? AND start_ns <= ?";
/// A service's (bucket, shard) partition's rows in a start window, newest first.
pub const SELECT_SERVICE_INDEX: &str = "SELECT start_ns, document_id, trace_id, service, \
     operation, kind, status, duration_ns FROM {ks}.service_index WHERE tenant = ? AND bucket = ? \
     AND shard = ? AND service = ? AND start_ns >= ? AND start_ns <= ?";
/// A term's (bucket, shard) partition's rows in a start window, newest first.
pub const SELECT_TAG_INDEX: &str = "SELECT start_ns, document_id, trace_id, service, operation, \
     kind, status, duration_ns FROM {ks}.tag_index WHERE tenant = ? AND bucket = ? AND shard = ? \
     AND term = ? AND start_ns >= ? AND start_ns <= ?";
/// The buckets holding spans in a range, newest first.
pub const SELECT_BUCKETS: &str = "SELECT bucket, last_write FROM {ks}.active_buckets WHERE \
     tenant = ? AND bucket >= ? AND bucket <= ?";
/// A bucket's stored dependency links.
pub const SELECT_ROLLUP: &str = "SELECT computed_at, links FROM {ks}.dependency_rollups WHERE \
     tenant = ? AND bucket = ?";
/// A tenant's services.
pub const SELECT_SERVICES: &str = "SELECT service FROM {ks}.services WHERE tenant = ?";
/// A service's operations, every kind.
pub const SELECT_OPERATIONS: &str =
    "SELECT kind, operation FROM {ks}.operations WHERE tenant = ? AND service = ?";
/// A service's operations of one kind.
pub const SELECT_OPERATIONS_OF_KIND: &str = "SELECT kind, operation FROM {ks}.operations WHERE \
     tenant = ? AND service = ? AND kind = ?";
/// The applied schema version.
pub const SELECT_SCHEMA_VERSION: &str =
    "SELECT version FROM {ks}.schema_version WHERE component = ?";

/// Every statement, by name (for the schema check, and for preparing them all at start-up).
pub const ALL: &[(&str, &str)] = &[
    ("INSERT_SPAN", INSERT_SPAN),
    ("INSERT_RESOURCE", INSERT_RESOURCE),
    ("INSERT_SPAN_INDEX", INSERT_SPAN_INDEX),
    ("INSERT_SERVICE_INDEX", INSERT_SERVICE_INDEX),
    ("INSERT_TAG_INDEX", INSERT_TAG_INDEX),
    ("INSERT_BUCKET", INSERT_BUCKET),
    ("INSERT_ROLLUP", INSERT_ROLLUP),
    ("INSERT_SERVICE", INSERT_SERVICE),
    ("INSERT_OPERATION", INSERT_OPERATION),
    ("INSERT_SCHEMA_VERSION", INSERT_SCHEMA_VERSION),
    ("SELECT_TRACE", SELECT_TRACE),
    ("SELECT_TRACE_EXTENTS", SELECT_TRACE_EXTENTS),
    ("SELECT_RESOURCE", SELECT_RESOURCE),
    ("SELECT_SPAN", SELECT_SPAN),
    ("SELECT_SPAN_INDEX", SELECT_SPAN_INDEX),
    ("SELECT_SERVICE_INDEX", SELECT_SERVICE_INDEX),
    ("SELECT_TAG_INDEX", SELECT_TAG_INDEX),
    ("SELECT_BUCKETS", SELECT_BUCKETS),
    ("SELECT_ROLLUP", SELECT_ROLLUP),
    ("SELECT_SERVICES", SELECT_SERVICES),
    ("SELECT_OPERATIONS", SELECT_OPERATIONS),
    ("SELECT_OPERATIONS_OF_KIND", SELECT_OPERATIONS_OF_KIND),
    ("SELECT_SCHEMA_VERSION", SELECT_SCHEMA_VERSION),
];

/// A statement for `keyspace`.
pub fn for_keyspace(template: &str, keyspace: &str) -> String {
    template.replace("{ks}", keyspace)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::schema::migrations;

    /// A table as its DDL declares it.
    #[derive(Debug)]
    struct Table {
        columns: Vec<String>,
        partition_key: Vec<String>,
        clustering: Vec<String>,
    }

    /// The items of a parenthesised list, split at top-level commas.
    fn items(list: &str) -> Vec<String> {
        let mut items = Vec::new();
        let (mut depth, mut current) = (0, String::new());
        for character in list.chars() {
            match character {
                '(' | '<' => depth += 1,
                ')' | '>' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(current.trim().to_owned());
                    current.clear();
                    continue;
                }
                _ => {}
            }
            current.push(character);
        }
        if !current.trim().is_empty() {
            items.push(current.trim().to_owned());
        }
        items
    }

    /// The text inside the parenthesis that opens at `open`.
    fn enclosed(text: &str, open: usize) -> &str {
        let mut depth = 0;
        for (at, character) in text[open..].char_indices() {
            match character {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[open + 1..open + at];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced: {text}")
    }

    fn tables() -> HashMap<String, Table> {
        let mut tables = HashMap::new();
        for statement in migrations("ks", Duration::from_secs(86_400))
            .into_iter()
            .flat_map(|migration| migration.statements)
        {
            let rest = statement
                .strip_prefix("CREATE TABLE IF NOT EXISTS ks.")
                .expect("a table");
            let name = rest[..rest.find(' ').unwrap()].to_owned();
            let open = statement.find('(').unwrap();
            let mut table = Table {
                columns: Vec::new(),
                partition_key: Vec::new(),
                clustering: Vec::new(),
            };
            for item in items(enclosed(&statement, open)) {
                if let Some(key) = item.strip_prefix("PRIMARY KEY ") {
                    let parts = items(enclosed(key, 0));
                    table.partition_key = items(enclosed(&parts[0], 0));
                    table.clustering = parts[1..].to_vec();
                } else {
                    table
                        .columns
                        .push(item.split_whitespace().next().unwrap().to_owned());
                }
            }
            tables.insert(name, table);
        }
        tables
    }

    fn table<'t>(tables: &'t HashMap<String, Table>, name: &str, statement: &str) -> &'t Table {
        tables
            .get(name)
            .unwrap_or_else(|| panic!("{statement}: no table {name} in the schema"))
    }

    fn check_insert(tables: &HashMap<String, Table>, statement: &str) {
        let rest = statement.strip_prefix("INSERT INTO ks.").unwrap();
        let name = &rest[..rest.find(' ').unwrap()];
        let table = table(tables, name, statement);
        let columns = items(enclosed(statement, statement.find('(').unwrap()));
        for column in &columns {
            assert!(
                table.columns.contains(column),
                "{statement}: {name} has no column {column}"
            );
        }
        for key in table.partition_key.iter().chain(&table.clustering) {
            assert!(
                columns.contains(key),
                "{statement}: key column {key} not set"
            );
        }
        let values_at = statement.find("VALUES (").unwrap() + "VALUES ".len();
        assert_eq!(
            items(enclosed(statement, values_at)).len(),
            columns.len(),
            "{statement}: one value per column"
        );
    }

    fn check_select(tables: &HashMap<String, Table>, statement: &str) {
        let (head, condition) = statement.split_once(" WHERE ").expect("a WHERE clause");
        let (selected, name) = head
            .strip_prefix("SELECT ")
            .unwrap()
            .split_once(" FROM ks.")
            .unwrap();
        let table = table(tables, name, statement);
        for column in items(selected) {
            assert!(
                table.columns.contains(&column),
                "{statement}: {name} has no column {column}"
            );
        }
        assert!(!statement.contains("ALLOW FILTERING"), "{statement}");
        let mut equal = Vec::new();
        for clause in condition.split(" AND ") {
            let mut words = clause.split_whitespace();
            let (column, operator) = (words.next().unwrap(), words.next().unwrap());
            if operator == "=" {
                equal.push(column.to_owned());
            } else {
                assert!(
                    table.clustering.first().map(String::as_str) == Some(column),
                    "{statement}: a range on {column}, which is not the first clustering column"
                );
            }
        }
        for key in &table.partition_key {
            assert!(
                equal.contains(key),
                "{statement}: partition key column {key} not restricted by ="
            );
        }
        for column in &equal {
            assert!(
                table.partition_key.contains(column) || table.clustering.contains(column),
                "{statement}: {column} is not a key column"
            );
        }
    }

    #[test]
    fn every_statement_matches_the_schema_and_reads_one_partition() {
        let tables = tables();
        let mut declared: Vec<&str> = tables.keys().map(String::as_str).collect();
        declared.sort_unstable();
        let mut listed = crate::schema::TABLES.to_vec();
        listed.sort_unstable();
        assert_eq!(declared, listed, "schema::TABLES lists every table");
        for (name, template) in ALL {
            let statement = for_keyspace(template, "ks");
            assert!(!statement.contains("{ks}"), "{name}");
            if statement.starts_with("INSERT") {
                check_insert(&tables, &statement);
                if !name.contains("SCHEMA") {
                    assert!(
                        statement.ends_with("USING TTL ?"),
                        "{name}: every row expires"
                    );
                }
            } else {
                check_select(&tables, &statement);
            }
        }
    }

    /// CQL's reserved keywords, which cannot name a column unquoted.
    const RESERVED: &[&str] = &[
        "add",
        "allow",
        "alter",
        "and",
        "apply",
        "asc",
        "authorize",
        "batch",
        "begin",
        "by",
        "columnfamily",
        "create",
        "delete",
        "desc",
        "describe",
        "drop",
        "entries",
        "execute",
        "from",
        "full",
        "grant",
        "if",
        "in",
        "index",
        "infinity",
        "insert",
        "into",
        "is",
        "keyspace",
        "limit",
        "materialized",
        "mbean",
        "mbeans",
        "modify",
        "nan",
        "norecursive",
        "not",
        "null",
        "of",
        "on",
        "or",
        "order",
        "primary",
        "rename",
        "replace",
        "revoke",
        "schema",
        "select",
        "set",
        "table",
        "to",
        "token",
        "truncate",
        "unlogged",
        "unset",
        "update",
        "use",
        "using",
        "view",
        "where",
        "with",
    ];

    /// Type names and other keywords a column could clash with in some CQL version.
    const AVOIDED: &[&str] = &[
        "duration",
        "time",
        "date",
        "timestamp",
        "key",
        "type",
        "ttl",
    ];

    #[test]
    fn no_column_is_named_by_a_keyword() {
        for (name, table) in tables() {
            for column in &table.columns {
                assert!(
                    !RESERVED.contains(&column.as_str()) && !AVOIDED.contains(&column.as_str()),
                    "{name}.{column} is a CQL keyword"
                );
            }
        }
    }

    #[test]
    fn the_check_catches_a_statement_that_would_need_filtering() {
        let tables = tables();
        let bad = "SELECT service FROM ks.span_index WHERE tenant = ? AND bucket = ?";
        let caught = std::panic::catch_unwind(|| check_select(&tables, bad));
        assert!(caught.is_err(), "a partial partition key must be caught");
        let bad = "INSERT INTO ks.spans (tenant, trace_id, span) VALUES (?, ?, ?) USING TTL ?";
        let caught = std::panic::catch_unwind(|| check_insert(&tables, bad));
        assert!(
            caught.is_err(),
            "a missing clustering column must be caught"
        );
    }
}
