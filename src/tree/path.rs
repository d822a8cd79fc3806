//! Znode path rules, as ZooKeeper's `PathUtils.validatePath` applies them.

/// Why a path is not a valid znode path.
pub fn validate(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("path must not end with / character".into());
    }
    let mut prev = '/';
    let chars: Vec<char> = path.chars().collect();
    for (i, &c) in chars.iter().enumerate().skip(1) {
        let reason = if c == '\0' {
            Some("null character not allowed")
        } else if c == '/' && prev == '/' {
            Some("empty node name specified")
        } else if c == '.' && prev == '.' {
            let before = if i >= 2 { chars[i - 2] } else { '/' };
            let after = chars.get(i + 1).copied();
            (before == '/' && (after.is_none() || after == Some('/')))
                .then_some("relative paths not allowed")
        } else if c == '.' {
            (prev == '/' && (i + 1 == chars.len() || chars[i + 1] == '/'))
                .then_some("relative paths not allowed")
        } else if ('\u{0000}'..='\u{001f}').contains(&c)
            || ('\u{007f}'..='\u{009f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            Some("invalid character")
        } else {
            None
        };
        if let Some(r) = reason {
            return Err(format!("Invalid path string \"{path}\" caused by {r} @{i}"));
        }
        prev = c;
    }
    Ok(())
}

/// The parent of a valid non-root path ("/a/b" -> "/a", "/a" -> "/").
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a path ("/a/b" -> "b").
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_paths() {
        for p in ["/", "/a", "/a/b", "/a.b", "/..a", "/a/.b", "/é", "/a..b"] {
            assert!(validate(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn rejects_bad_paths() {
        for p in [
            "", "a", "/a/", "//", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/a\0", "/\u{1}",
            "/a/.", "/a/..",
        ] {
            assert!(validate(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
