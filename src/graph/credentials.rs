//! Credential sources as one table: each source's name, whether its environment is present
//! (and which variable is missing when not), and how it gets a client assertion or a token.
//!
//! The MSP's multi-tenant app (AZURE_CLIENT_ID) gets an app-only token in every customer
//! tenant. Most sources differ only in the client credential they present to each tenant's
//! token endpoint: a secret, a certificate-signed assertion, or a federated OIDC token from
//! the pipeline or a managed identity (workload identity federation: the token's issuer and
//! subject must match a federated identity credential on the app, audience
//! `api://AzureADTokenExchange`). The Azure CLI is the exception: a person's delegated token
//! per tenant, asked of `az`.
//!
//! The default chain tries the sources in [`SOURCES`] order and takes the first whose
//! environment is present; it never probes the managed-identity address on its own (IMDS's
//! 169.254.169.254 only with `--auth managed-identity`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

use super::config::{ConfigError, Credential, Secret};

/// The audience every federated assertion is asked for (GRAPH.md, "Credentials without
/// secrets"; learn.microsoft.com/graph/api/resources/federatedidentitycredential).
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The Azure Instance Metadata Service's address, used only when asked (`--auth
/// managed-identity` without TENANTFORM_IMDS_ENDPOINT).
pub const DEFAULT_IMDS: &str = "http://169.254.169.254";

/// Azure CLI's own application id: the `appid` of the tokens `az` gets (a person signed in
/// through it), used as the client id in messages when AZURE_CLIENT_ID is not set.
pub const AZURE_CLI_APP_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// How long `az account get-access-token` may take before it is stopped
/// (TENANTFORM_AZ_TIMEOUT_SECS changes it).
pub const AZ_TIMEOUT: Duration = Duration::from_secs(30);

/// One credential source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    ClientSecret,
    Certificate,
    FederatedTokenFile,
    GithubActions,
    AzurePipelines,
    ManagedIdentity,
    AzureCli,
}

/// A row of the table: the name `--auth` takes, what it needs, and a short description.
pub struct Source {
    pub kind: SourceKind,
    pub name: &'static str,
    /// What must be set for it to be present (for `--help` and the README).
    pub needs: &'static str,
}

/// The default chain, in order: a secret or certificate someone configured on purpose first,
/// then the pipeline's own identity (a token file, GitHub Actions, Azure DevOps), then a
/// managed identity whose endpoint variables are set, then a person's Azure CLI last (a
/// terminal with `az` signed in).
pub const SOURCES: &[Source] = &[
    Source {
        kind: SourceKind::ClientSecret,
        name: "client-secret",
        needs: "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET",
    },
    Source {
        kind: SourceKind::Certificate,
        name: "certificate",
        needs: "AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH (PEM with certificate and key)",
    },
    Source {
        kind: SourceKind::FederatedTokenFile,
        name: "federated-token-file",
        needs: "AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE",
    },
    Source {
        kind: SourceKind::GithubActions,
        name: "github-actions",
        needs: "AZURE_CLIENT_ID, ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN (a job with `permissions: id-token: write`)",
    },
    Source {
        kind: SourceKind::AzurePipelines,
        name: "azure-pipelines",
        needs: "AZURE_CLIENT_ID (or AZURESUBSCRIPTION_CLIENT_ID), SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN and TENANTFORM_SERVICE_CONNECTION_ID (or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, set by the AzureCLI@2 task)",
    },
    Source {
        kind: SourceKind::ManagedIdentity,
        name: "managed-identity",
        needs: "AZURE_CLIENT_ID, TENANTFORM_MANAGED_IDENTITY_CLIENT_ID and IDENTITY_ENDPOINT + IDENTITY_HEADER, MSI_ENDPOINT + MSI_SECRET or TENANTFORM_IMDS_ENDPOINT (IMDS at 169.254.169.254 only with --auth managed-identity)",
    },
    Source {
        kind: SourceKind::AzureCli,
        name: "azure-cli",
        needs: "`az` on PATH, signed in (`az login`; its profile in AZURE_CONFIG_DIR or ~/.azure)",
    },
];

impl SourceKind {
    pub fn name(self) -> &'static str {
        SOURCES
            .iter()
            .find(|s| s.kind == self)
            .expect("every kind is in the table")
            .name
    }

    pub fn parse(name: &str) -> Option<SourceKind> {
        SOURCES
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
            .map(|s| s.kind)
    }

    /// Every name, for messages: `client-secret, certificate, ...`.
    pub fn names() -> String {
        SOURCES
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where a managed identity's token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityEndpoint {
    /// IMDS (VMs, scale sets, container hosts): `GET {base}/metadata/identity/oauth2/token`,
    /// api-version 2018-02-01, header `Metadata: true`.
    Imds { base: String },
    /// App Service / Functions: `GET $IDENTITY_ENDPOINT`, api-version 2019-08-01, header
    /// `X-IDENTITY-HEADER`.
    AppService { endpoint: String, header: Secret },
    /// Older App Service plans: `GET $MSI_ENDPOINT`, api-version 2017-09-01, header `Secret`.
    AppServiceLegacy { endpoint: String, secret: Secret },
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}
impl Eq for Secret {}

/// Which source a run uses and why, and why each other one was not: what `auth check` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialChoice {
    /// The source's name (`github-actions`).
    pub source: String,
    /// Why: `picked with --auth` or `first present in the default chain`.
    pub reason: String,
    /// Every other source, each with why it was not used.
    pub not_used: Vec<NotUsed>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotUsed {
    pub source: String,
    pub why: String,
}

/// A source whose environment is present: the credential and the client id it signs in as.
struct Present {
    client_id: String,
    credential: Credential,
}

/// The environment as a lookup (blank values count as unset).
struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// The variables of `names` that are not set, as `A and B not set`, or `None` if all are.
    fn missing(&self, names: &[&str]) -> Option<String> {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.var(n).is_none())
            .collect();
        match missing.as_slice() {
            [] => None,
            [one] => Some(format!("{one} not set")),
            many => Some(format!("{} not set", many.join(" and "))),
        }
    }
}

/// Whether a source's environment is present (`Ok`) or why not (`Err`, naming what is
/// missing). `picked`: asked for by name (managed identity may then use IMDS's default
/// address; the Azure CLI need not have a profile on disk to be tried).
fn detect(kind: SourceKind, env: &Env<'_>, picked: bool) -> Result<Present, String> {
    let app = |extra: &[&str]| -> Result<String, String> {
        let mut names = vec!["AZURE_CLIENT_ID"];
        names.extend_from_slice(extra);
        match env.missing(&names) {
            Some(why) => Err(why),
            None => Ok(env.var("AZURE_CLIENT_ID").expect("checked")),
        }
    };
    match kind {
        SourceKind::ClientSecret => {
            let client_id = app(&["AZURE_CLIENT_SECRET"])?;
            Ok(Present {
                client_id,
                credential: Credential::ClientSecret(Secret::new(
                    env.var("AZURE_CLIENT_SECRET").expect("checked"),
                )),
            })
        }
        SourceKind::Certificate => {
            let client_id = app(&["AZURE_CLIENT_CERTIFICATE_PATH"])?;
            Ok(Present {
                client_id,
                credential: Credential::Certificate(
                    env.var("AZURE_CLIENT_CERTIFICATE_PATH")
                        .expect("checked")
                        .into(),
                ),
            })
        }
        SourceKind::FederatedTokenFile => {
            let client_id = app(&["AZURE_FEDERATED_TOKEN_FILE"])?;
            Ok(Present {
                client_id,
                credential: Credential::FederatedTokenFile(
                    env.var("AZURE_FEDERATED_TOKEN_FILE")
                        .expect("checked")
                        .into(),
                ),
            })
        }
        SourceKind::GithubActions => {
            let client_id = app(&[
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            ])
            .map_err(|why| {
                if why.contains("ACTIONS_ID_TOKEN") {
                    format!("{why} (the job needs `permissions: id-token: write`)")
                } else {
                    why
                }
            })?;
            Ok(Present {
                client_id,
                credential: Credential::GithubActions {
                    request_url: env.var("ACTIONS_ID_TOKEN_REQUEST_URL").expect("checked"),
                    request_token: Secret::new(
                        env.var("ACTIONS_ID_TOKEN_REQUEST_TOKEN").expect("checked"),
                    ),
                },
            })
        }
        SourceKind::AzurePipelines => {
            // The AzureCLI@2 and AzurePowerShell@5 tasks export the service connection's
            // AZURESUBSCRIPTION_CLIENT_ID and _SERVICE_CONNECTION_ID (what azure-identity's
            // AzurePipelinesCredential samples read); TENANTFORM_SERVICE_CONNECTION_ID names
            // one in any other step.
            let client_id = env
                .var("AZURE_CLIENT_ID")
                .or_else(|| env.var("AZURESUBSCRIPTION_CLIENT_ID"));
            let connection = env
                .var("TENANTFORM_SERVICE_CONNECTION_ID")
                .or_else(|| env.var("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"));
            let mut missing = Vec::new();
            if client_id.is_none() {
                missing.push("AZURE_CLIENT_ID (or AZURESUBSCRIPTION_CLIENT_ID)");
            }
            for name in ["SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN"] {
                if env.var(name).is_none() {
                    missing.push(name);
                }
            }
            if connection.is_none() {
                missing.push(
                    "TENANTFORM_SERVICE_CONNECTION_ID (or AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)",
                );
            }
            if !missing.is_empty() {
                return Err(format!("{} not set", missing.join(" and ")));
            }
            Ok(Present {
                client_id: client_id.expect("checked"),
                credential: Credential::AzurePipelines {
                    request_uri: env.var("SYSTEM_OIDCREQUESTURI").expect("checked"),
                    access_token: Secret::new(env.var("SYSTEM_ACCESSTOKEN").expect("checked")),
                    service_connection_id: connection.expect("checked"),
                },
            })
        }
        SourceKind::ManagedIdentity => {
            let endpoint = if let (Some(endpoint), Some(header)) =
                (env.var("IDENTITY_ENDPOINT"), env.var("IDENTITY_HEADER"))
            {
                Some(IdentityEndpoint::AppService {
                    endpoint,
                    header: Secret::new(header),
                })
            } else if let (Some(endpoint), Some(secret)) =
                (env.var("MSI_ENDPOINT"), env.var("MSI_SECRET"))
            {
                Some(IdentityEndpoint::AppServiceLegacy {
                    endpoint,
                    secret: Secret::new(secret),
                })
            } else if let Some(base) = env.var("TENANTFORM_IMDS_ENDPOINT") {
                Some(IdentityEndpoint::Imds {
                    base: base.trim_end_matches('/').to_string(),
                })
            } else if picked {
                Some(IdentityEndpoint::Imds {
                    base: DEFAULT_IMDS.to_string(),
                })
            } else {
                None
            };
            let client_id = app(&["TENANTFORM_MANAGED_IDENTITY_CLIENT_ID"]);
            let Some(endpoint) = endpoint else {
                let mut why = match client_id {
                    Err(why) => format!("{why}; "),
                    Ok(_) => String::new(),
                };
                why.push_str("no IDENTITY_ENDPOINT, MSI_ENDPOINT or TENANTFORM_IMDS_ENDPOINT (IMDS is asked only with --auth managed-identity)");
                return Err(why);
            };
            Ok(Present {
                client_id: client_id?,
                credential: Credential::ManagedIdentity {
                    endpoint,
                    identity_client_id: env
                        .var("TENANTFORM_MANAGED_IDENTITY_CLIENT_ID")
                        .expect("checked"),
                },
            })
        }
        SourceKind::AzureCli => {
            let program = find_program("az", env.var("PATH").as_deref())
                .ok_or_else(|| "`az` not found on PATH".to_string())?;
            if !picked && !az_profile_exists(env) {
                return Err(
                    "`az` found but not signed in (no azureProfile.json in AZURE_CONFIG_DIR or ~/.azure)"
                        .to_string(),
                );
            }
            Ok(Present {
                client_id: env
                    .var("AZURE_CLIENT_ID")
                    .unwrap_or_else(|| AZURE_CLI_APP_ID.to_string()),
                credential: Credential::AzureCli {
                    program,
                    timeout: env
                        .var("TENANTFORM_AZ_TIMEOUT_SECS")
                        .and_then(|s| s.trim().parse().ok())
                        .map_or(AZ_TIMEOUT, Duration::from_secs),
                },
            })
        }
    }
}

/// The first `name` on `path` that is a file (on Windows also `name.cmd`, as the Azure CLI
/// installs itself).
fn find_program(name: &str, path: Option<&str>) -> Option<PathBuf> {
    let names: Vec<String> = if cfg!(windows) {
        vec![
            format!("{name}.cmd"),
            format!("{name}.exe"),
            name.to_string(),
        ]
    } else {
        vec![name.to_string()]
    };
    std::env::split_paths(path?)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn az_profile_exists(env: &Env<'_>) -> bool {
    let dir = env
        .var("AZURE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".azure")));
    dir.is_some_and(|d| d.join("azureProfile.json").is_file())
}

/// The credential a run uses: `picked` (`--auth` / TENANTFORM_AUTH) or the default chain.
/// `Ok(None)`: nothing configured at all (no AZURE_CLIENT_ID and no source present), which
/// commands that need nothing from Entra accept.
pub fn choose(
    env: &dyn Fn(&str) -> Option<String>,
    picked: Option<SourceKind>,
) -> Result<Option<(String, Credential, CredentialChoice)>, ConfigError> {
    let env = Env { get: env };
    let mut not_used = Vec::new();
    let mut chosen: Option<(Present, SourceKind)> = None;
    for source in SOURCES {
        if chosen.is_some() || picked.is_some_and(|p| p != source.kind) {
            let why = if chosen.is_some() && picked.is_none() {
                match detect(source.kind, &env, false) {
                    Ok(_) => "present, but an earlier source in the chain is used".to_string(),
                    Err(why) => why,
                }
            } else {
                format!(
                    "not picked (--auth {})",
                    picked.map(SourceKind::name).unwrap_or_default()
                )
            };
            not_used.push(NotUsed {
                source: source.name.to_string(),
                why,
            });
            continue;
        }
        match detect(source.kind, &env, picked.is_some()) {
            Ok(present) => chosen = Some((present, source.kind)),
            Err(why) if picked.is_some() => {
                return Err(ConfigError::SourceMissing {
                    name: source.name,
                    missing: why,
                });
            }
            Err(why) => not_used.push(NotUsed {
                source: source.name.to_string(),
                why,
            }),
        }
    }
    match chosen {
        Some((present, kind)) => Ok(Some((
            present.client_id,
            present.credential,
            CredentialChoice {
                source: kind.name().to_string(),
                reason: if picked.is_some() {
                    "picked with --auth (or TENANTFORM_AUTH)".to_string()
                } else {
                    "the first source in the default chain whose environment is present".to_string()
                },
                not_used,
            },
        ))),
        None if env.var("AZURE_CLIENT_ID").is_none() => Ok(None),
        None => Err(ConfigError::NoCredential),
    }
}

/// The claims of a JWT, read without verifying it (to know when an assertion expires, or
/// what a token carries). Not a JWT: `None`.
pub fn jwt_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The request that gets a federated assertion from a source's endpoint (no I/O: the client
/// sends it), and how its answer is read.
#[derive(Debug)]
pub struct AssertionRequest {
    pub method: &'static str,
    pub url: String,
    /// Headers. Every value is a `Secret` (some are bearer tokens or identity headers), so
    /// this request's `Debug` never shows one.
    pub headers: Vec<(&'static str, Secret)>,
    /// The answer's field holding the JWT.
    pub field: &'static str,
}

/// What to ask for a federated assertion, or `None` for a credential that has none.
pub fn assertion_request(credential: &Credential) -> Option<AssertionRequest> {
    match credential {
        // GRAPH.md: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=api://AzureADTokenExchange`,
        // `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, JWT in `.value`.
        Credential::GithubActions {
            request_url,
            request_token,
        } => {
            let mut url = url::Url::parse(request_url).ok()?;
            url.query_pairs_mut()
                .append_pair("audience", FEDERATED_AUDIENCE);
            Some(AssertionRequest {
                method: "GET",
                url: url.to_string(),
                headers: vec![(
                    "Authorization",
                    Secret::new(format!("bearer {}", request_token.expose())),
                )],
                field: "value",
            })
        }
        // learn.microsoft.com/rest/api/azure/devops/distributedtask/oidctoken/create:
        // `POST $SYSTEM_OIDCREQUESTURI?api-version=7.1&serviceConnectionId=<id>`; the
        // redirect header makes an expired access token a 401, not a sign-in page.
        Credential::AzurePipelines {
            request_uri,
            access_token,
            service_connection_id,
        } => {
            let mut url = url::Url::parse(request_uri).ok()?;
            url.query_pairs_mut()
                .append_pair("api-version", "7.1")
                .append_pair("serviceConnectionId", service_connection_id);
            Some(AssertionRequest {
                method: "POST",
                url: url.to_string(),
                headers: vec![
                    (
                        "Authorization",
                        Secret::new(format!("Bearer {}", access_token.expose())),
                    ),
                    ("X-TFS-FedAuthRedirect", Secret::new("Suppress")),
                    ("Content-Type", Secret::new("application/json")),
                ],
                field: "oidcToken",
            })
        }
        Credential::ManagedIdentity {
            endpoint,
            identity_client_id,
        } => {
            let (url, headers, version, id_param) = match endpoint {
                IdentityEndpoint::Imds { base } => (
                    format!("{base}/metadata/identity/oauth2/token"),
                    vec![("Metadata", Secret::new("true"))],
                    "2018-02-01",
                    "client_id",
                ),
                IdentityEndpoint::AppService { endpoint, header } => (
                    endpoint.clone(),
                    vec![("X-IDENTITY-HEADER", header.clone())],
                    "2019-08-01",
                    "client_id",
                ),
                // 2017-09-01 names the user-assigned identity `clientid`.
                IdentityEndpoint::AppServiceLegacy { endpoint, secret } => (
                    endpoint.clone(),
                    vec![("Secret", secret.clone())],
                    "2017-09-01",
                    "clientid",
                ),
            };
            let mut url = url::Url::parse(&url).ok()?;
            url.query_pairs_mut()
                .append_pair("api-version", version)
                .append_pair("resource", FEDERATED_AUDIENCE)
                .append_pair(id_param, identity_client_id);
            Some(AssertionRequest {
                method: "GET",
                url: url.to_string(),
                headers,
                field: "access_token",
            })
        }
        _ => None,
    }
}

/// When an assertion expires (epoch seconds): its `exp` claim, else the answer's
/// `expires_on` (a number or a numeric string), else five minutes from `now`.
pub fn assertion_expiry(jwt: &str, answer: &serde_json::Value, now: i64) -> i64 {
    jwt_claims(jwt)
        .and_then(|c| c["exp"].as_i64())
        .or_else(|| match &answer["expires_on"] {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .unwrap_or(now + 300)
}

/// An assertion is fetched again when less than this is left of it: GitHub's live 5 to 10
/// minutes, and Entra refuses one that expires while in flight (AADSTS700024).
pub const ASSERTION_MARGIN_SECS: i64 = 60;

/// `az account get-access-token --tenant T --resource R --output json`, read: the token and
/// when it expires (`expires_on`, epoch seconds, Azure CLI 2.54+; else `expiresOn`, local
/// time). Errors never quote the output (it holds the token).
pub fn parse_az_token(stdout: &[u8], now: i64) -> Result<(String, i64), String> {
    let value: serde_json::Value = serde_json::from_slice(stdout)
        .map_err(|_| "`az account get-access-token` printed no JSON".to_string())?;
    let token = value["accessToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("`az account get-access-token` printed no accessToken")?
        .to_string();
    let expires = match &value["expires_on"] {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .or_else(|| {
        let text = value["expiresOn"].as_str()?;
        let civil: jiff::civil::DateTime = text.parse().ok()?;
        civil
            .to_zoned(jiff::tz::TimeZone::system())
            .ok()
            .map(|z| z.timestamp().as_second())
    })
    .unwrap_or(now + 300);
    Ok((token, expires))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_default_chain_takes_the_first_present_source_and_says_why_not_the_others() {
        let e = env(&[
            ("AZURE_CLIENT_ID", "app"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh.example/t?x=1"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "req"),
            ("SYSTEM_OIDCREQUESTURI", "https://dev.azure.com/o"),
            ("SYSTEM_ACCESSTOKEN", "ado"),
            ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "sc"),
            ("PATH", ""),
        ]);
        let (client, credential, choice) = choose(&e, None).unwrap().unwrap();
        assert_eq!(client, "app");
        assert!(matches!(credential, Credential::GithubActions { .. }));
        assert_eq!(choice.source, "github-actions");
        let why: HashMap<&str, &str> = choice
            .not_used
            .iter()
            .map(|n| (n.source.as_str(), n.why.as_str()))
            .collect();
        assert_eq!(why["client-secret"], "AZURE_CLIENT_SECRET not set");
        assert_eq!(
            why["federated-token-file"],
            "AZURE_FEDERATED_TOKEN_FILE not set"
        );
        assert_eq!(
            why["azure-pipelines"],
            "present, but an earlier source in the chain is used"
        );
        assert!(why["managed-identity"].contains("IMDS is asked only"));
        assert_eq!(why["azure-cli"], "`az` not found on PATH");
        assert_eq!(choice.not_used.len(), SOURCES.len() - 1);
    }

    #[test]
    fn managed_identity_is_never_probed_unless_asked() {
        let base = [
            ("AZURE_CLIENT_ID", "app"),
            ("TENANTFORM_MANAGED_IDENTITY_CLIENT_ID", "mi"),
        ];
        // Nothing else set: the chain finds no credential and never names IMDS's address.
        assert!(matches!(
            choose(&env(&base), None),
            Err(ConfigError::NoCredential)
        ));
        let (_, credential, _) = choose(&env(&base), Some(SourceKind::ManagedIdentity))
            .unwrap()
            .unwrap();
        let Credential::ManagedIdentity { endpoint, .. } = &credential else {
            panic!("{credential:?}")
        };
        assert_eq!(
            endpoint,
            &IdentityEndpoint::Imds {
                base: DEFAULT_IMDS.into()
            }
        );
        let request = assertion_request(&credential).unwrap();
        assert_eq!(
            request.url,
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2FAzureADTokenExchange&client_id=mi"
        );
        // App Service's variables make it present in the chain.
        let mut app_service = base.to_vec();
        app_service.extend([
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ]);
        let (_, credential, choice) = choose(&env(&app_service), None).unwrap().unwrap();
        assert_eq!(choice.source, "managed-identity");
        let request = assertion_request(&credential).unwrap();
        assert!(
            request.url.contains("api-version=2019-08-01"),
            "{request:?}"
        );
        assert_eq!(request.headers[0].0, "X-IDENTITY-HEADER");
    }

    #[test]
    fn a_picked_source_without_its_environment_names_the_missing_variables() {
        let err = choose(
            &env(&[("AZURE_CLIENT_ID", "app")]),
            Some(SourceKind::GithubActions),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("github-actions")
                && err.contains(
                    "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN not set"
                ),
            "{err}"
        );
        let err = choose(&env(&[]), Some(SourceKind::AzurePipelines))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SYSTEM_OIDCREQUESTURI") && err.contains("AZURE_CLIENT_ID"),
            "{err}"
        );
        assert!(matches!(choose(&env(&[]), None), Ok(None)));
        assert!(matches!(
            choose(&env(&[("AZURE_CLIENT_ID", "app")]), None),
            Err(ConfigError::NoCredential)
        ));
    }

    #[test]
    fn names_round_trip_and_requests_are_shaped_like_the_services_want() {
        for s in SOURCES {
            assert_eq!(SourceKind::parse(s.name), Some(s.kind));
        }
        let ado = Credential::AzurePipelines {
            request_uri: "https://dev.azure.com/org/proj/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken".into(),
            access_token: Secret::new("ado"),
            service_connection_id: "sc-1".into(),
        };
        let r = assertion_request(&ado).unwrap();
        assert_eq!(r.method, "POST");
        assert!(
            r.url
                .ends_with("oidctoken?api-version=7.1&serviceConnectionId=sc-1")
        );
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| *n == "X-TFS-FedAuthRedirect" && v.expose() == "Suppress")
        );
        let gh = Credential::GithubActions {
            request_url: "https://pipelines.example/_apis/token?api-version=2.0".into(),
            request_token: Secret::new("t"),
        };
        let r = assertion_request(&gh).unwrap();
        assert!(
            r.url
                .ends_with("api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange")
        );
        assert_eq!(r.field, "value");
    }

    #[test]
    fn an_assertion_request_never_debug_prints_its_header_values() {
        let credentials = [
            Credential::GithubActions {
                request_url: "https://gh.example/token?x=1".into(),
                request_token: Secret::new("gh-request-token-value"),
            },
            Credential::AzurePipelines {
                request_uri: "https://dev.azure.com/o/p/_apis/oidctoken".into(),
                access_token: Secret::new("ado-access-token-value"),
                service_connection_id: "sc".into(),
            },
            Credential::ManagedIdentity {
                endpoint: IdentityEndpoint::AppService {
                    endpoint: "http://127.0.0.1:1/msi/token".into(),
                    header: Secret::new("identity-header-value"),
                },
                identity_client_id: "mi".into(),
            },
            Credential::ManagedIdentity {
                endpoint: IdentityEndpoint::AppServiceLegacy {
                    endpoint: "http://127.0.0.1:1/msi/token".into(),
                    secret: Secret::new("msi-secret-value"),
                },
                identity_client_id: "mi".into(),
            },
        ];
        for credential in &credentials {
            let request = assertion_request(credential).unwrap();
            let shown = format!("{request:?}");
            assert!(
                !shown.contains("-value") && shown.contains("***"),
                "{shown}"
            );
            // The value is still sent as is.
            assert!(request.headers[0].1.expose().ends_with("-value"));
        }
    }

    #[test]
    fn az_output_prefers_expires_on() {
        let (token, exp) = parse_az_token(
            br#"{"accessToken":"tok","expiresOn":"2020-01-01 00:00:00.000000","expires_on":1700000000,"tenant":"t","tokenType":"Bearer"}"#,
            0,
        )
        .unwrap();
        assert_eq!((token.as_str(), exp), ("tok", 1_700_000_000));
        let (_, exp) = parse_az_token(
            br#"{"accessToken":"tok","expiresOn":"2030-01-01 00:00:00.000000"}"#,
            0,
        )
        .unwrap();
        assert!(exp > 1_800_000_000);
        let err = parse_az_token(b"not json secret", 0).unwrap_err();
        assert!(!err.contains("secret"));
    }
}
