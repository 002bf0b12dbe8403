//! What the simulated node knows about tables: the system tables the driver reads at
//! connection time, and the store's own tables as the crate's DDL declares them, so the
//! types it announces for every statement are the ones a real node would announce.

use std::collections::HashMap;
use std::time::Duration;

use backend_cassandra::schema::migrations;

use super::frames::{Column, CqlType};

/// Columns of a table, in declaration order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<Column>,
}

impl Table {
    fn of(columns: &[(&str, &str)]) -> Self {
        Self {
            columns: columns
                .iter()
                .map(|(name, cql_type)| ((*name).to_owned(), CqlType::parse(cql_type)))
                .collect(),
        }
    }

    /// The type of `column`; panics naming the statement when the table has no such column
    /// (a real node would refuse the statement).
    pub(crate) fn column(&self, column: &str, statement: &str) -> Column {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .cloned()
            .unwrap_or_else(|| panic!("{statement}: no column {column}"))
    }
}

/// Every table by qualified name (`system.local`, `<keyspace>.spans`).
pub(crate) fn tables(keyspace: &str) -> HashMap<String, Table> {
    let mut tables = HashMap::new();
    let node = [
        ("host_id", "uuid"),
        ("rpc_address", "inet"),
        ("data_center", "text"),
        ("rack", "text"),
        ("tokens", "set<text>"),
        ("schema_version", "uuid"),
    ];
    let mut local = vec![
        ("key", "text"),
        ("cluster_name", "text"),
        ("release_version", "text"),
    ];
    local.extend(node);
    let mut peers = vec![("peer", "inet")];
    peers.extend(node);
    tables.insert("system.local".to_owned(), Table::of(&local));
    tables.insert("system.peers".to_owned(), Table::of(&peers));
    tables.insert(
        "system_schema.keyspaces".to_owned(),
        Table::of(&[
            ("keyspace_name", "text"),
            ("replication", "map<text, text>"),
            ("durable_writes", "boolean"),
        ]),
    );
    tables.insert(
        "system_schema.tables".to_owned(),
        Table::of(&[("keyspace_name", "text"), ("table_name", "text")]),
    );
    tables.insert(
        "system_schema.views".to_owned(),
        Table::of(&[
            ("keyspace_name", "text"),
            ("view_name", "text"),
            ("base_table_name", "text"),
        ]),
    );
    tables.insert(
        "system_schema.columns".to_owned(),
        Table::of(&[
            ("keyspace_name", "text"),
            ("table_name", "text"),
            ("column_name", "text"),
            ("kind", "text"),
            ("position", "int"),
            ("type", "text"),
        ]),
    );
    tables.insert(
        "system_schema.types".to_owned(),
        Table::of(&[
            ("keyspace_name", "text"),
            ("type_name", "text"),
            ("field_names", "list<text>"),
            ("field_types", "list<text>"),
        ]),
    );
    for statement in migrations(keyspace, Duration::from_secs(86_400))
        .into_iter()
        .flat_map(|migration| migration.statements)
    {
        let (name, table) = declared_table(&statement);
        tables.insert(name, table);
    }
    tables
}

/// The table a `CREATE TABLE IF NOT EXISTS ks.name (column type, …, PRIMARY KEY …)` declares.
fn declared_table(statement: &str) -> (String, Table) {
    let rest = statement
        .strip_prefix("CREATE TABLE IF NOT EXISTS ")
        .unwrap_or_else(|| panic!("not a table: {statement}"));
    let (name, rest) = rest.split_once(" (").expect("a column list");
    let (columns, _) = rest.split_once("PRIMARY KEY").expect("a primary key");
    let columns = columns
        .split(',')
        .map(str::trim)
        .filter(|column| !column.is_empty())
        .map(|column| {
            let (name, cql_type) = column.split_once(' ').expect("name type");
            (name.to_owned(), CqlType::parse(cql_type))
        })
        .collect();
    (name.to_owned(), Table { columns })
}

/// What a statement reads or writes, as a node would work it out when preparing it.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// The qualified table.
    pub(crate) table: String,
    /// The bind markers, in order.
    pub(crate) binds: Vec<Column>,
    /// The columns returned (none for a write).
    pub(crate) returned: Vec<Column>,
}

/// The shape of an `INSERT … VALUES (…) [USING TTL ?]` or a `SELECT … FROM … [WHERE …]`.
pub(crate) fn shape(tables: &HashMap<String, Table>, statement: &str) -> Shape {
    if let Some(rest) = statement.strip_prefix("INSERT INTO ") {
        let (name, rest) = rest.split_once(" (").expect("a column list");
        let table = &tables[name];
        let (columns, rest) = rest.split_once(") VALUES (").expect("VALUES");
        let (values, tail) = split_values(rest);
        let mut binds: Vec<Column> = columns
            .split(',')
            .map(str::trim)
            .zip(values)
            .filter(|(_, value)| value == "?")
            .map(|(column, _)| table.column(column, statement))
            .collect();
        if tail.contains("USING TTL ?") {
            binds.push(("[ttl]".to_owned(), CqlType::Int));
        }
        return Shape {
            table: name.to_owned(),
            binds,
            returned: Vec::new(),
        };
    }
    let rest = statement
        .strip_prefix("SELECT ")
        .unwrap_or_else(|| panic!("the simulated node cannot prepare {statement}"));
    let (selected, rest) = rest.split_once(" FROM ").expect("FROM");
    let (name, condition) = match rest.split_once(" WHERE ") {
        Some((name, condition)) => (name.trim(), condition),
        None => (rest.trim(), ""),
    };
    let table = tables
        .get(name)
        .unwrap_or_else(|| panic!("{statement}: no table {name}"));
    let returned = selected
        .split(',')
        .map(|column| table.column(column.trim(), statement))
        .collect();
    let binds = condition
        .split(" AND ")
        .filter(|clause| clause.trim_end().ends_with('?'))
        .map(|clause| {
            let column = clause.split_whitespace().next().expect("a column");
            table.column(column, statement)
        })
        .collect();
    Shape {
        table: name.to_owned(),
        binds,
        returned,
    }
}

/// The values of `v1, f(x), …) tail` split at top-level commas, and the tail after them.
fn split_values(text: &str) -> (Vec<String>, &str) {
    let (mut depth, mut values, mut current) = (0, Vec::new(), String::new());
    for (at, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' if depth == 0 => {
                values.push(current.trim().to_owned());
                return (values, &text[at + 1..]);
            }
            ')' => depth -= 1,
            ',' if depth == 0 => {
                values.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    panic!("unbalanced VALUES: {text}")
}
