//! `tenantform validate` behaviour beyond single diagnostics: stdin, JSON, limits, ordering,
//! colors and help.

use crate::support::{repo_root, run, run_in};

fn write(dir: &std::path::Path, name: &str, text: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn reads_stdin_with_dash() {
    let manifest = std::fs::read(repo_root().join("examples/foggy-it/tenant.yaml")).unwrap();
    let ok = run_in(&repo_root(), &["validate", "-"], Some(&manifest));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout.contains("1 tenant (0 implicit), 3 organizations"),
        "{}",
        ok.stdout
    );

    let bad = run_in(
        &repo_root(),
        &["--color", "never", "validate", "-"],
        Some(b"kind: Tenant\nname: Bad Name\n"),
    );
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("<stdin>:2:7"), "{}", bad.stderr);
}

#[test]
fn json_output_lists_every_diagnostic_with_positions() {
    let run = run(&[
        "validate",
        "--output",
        "json",
        "tests/cases/validate/many-problems-at-once",
    ]);
    assert_eq!(run.code, 1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(report["formatVersion"], 1);
    assert_eq!(report["valid"], false);
    let diags = report["diagnostics"].as_array().unwrap();
    let codes: Vec<&str> = diags.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "TF203", "TF300", "TF401", "TF301", "TF304", "TF402", "TF303", "TF202"
        ]
    );
    let first = &diags[0];
    assert_eq!(first["line"], 3);
    assert_eq!(first["column"], 1);
    assert_eq!(first["text"], "dispalyName");
    assert_eq!(first["help"], "did you mean `displayName`?");
    assert_eq!(report["summary"]["errors"], 8);
    assert!(
        run.stderr.is_empty(),
        "JSON mode keeps stderr clean: {}",
        run.stderr
    );
}

#[test]
fn oversized_file_is_reported_not_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = b"kind: Tenant\nname: big\nlabels:\n".to_vec();
    while big.len() <= 17 * 1024 * 1024 {
        big.extend_from_slice(
            b"  # padding padding padding padding padding padding padding padding\n",
        );
    }
    write(dir.path(), "big.yaml", &big);
    write(dir.path(), "ok.yaml", b"kind: Tenant\nname: ok\n");
    let run = run_in(dir.path(), &["--color", "never", "validate", "."], None);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("[TF102]"), "{}", run.stderr);
    assert!(run.stderr.contains("larger than 16 MiB"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 tenant"),
        "the other file is still checked: {}",
        run.stderr
    );
}

#[test]
fn deep_nesting_is_a_limit_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!(
        "kind: Tenant\nname: deep\nlabels: {}{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    write(dir.path(), "deep.yaml", deep.as_bytes());
    let run = run_in(
        dir.path(),
        &["--color", "never", "validate", "deep.yaml"],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("[TF104]") || run.stderr.contains("[TF103]"),
        "{}",
        run.stderr
    );
}

#[test]
fn files_are_read_in_sorted_order_and_hidden_entries_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b/z.yaml", b"kind: Tennant\nname: b\n");
    write(dir.path(), "a.yml", b"kind: Tennant\nname: a\n");
    write(dir.path(), "c.yaml", b"kind: Tennant\nname: c\n");
    write(dir.path(), ".git/config.yaml", b"kind: Tennant\n");
    write(dir.path(), ".tenantform/state.yaml", b"kind: Tennant\n");
    write(dir.path(), "notes.txt", b"kind: Tennant\n");
    let run = run_in(dir.path(), &["validate", "--output", "json", "."], None);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let files: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["./a.yml", "./b/z.yaml", "./c.yaml"]);
}

#[test]
fn missing_path_and_empty_directory_are_errors() {
    let missing = run(&["--color", "never", "validate", "no/such/dir"]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "error: no/such/dir: no such file or directory\n"
    );

    let empty = tempfile::tempdir().unwrap();
    let run = run_in(empty.path(), &["--color", "never", "validate"], None);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no manifest files"), "{}", run.stderr);
}

#[test]
fn colors_follow_the_flag_and_no_color() {
    let case = "tests/cases/validate/tf202-unknown-kind";
    let always = run(&["--color", "always", "validate", case]);
    assert!(always.stderr.contains('\x1b'), "--color always colors");
    let never = run(&["--color", "never", "validate", case]);
    assert!(!never.stderr.contains('\x1b'));
    // Not a terminal: auto means no color.
    let auto = run(&["validate", case]);
    assert!(!auto.stderr.contains('\x1b'));
    let mut cmd = crate::support::command();
    let out = cmd
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .args(["validate", case])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
}

#[test]
fn help_teaches_the_commands() {
    let top = run(&["--help"]);
    assert_eq!(top.code, 0);
    for word in ["validate", "schema", "roles", "Exit codes"] {
        assert!(
            top.stdout.contains(word),
            "--help mentions {word}:\n{}",
            top.stdout
        );
    }
    let validate = run(&["validate", "--help"]);
    for word in ["--strict", "--output", "stdin", "Examples:"] {
        assert!(
            validate.stdout.contains(word),
            "validate --help mentions {word}:\n{}",
            validate.stdout
        );
    }
}

#[test]
fn roles_lists_the_builtin_table() {
    let run = run(&["roles", "--search", "helpdesk", "--output", "json"]);
    assert_eq!(run.code, 0);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"name": "Helpdesk Administrator", "templateId": "729827e3-9c14-49f7-bb1b-9608f156bbb8"}])
    );
    let all = crate::support::run(&["roles"]);
    assert_eq!(all.stdout.lines().count(), 123);
}

#[test]
fn untrusted_text_cannot_drive_the_terminal() {
    let manifest = "kind: Tenant\nname: \"evil\\e[2J\\u202e\"\ndisplayName: \"\\e]8;;https://x.example\\e\\\\\"\nbogus: 1\n";
    let run = run_in(
        &repo_root(),
        &["--color", "never", "validate", "-"],
        Some(manifest.as_bytes()),
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("[TF206]"), "{}", run.stderr);
    assert!(
        !run.stderr.contains('\x1b'),
        "raw ESC reached the terminal: {:?}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\u{202e}'),
        "bidi override reached the terminal"
    );
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 means "changes" or "drift" to CI; a typo in a flag must never look like that.
    let run = run(&["validate", "--no-such-flag"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--no-such-flag"));
    assert_eq!(crate::support::run(&["--version"]).code, 0);
}

/// Three files: two declare the same tenant (a cross-document error found after parsing, when
/// the texts have been let go), the third is fine.
fn duplicate_tenant_tree(dir: &std::path::Path) {
    write(
        dir,
        "a.yaml",
        b"kind: Tenant\nname: acme\ndisplayName: Acme\n",
    );
    write(
        dir,
        "b.yaml",
        b"# the same customer, again\nkind: Tenant\nname: acme\ndisplayName: Acme again\n",
    );
    write(
        dir,
        "c.yaml",
        b"kind: Tenant\nname: other\ndisplayName: Other\n",
    );
}

#[test]
fn file_texts_are_let_go_once_parsed_and_read_back_for_their_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    duplicate_tenant_tree(dir.path());
    let (mut sources, diags) = tenantform::load::load_path(dir.path()).unwrap();
    let mut validation = tenantform::validate_sources(&mut sources, diags).unwrap();
    // Every file's text was let go after parsing...
    assert!(
        sources
            .iter()
            .all(|(_, f)| f.is_released() && f.text.is_empty())
    );
    assert_eq!(validation.errors(), 1, "{:?}", validation.diagnostics);
    tenantform::load::restore_texts(&mut sources, &mut validation.diagnostics);
    // ...and the two the duplicate points into are read back; the third is not needed.
    let released: Vec<bool> = sources.iter().map(|(_, f)| f.is_released()).collect();
    assert_eq!(released, [false, false, true]);
    assert_eq!(validation.errors(), 1, "nothing changed, nothing to add");
    let shown = validation.diagnostics[0].resolve(&sources);
    assert_eq!(
        (shown.line, shown.column, shown.text.as_str()),
        (3, 7, "acme")
    );
    assert_eq!(shown.related[0].line, 2, "{shown:?}");

    // The CLI shows both places with their text.
    let run = run_in(dir.path(), &["--color", "never", "validate", "."], None);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("name: acme"), "{}", run.stderr);
    assert!(run.stderr.contains("b.yaml:3:7"), "{}", run.stderr);
}

#[test]
fn a_file_changed_while_it_is_validated_is_an_error_not_a_wrong_snippet() {
    let dir = tempfile::tempdir().unwrap();
    duplicate_tenant_tree(dir.path());
    let (mut sources, diags) = tenantform::load::load_path(dir.path()).unwrap();
    let mut validation = tenantform::validate_sources(&mut sources, diags).unwrap();
    // Someone saves b.yaml between the parse and the report.
    write(dir.path(), "b.yaml", b"kind: Tenant\nname: acme-2\n");
    tenantform::load::restore_texts(&mut sources, &mut validation.diagnostics);
    assert_eq!(validation.errors(), 2, "{:?}", validation.diagnostics);
    let changed = validation
        .diagnostics
        .iter()
        .find(|d| d.message.contains("changed while it was being validated"))
        .expect("the change is reported");
    assert_eq!(changed.code, tenantform::diagnostic::Code::ReadFailed);
    assert!(changed.message.contains("b.yaml"), "{}", changed.message);
    // The stale locations point at no text rather than at someone else's.
    let shown: Vec<_> = validation
        .diagnostics
        .iter()
        .map(|d| d.resolve(&sources))
        .collect();
    assert!(
        shown.iter().all(|d| !d.text.contains("acme-2")),
        "{shown:?}"
    );
}

#[test]
fn diagnostics_at_a_git_ref_are_shown_from_the_commit_not_the_work_tree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    duplicate_tenant_tree(&dir.path().join("manifests"));
    crate::support::git_commit(&repo, "a duplicate tenant");
    // Fixed in the work tree since: only the commit has the problem.
    write(
        &dir.path().join("manifests"),
        "b.yaml",
        b"kind: Tenant\nname: beta\n",
    );
    let run = crate::support::tf(
        dir.path(),
        &[
            "--color",
            "never",
            "plan",
            "manifests",
            "--ref",
            "HEAD",
            "--offline",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(":manifests/b.yaml:3:7"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("displayName: Acme again"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("changed while"), "{}", run.stderr);
}

/// Guests and role assignments are kept in unlinked files in `$TMPDIR` while a command runs:
/// nothing is left there, and where no file can be made the run is the same, in memory.
#[test]
fn the_object_store_leaves_nothing_in_tmpdir_and_works_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!(
            "kind: Tenant\nname: t{i:02}\nmicrosoftTenantId: 00000000-0000-4000-8000-{i:012}\n---\n\
             kind: GuestUser\nname: g{i:02}\nemail: g{i:02}@msp.example\ntenants: [t{i:02}]\n---\n\
             kind: RoleAssignment\nname: r{i:02}\nprincipal: {{guest: g{i:02}}}\ndirectoryRoles: [Global Reader]\n---\n"
        ));
    }
    write(&tree, "fleet.yaml", text.as_bytes());
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let validate = |tmpdir: &std::path::Path| {
        crate::support::run_with_env(
            dir.path(),
            &["validate", "--output", "json", "tree"],
            None,
            &[("TMPDIR", tmpdir.to_str().unwrap())],
        )
    };
    let with_files = validate(&scratch);
    assert_eq!(with_files.code, 0, "{}", with_files.stderr);
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "nothing is left behind"
    );
    let summary = |stdout: &str| {
        let json: serde_json::Value = serde_json::from_str(stdout).unwrap();
        json["summary"].clone()
    };
    assert_eq!(summary(&with_files.stdout)["guests"], 30);
    assert_eq!(summary(&with_files.stdout)["roleAssignments"], 30);
    let nowhere = validate(&dir.path().join("no-such-directory"));
    assert_eq!(nowhere.code, 0, "{}", nowhere.stderr);
    assert_eq!(summary(&nowhere.stdout), summary(&with_files.stdout));
}
