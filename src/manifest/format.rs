//! Checks of single values: stable names, GUIDs, email addresses, URLs, labels, scopes.
//!
//! Each check returns a reason on failure so the caller can build a diagnostic that says what
//! exactly is wrong with the text.

/// Stable names are DNS labels: they appear in state addresses (`tenant.foggy-it`), file names
/// and URLs, and must never need quoting or case folding.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters long".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may contain only lowercase letters a-z, digits and '-'".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A slug close to what the user wrote, for the help line of an invalid name.
pub fn suggest_name(input: &str) -> String {
    let mut out = String::new();
    for c in input.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    trimmed
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// A GUID in its canonical 8-4-4-4-12 hexadecimal form, as Entra prints tenant and object ids.
pub fn check_guid(text: &str) -> Result<(), String> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    if groups.len() != 5 || groups.iter().zip(lengths).any(|(g, n)| g.len() != n) {
        return Err("expected the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".into());
    }
    if let Some(bad) = text.chars().find(|c| *c != '-' && !c.is_ascii_hexdigit()) {
        return Err(format!("'{bad}' is not a hexadecimal digit"));
    }
    Ok(())
}

/// An email address as Graph invitations accept it: `local@domain.tld`, no spaces or display
/// name. Deliberately simple; Entra does the final check.
pub fn check_email(text: &str) -> Result<(), String> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace".into());
    }
    if text.contains(['<', '>', '"', ',', ';']) {
        return Err("must be a bare address like alice@msp.example, without a display name".into());
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return Err("has no '@'".into());
    };
    if local.is_empty() {
        return Err("has nothing before '@'".into());
    }
    if local.contains('@') {
        return Err("has more than one '@'".into());
    }
    if local.len() > 64 {
        return Err("the part before '@' is longer than 64 characters".into());
    }
    if !domain.contains('.') {
        return Err(format!("domain '{domain}' has no dot"));
    }
    for label in domain.split('.') {
        if label.is_empty()
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return Err(format!("domain '{domain}' is not a valid host name"));
        }
    }
    Ok(())
}

/// An absolute http(s) URL, such as an invitation's redirect.
pub fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("scheme '{}' is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(())
}

/// Label keys follow Kubernetes: an optional DNS prefix and '/', then a name of up to 63
/// characters of letters, digits, '-', '_' and '.', starting and ending alphanumeric.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 {
                return Err("prefix before '/' must be 1 to 253 characters".into());
            }
            if !prefix.split('.').all(|part| check_name(part).is_ok()) {
                return Err(format!("prefix '{prefix}' must be a lowercase DNS name"));
            }
            name
        }
        None => key,
    };
    check_label_part(name, false).map_err(|e| format!("name {e}"))
}

/// Label values: empty, or up to 63 characters of letters, digits, '-', '_' and '.'.
pub fn check_label_value(value: &str) -> Result<(), String> {
    check_label_part(value, true)
}

fn check_label_part(text: &str, may_be_empty: bool) -> Result<(), String> {
    if text.is_empty() {
        return if may_be_empty {
            Ok(())
        } else {
            Err("must not be empty".into())
        };
    }
    if text.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "'{bad}' is not allowed (use letters, digits, '-', '_' or '.')"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(text.chars().next()) || !alnum(text.chars().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A directory role scope: the whole directory (`/`) or one administrative unit.
pub fn check_scope(scope: &str) -> Result<(), String> {
    if scope == "/" {
        return Ok(());
    }
    match scope.strip_prefix("/administrativeUnits/") {
        Some(id) => check_guid(id).map_err(|e| format!("administrative unit id: {e}")),
        None => Err("expected `/` or `/administrativeUnits/<GUID>`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("foggy-it").is_ok());
        assert!(check_name("a").is_ok());
        assert!(check_name("Foggy").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a_b").is_err());
        assert!(check_name(&"a".repeat(64)).is_err());
        assert_eq!(suggest_name("Foggy IT Services"), "foggy-it-services");
    }

    #[test]
    fn guids() {
        assert!(check_guid("6f0d7a2e-1c3b-4d5e-8f90-a1b2c3d4e5f6").is_ok());
        assert!(check_guid("6f0d7a2e-1c3b-4d5e-8f90-a1b2c3d4e5f").is_err());
        assert!(check_guid("6f0d7a2e-1c3b-4d5e-8f90-a1b2c3d4e5fg").is_err());
        assert!(check_guid("{6f0d7a2e-1c3b-4d5e-8f90-a1b2c3d4e5f6}").is_err());
    }

    #[test]
    fn emails() {
        assert!(check_email("alice@msp.example").is_ok());
        assert!(check_email("alice.o'neil+x@sub.msp.example").is_ok());
        assert!(check_email("alice").is_err());
        assert!(check_email("alice@localhost").is_err());
        assert!(check_email("Alice <alice@msp.example>").is_err());
        assert!(check_email("@msp.example").is_err());
        assert!(check_email("a@b@c.example").is_err());
    }

    #[test]
    fn urls_labels_scopes() {
        assert!(check_url("https://myapps.microsoft.com").is_ok());
        assert!(check_url("ftp://x.example").is_err());
        assert!(check_url("myapps.microsoft.com").is_err());
        assert!(check_label_key("tier").is_ok());
        assert!(check_label_key("msp.example/tier").is_ok());
        assert!(check_label_key("ti er").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("gold").is_ok());
        assert!(check_label_value("-gold").is_err());
        assert!(check_scope("/").is_ok());
        assert!(check_scope("/administrativeUnits/6f0d7a2e-1c3b-4d5e-8f90-a1b2c3d4e5f6").is_ok());
        assert!(check_scope("/foo").is_err());
    }
}
