//! Offline checks of the deployment files: `compose/`, the `Dockerfile`, `deploy/kubernetes/`,
//! and the Grafana dashboard and alert rules in `deploy/grafana/`.
//!
//! No Docker engine, cluster, Grafana or Prometheus runs where these tests run, so they check
//! what can be checked without one: every server command line parses with the server's own
//! [`Cli`] (so every flag is one `--help` lists and every value is valid), Jaeger's storage
//! endpoints name the server's service and its listener ports, health checks and probes ask
//! the admin port, dependencies wait for health, the LSM store gets a volume and a single
//! writer, and every metric and label the dashboard and rules use is one the server exports.
//!
//! Each check is a function returning the problems it found. The `*_fails_*` tests feed each
//! one a broken copy of a real file and expect it to complain, so a check cannot silently pass
//! everything.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{CommandFactory as _, Parser as _, ValueEnum as _};
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::storage::v2::GetServicesRequest;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use marked_yaml::Node;
use remote_storage::cli::Cli;
use remote_storage::{
    BackendConfig, DEFAULT_ADMIN_PORT, DEFAULT_GRPC_PORT, RunningServer, ServerConfig, open_backend,
};
use tonic::transport::Channel;

// ---------------------------------------------------------------------------------------------
// Reading files and YAML.

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// One YAML document (a mapping at the top, as every file here has).
fn parse_yaml(what: &str, text: &str) -> Result<Node, String> {
    marked_yaml::parse_yaml(0, text).map_err(|error| format!("{what}: not YAML: {error}"))
}

/// The documents of a multi-document file. marked-yaml reads one document, so the text is
/// split on `---` lines first (the files here use no `---` inside block scalars).
fn parse_documents(what: &str, text: &str) -> Result<Vec<Node>, String> {
    let mut documents = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if current.lines().any(|line| {
                let line = line.trim();
                !line.is_empty() && !line.starts_with('#')
            }) {
                documents.push(parse_yaml(what, &current)?);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    Ok(documents)
}

/// The node at `path` (mapping keys; a number indexes a sequence).
fn at<'a>(node: &'a Node, path: &[&str]) -> Option<&'a Node> {
    let mut current = node;
    for key in path {
        current = match current {
            Node::Mapping(mapping) => mapping.get_node(key)?,
            Node::Sequence(sequence) => sequence.get_node(key.parse().ok()?)?,
            Node::Scalar(_) => return None,
        };
    }
    Some(current)
}

fn text_at<'a>(node: &'a Node, path: &[&str]) -> Option<&'a str> {
    at(node, path)?.as_scalar().map(|scalar| scalar.as_str())
}

/// A sequence of scalars as strings (empty when absent or not a sequence).
fn strings_at(node: &Node, path: &[&str]) -> Vec<String> {
    at(node, path)
        .and_then(Node::as_sequence)
        .map(|sequence| {
            sequence
                .iter()
                .filter_map(|item| item.as_scalar().map(|scalar| scalar.as_str().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The keys of a mapping (empty when absent).
fn keys_at(node: &Node, path: &[&str]) -> Vec<String> {
    at(node, path)
        .and_then(Node::as_mapping)
        .map(|mapping| mapping.keys().map(|key| key.as_str().to_owned()).collect())
        .unwrap_or_default()
}

fn items_at<'a>(node: &'a Node, path: &[&str]) -> Vec<&'a Node> {
    at(node, path)
        .and_then(Node::as_sequence)
        .map(|sequence| sequence.iter().collect())
        .unwrap_or_default()
}

/// `host:port` split; `None` when there is no numeric port.
fn host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// Host and port of a URL such as `postgres://user:pw@host:5432/db` or `http://host:9200`.
fn url_host_port(url: &str) -> Option<(String, u16)> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?']).next()?;
    let host_and_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    host_port(host_and_port)
}

// ---------------------------------------------------------------------------------------------
// The server's command line, as `--help` offers it.

/// What a server command line in a deployment file means.
#[derive(Debug)]
struct ServerCommand {
    /// The canonical backend name (`opensearch` is `elasticsearch`).
    backend: String,
    grpc_addr: SocketAddr,
    writer_addr: Option<SocketAddr>,
    admin_addr: SocketAddr,
    /// Each `--flag`'s value as written (`true` for a bare switch).
    flags: BTreeMap<String, String>,
}

/// The long flag whose environment variable is `name`.
fn flag_for_env(name: &str) -> Option<String> {
    let command = Cli::command();
    command
        .get_arguments()
        .find(|argument| argument.get_env().is_some_and(|env| env == name))
        .and_then(|argument| argument.get_long().map(str::to_owned))
}

/// Parses `args` (and `JAEGER_REMOTE_STORAGE_*` variables, as flags) exactly as the binary
/// does, then builds its server and backend settings, which reject what parsing alone lets
/// through (a missing `--lsm.data-dir`, --max-inflight-bytes below --max-recv-msg-size…).
fn server_command(args: &[String], env: &[(String, String)]) -> Result<ServerCommand, String> {
    let mut full = vec!["jaeger-remote-storage".to_owned()];
    full.extend(args.iter().cloned());
    for (name, value) in env {
        if !name.starts_with("JAEGER_REMOTE_STORAGE_") {
            continue;
        }
        let flag = flag_for_env(name)
            .ok_or_else(|| format!("environment variable {name} is no flag of the server"))?;
        full.push(format!("--{flag}={value}"));
    }
    let cli = Cli::try_parse_from(&full)
        .map_err(|error| format!("server arguments {full:?} do not parse: {error}"))?;
    let server = cli
        .server_config()
        .map_err(|error| format!("server arguments {full:?}: {error:#}"))?;
    cli.backend_config()
        .map_err(|error| format!("server arguments {full:?}: {error:#}"))?;
    let mut flags = BTreeMap::new();
    let mut words = full.iter().skip(1).peekable();
    while let Some(word) = words.next() {
        let Some(flag) = word.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => match words.peek() {
                Some(next) if !next.starts_with("--") => {
                    (flag.to_owned(), words.next().cloned().unwrap_or_default())
                }
                _ => (flag.to_owned(), "true".to_owned()),
            },
        };
        flags.insert(name, value);
    }
    let backend = cli
        .backend
        .to_possible_value()
        .map(|value| value.get_name().to_owned())
        .unwrap_or_default();
    Ok(ServerCommand {
        backend,
        grpc_addr: server.grpc_addr,
        writer_addr: server.writer_addr,
        admin_addr: server
            .admin_addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], DEFAULT_ADMIN_PORT))),
        flags,
    })
}

/// The server crate's cargo features, from its manifest's `[features]` table.
fn server_features() -> BTreeSet<String> {
    let manifest = read("remote-storage/server/Cargo.toml");
    let mut in_features = false;
    let mut features = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_features = line == "[features]";
            continue;
        }
        if in_features && let Some((name, _)) = line.split_once(" = ") {
            features.insert(name.trim().to_owned());
        }
    }
    features
}

/// Every backend feature (the default set of the full server).
const ALL_BACKEND_FEATURES: [&str; 5] = [
    "backend-memory",
    "backend-lsm",
    "backend-postgres",
    "backend-elasticsearch",
    "backend-cassandra",
];

/// The cargo feature that compiles in `backend` (its canonical name).
fn feature_of(backend: &str) -> Option<&'static str> {
    match backend {
        "memory" => Some("backend-memory"),
        "lsm" => Some("backend-lsm"),
        "postgres" => Some("backend-postgres"),
        "elasticsearch" => Some("backend-elasticsearch"),
        "cassandra" => Some("backend-cassandra"),
        _ => None,
    }
}

/// The flag that says where the backend's database is, for backends that have one.
fn database_flag(backend: &str) -> Option<&'static str> {
    match backend {
        "postgres" => Some("postgres.url"),
        "elasticsearch" => Some("es.server-urls"),
        "cassandra" => Some("cassandra.servers"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Jaeger v2's configuration.

/// Checks a Jaeger v2 config: the `grpc` storage's endpoint and writer endpoint must be
/// `expected_host` on a port the server listens on for them, the query and the exporter must
/// use that storage, and healthcheckv2 must serve HTTP on `health_port` when given.
fn check_jaeger_config(
    what: &str,
    config: &Node,
    expected_host: &str,
    server: &ServerCommand,
    health_port: Option<u16>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let extensions = strings_at(config, &["service", "extensions"]);
    for needed in ["jaeger_storage", "jaeger_query", "healthcheckv2"] {
        if !extensions.iter().any(|extension| extension == needed) {
            problems.push(format!("{what}: service.extensions lacks {needed}"));
        }
    }
    let backends = keys_at(config, &["extensions", "jaeger_storage", "backends"]);
    let [storage] = backends.as_slice() else {
        problems.push(format!(
            "{what}: expected one jaeger_storage backend, found {backends:?}"
        ));
        return problems;
    };
    let grpc = [
        "extensions",
        "jaeger_storage",
        "backends",
        storage.as_str(),
        "grpc",
    ];
    let main_port = server.grpc_addr.port();
    // Jaeger writes through Export, which both the main listener and the writer serve.
    let writer_ports: Vec<u16> = std::iter::once(main_port)
        .chain(server.writer_addr.map(|addr| addr.port()))
        .collect();
    for (field, allowed) in [("endpoint", vec![main_port]), ("writer", writer_ports)] {
        let path: Vec<&str> = if field == "writer" {
            grpc.iter().copied().chain(["writer", "endpoint"]).collect()
        } else {
            grpc.iter().copied().chain(["endpoint"]).collect()
        };
        match text_at(config, &path).and_then(host_port) {
            Some((host, port)) if host == expected_host && allowed.contains(&port) => {}
            other => problems.push(format!(
                "{what}: {} is {other:?}, expected {expected_host} on port {allowed:?} (the \
                 server's listener)",
                path.join(".")
            )),
        }
        let mut insecure_path = path.clone();
        insecure_path.pop();
        insecure_path.extend(["tls", "insecure"]);
        // The examples run the server without TLS; a TLS client would fail its handshake.
        if text_at(config, &insecure_path) != Some("true") {
            problems.push(format!(
                "{what}: {} must be true (the server here speaks plaintext)",
                insecure_path.join(".")
            ));
        }
    }
    if text_at(config, &["extensions", "jaeger_query", "storage", "traces"]) != Some(storage) {
        problems.push(format!(
            "{what}: jaeger_query.storage.traces is not {storage}"
        ));
    }
    if text_at(
        config,
        &["exporters", "jaeger_storage_exporter", "trace_storage"],
    ) != Some(storage)
    {
        problems.push(format!(
            "{what}: jaeger_storage_exporter.trace_storage is not {storage}"
        ));
    }
    let exporters = strings_at(config, &["service", "pipelines", "traces", "exporters"]);
    if !exporters
        .iter()
        .any(|exporter| exporter == "jaeger_storage_exporter")
    {
        problems.push(format!(
            "{what}: the traces pipeline does not export to jaeger_storage_exporter"
        ));
    }
    if let Some(expected) = health_port {
        let endpoint = text_at(config, &["extensions", "healthcheckv2", "http", "endpoint"]);
        if endpoint.and_then(host_port).map(|(_, port)| port) != Some(expected) {
            problems.push(format!(
                "{what}: healthcheckv2.http.endpoint is {endpoint:?}, but the health check asks \
                 port {expected}"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Compose.

/// What each compose stack must contain: the `--backend` it runs and its database service
/// (with a word its health check must use), if any.
struct StackSpec {
    name: &'static str,
    backend: &'static str,
    database: Option<(&'static str, u16, &'static [&'static str])>,
}

const STACKS: [StackSpec; 6] = [
    StackSpec {
        name: "memory",
        backend: "memory",
        database: None,
    },
    StackSpec {
        name: "lsm",
        backend: "lsm",
        database: None,
    },
    StackSpec {
        name: "postgres",
        backend: "postgres",
        database: Some(("postgres", 5432, &["pg_isready"])),
    },
    StackSpec {
        name: "elasticsearch",
        backend: "elasticsearch",
        database: Some(("elasticsearch", 9200, &["_cluster/health"])),
    },
    StackSpec {
        name: "opensearch",
        backend: "elasticsearch",
        database: Some(("opensearch", 9200, &["_cluster/health"])),
    },
    StackSpec {
        name: "cassandra",
        backend: "cassandra",
        database: Some(("cassandra", 9042, &["cqlsh", "nodetool"])),
    },
];

/// The stack of Jaeger v1 (all-in-one) through the v1 plugin API.
const JAEGER_V1_STACK: &str = "jaeger-v1";

/// The server's service name in every stack: Jaeger's configs address it by this name.
const SERVER_SERVICE: &str = "remote-storage";

/// A service's healthcheck `test` as one string (list or shell form).
fn healthcheck_test(service: &Node) -> Option<String> {
    let test = at(service, &["healthcheck", "test"])?;
    match test {
        Node::Scalar(scalar) => Some(scalar.as_str().to_owned()),
        Node::Sequence(_) => Some(strings_at(service, &["healthcheck", "test"]).join(" ")),
        Node::Mapping(_) => None,
    }
}

/// The container side of each `ports:` entry (`"127.0.0.1:9200:9200"` → 9200).
fn container_ports(service: &Node) -> Vec<u16> {
    strings_at(service, &["ports"])
        .iter()
        .filter_map(|entry| entry.rsplit(':').next()?.split('/').next()?.parse().ok())
        .collect()
}

fn waits_healthy(service: &Node, dependency: &str) -> bool {
    text_at(service, &["depends_on", dependency, "condition"]) == Some("service_healthy")
}

/// The server service's command (list form) and environment, parsed.
fn compose_server(what: &str, server: &Node) -> Result<ServerCommand, String> {
    let command = strings_at(server, &["command"]);
    if command.is_empty() {
        return Err(format!(
            "{what}: the server's command must be a list of flags"
        ));
    }
    let env: Vec<(String, String)> = at(server, &["environment"])
        .and_then(Node::as_mapping)
        .map(|mapping| {
            mapping
                .iter()
                .filter_map(|(key, value)| {
                    Some((
                        key.as_str().to_owned(),
                        value.as_scalar()?.as_str().to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    server_command(&command, &env).map_err(|problem| format!("{what}: {problem}"))
}

/// Checks the server service of a stack; returns its command when it parses.
fn check_compose_server(
    what: &str,
    compose: &Node,
    problems: &mut Vec<String>,
) -> Option<ServerCommand> {
    let Some(server) = at(compose, &["services", SERVER_SERVICE]) else {
        problems.push(format!("{what}: no `{SERVER_SERVICE}` service"));
        return None;
    };
    if text_at(server, &["build", "context"]) != Some("../..") {
        problems.push(format!(
            "{what}: the server must be built from the repository's Dockerfile (build.context \
             ../..)"
        ));
    }
    let command = match compose_server(what, server) {
        Ok(command) => command,
        Err(problem) => {
            problems.push(problem);
            return None;
        }
    };
    let admin_port = command.admin_addr.port();
    match healthcheck_test(server) {
        Some(test)
            if test.contains(&format!("127.0.0.1/{admin_port}")) && test.contains(" 200 ") => {}
        other => problems.push(format!(
            "{what}: the server's healthcheck must expect 200 from the admin port {admin_port}, \
             found {other:?}"
        )),
    }
    let published = container_ports(server);
    for (listener, port) in [
        ("--grpc-addr", command.grpc_addr.port()),
        ("--admin-addr", admin_port),
    ] {
        if !published.contains(&port) {
            problems.push(format!(
                "{what}: the server publishes {published:?}, not its {listener} port {port}"
            ));
        }
    }
    // Compose has no stop timeout of its own beyond 10 s; the server's drain needs more.
    if text_at(server, &["stop_grace_period"]).is_none() {
        problems.push(format!(
            "{what}: the server needs a stop_grace_period covering its 30 s drain"
        ));
    }
    // A slim image: FEATURES must compile in the backend the command selects, and name only
    // features the crate has.
    if let Some(features) = text_at(server, &["build", "args", "FEATURES"]) {
        let known = server_features();
        let listed: Vec<&str> = features
            .split([' ', ','])
            .filter(|f| !f.is_empty())
            .collect();
        for feature in &listed {
            if !known.contains(*feature) {
                problems.push(format!(
                    "{what}: FEATURES names {feature}, not a feature of the server crate"
                ));
            }
        }
        if let Some(needed) = feature_of(&command.backend)
            && !listed.contains(&needed)
        {
            problems.push(format!(
                "{what}: --backend {} needs FEATURES to include {needed}, found {features:?}",
                command.backend
            ));
        }
    }
    Some(command)
}

/// Checks one Jaeger v2 stack: `compose/<name>/docker-compose.yml` and its Jaeger config.
fn check_compose_stack(spec: &StackSpec, compose_text: &str, jaeger_text: &str) -> Vec<String> {
    let what = format!("compose/{}", spec.name);
    let mut problems = Vec::new();
    let compose = match parse_yaml(&what, compose_text) {
        Ok(compose) => compose,
        Err(problem) => return vec![problem],
    };
    let jaeger_config = match parse_yaml(&format!("{what}/jaeger-config.yaml"), jaeger_text) {
        Ok(config) => config,
        Err(problem) => return vec![problem],
    };
    let expected_services: BTreeSet<&str> = [SERVER_SERVICE, "jaeger"]
        .into_iter()
        .chain(spec.database.map(|(name, _, _)| name))
        .collect();
    let services: BTreeSet<String> = keys_at(&compose, &["services"]).into_iter().collect();
    let services: BTreeSet<&str> = services.iter().map(String::as_str).collect();
    if services != expected_services {
        problems.push(format!(
            "{what}: services are {services:?}, expected {expected_services:?}"
        ));
    }
    let server = check_compose_server(&what, &compose, &mut problems);
    if let Some(server) = &server {
        if server.backend != spec.backend {
            problems.push(format!(
                "{what}: the server runs --backend {}, expected {}",
                server.backend, spec.backend
            ));
        }
        if spec.backend == "lsm" {
            check_compose_lsm_volume(&what, &compose, server, &mut problems);
        }
    }

    if let Some((database, port, health_words)) = spec.database {
        match at(&compose, &["services", database]) {
            None => problems.push(format!("{what}: no `{database}` service")),
            Some(service) => match healthcheck_test(service) {
                Some(test) if health_words.iter().any(|word| test.contains(word)) => {}
                other => problems.push(format!(
                    "{what}: {database} needs a healthcheck using one of {health_words:?}, \
                     found {other:?}"
                )),
            },
        }
        if let Some(server_node) = at(&compose, &["services", SERVER_SERVICE])
            && !waits_healthy(server_node, database)
        {
            problems.push(format!(
                "{what}: the server must depend on {database} with condition service_healthy"
            ));
        }
        // The server's database flag must name the database service on its port.
        if let Some(server) = &server
            && let Some(flag) = database_flag(&server.backend)
        {
            let value = server.flags.get(flag).cloned().unwrap_or_default();
            let first = value.split(',').next().unwrap_or_default();
            let address = url_host_port(first);
            if address != Some((database.to_owned(), port)) {
                problems.push(format!(
                    "{what}: --{flag} is {value:?}, expected the `{database}` service on port \
                     {port}"
                ));
            }
        }
    }

    match at(&compose, &["services", "jaeger"]) {
        None => problems.push(format!("{what}: no `jaeger` service")),
        Some(jaeger) => {
            let image = text_at(jaeger, &["image"]).unwrap_or_default();
            // A pinned release: `latest` moves under the config, whose schema changes.
            match image.strip_prefix("jaegertracing/jaeger:") {
                Some(tag) if tag.split('.').count() == 3 => {}
                _ => problems.push(format!(
                    "{what}: jaeger's image is {image:?}, expected jaegertracing/jaeger:<x.y.z>"
                )),
            }
            if !container_ports(jaeger).contains(&16686) {
                problems.push(format!("{what}: jaeger does not publish the UI port 16686"));
            }
            if !waits_healthy(jaeger, SERVER_SERVICE) {
                problems.push(format!(
                    "{what}: jaeger must depend on {SERVER_SERVICE} with condition \
                     service_healthy"
                ));
            }
            // The config Jaeger reads is the file checked below.
            let command = strings_at(jaeger, &["command"]);
            let config_path = command
                .iter()
                .position(|word| word == "--config")
                .and_then(|index| command.get(index + 1));
            let mounted = strings_at(jaeger, &["volumes"]).iter().any(|volume| {
                let mut parts = volume.split(':');
                parts.next() == Some("./jaeger-config.yaml")
                    && parts.next().map(str::to_owned).as_ref() == config_path
            });
            if !mounted {
                problems.push(format!(
                    "{what}: jaeger must mount ./jaeger-config.yaml where --config points \
                     ({config_path:?})"
                ));
            }
            let health_port = healthcheck_test(jaeger).and_then(|test| {
                test.split_whitespace()
                    .find_map(|word| word.strip_prefix("http://127.0.0.1:"))
                    .and_then(|rest| rest.split('/').next()?.parse().ok())
            });
            if health_port.is_none() {
                problems.push(format!(
                    "{what}: jaeger needs a healthcheck on http://127.0.0.1:<healthcheckv2 port>"
                ));
            }
            if let Some(server) = &server {
                problems.extend(check_jaeger_config(
                    &format!("{what}/jaeger-config.yaml"),
                    &jaeger_config,
                    SERVER_SERVICE,
                    server,
                    health_port,
                ));
            }
        }
    }
    problems
}

/// The LSM data directory must be a volume of the server service, declared at the top.
fn check_compose_lsm_volume(
    what: &str,
    compose: &Node,
    server: &ServerCommand,
    problems: &mut Vec<String>,
) {
    let data_dir = server
        .flags
        .get("lsm.data-dir")
        .cloned()
        .unwrap_or_default();
    let service = at(compose, &["services", SERVER_SERVICE]);
    let volume = service
        .map(|service| strings_at(service, &["volumes"]))
        .unwrap_or_default()
        .into_iter()
        .find_map(|entry| {
            let mut parts = entry.split(':');
            let source = parts.next()?.to_owned();
            (parts.next()? == data_dir).then_some(source)
        });
    match volume {
        None => problems.push(format!(
            "{what}: --lsm.data-dir {data_dir:?} is not a volume of the server: its data would \
             be lost with the container"
        )),
        Some(name) => {
            if !keys_at(compose, &["volumes"]).contains(&name) {
                problems.push(format!(
                    "{what}: the LSM volume {name:?} is not declared under top-level volumes"
                ));
            }
        }
    }
}

/// Checks the Jaeger v1 stack: the server as above, Jaeger v1's environment pointing at it.
fn check_compose_jaeger_v1(compose_text: &str) -> Vec<String> {
    let what = format!("compose/{JAEGER_V1_STACK}");
    let mut problems = Vec::new();
    let compose = match parse_yaml(&what, compose_text) {
        Ok(compose) => compose,
        Err(problem) => return vec![problem],
    };
    let Some(server) = check_compose_server(&what, &compose, &mut problems) else {
        return problems;
    };
    let Some(jaeger) = at(&compose, &["services", "jaeger"]) else {
        problems.push(format!("{what}: no `jaeger` service"));
        return problems;
    };
    if text_at(jaeger, &["environment", "SPAN_STORAGE_TYPE"]) != Some("grpc") {
        problems.push(format!("{what}: SPAN_STORAGE_TYPE must be grpc"));
    }
    let expected = format!("{SERVER_SERVICE}:{}", server.grpc_addr.port());
    let endpoint = text_at(jaeger, &["environment", "GRPC_STORAGE_SERVER"]);
    if endpoint != Some(expected.as_str()) {
        problems.push(format!(
            "{what}: GRPC_STORAGE_SERVER is {endpoint:?}, expected {expected}"
        ));
    }
    if !container_ports(jaeger).contains(&16686) {
        problems.push(format!("{what}: jaeger does not publish the UI port 16686"));
    }
    if !waits_healthy(jaeger, SERVER_SERVICE) {
        problems.push(format!(
            "{what}: jaeger must depend on {SERVER_SERVICE} with condition service_healthy"
        ));
    }
    problems
}

fn compose_file(stack: &str) -> String {
    read(&format!("compose/{stack}/docker-compose.yml"))
}

fn jaeger_file(stack: &str) -> String {
    read(&format!("compose/{stack}/jaeger-config.yaml"))
}

fn spec(name: &str) -> &'static StackSpec {
    STACKS
        .iter()
        .find(|spec| spec.name == name)
        .expect("a known stack")
}

#[test]
fn every_backend_has_a_compose_stack_and_every_stack_is_checked() {
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("compose"))
        .expect("compose/ exists")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            entry
                .file_type()
                .ok()?
                .is_dir()
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect();
    found.sort();
    let mut expected: Vec<String> = STACKS
        .iter()
        .map(|spec| spec.name.to_owned())
        .chain(std::iter::once(JAEGER_V1_STACK.to_owned()))
        .collect();
    expected.sort();
    assert_eq!(
        found, expected,
        "compose/ stacks and the stacks this test checks differ"
    );
    // Every storing backend the server offers has a stack.
    for backend in ALL_BACKEND_FEATURES {
        let name = backend.trim_start_matches("backend-");
        assert!(
            STACKS.iter().any(|spec| spec.backend == name),
            "no compose stack runs --backend {name}"
        );
    }
    // compose/README.md gives each stack's command.
    let readme = read("compose/README.md");
    for stack in &expected {
        let command = format!("docker compose -f compose/{stack}/docker-compose.yml up -d --wait");
        assert!(
            readme.contains(&command),
            "compose/README.md lacks `{command}`"
        );
    }
}

#[test]
fn compose_stacks_are_consistent() {
    let mut problems = Vec::new();
    for spec in &STACKS {
        problems.extend(check_compose_stack(
            spec,
            &compose_file(spec.name),
            &jaeger_file(spec.name),
        ));
    }
    problems.extend(check_compose_jaeger_v1(&compose_file(JAEGER_V1_STACK)));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Replaces `from` (which must occur) in `text`.
fn broken(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the file no longer contains {from:?}");
    text.replacen(from, to, 1)
}

/// Which file of a stack a broken case edits.
#[derive(Clone, Copy)]
enum StackFile {
    Compose,
    Jaeger,
}

#[test]
fn compose_checks_fail_on_broken_files() {
    use StackFile::{Compose, Jaeger};
    // (stack, file, text replaced, replacement, a word the problem must contain)
    let cases = [
        // A flag --help does not list, and a value the flag does not accept.
        (
            "postgres",
            Compose,
            "--postgres.retention=7d",
            "--postgres.retention-days=7",
            "do not parse",
        ),
        (
            "postgres",
            Compose,
            "--postgres.retention=7d",
            "--postgres.retention=a week",
            "do not parse",
        ),
        // Jaeger pointing at a port the server does not listen on, or at another host.
        (
            "postgres",
            Jaeger,
            "endpoint: remote-storage:17271",
            "endpoint: remote-storage:4317",
            "grpc.endpoint",
        ),
        (
            "postgres",
            Jaeger,
            "writer:\n            endpoint: remote-storage:17271",
            "writer:\n            endpoint: jaeger:17271",
            "writer.endpoint",
        ),
        // The server moved to another port; Jaeger's config did not follow.
        (
            "postgres",
            Compose,
            "--grpc-addr=0.0.0.0:17271",
            "--grpc-addr=0.0.0.0:17999",
            "grpc.endpoint",
        ),
        // The database's health check gone; the server not waiting for it.
        (
            "postgres",
            Compose,
            "\"pg_isready\", ",
            "",
            "needs a healthcheck",
        ),
        (
            "postgres",
            Compose,
            "postgres:\n        condition: service_healthy",
            "postgres:\n        condition: service_started",
            "must depend on postgres",
        ),
        // The server's URL names no service of the stack.
        (
            "postgres",
            Compose,
            "@postgres:5432/",
            "@localhost:5432/",
            "--postgres.url",
        ),
        // The UI port dropped; Jaeger unpinned; Jaeger started before the server is healthy.
        (
            "postgres",
            Compose,
            "- \"16686:16686\"",
            "- \"16687:16687\"",
            "16686",
        ),
        (
            "postgres",
            Compose,
            "jaegertracing/jaeger:2.20.0",
            "jaegertracing/jaeger:latest",
            "jaeger's image",
        ),
        (
            "postgres",
            Compose,
            "remote-storage:\n        condition: service_healthy",
            "remote-storage:\n        condition: service_started",
            "jaeger must depend on remote-storage",
        ),
        // The server's health check asks the wrong port.
        (
            "postgres",
            Compose,
            "127.0.0.1/17270",
            "127.0.0.1/17271",
            "healthcheck must expect 200",
        ),
        // A slim image without the backend it runs.
        (
            "postgres",
            Compose,
            "FEATURES: backend-postgres",
            "FEATURES: backend-memory",
            "needs FEATURES",
        ),
        // A database service missing altogether.
        (
            "postgres",
            Compose,
            "  postgres:\n    # Major",
            "  db:\n    # Major",
            "services are",
        ),
        // The Jaeger config mounted where Jaeger does not read it.
        (
            "postgres",
            Compose,
            ":/etc/jaeger/config.yaml:ro",
            ":/etc/jaeger/other.yaml:ro",
            "must mount ./jaeger-config.yaml",
        ),
        // The query extension reading another storage.
        (
            "postgres",
            Jaeger,
            "traces: remote-storage",
            "traces: other-storage",
            "jaeger_query.storage.traces",
        ),
        // The LSM data directory off the volume, or missing (parsing passes, the backend
        // settings do not).
        (
            "lsm",
            Compose,
            "--lsm.data-dir=/data",
            "--lsm.data-dir=/tmp/data",
            "is not a volume",
        ),
        (
            "lsm",
            Compose,
            "      - --lsm.data-dir=/data\n",
            "",
            "lsm.data-dir",
        ),
        // A health check that proves nothing.
        (
            "cassandra",
            Compose,
            "[\"CMD\", \"cqlsh\", \"-e\", \"describe keyspaces\"]",
            "[\"CMD\", \"true\"]",
            "needs a healthcheck",
        ),
        // The wrong backend for the stack.
        (
            "opensearch",
            Compose,
            "--backend=opensearch",
            "--backend=memory",
            "expected elasticsearch",
        ),
    ];
    for (stack, file, from, to, expected) in cases {
        let mut compose = compose_file(stack);
        let mut jaeger = jaeger_file(stack);
        match file {
            Compose => compose = broken(&compose, from, to),
            Jaeger => jaeger = broken(&jaeger, from, to),
        }
        let problems = check_compose_stack(spec(stack), &compose, &jaeger);
        assert!(
            problems.iter().any(|problem| problem.contains(expected)),
            "{stack}: replacing {from:?} with {to:?}: expected a problem mentioning \
             {expected:?}, got {problems:#?}"
        );
    }

    let v1 = compose_file(JAEGER_V1_STACK);
    let problems = check_compose_jaeger_v1(&broken(
        &v1,
        "GRPC_STORAGE_SERVER: remote-storage:17271",
        "GRPC_STORAGE_SERVER: remote-storage:17270",
    ));
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains("GRPC_STORAGE_SERVER")),
        "{problems:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Dockerfile.

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                if !current.trim().is_empty() {
                    instructions.push(current.trim().to_owned());
                }
                current.clear();
            }
        }
    }
    instructions
}

fn check_dockerfile(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let instructions = dockerfile_instructions(text);
    // The runtime stage: everything after the last FROM.
    let last_from = instructions
        .iter()
        .rposition(|instruction| instruction.starts_with("FROM "))
        .unwrap_or(0);
    let runtime = instructions.get(last_from..).unwrap_or_default();
    let find = |keyword: &str| -> Vec<&String> {
        runtime
            .iter()
            .filter(|instruction| instruction.starts_with(keyword))
            .collect()
    };

    let exposed: BTreeSet<u16> = find("EXPOSE ")
        .iter()
        .flat_map(|instruction| instruction.split_whitespace().skip(1))
        .filter_map(|port| port.split('/').next()?.parse().ok())
        .collect();
    for (listener, port) in [("gRPC", DEFAULT_GRPC_PORT), ("admin", DEFAULT_ADMIN_PORT)] {
        if !exposed.contains(&port) {
            problems.push(format!(
                "Dockerfile: EXPOSE {exposed:?} lacks the default {listener} port {port}"
            ));
        }
    }
    match find("HEALTHCHECK ").as_slice() {
        [healthcheck]
            if healthcheck.contains(&format!("127.0.0.1/{DEFAULT_ADMIN_PORT}"))
                && healthcheck.contains(" 200 ") => {}
        other => problems.push(format!(
            "Dockerfile: one HEALTHCHECK expecting 200 from the admin port {DEFAULT_ADMIN_PORT} \
             is needed, found {other:?}"
        )),
    }
    match find("USER ").last() {
        Some(user) => {
            let name = user.trim_start_matches("USER ").trim();
            // Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
            if !name.parse::<u32>().is_ok_and(|uid| uid != 0) {
                problems.push(format!(
                    "Dockerfile: the runtime user must be a numeric non-root UID, found {name:?}"
                ));
            }
        }
        None => problems.push("Dockerfile: the runtime stage runs as root (no USER)".to_owned()),
    }
    match find("ENTRYPOINT ").last() {
        Some(entrypoint) if entrypoint.contains("jaeger-remote-storage") => {}
        other => problems.push(format!(
            "Dockerfile: ENTRYPOINT must run jaeger-remote-storage, found {other:?}"
        )),
    }

    let build = instructions
        .iter()
        .find(|instruction| instruction.starts_with("RUN ") && instruction.contains("cargo build"));
    match build {
        None => problems.push("Dockerfile: no `cargo build` step".to_owned()),
        Some(build) => {
            for needed in [
                "--no-default-features",
                "--features \"${FEATURES}\"",
                "--locked",
                "--mount=type=cache,target=/usr/local/cargo/registry",
                "--mount=type=cache,target=/src/target",
            ] {
                if !build.contains(needed) {
                    problems.push(format!("Dockerfile: the cargo build step lacks `{needed}`"));
                }
            }
        }
    }
    // The default feature list builds every backend, and names only real features.
    let features_arg = instructions
        .iter()
        .find_map(|instruction| instruction.strip_prefix("ARG FEATURES="))
        .map(|value| value.trim_matches('"').to_owned());
    match features_arg {
        None => problems.push("Dockerfile: no `ARG FEATURES=` with a default".to_owned()),
        Some(value) => {
            let listed: BTreeSet<&str> =
                value.split([' ', ',']).filter(|f| !f.is_empty()).collect();
            let known = server_features();
            for feature in &listed {
                if !known.contains(*feature) {
                    problems.push(format!(
                        "Dockerfile: FEATURES names {feature}, not a feature of the server crate"
                    ));
                }
            }
            let all: BTreeSet<&str> = ALL_BACKEND_FEATURES.into_iter().collect();
            if listed != all {
                problems.push(format!(
                    "Dockerfile: the default FEATURES {listed:?} should be every backend {all:?}"
                ));
            }
        }
    }
    problems
}

#[test]
fn dockerfile_is_consistent() {
    let problems = check_dockerfile(&read("Dockerfile"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every backend feature is a feature of the crate (the list above is not stale).
    let known = server_features();
    for feature in ALL_BACKEND_FEATURES {
        assert!(
            known.contains(feature),
            "{feature} is no longer a server feature"
        );
    }
}

#[test]
fn dockerfile_checks_fail_on_broken_files() {
    let dockerfile = read("Dockerfile");
    let cases = [
        ("EXPOSE 17271 17270", "EXPOSE 17271", "EXPOSE"),
        (
            "/dev/tcp/127.0.0.1/17270",
            "/dev/tcp/127.0.0.1/8080",
            "HEALTHCHECK",
        ),
        ("USER 10001", "USER root", "numeric non-root"),
        ("USER 10001", "USER 0", "numeric non-root"),
        ("--no-default-features ", "", "--no-default-features"),
        (
            "--mount=type=cache,target=/src/target",
            "",
            "target=/src/target",
        ),
        (
            " backend-cassandra\"",
            " backend-cassandr\"",
            "not a feature",
        ),
        (" backend-cassandra\"", "\"", "every backend"),
    ];
    for (from, to, expected) in cases {
        let problems = check_dockerfile(&broken(&dockerfile, from, to));
        assert!(
            problems.iter().any(|problem| problem.contains(expected)),
            "replacing {from:?} with {to:?}: expected a problem mentioning {expected:?}, got \
             {problems:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes.

const KUBERNETES_DIR: &str = "deploy/kubernetes";
/// Files with a stand-alone store behind the `remote-storage` Service.
const SHARED_STORES: [&str; 2] = ["shared-lsm.yaml", "shared-postgres.yaml"];
/// The Jaeger deployment that uses a shared store.
const SHARED_JAEGER: &str = "jaeger-shared.yaml";
const SIDECAR: &str = "sidecar-lsm.yaml";
/// The Service name Jaeger reaches a shared store by.
const STORE_SERVICE: &str = "remote-storage";
/// The image's non-root user (Dockerfile `USER`).
const IMAGE_UID: &str = "10001";

fn kind_and_name(document: &Node) -> (String, String) {
    (
        text_at(document, &["kind"]).unwrap_or_default().to_owned(),
        text_at(document, &["metadata", "name"])
            .unwrap_or_default()
            .to_owned(),
    )
}

fn is_workload(document: &Node) -> bool {
    matches!(
        text_at(document, &["kind"]),
        Some("StatefulSet" | "Deployment")
    )
}

/// A pod's containers, init containers (native sidecars) included.
fn pod_containers(workload: &Node) -> Vec<&Node> {
    let mut containers = items_at(workload, &["spec", "template", "spec", "initContainers"]);
    containers.extend(items_at(
        workload,
        &["spec", "template", "spec", "containers"],
    ));
    containers
}

fn is_server_container(container: &Node) -> bool {
    text_at(container, &["image"]).is_some_and(|image| image.contains("jaeger-remote-storage"))
}

fn is_jaeger_container(container: &Node) -> bool {
    text_at(container, &["image"]).is_some_and(|image| image.starts_with("jaegertracing/jaeger:"))
}

/// Kubernetes labels (or a selector's `matchLabels`).
type Labels = BTreeMap<String, String>;
/// Container port numbers by port name.
type NamedPorts = BTreeMap<String, u16>;

/// Labels of a mapping at `path` as a sorted map.
fn labels_at(node: &Node, path: &[&str]) -> BTreeMap<String, String> {
    at(node, path)
        .and_then(Node::as_mapping)
        .map(|mapping| {
            mapping
                .iter()
                .filter_map(|(key, value)| {
                    Some((
                        key.as_str().to_owned(),
                        value.as_scalar()?.as_str().to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
}

/// A container's ports: number by name, and all numbers.
fn declared_ports(container: &Node) -> (BTreeMap<String, u16>, BTreeSet<u16>) {
    let mut named = BTreeMap::new();
    let mut numbers = BTreeSet::new();
    for port in items_at(container, &["ports"]) {
        let Some(number) = text_at(port, &["containerPort"]).and_then(|n| n.parse().ok()) else {
            continue;
        };
        numbers.insert(number);
        if let Some(name) = text_at(port, &["name"]) {
            named.insert(name.to_owned(), number);
        }
    }
    (named, numbers)
}

/// Placeholder values for server settings that come from a Secret, so the command line can be
/// parsed; the real value is not in the file.
fn secret_placeholder(env_name: &str) -> String {
    if env_name.ends_with("_URL") {
        "postgres://user@secret-host:5432/db".to_owned()
    } else {
        "from-a-secret".to_owned()
    }
}

/// Checks the server container of a workload; returns its parsed command.
fn check_server_container(
    what: &str,
    workload: &Node,
    container: &Node,
    problems: &mut Vec<String>,
) -> Option<ServerCommand> {
    let args = strings_at(container, &["args"]);
    let mut env = Vec::new();
    for variable in items_at(container, &["env"]) {
        let name = text_at(variable, &["name"]).unwrap_or_default().to_owned();
        let value = match text_at(variable, &["value"]) {
            Some(value) => value.to_owned(),
            None if at(variable, &["valueFrom", "secretKeyRef"]).is_some() => {
                secret_placeholder(&name)
            }
            None => {
                problems.push(format!(
                    "{what}: env {name} has neither value nor secretKeyRef"
                ));
                continue;
            }
        };
        env.push((name, value));
    }
    let command = match server_command(&args, &env) {
        Ok(command) => command,
        Err(problem) => {
            problems.push(format!("{what}: {problem}"));
            return None;
        }
    };
    let admin_port = command.admin_addr.port();
    let (named_ports, port_numbers) = declared_ports(container);
    if !port_numbers.contains(&admin_port) {
        problems.push(format!(
            "{what}: the server container does not declare its admin port {admin_port}"
        ));
    }
    // A gRPC listener reachable from outside the pod is declared (Services target it).
    if !command.grpc_addr.ip().is_loopback() && !port_numbers.contains(&command.grpc_addr.port()) {
        problems.push(format!(
            "{what}: the server container does not declare its gRPC port {}",
            command.grpc_addr.port()
        ));
    }
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let Some(spec) = at(container, &[probe]) else {
            if probe != "startupProbe" {
                problems.push(format!("{what}: the server container has no {probe}"));
            }
            continue;
        };
        let port = text_at(spec, &["httpGet", "port"]);
        let port_number = port.and_then(|port| {
            port.parse::<u16>()
                .ok()
                .or_else(|| named_ports.get(port).copied())
        });
        let path = text_at(spec, &["httpGet", "path"]);
        // Readiness and startup ask `/` (200 ready, 503 not); liveness may ask `/metrics`,
        // which answers while the backend is down (a restart would not fix the database).
        let allowed_paths: &[&str] = if probe == "livenessProbe" {
            &["/", "/metrics"]
        } else {
            &["/"]
        };
        if port_number != Some(admin_port)
            || !path.is_some_and(|path| allowed_paths.contains(&path))
        {
            problems.push(format!(
                "{what}: {probe} must be an httpGet of {allowed_paths:?} on the admin port \
                 {admin_port}, found path {path:?} port {port:?}"
            ));
        }
    }
    if command.backend == "lsm" {
        check_lsm_workload(what, workload, container, &command, problems);
    }
    if command.backend == "postgres" && args.iter().any(|arg| arg.starts_with("--postgres.url")) {
        problems.push(format!(
            "{what}: --postgres.url (with its password) belongs in a Secret, not in args"
        ));
    }
    Some(command)
}

/// LSM: one writer, so a single-replica StatefulSet, its data directory on a claim template.
fn check_lsm_workload(
    what: &str,
    workload: &Node,
    container: &Node,
    command: &ServerCommand,
    problems: &mut Vec<String>,
) {
    if text_at(workload, &["kind"]) != Some("StatefulSet") {
        problems.push(format!(
            "{what}: the LSM store has a single writer: it must run in a StatefulSet"
        ));
    }
    if text_at(workload, &["spec", "replicas"]) != Some("1") {
        problems.push(format!(
            "{what}: the LSM store has a single writer: replicas must be 1"
        ));
    }
    let data_dir = command
        .flags
        .get("lsm.data-dir")
        .cloned()
        .unwrap_or_default();
    let mount = items_at(container, &["volumeMounts"])
        .into_iter()
        .find(|mount| text_at(mount, &["mountPath"]) == Some(data_dir.as_str()));
    let claims: Vec<String> = items_at(workload, &["spec", "volumeClaimTemplates"])
        .into_iter()
        .filter_map(|claim| text_at(claim, &["metadata", "name"]).map(str::to_owned))
        .collect();
    match mount.and_then(|mount| text_at(mount, &["name"])) {
        Some(volume) if claims.iter().any(|claim| claim == volume) => {}
        other => problems.push(format!(
            "{what}: --lsm.data-dir {data_dir:?} must be the mountPath of a volumeClaimTemplate \
             (mounted volume: {other:?}, claims: {claims:?})"
        )),
    }
}

/// Checks one Kubernetes file. `store_services` holds, for each shared-store file, its
/// Services (name → Service port → the server's gRPC port it reaches), for Jaeger configs that
/// use a shared store.
fn check_kubernetes_file(
    file: &str,
    text: &str,
    store_services: &[BTreeMap<String, BTreeMap<u16, u16>>],
) -> Vec<String> {
    let what = format!("{KUBERNETES_DIR}/{file}");
    let mut problems = Vec::new();
    let documents = match parse_documents(&what, text) {
        Ok(documents) => documents,
        Err(problem) => return vec![problem],
    };
    // Each server container's pod labels and command.
    let mut servers: Vec<(Labels, ServerCommand)> = Vec::new();
    // Every workload's pod labels with its declared ports (by name, all numbers), for Services.
    let mut pods: Vec<(Labels, NamedPorts, BTreeSet<u16>)> = Vec::new();
    for workload in documents.iter().filter(|document| is_workload(document)) {
        let (kind, name) = kind_and_name(workload);
        let what = format!("{what} {kind}/{name}");
        let pod_labels = labels_at(workload, &["spec", "template", "metadata", "labels"]);
        if !selects(
            &labels_at(workload, &["spec", "selector", "matchLabels"]),
            &pod_labels,
        ) {
            problems.push(format!(
                "{what}: spec.selector does not select its own pods"
            ));
        }
        let pod_security = ["spec", "template", "spec", "securityContext"];
        if text_at(
            workload,
            &[&pod_security[..], &["runAsNonRoot"][..]].concat(),
        ) != Some("true")
        {
            problems.push(format!("{what}: the pod must set runAsNonRoot: true"));
        }
        let mut named = BTreeMap::new();
        let mut numbers = BTreeSet::new();
        for container in pod_containers(workload) {
            let (container_named, container_numbers) = declared_ports(container);
            named.extend(container_named);
            numbers.extend(container_numbers);
            if is_server_container(container) {
                let uid = text_at(workload, &[&pod_security[..], &["runAsUser"][..]].concat());
                if uid != Some(IMAGE_UID) {
                    problems.push(format!(
                        "{what}: runAsUser is {uid:?}, expected the image's user {IMAGE_UID}"
                    ));
                }
                if let Some(command) =
                    check_server_container(&what, workload, container, &mut problems)
                {
                    servers.push((pod_labels.clone(), command));
                }
            }
        }
        pods.push((pod_labels, named, numbers));
    }

    // Services select pods of this file and target ports those pods declare.
    for service in documents
        .iter()
        .filter(|document| text_at(document, &["kind"]) == Some("Service"))
    {
        let (_, name) = kind_and_name(service);
        let selector = labels_at(service, &["spec", "selector"]);
        let Some((_, named, numbers)) = pods
            .iter()
            .find(|(labels, _, _)| selects(&selector, labels))
        else {
            problems.push(format!(
                "{what} Service/{name}: selects no pod of this file"
            ));
            continue;
        };
        for port in items_at(service, &["spec", "ports"]) {
            let target = text_at(port, &["targetPort"]).or_else(|| text_at(port, &["port"]));
            let resolved = target.and_then(|target| {
                target
                    .parse::<u16>()
                    .ok()
                    .or_else(|| named.get(target).copied())
            });
            if !resolved.is_some_and(|number| numbers.contains(&number)) {
                problems.push(format!(
                    "{what} Service/{name}: targetPort {target:?} is no declared container port"
                ));
            }
        }
    }

    // A server that can scale keeps one serving through drains; a single writer cannot.
    for (labels, command) in &servers {
        let budget = documents.iter().find(|document| {
            text_at(document, &["kind"]) == Some("PodDisruptionBudget")
                && selects(
                    &labels_at(document, &["spec", "selector", "matchLabels"]),
                    labels,
                )
        });
        match (command.backend.as_str(), budget) {
            ("postgres", None) => problems.push(format!(
                "{what}: the PostgreSQL-backed servers need a PodDisruptionBudget"
            )),
            ("lsm", Some(_)) => problems.push(format!(
                "{what}: a PodDisruptionBudget over a single LSM writer blocks drains or allows \
                 the eviction anyway; document the single point of failure instead"
            )),
            _ => {}
        }
    }

    // Jaeger's config: the sidecar on localhost, or the shared store's Service.
    for config_map in documents
        .iter()
        .filter(|document| text_at(document, &["kind"]) == Some("ConfigMap"))
    {
        let (_, name) = kind_and_name(config_map);
        let Some(config_text) = text_at(config_map, &["data", "config.yaml"]) else {
            continue;
        };
        let config_what = format!("{what} ConfigMap/{name}");
        let config = match parse_yaml(&config_what, config_text) {
            Ok(config) => config,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let endpoint = text_at(
            &config,
            &[
                "extensions",
                "jaeger_storage",
                "backends",
                "remote-storage",
                "grpc",
                "endpoint",
            ],
        )
        .and_then(host_port);
        match endpoint.as_ref().map(|(host, _)| host.as_str()) {
            Some("localhost" | "127.0.0.1") => {
                // The pod that mounts this ConfigMap must have the server container.
                let pod = documents
                    .iter()
                    .filter(|document| is_workload(document))
                    .find(|w| {
                        items_at(w, &["spec", "template", "spec", "volumes"])
                            .iter()
                            .any(|volume| {
                                text_at(volume, &["configMap", "name"]) == Some(name.as_str())
                            })
                    });
                let server = pod.and_then(|pod| {
                    let labels = labels_at(pod, &["spec", "template", "metadata", "labels"]);
                    servers
                        .iter()
                        .find(|(server_labels, _)| *server_labels == labels)
                });
                match server {
                    Some((_, command)) => problems.extend(check_jaeger_config(
                        &config_what,
                        &config,
                        "localhost",
                        command,
                        None,
                    )),
                    None => problems.push(format!(
                        "{config_what}: Jaeger uses localhost, but the pod mounting it has no \
                         server container"
                    )),
                }
            }
            Some(host) => {
                if store_services.is_empty() {
                    problems.push(format!(
                        "{config_what}: Jaeger uses {host}, but no shared store is known"
                    ));
                }
                // Whichever shared store is applied with it, the Service name and port reach
                // the server's gRPC listener.
                for services in store_services {
                    let Some((_, port)) = endpoint.clone() else {
                        continue;
                    };
                    let forwarded = services
                        .get(host)
                        .is_some_and(|ports| ports.contains_key(&port));
                    if !forwarded {
                        problems.push(format!(
                            "{config_what}: {host}:{port} is not a Service port of a shared \
                             store"
                        ));
                        continue;
                    }
                    // The Service forwards `port` to the server's gRPC listener, so to Jaeger
                    // the server listens on `host:port`.
                    let as_seen = ServerCommand {
                        backend: String::new(),
                        grpc_addr: SocketAddr::from(([0, 0, 0, 0], port)),
                        writer_addr: None,
                        admin_addr: SocketAddr::from(([0, 0, 0, 0], DEFAULT_ADMIN_PORT)),
                        flags: BTreeMap::new(),
                    };
                    problems.extend(check_jaeger_config(
                        &config_what,
                        &config,
                        host,
                        &as_seen,
                        None,
                    ));
                }
            }
            None => problems.push(format!("{config_what}: no jaeger_storage grpc endpoint")),
        }
    }

    // Jaeger containers publish the UI.
    for workload in documents.iter().filter(|document| is_workload(document)) {
        for container in pod_containers(workload) {
            if is_jaeger_container(container) && !declared_ports(container).1.contains(&16686) {
                problems.push(format!(
                    "{what}: the Jaeger container does not declare 16686"
                ));
            }
        }
    }
    problems
}

/// The `remote-storage` Service of a shared-store file: port → the server's container port
/// it reaches (checked to be the gRPC listener).
fn store_service_ports(
    file: &str,
    text: &str,
) -> Result<BTreeMap<String, BTreeMap<u16, u16>>, String> {
    let documents = parse_documents(file, text)?;
    let mut grpc_ports = BTreeMap::new();
    for workload in documents.iter().filter(|document| is_workload(document)) {
        for container in pod_containers(workload) {
            if !is_server_container(container) {
                continue;
            }
            let mut problems = Vec::new();
            if let Some(command) = check_server_container(file, workload, container, &mut problems)
            {
                let (named, _) = declared_ports(container);
                grpc_ports.insert(command.grpc_addr.port(), named);
            }
        }
    }
    let mut services = BTreeMap::new();
    for service in documents
        .iter()
        .filter(|document| text_at(document, &["kind"]) == Some("Service"))
    {
        let (_, name) = kind_and_name(service);
        let mut ports = BTreeMap::new();
        for port in items_at(service, &["spec", "ports"]) {
            let Some(number) = text_at(port, &["port"]).and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let target = text_at(port, &["targetPort"]).unwrap_or_default();
            // Only ports that land on a gRPC listener count as Jaeger's endpoint.
            for (grpc_port, named) in &grpc_ports {
                let resolved = target
                    .parse::<u16>()
                    .ok()
                    .or_else(|| named.get(target).copied());
                if resolved == Some(*grpc_port) {
                    ports.insert(number, *grpc_port);
                }
            }
        }
        services.insert(name, ports);
    }
    Ok(services)
}

fn kubernetes_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join(KUBERNETES_DIR))
        .expect("deploy/kubernetes exists")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".yaml").then_some(name)
        })
        .collect();
    files.sort();
    files
}

fn shared_store_services() -> Vec<BTreeMap<String, BTreeMap<u16, u16>>> {
    SHARED_STORES
        .iter()
        .map(|file| {
            store_service_ports(file, &read(&format!("{KUBERNETES_DIR}/{file}")))
                .unwrap_or_else(|problem| panic!("{problem}"))
        })
        .collect()
}

#[test]
fn kubernetes_manifests_are_consistent() {
    let files = kubernetes_files();
    let mut expected: Vec<String> = SHARED_STORES
        .iter()
        .chain([&SHARED_JAEGER, &SIDECAR])
        .map(|file| (*file).to_owned())
        .collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "deploy/kubernetes files and the files checked differ"
    );
    let store_services = shared_store_services();
    let mut problems = Vec::new();
    for file in &files {
        problems.extend(check_kubernetes_file(
            file,
            &read(&format!("{KUBERNETES_DIR}/{file}")),
            &store_services,
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Each shared store is reached by the name Jaeger's shared config uses.
    for (file, services) in SHARED_STORES.iter().zip(&store_services) {
        assert!(
            services
                .get(STORE_SERVICE)
                .is_some_and(|ports| !ports.is_empty()),
            "{file}: no `{STORE_SERVICE}` Service port reaches the server's gRPC listener"
        );
    }
}

fn assert_kubernetes_problem(file: &str, from: &str, to: &str, expected: &str) {
    let text = broken(&read(&format!("{KUBERNETES_DIR}/{file}")), from, to);
    let problems = check_kubernetes_file(file, &text, &shared_store_services());
    assert!(
        problems.iter().any(|problem| problem.contains(expected)),
        "{file}: replacing {from:?} with {to:?}: expected a problem mentioning {expected:?}, \
         got {problems:#?}"
    );
}

#[test]
fn kubernetes_checks_fail_on_broken_files() {
    // The single LSM writer scaled out, or moved to a Deployment.
    assert_kubernetes_problem(SIDECAR, "replicas: 1", "replicas: 2", "replicas must be 1");
    assert_kubernetes_problem(
        "shared-lsm.yaml",
        "kind: StatefulSet",
        "kind: Deployment",
        "must run in a StatefulSet",
    );
    // The data directory off the persistent volume.
    assert_kubernetes_problem(
        "shared-lsm.yaml",
        "--lsm.data-dir=/var/lib/jaeger-remote-storage",
        "--lsm.data-dir=/tmp/lsm",
        "volumeClaimTemplate",
    );
    // A probe on the gRPC port, or on another path.
    assert_kubernetes_problem(
        "shared-postgres.yaml",
        "readinessProbe:\n            # 503 while PostgreSQL is unreachable: the Service stops sending this pod traffic.\n            httpGet:\n              path: /\n              port: 17270",
        "readinessProbe:\n            httpGet:\n              path: /\n              port: 17271",
        "readinessProbe must be",
    );
    assert_kubernetes_problem(
        SIDECAR,
        "startupProbe:\n            httpGet:\n              path: /",
        "startupProbe:\n            httpGet:\n              path: /healthz",
        "startupProbe must be",
    );
    // A flag --help does not offer.
    assert_kubernetes_problem(
        "shared-postgres.yaml",
        "--postgres.max-connections=10",
        "--postgres.pool-size=10",
        "do not parse",
    );
    // An environment variable that is no flag.
    assert_kubernetes_problem(
        "shared-postgres.yaml",
        "name: JAEGER_REMOTE_STORAGE_POSTGRES_URL",
        "name: JAEGER_REMOTE_STORAGE_POSTGRES_URI",
        "no flag of the server",
    );
    // The scalable store without its disruption budget.
    assert_kubernetes_problem(
        "shared-postgres.yaml",
        "kind: PodDisruptionBudget",
        "kind: ResourceQuota",
        "need a PodDisruptionBudget",
    );
    // The sidecar's Jaeger pointed at a port the server does not listen on.
    assert_kubernetes_problem(
        SIDECAR,
        "endpoint: localhost:17271\n              tls",
        "endpoint: localhost:17270\n              tls",
        "grpc.endpoint",
    );
    // The shared Jaeger pointed at a Service that does not exist.
    assert_kubernetes_problem(
        SHARED_JAEGER,
        "endpoint: remote-storage:17271\n              tls",
        "endpoint: remote-store:17271\n              tls",
        "not a Service port",
    );
    // A Service targeting a port no container declares.
    assert_kubernetes_problem(
        "shared-lsm.yaml",
        "      port: 17270\n      targetPort: admin",
        "      port: 17270\n      targetPort: metrics",
        "no declared container port",
    );
    // Root in the pod.
    assert_kubernetes_problem(
        "shared-postgres.yaml",
        "runAsNonRoot: true",
        "runAsNonRoot: false",
        "runAsNonRoot",
    );
}

// ---------------------------------------------------------------------------------------------
// Grafana dashboard and Prometheus rules against the metrics the server exports.

const DASHBOARD: &str = "deploy/grafana/jaeger-remote-storage.json";
const ALERT_RULES: &str = "deploy/grafana/jaeger-remote-storage-alerts.yaml";
const METRIC_PREFIX: &str = "jaeger_remote_storage_";
/// Labels Prometheus adds at scrape time (and `le`, which histogram buckets carry).
const SCRAPE_LABELS: [&str; 2] = ["job", "instance"];

/// Every exported series name with the label names it carries, from a `/metrics` text.
fn exported_series(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let (name, rest) = line.split_at(name_end);
        let labels = series.entry(name.to_owned()).or_default();
        if let Some(inside) = rest
            .strip_prefix('{')
            .and_then(|rest| rest.split('}').next())
        {
            for pair in inside.split(',') {
                if let Some((label, _)) = pair.split_once('=') {
                    labels.insert(label.trim().to_owned());
                }
            }
        }
    }
    series
}

fn is_identifier_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_'
}

/// Metric names in a PromQL expression, each with the label names its selector matches on.
fn selectors(expression: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find(METRIC_PREFIX) {
        let preceded_by_word = rest
            .get(..start)
            .and_then(|before| before.chars().next_back())
            .is_some_and(is_identifier_char);
        let tail = rest.get(start..).unwrap_or_default();
        let end = tail
            .find(|c: char| !is_identifier_char(c))
            .unwrap_or(tail.len());
        let (name, after) = tail.split_at(end);
        let mut labels = Vec::new();
        if let Some(inside) = after
            .strip_prefix('{')
            .and_then(|after| after.split('}').next())
        {
            for matcher in inside.split(',') {
                let label: String = matcher
                    .trim()
                    .chars()
                    .take_while(|c| is_identifier_char(*c))
                    .collect();
                if !label.is_empty() {
                    labels.push(label);
                }
            }
        }
        if !preceded_by_word {
            found.push((name.to_owned(), labels));
        }
        rest = after;
    }
    found
}

/// Label names in `by (…)` and `without (…)` clauses.
fn grouping_labels(expression: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for keyword in ["by", "without"] {
        let mut rest = expression;
        while let Some(position) = rest.find(keyword) {
            let before = rest
                .get(..position)
                .and_then(|before| before.chars().next_back());
            let after = rest.get(position + keyword.len()..).unwrap_or_default();
            rest = after;
            if before.is_some_and(is_identifier_char) {
                continue;
            }
            let Some(inside) = after.trim_start().strip_prefix('(') else {
                continue;
            };
            let inside = inside.split(')').next().unwrap_or_default();
            labels.extend(
                inside
                    .split(',')
                    .map(|label| label.trim().to_owned())
                    .filter(|label| !label.is_empty()),
            );
        }
    }
    labels
}

/// Checks each expression against the exported series: every metric exists, every selector
/// label is one it carries, every grouping label is carried by a metric of the expression.
fn check_expressions(
    what: &str,
    expressions: &[String],
    exported: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for expression in expressions {
        let found = selectors(expression);
        let mut available: BTreeSet<String> = SCRAPE_LABELS
            .iter()
            .map(|label| (*label).to_owned())
            .collect();
        for (name, labels) in &found {
            let Some(carried) = exported.get(name) else {
                problems.push(format!(
                    "{what}: {name} is not exported (expression: {expression})"
                ));
                continue;
            };
            available.extend(carried.iter().cloned());
            for label in labels {
                if !carried.contains(label) && !SCRAPE_LABELS.contains(&label.as_str()) {
                    problems.push(format!(
                        "{what}: {name} has no label {label} (it has {carried:?})"
                    ));
                }
            }
        }
        for label in grouping_labels(expression) {
            if !available.contains(&label) {
                problems.push(format!(
                    "{what}: grouping by {label}, which no metric of the expression carries: \
                     {expression}"
                ));
            }
        }
    }
    problems
}

/// Every PromQL expression of the dashboard: panel targets and template variable queries.
fn dashboard_expressions(text: &str) -> Result<Vec<String>, String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(text).map_err(|error| format!("{DASHBOARD}: not JSON: {error}"))?;
    let mut expressions = Vec::new();
    let mut stack = vec![&dashboard];
    // Walks the whole document: panels may nest in rows; variables hold queries too.
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(object) => {
                for (key, child) in object {
                    match (key.as_str(), child) {
                        ("expr" | "definition", serde_json::Value::String(expression)) => {
                            expressions.push(expression.clone());
                        }
                        _ => stack.push(child),
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(expressions)
}

/// Every alert's expression; each alert also needs a duration, a severity and a summary.
fn rule_expressions(text: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let rules = parse_yaml(ALERT_RULES, text)?;
    let mut expressions = Vec::new();
    let mut problems = Vec::new();
    for group in items_at(&rules, &["groups"]) {
        for rule in items_at(group, &["rules"]) {
            let name = text_at(rule, &["alert"]).unwrap_or("(unnamed)");
            match text_at(rule, &["expr"]) {
                Some(expression) => expressions.push(expression.to_owned()),
                None => problems.push(format!("{ALERT_RULES}: {name} has no expr")),
            }
            for (path, field) in [
                (&["for"][..], "for"),
                (&["labels", "severity"][..], "labels.severity"),
                (&["annotations", "summary"][..], "annotations.summary"),
            ] {
                if text_at(rule, path).is_none() {
                    problems.push(format!("{ALERT_RULES}: {name} has no {field}"));
                }
            }
        }
    }
    if expressions.is_empty() {
        problems.push(format!("{ALERT_RULES}: no rules"));
    }
    Ok((expressions, problems))
}

/// The dashboard must show these; the rules must alert on these.
const DASHBOARD_NEEDS: [&str; 9] = [
    "spans_received_total",
    "spans_rejected_total",
    "grpc_requests_total",
    "grpc_request_duration_seconds_bucket",
    "stored_spans",
    "stored_traces",
    "backend_ready",
    "grpc_throttled_total",
    "inflight_write_bytes",
];
const RULES_NEED: [&str; 4] = [
    "backend_ready",
    "grpc_requests_total",
    "spans_rejected_total",
    "grpc_throttled_total",
];

fn check_coverage(what: &str, expressions: &[String], needed: &[&str]) -> Vec<String> {
    let used: BTreeSet<String> = expressions
        .iter()
        .flat_map(|expression| selectors(expression))
        .map(|(name, _)| name)
        .collect();
    needed
        .iter()
        .map(|name| format!("{METRIC_PREFIX}{name}"))
        .filter(|name| !used.contains(name))
        .map(|name| format!("{what}: does not use {name}"))
        .collect()
}

fn check_observability(
    dashboard_text: &str,
    rules_text: &str,
    exported: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    match dashboard_expressions(dashboard_text) {
        Ok(expressions) => {
            problems.extend(check_expressions(DASHBOARD, &expressions, exported));
            problems.extend(check_coverage(DASHBOARD, &expressions, &DASHBOARD_NEEDS));
        }
        Err(problem) => problems.push(problem),
    }
    match rule_expressions(rules_text) {
        Ok((expressions, rule_problems)) => {
            problems.extend(rule_problems);
            problems.extend(check_expressions(ALERT_RULES, &expressions, exported));
            problems.extend(check_coverage(ALERT_RULES, &expressions, &RULES_NEED));
        }
        Err(problem) => problems.push(problem),
    }
    problems
}

/// Budget of in-flight write bytes for the scrape server: small, so one large Export is
/// throttled and the throttling series exists.
const SMALL_INFLIGHT_BUDGET: usize = 64 * 1024;

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .expect("connects")
}

/// A server's `/metrics` after traffic that makes every labelled series appear: accepted,
/// invalid and throttled Exports, and a read.
async fn scrape_after_traffic() -> String {
    let backend = open_backend(&BackendConfig::Memory(Default::default()))
        .await
        .expect("memory backend");
    let mut config = ServerConfig::for_tests();
    config.limits.max_inflight_bytes =
        std::num::NonZeroUsize::new(SMALL_INFLIGHT_BUDGET).expect("non-zero");
    let server = RunningServer::start(config, backend)
        .await
        .expect("server starts");
    let mut exporter = TraceServiceClient::new(channel(server.grpc_addr).await)
        .max_encoding_message_size(usize::MAX);

    exporter
        .export(common::batch(1, "dashboard"))
        .await
        .expect("a small Export is stored");
    let mut invalid = common::batch(100, "dashboard");
    if let Some(span) = invalid
        .resource_spans
        .first_mut()
        .and_then(|resource| resource.scope_spans.first_mut())
        .and_then(|scope| scope.spans.first_mut())
    {
        // Three bytes: no valid trace ID, so the span is refused as invalid.
        span.trace_id = vec![1, 2, 3];
    }
    let answer = exporter.export(invalid).await.expect("partial success");
    assert_eq!(
        answer
            .into_inner()
            .partial_success
            .map(|partial| partial.rejected_spans),
        Some(1),
        "the malformed span is rejected"
    );
    let large = large_export(SMALL_INFLIGHT_BUDGET * 2);
    let throttled = exporter
        .export(large)
        .await
        .expect_err("over the byte budget");
    assert_eq!(throttled.code(), tonic::Code::Unavailable, "{throttled:?}");
    TraceReaderClient::new(channel(server.grpc_addr).await)
        .get_services(GetServicesRequest::default())
        .await
        .expect("services");

    let admin = server.admin_addr.expect("admin listener");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    server.stop().await.expect("server stops");
    text
}

/// An Export of more than `bytes` bytes.
fn large_export(bytes: usize) -> ExportTraceServiceRequest {
    let mut request = common::batch(200, "dashboard");
    if let Some(span) = request
        .resource_spans
        .first_mut()
        .and_then(|resource| resource.scope_spans.first_mut())
        .and_then(|scope| scope.spans.first_mut())
    {
        span.attributes.push(KeyValue {
            key: "payload".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(bytes))),
            }),
            ..Default::default()
        });
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alert_rules_use_only_exported_metrics() {
    let text = scrape_after_traffic().await;
    let exported = exported_series(&text);
    // The traffic above made the labelled series exist; without them the check would pass
    // an expression with a misspelt label on an empty family.
    for (name, label) in [
        ("jaeger_remote_storage_spans_rejected_total", "reason"),
        ("jaeger_remote_storage_grpc_requests_total", "code"),
        (
            "jaeger_remote_storage_grpc_request_duration_seconds_bucket",
            "le",
        ),
        ("jaeger_remote_storage_grpc_throttled_total", "bound"),
        ("jaeger_remote_storage_backend_ready", "backend"),
        ("jaeger_remote_storage_stored_spans", "backend"),
    ] {
        assert!(
            exported
                .get(name)
                .is_some_and(|labels| labels.contains(label)),
            "{name}{{{label}}} was not exported after the traffic:\n{text}"
        );
    }
    let problems = check_observability(&read(DASHBOARD), &read(ALERT_RULES), &exported);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Each check fails on a broken file.
    let dashboard = read(DASHBOARD);
    let rules = read(ALERT_RULES);
    let cases = [
        (
            broken(
                &dashboard,
                "jaeger_remote_storage_stored_spans{",
                "jaeger_remote_storage_stored_span{",
            ),
            rules.clone(),
            "stored_span is not exported",
        ),
        (
            broken(&dashboard, "sum by (reason)", "sum by (cause)"),
            rules.clone(),
            "grouping by cause",
        ),
        (
            dashboard.clone(),
            broken(
                &rules,
                "{reason=\"write_failed\"}",
                "{why=\"write_failed\"}",
            ),
            "has no label why",
        ),
        (
            dashboard.clone(),
            broken(
                &rules,
                "jaeger_remote_storage_grpc_throttled_total",
                "jaeger_remote_storage_grpc_throttled",
            ),
            "does not use jaeger_remote_storage_grpc_throttled_total",
        ),
        (
            dashboard.clone(),
            broken(&rules, "severity: critical", "team: storage"),
            "has no labels.severity",
        ),
        (
            broken(
                &dashboard,
                "jaeger_remote_storage_grpc_request_duration_seconds_bucket",
                "jaeger_remote_storage_grpc_request_duration_seconds",
            ),
            rules.clone(),
            "grpc_request_duration_seconds is not exported",
        ),
    ];
    for (dashboard, rules, expected) in cases {
        let problems = check_observability(&dashboard, &rules, &exported);
        assert!(
            problems.iter().any(|problem| problem.contains(expected)),
            "expected a problem mentioning {expected:?}, got {problems:#?}"
        );
    }
}

#[test]
fn expression_parsing_finds_names_and_labels() {
    let expression = "sum by (method, le) (rate(jaeger_remote_storage_grpc_request_duration_seconds_bucket{job=~\"$job\", method=\"x\"}[5m])) / ignored_jaeger_remote_storage_x";
    assert_eq!(
        selectors(expression),
        vec![(
            "jaeger_remote_storage_grpc_request_duration_seconds_bucket".to_owned(),
            vec!["job".to_owned(), "method".to_owned()]
        )]
    );
    assert_eq!(
        grouping_labels(expression),
        vec!["method".to_owned(), "le".to_owned()]
    );
    assert_eq!(
        url_host_port("postgres://jaeger:secret@postgres:5432/jaeger?sslmode=disable"),
        Some(("postgres".to_owned(), 5432))
    );
    assert_eq!(
        url_host_port("cassandra:9042"),
        Some(("cassandra".to_owned(), 9042))
    );
}
