//! A simulated Cassandra node on `scylla-proxy`'s dry mode: no cluster behind it, every
//! answer forged here. It speaks enough CQL for the real driver to connect, read the system
//! tables, prepare every statement of the store (announcing the types the crate's DDL
//! declares, so the driver type-checks every value the store binds as a real node would),
//! and run them. Writes are acknowledged and not kept; reads answer no rows, except the
//! schema version, which a test sets.
//!
//! Faults are scripted per statement: a rule put before the node's own answers makes the
//! EXECUTE of one prepared statement fail with a given error, go unanswered, or drop the
//! connection.

pub(crate) mod catalog;
pub(crate) mod frames;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use scylla::errors::DbError;
use scylla_proxy::{
    Condition, Node, Proxy, Reaction as _, RequestFrame, RequestOpcode, RequestReaction,
    RequestRule, ResponseFrame, RunningProxy,
};

use backend_cassandra::statements::{self, for_keyspace};
use catalog::{Shape, Table};
use frames::value;

/// What a scripted statement does instead of succeeding.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// The node answers with this error.
    Error(DbError),
    /// The node never answers.
    NoAnswer,
    /// The node closes the connection the request came on.
    DropConnection,
}

/// What the node has seen and holds.
#[derive(Debug, Default)]
struct State {
    /// The schema version `schema_version` holds (`None`: no row).
    schema_version: Option<i32>,
    /// Statement names (for prepared ones) or texts (for plain queries), in arrival order.
    log: Vec<String>,
}

/// One simulated node.
pub(crate) struct SimulatedNode {
    address: SocketAddr,
    proxy: RunningProxy,
    state: Arc<Mutex<State>>,
    answers: RequestRule,
}

impl SimulatedNode {
    /// Starts a node serving the store's statements over `keyspace`, its schema at
    /// `schema_version`.
    pub(crate) async fn start(keyspace: &str, schema_version: Option<i32>) -> Self {
        let address = SocketAddr::new(scylla_proxy::get_exclusive_local_address(), 9042);
        let state = Arc::new(Mutex::new(State {
            schema_version,
            log: Vec::new(),
        }));
        let brain = Arc::new(Brain::new(keyspace, address.ip(), state.clone()));
        let answers = RequestRule(
            Condition::True,
            RequestReaction::forge_response(Arc::new(move |request| brain.answer(request))),
        );
        let node = Node::builder()
            .proxy_address(address)
            .request_rules(vec![answers.clone()])
            .build_dry_mode();
        let proxy = Proxy::new([node]).run().await.expect("the proxy starts");
        Self {
            address,
            proxy,
            state,
            answers,
        }
    }

    /// `host:port` to give the store.
    pub(crate) fn address(&self) -> String {
        self.address.to_string()
    }

    /// From now on, every EXECUTE of the statement named `statement` (a name of
    /// `statements::ALL`) meets `fault`; other requests are answered as before.
    pub(crate) fn fail(&mut self, statement: &str, fault: Fault) {
        self.install(
            Condition::RequestOpcode(RequestOpcode::Execute).and(
                Condition::BodyContainsCaseSensitive(
                    frames::short_bytes(statement.as_bytes()).into(),
                ),
            ),
            fault,
        );
    }

    /// From now on, every plain QUERY whose text holds `fragment` meets `fault`.
    pub(crate) fn fail_query(&mut self, fragment: &str, fault: Fault) {
        self.install(
            Condition::RequestOpcode(RequestOpcode::Query).and(
                Condition::BodyContainsCaseSensitive(fragment.as_bytes().into()),
            ),
            fault,
        );
    }

    /// From now on, every STARTUP (the first request of a connection after OPTIONS) meets
    /// `fault`.
    pub(crate) fn fail_handshake(&mut self, fault: Fault) {
        self.install(Condition::RequestOpcode(RequestOpcode::Startup), fault);
    }

    fn install(&mut self, condition: Condition, fault: Fault) {
        let reaction = match fault {
            Fault::Error(error) => RequestReaction::forge_with_error(error),
            Fault::NoAnswer => RequestReaction::drop_frame(),
            Fault::DropConnection => RequestReaction::drop_connection(),
        };
        self.proxy.running_nodes[0].change_request_rules(Some(vec![
            RequestRule(condition, reaction),
            self.answers.clone(),
        ]));
    }

    /// Every statement succeeds again.
    pub(crate) fn heal(&mut self) {
        self.proxy.running_nodes[0].change_request_rules(Some(vec![self.answers.clone()]));
    }

    /// What arrived so far (statement names for EXECUTEs, texts for QUERYs), and forgets it.
    pub(crate) fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().expect("state").log)
    }

    /// Stops the node.
    pub(crate) async fn stop(self) {
        let _ = self.proxy.finish().await;
    }
}

/// The node's answers to requests no fault rule took.
struct Brain {
    ip: IpAddr,
    tables: HashMap<String, Table>,
    /// Statement text → (name, shape).
    statements: HashMap<String, (&'static str, Shape)>,
    state: Arc<Mutex<State>>,
}

impl Brain {
    fn new(keyspace: &str, ip: IpAddr, state: Arc<Mutex<State>>) -> Self {
        let tables = catalog::tables(keyspace);
        let statements = statements::ALL
            .iter()
            .map(|(name, template)| {
                let text = for_keyspace(template, keyspace);
                let shape = catalog::shape(&tables, &text);
                (text, (*name, shape))
            })
            .collect();
        Self {
            ip,
            tables,
            statements,
            state,
        }
    }

    fn log(&self, entry: impl Into<String>) {
        self.state.lock().expect("state").log.push(entry.into());
    }

    fn answer(&self, request: RequestFrame) -> ResponseFrame {
        match request.opcode {
            RequestOpcode::Options => {
                ResponseFrame::forged_supported(request.params, &HashMap::new()).expect("SUPPORTED")
            }
            RequestOpcode::Startup | RequestOpcode::Register => {
                ResponseFrame::forged_ready(request.params)
            }
            RequestOpcode::Query => match frames::leading_long_string(&request.body) {
                Some(text) => self.query(&request, &text),
                None => self.refuse(&request, DbError::ProtocolError, "bad QUERY"),
            },
            RequestOpcode::Prepare => match frames::leading_long_string(&request.body) {
                Some(text) => self.prepare(&request, &text),
                None => self.refuse(&request, DbError::ProtocolError, "bad PREPARE"),
            },
            RequestOpcode::Execute => match frames::leading_short_bytes(&request.body) {
                Some(id) => self.execute(&request, &id),
                None => self.refuse(&request, DbError::ProtocolError, "bad EXECUTE"),
            },
            other => self.refuse(
                &request,
                DbError::ProtocolError,
                &format!("the simulated node does not take {other:?}"),
            ),
        }
    }

    fn refuse(&self, request: &RequestFrame, error: DbError, message: &str) -> ResponseFrame {
        ResponseFrame::forged_error(request.params, error, Some(message)).expect("an error frame")
    }

    /// A plain query: a read of a system table, or schema DDL (acknowledged).
    fn query(&self, request: &RequestFrame, text: &str) -> ResponseFrame {
        self.log(text);
        if text.starts_with("CREATE ") {
            return frames::void(request);
        }
        let Some(rest) = text.strip_prefix("SELECT ") else {
            return self.refuse(request, DbError::Invalid, "the simulated node only reads");
        };
        let (selected, rest) = rest.split_once(" FROM ").unwrap_or((rest, ""));
        let table_name = rest.split_whitespace().next().unwrap_or_default();
        let Some(table) = self.tables.get(table_name) else {
            // As Cassandra answers for a table it does not have (e.g. Scylla's own).
            return self.refuse(
                request,
                DbError::Invalid,
                &format!("unconfigured table {table_name}"),
            );
        };
        let columns: Vec<_> = selected
            .split(',')
            .map(|column| table.column(column.trim(), text))
            .collect();
        let rows = if table_name == "system.local" {
            vec![
                columns
                    .iter()
                    .map(|(name, _)| self.local_cell(name))
                    .collect(),
            ]
        } else {
            Vec::new()
        };
        let (keyspace, table) = table_name.split_once('.').expect("a qualified table");
        frames::rows(request, (keyspace, table), &columns, &rows)
    }

    /// A cell of the node's own `system.local` row.
    fn local_cell(&self, column: &str) -> frames::Cell {
        match column {
            "key" => value::text("local"),
            "release_version" => value::text("4.1.0"),
            "cluster_name" => value::text("simulated"),
            "host_id" => value::uuid([7; 16]),
            "rpc_address" => value::inet(self.ip),
            "data_center" => value::text("dc1"),
            "rack" => value::text("rack1"),
            "tokens" => value::text_set(&["0"]),
            "schema_version" => value::uuid([9; 16]),
            other => panic!("system.local has no {other}"),
        }
    }

    fn prepare(&self, request: &RequestFrame, text: &str) -> ResponseFrame {
        let Some((name, shape)) = self.statements.get(text) else {
            return self.refuse(
                request,
                DbError::Invalid,
                &format!("the simulated node does not know {text}"),
            );
        };
        self.log(format!("PREPARE {name}"));
        frames::prepared(
            request,
            name.as_bytes(),
            split_table(&shape.table),
            &shape.binds,
            &shape.returned,
        )
    }

    fn execute(&self, request: &RequestFrame, id: &[u8]) -> ResponseFrame {
        let Some((name, shape)) = self
            .statements
            .values()
            .find(|(name, _)| name.as_bytes() == id)
        else {
            return self.refuse(
                request,
                DbError::Unprepared {
                    statement_id: id.to_vec().into(),
                },
                "unprepared",
            );
        };
        self.log(*name);
        if *name == "INSERT_SCHEMA_VERSION" {
            // (component, version): the next start-up reads the version back.
            let version = frames::execute_values(&request.body)
                .and_then(|values| values.get(1).cloned().flatten())
                .and_then(|bytes| Some(i32::from_be_bytes(bytes.try_into().ok()?)));
            self.state.lock().expect("state").schema_version = version;
        }
        if shape.returned.is_empty() {
            return frames::void(request);
        }
        let rows = match (*name, self.state.lock().expect("state").schema_version) {
            ("SELECT_SCHEMA_VERSION", Some(version)) => vec![vec![value::int(version)]],
            _ => Vec::new(),
        };
        frames::rows(request, split_table(&shape.table), &shape.returned, &rows)
    }
}

fn split_table(qualified: &str) -> (&str, &str) {
    qualified.split_once('.').expect("a qualified table")
}

impl std::fmt::Debug for SimulatedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedNode")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}
