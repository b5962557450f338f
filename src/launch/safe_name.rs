//! Checking file names that come from users (uploads, model names) so that nothing they name
//! can land outside the folder it is meant for.

use std::path::PathBuf;

/// A name refused by [`checked_relative_path`], with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the file name {name:?} is not allowed: {reason}")]
pub struct UnsafeName {
    pub name: String,
    pub reason: &'static str,
}

/// The longest name one path component may have on Linux file systems.
const MAX_COMPONENT_BYTES: usize = 255;

/// Turns `name` into a relative path that stays inside whatever folder it is joined to.
///
/// Refused: empty names, absolute paths, `.` and `..` components, empty components (`a//b`),
/// backslashes, NUL and other control characters, components longer than 255 bytes, and any
/// `/` when `allow_subfolders` is false.
pub fn checked_relative_path(name: &str, allow_subfolders: bool) -> Result<PathBuf, UnsafeName> {
    let refuse = |reason| {
        Err(UnsafeName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.contains('\0') {
        return refuse("it contains a NUL byte");
    }
    if name.chars().any(char::is_control) {
        return refuse("it contains a control character");
    }
    if name.contains('\\') {
        return refuse("it contains a backslash; use `/` between folders");
    }
    if name.starts_with('/') {
        return refuse("it is an absolute path; give a name relative to the folder");
    }
    if !allow_subfolders && name.contains('/') {
        return refuse("it contains `/`; give a plain file name without folders");
    }
    let mut path = PathBuf::new();
    for component in name.split('/') {
        match component {
            "" => return refuse("it has an empty folder name (`//` or a trailing `/`)"),
            "." | ".." => return refuse("it contains `.` or `..` as a folder name"),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return refuse("a part of it is longer than 255 bytes");
            }
            c => path.push(c),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_and_subfolders_pass() {
        assert_eq!(
            checked_relative_path("cat.png", false).unwrap(),
            PathBuf::from("cat.png")
        );
        assert_eq!(
            checked_relative_path("styles/ink v2.safetensors", true).unwrap(),
            PathBuf::from("styles/ink v2.safetensors")
        );
        assert_eq!(
            checked_relative_path("..hidden..png", false).unwrap(),
            PathBuf::from("..hidden..png")
        );
    }

    #[test]
    fn escapes_are_refused_with_the_name_in_the_message() {
        for (name, subfolders) in [
            ("", true),
            ("../etc/passwd", true),
            ("a/../../b", true),
            ("/etc/passwd", true),
            ("a//b", true),
            ("a/", true),
            ("./a", true),
            ("a\\..\\b", true),
            ("nul\0byte", true),
            ("line\nbreak", true),
            ("sub/cat.png", false),
        ] {
            let err = checked_relative_path(name, subfolders).unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        }
        let long = "x".repeat(256);
        assert!(checked_relative_path(&long, false).is_err());
    }
}
