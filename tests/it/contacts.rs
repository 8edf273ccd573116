//! `tenantform contacts` on real state: two tenants' contacts written through the state
//! stores (partitioned files, a single-file v1 state, PostgreSQL), one of them named by a
//! hostile directory, listed as a table, CSV and JSON.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tenantform::state::file::FileStateStore;
use tenantform::state::{LockInfo, STATE_FORMAT_VERSION, State, StateStore};

use crate::support::{Run, run, run_in};

/// A name from a hostile customer directory: a spreadsheet formula first, then HTML, a comma,
/// double quotes, a line break and an ANSI escape.
const EVIL: &str = "=cmd|' /C calc'!A0 Eve <script>alert(1)</script>, \"the\" boss\n\u{1b}[31mred";

/// The contacts plan case's state (one tenant, `foggy-it`: six active contacts and Iris,
/// archived), as the single-file (v1) state it is.
const CASE_STATE: &str = "tests/cases/plan/contacts-delta-moves-disables-deletes/state.json";

const EVE: &str = "contact.foggy-it.00000000-0000-4000-8000-000000000007";

fn case_state() -> Value {
    let text = std::fs::read_to_string(crate::support::repo_root().join(CASE_STATE)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn object(kind: &str, ids: Value, attributes: Value) -> Value {
    json!({
        "kind": kind,
        "ids": ids,
        "attributes": attributes,
        "source": {"digest": "sha256:00"},
        "appliedAt": "2026-11-20T09:00:00Z"
    })
}

/// The case's state with Eve renamed to [`EVIL`] and a second tenant, `contoso`, with one
/// active contact (Carol) and one archived (Dave).
fn fleet() -> State {
    let mut state = case_state();
    let objects = state["objects"].as_object_mut().unwrap();
    objects[EVE]["attributes"]["name"] = json!(EVIL);
    objects[EVE]["attributes"]["entra"]["displayName"] = json!(EVIL);
    objects.insert(
        "tenant.contoso".into(),
        object(
            "tenant",
            json!({"record": "t-contoso"}),
            json!({"displayName": "Contoso", "implicit": false,
                   "microsoftTenantId": "7d1e2f30-0000-4000-8000-00000000c0c0"}),
        ),
    );
    objects.insert(
        "organization.contoso-main".into(),
        object(
            "organization",
            json!({"record": "o-contoso"}),
            json!({"displayName": "Contoso Main", "tenant": "contoso"}),
        ),
    );
    let contact = |id: &str, name: &str, archived: Option<Value>| {
        let mut attributes = json!({
            "tenant": "contoso",
            "organization": "contoso-main",
            "name": name,
            "email": format!("{}@contoso.example", name.to_lowercase().replace(' ', ".")),
            "jobTitle": "Buyer",
            "entra": {"id": id, "userPrincipalName": format!("{id}@contoso.example"),
                      "userType": "Member", "accountEnabled": true}
        });
        if let Some(archived) = archived {
            attributes["archived"] = archived;
        }
        object(
            "contact",
            json!({"record": format!("rec-{id}")}),
            attributes,
        )
    };
    objects.insert(
        "contact.contoso.c1".into(),
        contact("c1", "Carol Contoso", None),
    );
    objects.insert(
        "contact.contoso.c2".into(),
        contact(
            "c2",
            "Dave Left",
            Some(json!({"at": "2026-11-28T08:30:00Z", "reason": "left the sync rules"})),
        ),
    );
    let mut state: State = serde_json::from_value(state).unwrap();
    state.format_version = STATE_FORMAT_VERSION;
    state
}

/// Writes `state` whole through `store` (partitioned: a catalog and a file per tenant).
fn write(store: &dyn StateStore, state: &State) {
    let lock = store
        .lock(LockInfo::for_command("test setup"), Duration::ZERO)
        .unwrap();
    store.write(state, &lock).unwrap();
}

/// A directory whose `.tenantform/state.json` holds [`fleet`], partitioned.
fn stored_fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        &FileStateStore::new(dir.path().join(".tenantform/state.json")),
        &fleet(),
    );
    assert!(
        dir.path()
            .join(".tenantform/state.d/tenants/contoso.json")
            .exists(),
        "the state is partitioned"
    );
    dir
}

/// `tenantform contacts ARGS` on the state of manifest directory `dir`.
fn contacts(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["contacts", "."];
    all.extend(args);
    run_in(dir, &all, None)
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{}", run.transcript());
    run
}

/// Records of an RFC 4180 text: quoted fields may hold commas, doubled quotes and line
/// breaks; records end with CRLF (or LF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, '"') => panic!("a bare quote inside an unquoted field: {text:?}"),
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\r') => panic!("a bare CR outside quotes: {text:?}"),
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote");
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record ends with a line break"
    );
    records
}

/// CSV records as maps from the header's names.
fn csv_maps(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let records = parse_csv(text);
    let header = &records[0];
    records[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "every record has every column");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

fn json_rows(run: &Run) -> Vec<Value> {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("JSON output parses ({e}): {}", run.stdout))
}

fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["name"].as_str().unwrap()).collect()
}

#[test]
fn contacts_table_escapes_hostile_names_and_counts() {
    let dir = stored_fleet();
    let run = ok(contacts(dir.path(), &[]));
    assert!(
        !run.stdout.contains('\u{1b}'),
        "no raw ESC reaches the terminal"
    );
    assert!(
        run.stdout
            .contains("=cmd|' /C calc'!A0 Eve <script>alert(1)</script>, \"the\" boss??[31mred"),
        "the name shown escaped, on one line:\n{}",
        run.stdout
    );
    // A block per tenant, each with its header, in tenant order, then the count.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "TENANT",
            "ORGANIZATION",
            "NAME",
            "EMAIL",
            "PHONE",
            "JOB",
            "TITLE",
            "DEPARTMENT",
            "OFFICE",
            "STATUS"
        ]
    );
    assert!(lines[1].starts_with("contoso  "), "{}", run.stdout);
    assert!(lines[1].contains("Carol Contoso"));
    assert!(lines[1].ends_with("active"));
    assert_eq!(lines[2], "");
    assert!(lines[3].starts_with("TENANT"));
    let foggy: Vec<&str> = lines[4..10].to_vec();
    assert!(foggy.iter().all(|l| l.starts_with("foggy-it ")));
    for (line, name) in foggy.iter().zip([
        "=cmd",
        "Ada Lovelace",
        "Frank Gone",
        "Burl Ington",
        "Gina Same",
        "Walt Ham",
    ]) {
        assert!(line.contains(name), "{name} in order:\n{}", run.stdout);
    }
    assert_eq!(&lines[10..], ["", "7 contacts in 2 tenants."]);
    assert_eq!(run.stderr, "");
}

#[test]
fn contacts_csv_parses_back_with_formulas_defused() {
    let dir = stored_fleet();
    let run = ok(contacts(dir.path(), &["--all", "--output", "csv"]));
    assert_eq!(
        parse_csv(&run.stdout)[0],
        [
            "tenant",
            "organization",
            "userId",
            "name",
            "firstName",
            "lastName",
            "email",
            "phone",
            "mobile",
            "jobTitle",
            "department",
            "office",
            "company",
            "userPrincipalName",
            "status",
            "archivedAt",
            "archivedReason",
            "recordId",
            "licences"
        ]
    );
    let rows = csv_maps(&run.stdout);
    assert_eq!(rows.len(), 9, "{}", run.stdout);
    let eve = rows
        .iter()
        .find(|r| r["userId"] == "00000000-0000-4000-8000-000000000007")
        .unwrap();
    assert_eq!(
        eve["name"],
        format!("'{}", EVIL.replace('\u{1b}', "\u{fffd}")),
        "the same text, defused, with no terminal escape left"
    );
    assert_eq!(eve["tenant"], "foggy-it");
    assert_eq!(eve["organization"], "foggy-boston");
    assert_eq!(eve["email"], "eve@foggyit.example");
    assert_eq!(eve["userPrincipalName"], "eve@foggyit.example");
    assert_eq!(eve["status"], "active");
    assert_eq!(eve["archivedAt"], "");
    assert_eq!(eve["recordId"], "c0000000-0000-4000-8000-000000000007");
    let ada = rows.iter().find(|r| r["name"] == "Ada Lovelace").unwrap();
    assert_eq!(
        ada["phone"], "+1 617 555 0101",
        "a phone number is kept as it is: it calls nothing"
    );
    assert_eq!(ada["jobTitle"], "Engineer");
    let iris = rows.iter().find(|r| r["name"] == "Iris Back").unwrap();
    assert_eq!(iris["status"], "archived");
    assert_eq!(iris["archivedAt"], "2026-11-25T12:00:00Z");
    assert_eq!(
        iris["archivedReason"],
        "deleted in Entra (restorable for 30 days)"
    );
    // No cell a spreadsheet would evaluate as more than a number.
    for row in &rows {
        for (column, value) in row {
            let number = value.starts_with(['+', '-'])
                && value[1..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || " ()-./".contains(c));
            assert!(
                number || !value.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{column} = {value:?}"
            );
        }
    }
}

#[test]
fn contacts_json_round_trips_names_exactly() {
    let dir = stored_fleet();
    let run = ok(contacts(dir.path(), &["--output", "json"]));
    let rows = json_rows(&run);
    assert_eq!(
        names(&rows),
        [
            "Carol Contoso",
            EVIL,
            "Ada Lovelace",
            "Frank Gone",
            "Burl Ington",
            "Gina Same",
            "Walt Ham"
        ]
    );
    assert!(
        !run.stdout.contains('\u{1b}'),
        "JSON escapes control characters"
    );
    let carol = &rows[0];
    assert_eq!(carol["tenant"], "contoso");
    assert_eq!(carol["organization"], "contoso-main");
    assert_eq!(carol["userId"], "c1");
    assert_eq!(carol["email"], "carol.contoso@contoso.example");
    assert_eq!(carol["jobTitle"], "Buyer");
    assert_eq!(carol["userPrincipalName"], "c1@contoso.example");
    assert_eq!(carol["status"], "active");
    assert_eq!(carol["archivedAt"], Value::Null);
    assert_eq!(carol["recordId"], "rec-c1");
    assert_eq!(carol["licences"], Value::Null, "never read for the tenant");
    assert_eq!(
        carol.as_object().unwrap().len(),
        19,
        "the same fields as the CSV columns"
    );
}

#[test]
fn contacts_narrow_by_tenant_and_organization() {
    let dir = stored_fleet();
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--output", "json"];
        all.extend(args);
        json_rows(&ok(contacts(dir.path(), &all)))
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(listed(&["--tenant", "contoso"]), ["Carol Contoso"]);
    assert_eq!(
        listed(&["--tenant", "foggy-it", "--organization", "foggy-waltham"]),
        ["Gina Same", "Walt Ham"]
    );
    assert_eq!(
        listed(&[
            "--organization",
            "contoso-main",
            "--organization",
            "foggy-burlington"
        ]),
        ["Carol Contoso", "Burl Ington"]
    );
    // Both filters at once: an organization of another tenant leaves nothing.
    let run = ok(contacts(
        dir.path(),
        &["--tenant", "contoso", "--organization", "foggy-boston"],
    ));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("No active contacts of tenant contoso; organization foggy-boston"),
        "{}",
        run.stderr
    );
}

#[test]
fn contacts_unknown_names_are_errors_with_suggestions() {
    let dir = stored_fleet();
    let run = contacts(dir.path(), &["--tenant", "foggy-itt"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains(
            "--tenant foggy-itt: no tenant of that name in state (did you mean `foggy-it`?)"
        ),
        "{}",
        run.stderr
    );
    let run = contacts(
        dir.path(),
        &["--output", "json", "--organization", "foggy-bostn"],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(run.stdout, "", "nothing listed before the error");
    // The nearest first.
    assert!(
        run.stderr
            .contains("--organization foggy-bostn: no organization of that name in state (did you mean `foggy-boston` or"),
        "{}",
        run.stderr
    );
    let run = contacts(dir.path(), &["--tenant", "zzz"]);
    assert_eq!(run.code, 1);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
}

#[test]
fn contacts_archived_and_all() {
    let dir = stored_fleet();
    let run = ok(contacts(dir.path(), &["--archived"]));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[1].contains("Dave Left"));
    assert!(
        lines[1].ends_with("archived 2026-11-28: left the sync rules"),
        "{}",
        run.stdout
    );
    assert!(lines[4].contains("Iris Back"));
    assert!(lines[4].ends_with("archived 2026-11-25: deleted in Entra (restorable for 30 days)"));
    assert!(run.stdout.ends_with("\n2 contacts in 2 tenants.\n"));

    let all = json_rows(&ok(contacts(dir.path(), &["--all", "--output", "json"])));
    assert_eq!(all.len(), 9);
    assert_eq!(
        names(&all)[..3],
        ["Carol Contoso", "Dave Left", EVIL],
        "archived ones sorted in with the others"
    );
    assert_eq!(all.iter().filter(|r| r["status"] == "archived").count(), 2);

    let run = contacts(dir.path(), &["--archived", "--all"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[test]
fn contacts_of_a_state_without_any() {
    // Nothing stored at all.
    let empty = tempfile::tempdir().unwrap();
    let run = ok(contacts(empty.path(), &[]));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with("No active contacts in "),
        "{}",
        run.stderr
    );
    assert_eq!(
        ok(contacts(empty.path(), &["--output", "json"])).stdout,
        "[]\n"
    );
    // Tenants and organizations, but no contacts: the names are known, the lists empty.
    let dir = tempfile::tempdir().unwrap();
    let mut state = fleet();
    state
        .objects
        .retain(|_, o| o.kind != "contact" && o.kind != "user_sync");
    write(
        &FileStateStore::new(dir.path().join(".tenantform/state.json")),
        &state,
    );
    let run = ok(contacts(dir.path(), &["--all", "--tenant", "foggy-it"]));
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("No contacts of tenant foggy-it in "));
    let json = ok(contacts(dir.path(), &["--output", "json"]));
    assert_eq!(json.stdout, "[]\n");
    assert_eq!(json.stderr, "");
    let csv = ok(contacts(dir.path(), &["--output", "csv"]));
    assert_eq!(parse_csv(&csv.stdout).len(), 1, "the header alone");
}

#[test]
fn contacts_of_a_single_file_state_and_with_state_named() {
    // The plan case's file as it is: a v1 state, read whole (and not upgraded by a reader).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old-state.json");
    std::fs::copy(crate::support::repo_root().join(CASE_STATE), &file).unwrap();
    let before = std::fs::read(&file).unwrap();
    let run = ok(run_in(
        dir.path(),
        &[
            "contacts",
            "--state",
            file.to_str().unwrap(),
            "--output",
            "json",
        ],
        None,
    ));
    let rows = json_rows(&run);
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0]["name"], "Ada Lovelace");
    assert_eq!(rows[1]["name"], "Eve <script>alert(1)</script>");
    let run = ok(run_in(
        dir.path(),
        &[
            "contacts",
            "--state",
            file.to_str().unwrap(),
            "--archived",
            "--organization",
            "foggy-boston",
        ],
        None,
    ));
    assert!(run.stdout.contains("Iris Back"));
    assert!(run.stdout.ends_with("\n1 contact in 1 tenant.\n"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "listing writes nothing"
    );

    // Unreadable state is an error, not an empty list.
    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{not json").unwrap();
    let run = run_in(
        dir.path(),
        &["contacts", "--state", corrupt.to_str().unwrap()],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("is corrupt"), "{}", run.stderr);
}

#[test]
fn contacts_help_says_what_a_contact_is() {
    let run = run(&["contacts", "--help"]);
    assert_eq!(run.code, 0);
    for text in [
        "EndUserSync",
        "archived",
        "--organization",
        "--output",
        "tenantform contacts --all --output csv",
    ] {
        assert!(run.stdout.contains(text), "{text} in:\n{}", run.stdout);
    }
}

#[test]
fn contacts_in_postgres() {
    if !crate::support::test_database_available() {
        return;
    }
    let url = crate::support::test_database_url().unwrap();
    let schema = format!(
        "contacts{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let _drop = crate::support::DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let separator = if url.contains('?') { "&" } else { "?" };
    let with_schema = format!("{url}{separator}schema={schema}");
    let store = tenantform::state::postgres::PostgresStateStore::connect(&with_schema).unwrap();
    write(&store, &fleet());
    drop(store);
    let dir = tempfile::tempdir().unwrap();
    let run = ok(run_in(
        dir.path(),
        &[
            "contacts",
            "--state",
            &with_schema,
            "--output",
            "json",
            "--all",
        ],
        None,
    ));
    let rows = json_rows(&run);
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[2]["name"], EVIL);
    let run = contacts(dir.path(), &["--state", &with_schema, "--tenant", "contos"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("did you mean `contoso`?"),
        "{}",
        run.stderr
    );
}
