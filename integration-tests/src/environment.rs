//! Where a backend's tests find the running service they need: `CONFORMANCE_<NAME>_URL`, as
//! printed by `scripts/<name>-test-env.sh` (see `backends/README.md`). When it is not set the
//! tests skip, saying in one line exactly what was skipped and how to run it: never a silent
//! pass.

/// The environment variable naming the service of backend `name`: `CONFORMANCE_<NAME>_URL`.
pub fn service_url_variable(name: &str) -> String {
    format!(
        "CONFORMANCE_{}_URL",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The URL in `CONFORMANCE_<NAME>_URL`, or `None` after printing (to stderr) that `skipped`
/// was skipped and how to start the service.
pub fn service_url(name: &str, skipped: &str) -> Option<String> {
    let variable = service_url_variable(name);
    let url = std::env::var(&variable).ok().filter(|url| !url.is_empty());
    if url.is_none() {
        eprintln!("{}", skip_line(name, skipped, &variable));
    }
    url
}

/// The URL in `variable`, for a service no script here can start (a real cluster), or `None`
/// after printing that `skipped` was skipped and `how` to run it.
pub fn external_url(variable: &str, skipped: &str, how: &str) -> Option<String> {
    let url = std::env::var(variable).ok().filter(|url| !url.is_empty());
    if url.is_none() {
        eprintln!("SKIPPED {skipped}: {variable} is not set; to run it: {how}");
    }
    url
}

fn skip_line(name: &str, skipped: &str, variable: &str) -> String {
    format!(
        "SKIPPED {skipped}: {variable} is not set; to run it: eval \"$(scripts/{name}-test-env.sh \
         start)\" (or export {variable} to point at your own {name})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skip_line_names_what_and_how() {
        assert_eq!(service_url_variable("postgres"), "CONFORMANCE_POSTGRES_URL");
        assert_eq!(
            service_url_variable("open-search"),
            "CONFORMANCE_OPEN_SEARCH_URL"
        );
        let line = skip_line(
            "postgres",
            "the postgres conformance suite",
            "CONFORMANCE_POSTGRES_URL",
        );
        assert!(
            line.starts_with("SKIPPED the postgres conformance suite"),
            "{line}"
        );
        assert!(
            line.contains("scripts/postgres-test-env.sh start"),
            "{line}"
        );
    }
}
