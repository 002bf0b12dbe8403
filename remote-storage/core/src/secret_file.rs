//! Secrets (passwords, API keys, tokens) read from files named by flags, so they never appear
//! in a command line, an environment listing or a log.

use std::path::Path;

use crate::error::StoreError;

/// The secret in `path` without its trailing line break; an unreadable file is refused naming
/// `flag`.
pub fn read_secret_file(path: &Path, flag: &str) -> Result<String, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        StoreError::invalid_argument(format!("{flag} {}: {error}", path.display()))
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_break_is_dropped_and_a_missing_file_names_the_flag() {
        let path = std::env::temp_dir().join(format!("secret-file-{}", std::process::id()));
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(
            read_secret_file(&path, "--x.password-file").unwrap(),
            "s3cret"
        );
        std::fs::remove_file(&path).unwrap();
        let error = read_secret_file(&path, "--x.password-file").unwrap_err();
        assert!(error.to_string().contains("--x.password-file"), "{error}");
    }
}
