//! Manifest documents: YAML text -> typed documents with source spans, reporting every problem.
//!
//! Pure: takes a [`SourceSet`] already in memory, returns documents and diagnostics. Adding a
//! kind is adding a module with a [`ManifestKind`] impl and a line in [`decode_document`].

pub mod decode;
pub mod drift_exception;
pub mod end_user_sync;
pub mod format;
pub mod gdap_relationship;
pub mod guest_user;
pub mod organization;
pub mod role_assignment;
pub mod selector;
pub mod targets;
pub mod tenant;
pub mod tenant_policy;
pub mod yaml;

use schemars::JsonSchema;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, did_you_mean, nearest};
use crate::source::{FileId, Loc, Located, SourceSet};
use decode::{Cx, Fields};
use yaml::{Node, Value};

pub use drift_exception::DriftExceptionDoc;
pub use end_user_sync::{EndUserSyncDoc, RouteDoc, UserRuleDoc};
pub use gdap_relationship::{AccessAssignmentDoc, GdapRelationshipDoc};
pub use guest_user::{GuestUserDoc, InvitationDoc};
pub use organization::OrganizationDoc;
pub use role_assignment::{MspRole, PrincipalDoc, RoleAssignmentDoc};
pub use targets::TenantTargets;
pub use tenant::TenantDoc;
pub use tenant_policy::TenantPolicyDoc;

/// One manifest document, tagged by `kind`. This type is also the source of the JSON Schema.
/// Boxed, so a document costs its own size (not the largest kind's) and each is freed on its
/// own as resolution consumes it: a 10,000-tenant tree holds about 440,000 documents.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum Manifest {
    Tenant(Box<TenantDoc>),
    Organization(Box<OrganizationDoc>),
    GuestUser(Box<GuestUserDoc>),
    RoleAssignment(Box<RoleAssignmentDoc>),
    DriftException(Box<DriftExceptionDoc>),
    EndUserSync(Box<EndUserSyncDoc>),
    TenantPolicy(Box<TenantPolicyDoc>),
    GdapRelationship(Box<GdapRelationshipDoc>),
}

/// Every kind's name, for "unknown kind" suggestions.
pub const KINDS: &[&str] = &[
    TenantDoc::KIND,
    OrganizationDoc::KIND,
    guest_user::GuestUserDoc::KIND,
    RoleAssignmentDoc::KIND,
    DriftExceptionDoc::KIND,
    EndUserSyncDoc::KIND,
    TenantPolicyDoc::KIND,
    GdapRelationshipDoc::KIND,
];

/// A decoded document and where it starts.
#[derive(Clone, Debug)]
pub struct Document {
    pub manifest: Manifest,
    pub loc: Loc,
    /// No problem was reported while decoding it; unclean documents still take part in
    /// resolution (so references to them resolve) but skip follow-on checks.
    pub clean: bool,
}

/// A manifest kind: its `kind:` value, its fields and how to decode it.
pub trait ManifestKind: Sized {
    const KIND: &'static str;
    /// Accepted field names (besides `kind`); a test keeps this in step with the schema.
    const FIELDS: &'static [&'static str];
    fn decode(cx: &mut Cx, fields: &Fields) -> Option<Self>;
}

fn decode_kind<K: ManifestKind>(cx: &mut Cx, node: &Node) -> Option<K> {
    let what = format!("a {}", K::KIND);
    let fields = cx.document_fields(node, &what, K::FIELDS)?;
    K::decode(cx, &fields)
}

/// Decodes one document (a YAML mapping with `kind`).
pub fn decode_document(cx: &mut Cx, node: &Node) -> Option<Document> {
    let before = cx.diags.len();
    let mut doc = decode_manifest(cx, node)?;
    doc.clean = cx.diags.len() == before;
    Some(doc)
}

fn decode_manifest(cx: &mut Cx, node: &Node) -> Option<Document> {
    let loc = cx.loc(node);
    let Value::Map(entries) = &node.value else {
        cx.report(
            Diagnostic::error(
                Code::NotAMapping,
                loc,
                format!(
                    "a manifest document must be a mapping with `kind:`, found {}",
                    node.value.describe()
                ),
            )
            .with_label("not a mapping")
            .with_help(format!(
                "start the document with `kind:` and one of {}",
                KINDS.join(", ")
            )),
        );
        return None;
    };
    let Some((_, kind_node)) = entries
        .iter()
        .find(|(k, _)| matches!(&k.value, Value::String(s) if s == "kind"))
    else {
        cx.report(
            Diagnostic::error(Code::MissingKind, loc, "document has no `kind`")
                .with_label("`kind` is missing here")
                .with_help(format!("add `kind:` with one of {}", KINDS.join(", "))),
        );
        return None;
    };
    let kind = cx.string(kind_node, "`kind`")?;
    let manifest = match kind.value.as_str() {
        TenantDoc::KIND => Manifest::Tenant(Box::new(decode_kind(cx, node)?)),
        OrganizationDoc::KIND => Manifest::Organization(Box::new(decode_kind(cx, node)?)),
        GuestUserDoc::KIND => Manifest::GuestUser(Box::new(decode_kind(cx, node)?)),
        RoleAssignmentDoc::KIND => Manifest::RoleAssignment(Box::new(decode_kind(cx, node)?)),
        DriftExceptionDoc::KIND => Manifest::DriftException(Box::new(decode_kind(cx, node)?)),
        EndUserSyncDoc::KIND => Manifest::EndUserSync(Box::new(decode_kind(cx, node)?)),
        TenantPolicyDoc::KIND => Manifest::TenantPolicy(Box::new(decode_kind(cx, node)?)),
        GdapRelationshipDoc::KIND => Manifest::GdapRelationship(Box::new(decode_kind(cx, node)?)),
        other => {
            let help = did_you_mean(&nearest(other, KINDS.iter().copied()))
                .unwrap_or_else(|| format!("kinds are: {}", KINDS.join(", ")));
            cx.report(
                Diagnostic::error(
                    Code::UnknownKind,
                    kind.loc,
                    format!("unknown kind `{other}`"),
                )
                .with_label("unknown kind")
                .with_help(help),
            );
            return None;
        }
    };
    Some(Document {
        manifest,
        loc,
        clean: true,
    })
}

/// Files parsed per round (see [`parse_in_rounds`]).
const FILES_PER_ROUND: usize = 512;

/// Parses and decodes every document of every file, a round of files at a time: each round's
/// texts are read (`read`), parsed on the machine's cores, let go, and its documents handed to
/// `take` in file order before the next round, so a large tree is never held whole, as text
/// or as documents. Returns how many documents there were.
pub fn parse_in_rounds(
    sources: &mut SourceSet,
    diags: &mut Vec<Diagnostic>,
    mut read: impl FnMut(&mut SourceSet, &[FileId], &mut Vec<Diagnostic>),
    mut take: impl FnMut(Vec<Document>),
) -> usize {
    let ids: Vec<FileId> = sources
        .iter()
        .filter(|(_, f)| f.parse)
        .map(|(id, _)| id)
        .collect();
    let mut count = 0;
    for round in ids.chunks(FILES_PER_ROUND) {
        read(sources, round, diags);
        let parsable: Vec<FileId> = round
            .iter()
            .copied()
            .filter(|id| sources.file(*id).parse)
            .collect();
        let (documents, round_diags) = parse_files(sources, &parsable);
        sources.release(&parsable);
        diags.extend(round_diags);
        count += documents.len();
        take(documents);
    }
    count
}

/// Parses and decodes the documents of `ids` (their texts already read). Files are
/// independent, so they are split across the machine's cores; results are joined in file
/// order, so output is the same as a sequential run.
fn parse_files(sources: &SourceSet, ids: &[FileId]) -> (Vec<Document>, Vec<Diagnostic>) {
    /// Below this many files per worker, threads cost more than they save.
    const MIN_FILES_PER_WORKER: usize = 64;
    let parse_chunk = |chunk: &[FileId]| {
        let mut documents = Vec::new();
        let mut diags = Vec::new();
        for &id in chunk {
            parse_file(id, sources, &mut documents, &mut diags);
        }
        (documents, diags)
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(ids.len() / MIN_FILES_PER_WORKER)
        .max(1);
    if workers == 1 {
        return parse_chunk(ids);
    }
    let chunk_size = ids.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .chunks(chunk_size)
            .map(|chunk| scope.spawn(move || parse_chunk(chunk)))
            .collect();
        let mut documents = Vec::new();
        let mut diags = Vec::new();
        for handle in handles {
            let (d, g) = handle.join().expect("manifest parser thread panicked");
            documents.extend(d);
            diags.extend(g);
        }
        (documents, diags)
    })
}

fn parse_file(
    file_id: FileId,
    sources: &SourceSet,
    documents: &mut Vec<Document>,
    diags: &mut Vec<Diagnostic>,
) {
    let file = sources.file(file_id);
    let nodes = match yaml::parse_documents(file_id, file) {
        Ok(nodes) => nodes,
        Err(diagnostic) => {
            diags.push(diagnostic);
            return;
        }
    };
    let mut cx = Cx {
        file_id,
        file,
        diags,
    };
    for node in &nodes {
        if matches!(node.value, Value::Null) {
            continue;
        }
        if let Some(doc) = decode_document(&mut cx, node) {
            documents.push(doc);
        }
    }
}

/// Calls `decode` on a field when it is present.
pub fn optional<T>(
    fields: &Fields,
    name: &str,
    decode: impl FnOnce(&Node) -> Option<T>,
) -> Option<T> {
    fields.get(name).and_then(decode)
}

/// The required `name` of a document, checked to be a stable slug.
pub fn decode_name(cx: &mut Cx, fields: &Fields, kind: &str) -> Option<Located<String>> {
    let node = fields.required(cx, "name")?;
    let name = cx.string(node, "`name`")?;
    if let Err(reason) = format::check_name(&name.value) {
        let suggestion = format::suggest_name(&name.value);
        let mut help = String::from(
            "`name` is the stable id other documents refer to; put the human name in `displayName`",
        );
        if !suggestion.is_empty() && format::check_name(&suggestion).is_ok() {
            help = format!("use `name: {suggestion}`; {help}");
        }
        cx.report(
            Diagnostic::error(
                Code::InvalidName,
                name.loc,
                format!("invalid {kind} name `{}`: {reason}", name.value),
            )
            .with_label("invalid name")
            .with_help(help),
        );
        return None;
    }
    Some(name)
}

/// `formerNames`: earlier stable names, each checked like a name.
pub fn decode_former_names(cx: &mut Cx, fields: &Fields, kind: &str) -> Vec<Located<String>> {
    let Some(list) = optional(fields, "formerNames", |n| {
        cx.string_list(n, "`formerNames`")
    }) else {
        return Vec::new();
    };
    list.into_iter()
        .filter(|name| match format::check_name(&name.value) {
            Ok(()) => true,
            Err(reason) => {
                cx.report(
                    Diagnostic::error(
                        Code::InvalidName,
                        name.loc,
                        format!("invalid former {kind} name `{}`: {reason}", name.value),
                    )
                    .with_label("invalid name"),
                );
                false
            }
        })
        .collect()
}

/// A reference to another document by name (checked later, when all names are known).
pub fn decode_reference(cx: &mut Cx, node: &Node, what: &str) -> Option<Located<String>> {
    cx.non_empty_string(node, what)
}
