//! `export`: read live tenants and write manifests for them (the writing itself is pure:
//! `crate::export::manifests`). Tenants that cannot be read are listed, never half-exported.

use std::path::PathBuf;

use futures_util::StreamExt;

use crate::export::{ExportedTenant, manifests};
use crate::graph::read::{all_items, guests_request, parse_directory, roles_request};
use crate::graph::{BatchRequest, GraphClient};
use crate::ops::settings::Settings;
use crate::ops::workspace::connect_required;
use crate::ops::{OpsError, Phase, Reporter};
use crate::outcome::{Cause, Failure};

/// Which tenants to export.
pub enum ExportTenants {
    /// These Microsoft tenant ids.
    Ids(Vec<String>),
    /// Every customer of the partner tenant (`/contracts`).
    AllCustomers,
}

pub struct ExportRun {
    pub exported: usize,
    pub guests: usize,
    /// Tenants not exported, by Microsoft tenant id, with why.
    pub failures: Vec<(String, Failure)>,
    pub requests: u64,
    pub token_requests: u64,
}

pub fn export(
    settings: &Settings,
    which: ExportTenants,
    out: &std::path::Path,
    reporter: &dyn Reporter,
) -> Result<ExportRun, OpsError> {
    let model = crate::model::DesiredModel::default();
    let connection = connect_required(settings, &model, "export")?;
    let client = connection.client.as_ref();
    let tenant_ids: Vec<String> = match which {
        ExportTenants::AllCustomers => {
            let home = client.config().home_tenant_id.clone().ok_or_else(|| {
                OpsError::NoPartnerTenant {
                    command: "export --all-customers".into(),
                }
            })?;
            let contracts = connection
                .runtime
                .block_on(client.get_all(
                    &home,
                    "/contracts?$select=customerId,displayName,defaultDomainName",
                ))
                .map_err(|error| OpsError::Graph {
                    context: "reading the partner's customers",
                    error,
                })?;
            contracts
                .iter()
                .filter_map(|c| c["customerId"].as_str().map(str::to_lowercase))
                .collect()
        }
        ExportTenants::Ids(ids) => ids.iter().map(|t| t.to_lowercase()).collect(),
    };
    let redirect = settings.graph.consent_redirect_uri.as_str();
    reporter.phase_started(Phase::Exporting, tenant_ids.len());
    let results: Vec<Result<ExportedTenant, (String, Failure)>> = connection.runtime.block_on(
        futures_util::stream::iter(tenant_ids)
            .map(|tid| read_for_export(client, tid, redirect))
            .buffer_unordered(settings.graph.parallelism.max(1))
            .inspect(|r| reporter.tenant_done(Phase::Exporting, r.is_err()))
            .collect(),
    );
    reporter.phase_finished(Phase::Exporting);
    // The tenants that were read are exported; the others are listed and fail the command.
    let mut tenants: Vec<ExportedTenant> = Vec::new();
    let mut failures: Vec<(String, Failure)> = Vec::new();
    for result in results {
        match result {
            Ok(t) => tenants.push(t),
            Err(f) => failures.push(f),
        }
    }
    // The partner's GDAP relationships, each with its customer's tenant (when there is a
    // partner tenant: AZURE_TENANT_ID, or the sandbox's). A read that fails fails the export.
    if let Some(partner) = connection.partner_tenant.clone() {
        match connection
            .runtime
            .block_on(crate::graph::gdap::list(client, &partner))
        {
            Ok(all) => {
                for t in &mut tenants {
                    t.directory.gdap_relationships = all
                        .iter()
                        .filter(|r| {
                            r.customer_tenant_id
                                .as_deref()
                                .is_some_and(|c| c.eq_ignore_ascii_case(&t.microsoft_tenant_id))
                        })
                        .cloned()
                        .collect();
                }
            }
            Err(e) => failures.push((partner, e.failure().with_source(crate::live::source::GDAP))),
        }
    }
    tenants.sort_by(|a, b| a.microsoft_tenant_id.cmp(&b.microsoft_tenant_id));
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    let files = manifests(&tenants);
    // Nothing is overwritten: fail before writing anything.
    for f in &files {
        let path = out.join(&f.path);
        if path.exists() && !f.path.starts_with("schemas/") {
            return Err(OpsError::OutputExists(path.display().to_string()));
        }
    }
    for f in &files {
        let path: PathBuf = out.join(&f.path);
        std::fs::create_dir_all(path.parent().expect("relative paths have parents"))
            .map_err(OpsError::io(path.display()))?;
        std::fs::write(&path, &f.text).map_err(OpsError::io(path.display()))?;
    }
    let run = ExportRun {
        exported: tenants.len(),
        guests: files
            .iter()
            .filter(|f| f.path.starts_with("people/"))
            .count(),
        failures,
        requests: client.request_count(),
        token_requests: client.token_request_count(),
    };
    connection.close()?;
    Ok(run)
}

/// One tenant's organization name, guests and role assignments, in one `$batch`.
async fn read_for_export(
    client: &GraphClient,
    tid: String,
    redirect: &str,
) -> Result<ExportedTenant, (String, Failure)> {
    let org = BatchRequest {
        id: "org".into(),
        method: "GET".into(),
        url: "/organization?$select=id,displayName".into(),
        body: None,
        depends_on: Vec::new(),
    };
    let failed = |e: crate::graph::GraphClientError| {
        let mut failure = e.failure();
        if failure.cause == Cause::ConsentMissing {
            failure.consent_url = Some(client.config().consent_url(&tid, redirect, &tid));
        }
        (tid.clone(), failure)
    };
    let answers = client
        .batch(
            &tid,
            vec![org, guests_request("guests"), roles_request("roles")],
        )
        .await
        .map_err(failed)?;
    let mut display_name = tid.clone();
    let (mut guests, mut roles) = (Vec::new(), Vec::new());
    for a in answers {
        a.ok(&tid).map_err(failed)?;
        match a.id.as_str() {
            "org" => {
                if let Some(name) = a.body["value"][0]["displayName"].as_str() {
                    display_name = name.to_string();
                }
            }
            "guests" => guests = all_items(client, &tid, a.body).await.map_err(failed)?,
            _ => roles = all_items(client, &tid, a.body).await.map_err(failed)?,
        }
    }
    Ok(ExportedTenant {
        microsoft_tenant_id: tid.clone(),
        display_name,
        directory: parse_directory(&guests, &roles),
    })
}
