//! Builds the `--version` text: the crate version, the git revision it was built from, and
//! the backends compiled in (the cargo features of the backend-seam issue).

use std::path::Path;
use std::process::Command;

fn git(arguments: &[&str]) -> Option<String> {
    let output = Command::new("git").args(arguments).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn main() {
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // Rebuild the text when HEAD moves (a commit, a checkout), not on every build.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        let head = Path::new(&git_dir).join("HEAD");
        println!("cargo:rerun-if-changed={}", head.display());
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(common) = git(&["rev-parse", "--git-common-dir"])
        {
            println!(
                "cargo:rerun-if-changed={}",
                Path::new(&common).join(reference).display()
            );
        }
    }
    println!("cargo:rerun-if-env-changed=JAEGER_REMOTE_STORAGE_GIT_REVISION");
    let revision = std::env::var("JAEGER_REMOTE_STORAGE_GIT_REVISION").unwrap_or(revision);
    let backends: Vec<&str> = [
        ("memory", "CARGO_FEATURE_BACKEND_MEMORY"),
        ("lsm", "CARGO_FEATURE_BACKEND_LSM"),
        ("postgres", "CARGO_FEATURE_BACKEND_POSTGRES"),
        ("elasticsearch", "CARGO_FEATURE_BACKEND_ELASTICSEARCH"),
        ("cassandra", "CARGO_FEATURE_BACKEND_CASSANDRA"),
    ]
    .into_iter()
    .filter(|(_, feature)| std::env::var_os(feature).is_some())
    .map(|(name, _)| name)
    .chain(["discard"])
    .collect();
    println!(
        "cargo:rustc-env=JAEGER_REMOTE_STORAGE_VERSION_TEXT={} (git {}; backends: {})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        revision,
        backends.join(", ")
    );
}
