//! Data-driven diagnostics: every directory under tests/cases/validate is a manifest tree with
//! the rendered output of `tenantform validate` next to it (`diagnostics.snap`). Directories
//! named `tfNNN-...` must produce that code.

use crate::support::{repo_root, run_in};

fn cases() -> Vec<String> {
    let dir = repo_root().join("tests/cases/validate");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("cases directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_case_renders_its_diagnostics() {
    let root = repo_root().join("tests/cases/validate");
    let names = cases();
    assert!(
        names.len() >= 25,
        "expected the full set of cases, found {}",
        names.len()
    );
    for name in names {
        let run = run_in(&root, &["--color", "never", "validate", &name], None);
        if let Some(code) = name.strip_prefix("tf").and_then(|rest| rest.get(..3)) {
            let tag = format!("[TF{code}]");
            assert!(
                run.stderr.contains(&tag),
                "{name}: expected {tag} in:\n{}",
                run.stderr
            );
            let warning_only = code.starts_with('5');
            assert_eq!(
                run.code,
                if warning_only { 0 } else { 1 },
                "{name}: exit code"
            );
            if warning_only {
                let strict = run_in(
                    &root,
                    &["--color", "never", "validate", "--strict", &name],
                    None,
                );
                assert_eq!(strict.code, 1, "{name}: --strict makes warnings fail");
            }
        } else {
            assert_eq!(run.code, 1, "{name}: exit code");
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(root.join(&name));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!("diagnostics", run.transcript()));
    }
}
