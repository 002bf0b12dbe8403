//! `--config FILE`: every setting a flag holds, in YAML, nested by the flag's dotted name
//! (`memory: {max-traces: 1000}` is `--memory.max-traces=1000`; dotted keys work too).
//!
//! Precedence is flags > environment > file > defaults. The file is applied by turning each of
//! its settings into the flag it names, for the settings neither the command line nor the
//! environment gave, then parsing once more: so a file setting is validated, typed and
//! documented exactly as its flag, and a flag added later is a file setting at once. A key
//! that names no flag is an error naming the key, the file and the line.
//!
//! `--print-config` prints the effective configuration in the same format, each value with
//! where it came from, secrets redacted.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory as _, FromArgMatches as _};
use marked_yaml::{LoaderOptions, Node};

use crate::cli::Cli;

/// Flags (long names) that are not settings: they never come from a file.
const NOT_SETTINGS: &[&str] = &["help", "version", "config", "print-config", "print-schema"];

/// What the command line asks for.
#[derive(Debug)]
pub enum Loaded {
    /// Run the server with these settings.
    Run(Box<Cli>),
    /// The effective configuration, to print (`--print-config`); nothing else to do.
    Print(String),
}

/// Parses the command line with its `--config` file applied. Clap's own errors (unknown flags,
/// `--help`, `--version`) exit the process as `Cli::parse` does.
pub fn load(arguments: impl IntoIterator<Item = OsString>) -> anyhow::Result<Loaded> {
    let arguments: Vec<OsString> = arguments.into_iter().collect();
    let command = Cli::command();
    let first = command
        .clone()
        .try_get_matches_from(&arguments)
        .unwrap_or_else(|error| error.exit());
    let mut all = arguments;
    let mut from_file = HashSet::new();
    if let Some(path) = first.get_one::<PathBuf>("config") {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        for setting in settings(&text, path)? {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(setting.key.as_str()))
                .filter(|_| !NOT_SETTINGS.contains(&setting.key.as_str()))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}:{}: unknown setting `{}` (there is no --{} flag; \
                         `jaeger-remote-storage --help` lists them)",
                        path.display(),
                        setting.line,
                        setting.key,
                        setting.key
                    )
                })?;
            let id = arg.get_id().as_str().to_owned();
            // Flags and the environment win over the file.
            if matches!(
                first.value_source(&id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            all.extend(flag_arguments(arg.get_action(), &setting, path)?);
            from_file.insert(id);
        }
    }
    let matches = command
        .try_get_matches_from(&all)
        .unwrap_or_else(|error| error.exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if cli.print_config {
        return Ok(Loaded::Print(effective(&matches, &from_file)));
    }
    Ok(Loaded::Run(Box::new(cli)))
}

/// One setting of the file: its dotted key, its values (several for a list) and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    key: String,
    values: Vec<String>,
    line: usize,
}

/// Every setting of a config file, flattened to dotted keys, in file order.
fn settings(text: &str, path: &Path) -> anyhow::Result<Vec<Setting>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let root = marked_yaml::parse_yaml_with_options(
        0,
        text,
        LoaderOptions::default().error_on_duplicate_keys(true),
    )
    .map_err(|error| anyhow::anyhow!("{}: not a YAML mapping: {error}", path.display()))?;
    let mut settings = Vec::new();
    flatten("", &root, path, &mut settings)?;
    Ok(settings)
}

fn line_of(node: &Node) -> usize {
    node.span().start().map_or(0, marked_yaml::Marker::line)
}

fn flatten(prefix: &str, node: &Node, path: &Path, out: &mut Vec<Setting>) -> anyhow::Result<()> {
    let Some(mapping) = node.as_mapping() else {
        bail!("{}:{}: expected a mapping", path.display(), line_of(node));
    };
    for (key, value) in mapping.iter() {
        let key_text = key.as_str();
        let dotted = if prefix.is_empty() {
            key_text.to_owned()
        } else {
            format!("{prefix}.{key_text}")
        };
        let line = key.span().start().map_or(0, marked_yaml::Marker::line);
        match value {
            Node::Mapping(_) => flatten(&dotted, value, path, out)?,
            Node::Scalar(scalar) => out.push(Setting {
                key: dotted,
                values: vec![scalar.as_str().to_owned()],
                line,
            }),
            Node::Sequence(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items.iter() {
                    let Some(scalar) = item.as_scalar() else {
                        bail!(
                            "{}:{}: `{dotted}` holds a list of values, not of mappings or lists",
                            path.display(),
                            line_of(item)
                        );
                    };
                    values.push(scalar.as_str().to_owned());
                }
                out.push(Setting {
                    key: dotted,
                    values,
                    line,
                });
            }
        }
    }
    Ok(())
}

/// The command-line arguments a file setting stands for.
fn flag_arguments(
    action: &ArgAction,
    setting: &Setting,
    path: &Path,
) -> anyhow::Result<Vec<OsString>> {
    let key = &setting.key;
    let at = || format!("{}:{}", path.display(), setting.line);
    match action {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let [value] = setting.values.as_slice() else {
                bail!("{}: `{key}` takes true or false", at());
            };
            let on = match value.as_str() {
                "true" => true,
                "false" => false,
                other => bail!("{}: `{key}` takes true or false, not {other:?}", at()),
            };
            let set = matches!(action, ArgAction::SetTrue) == on;
            Ok(if set {
                vec![OsString::from(format!("--{key}"))]
            } else {
                Vec::new()
            })
        }
        ArgAction::Append => Ok(setting
            .values
            .iter()
            .map(|value| OsString::from(format!("--{key}={value}")))
            .collect()),
        _ => {
            let [value] = setting.values.as_slice() else {
                bail!("{}: `{key}` takes one value, not a list", at());
            };
            Ok(vec![OsString::from(format!("--{key}={value}"))])
        }
    }
}

/// The effective configuration as YAML, nested by dotted names, with each value's source.
fn effective(matches: &ArgMatches, from_file: &HashSet<String>) -> String {
    let command = Cli::command();
    let mut lines: Vec<(Vec<String>, String)> = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let (Some(long), Some(raw)) = (arg.get_long(), matches.get_raw(id)) else {
            continue;
        };
        if NOT_SETTINGS.contains(&long) {
            continue;
        }
        let values: Vec<String> = raw
            .map(|value| redacted(long, &value.to_string_lossy()))
            .collect();
        let source = if from_file.contains(id) {
            "file"
        } else {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ => "default",
            }
        };
        let value = match values.as_slice() {
            [one] if !matches!(arg.get_action(), ArgAction::Append) => yaml_string(one),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|value| yaml_string(value))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        lines.push((
            long.split('.').map(str::to_owned).collect(),
            format!("{value}  # {source}"),
        ));
    }
    let mut out =
        String::from("# jaeger-remote-storage effective configuration (--config format)\n");
    let mut open: Vec<String> = Vec::new();
    for (path, value) in lines {
        let (leaf, parents) = path.split_last().expect("a flag has a name");
        let shared = open
            .iter()
            .zip(parents)
            .take_while(|(open, parent)| open == parent)
            .count();
        open.truncate(shared);
        for parent in &parents[shared..] {
            let _ = writeln!(out, "{}{parent}:", "  ".repeat(open.len()));
            open.push(parent.clone());
        }
        let _ = writeln!(out, "{}{leaf}: {value}", "  ".repeat(open.len()));
    }
    out
}

/// A value as a YAML double-quoted string (JSON's escaping, which is valid YAML).
fn yaml_string(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            control if control.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(control));
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// `value` with secrets hidden: settings named like a secret (other than a file holding
/// one), and the password of any URL.
fn redacted(flag: &str, value: &str) -> String {
    let secret_name = ["password", "token", "secret", "api-key"]
        .iter()
        .any(|word| flag.contains(word))
        && !flag.ends_with("-file");
    if secret_name && !value.is_empty() {
        return "<redacted>".to_owned();
    }
    value
        .split(',')
        .map(redact_url_password)
        .collect::<Vec<_>>()
        .join(",")
}

/// `scheme://user:password@host…` → `scheme://user:<redacted>@host…`.
fn redact_url_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return value.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:<redacted>@{host}{tail}"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile_path::TempConfig {
        tempfile_path::TempConfig::new(text)
    }

    /// A config file that removes itself.
    mod tempfile_path {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicU32, Ordering};

        static NEXT: AtomicU32 = AtomicU32::new(0);

        pub(super) struct TempConfig(pub(super) PathBuf);

        impl TempConfig {
            pub(super) fn new(text: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "jrs-config-{}-{}.yaml",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&path, text).expect("writes");
                Self(path)
            }
        }

        impl Drop for TempConfig {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn run(arguments: &[&str]) -> anyhow::Result<Loaded> {
        let mut all = vec![OsString::from("jaeger-remote-storage")];
        all.extend(arguments.iter().map(OsString::from));
        load(all)
    }

    fn cli(arguments: &[&str]) -> Cli {
        match run(arguments).expect("loads") {
            Loaded::Run(cli) => *cli,
            Loaded::Print(_) => panic!("printed"),
        }
    }

    const FILE: &str = "\
grpc-addr: 127.0.0.1:5000
max-chunk-spans: 77
multi-tenancy:
  enabled: true
  tenants: [acme, globex]
memory:
  max-traces: 1234
";

    #[test]
    fn file_settings_apply_nested_by_flag_name() {
        let file = write(FILE);
        let cli = cli(&["--config", file.0.to_str().expect("utf-8")]);
        assert_eq!(cli.grpc_addr, "127.0.0.1:5000".parse().expect("an address"));
        assert_eq!(cli.max_chunk_spans.get(), 77);
        assert!(cli.multi_tenancy_enabled);
        assert_eq!(cli.multi_tenancy_tenants, ["acme", "globex"]);
        #[cfg(feature = "backend-memory")]
        assert!(format!("{:?}", cli.backend_config().expect("memory")).contains("1234"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = write(FILE);
        let cli = cli(&[
            "--config",
            file.0.to_str().expect("utf-8"),
            "--max-chunk-spans=5",
        ]);
        assert_eq!(cli.max_chunk_spans.get(), 5);
        assert_eq!(cli.grpc_addr, "127.0.0.1:5000".parse().expect("an address"));
    }

    #[test]
    fn an_unknown_key_names_itself_the_file_and_the_line() {
        let file = write("grpc-addr: 127.0.0.1:1\nmemory:\n  max-trace: 5\n");
        let error = run(&["--config", file.0.to_str().expect("utf-8")])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("memory.max-trace"), "{error}");
        assert!(error.contains(":3:"), "{error}");
        assert!(error.contains(&file.0.display().to_string()), "{error}");
    }

    #[test]
    fn a_bad_value_and_a_duplicate_key_are_refused() {
        let file = write("multi-tenancy:\n  enabled: maybe\n");
        let error = run(&["--config", file.0.to_str().expect("utf-8")])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("true or false"), "{error}");
        let file = write("grpc-addr: a\ngrpc-addr: b\n");
        assert!(run(&["--config", file.0.to_str().expect("utf-8")]).is_err());
        let file = write("config: other.yaml\n");
        assert!(run(&["--config", file.0.to_str().expect("utf-8")]).is_err());
    }

    #[test]
    fn the_effective_configuration_prints_with_sources_and_loads_back() {
        let file = write(FILE);
        let Loaded::Print(printed) = run(&[
            "--config",
            file.0.to_str().expect("utf-8"),
            "--max-chunk-spans=9",
            "--print-config",
        ])
        .expect("loads") else {
            panic!("not printed")
        };
        assert!(
            printed.contains("grpc-addr: \"127.0.0.1:5000\"  # file"),
            "{printed}"
        );
        assert!(
            printed.contains("max-chunk-spans: \"9\"  # flag"),
            "{printed}"
        );
        assert!(
            printed.contains("admin-addr: \"0.0.0.0:17270\"  # default"),
            "{printed}"
        );
        assert!(
            printed.contains("multi-tenancy:\n  enabled: \"true\"  # file"),
            "{printed}"
        );
        // What it prints is itself a config file giving the same settings.
        let again = write(&printed);
        let cli = cli(&["--config", again.0.to_str().expect("utf-8")]);
        assert_eq!(cli.max_chunk_spans.get(), 9);
        assert_eq!(cli.multi_tenancy_tenants, ["acme", "globex"]);
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redacted("postgres.url", "postgres://jaeger:hunter2@db:5432/traces"),
            "postgres://jaeger:<redacted>@db:5432/traces"
        );
        assert_eq!(
            redacted("es.server-urls", "https://u:p@a:9200,https://b:9200"),
            "https://u:<redacted>@a:9200,https://b:9200"
        );
        assert_eq!(redacted("es.password", "hunter2"), "<redacted>");
        assert_eq!(
            redacted("cassandra.password-file", "/run/secrets/pw"),
            "/run/secrets/pw"
        );
        assert_eq!(redacted("grpc-addr", "0.0.0.0:1"), "0.0.0.0:1");
    }
}
