//! How to reach Microsoft Graph: which app, which credential, which cloud. Credentials come
//! from the Azure SDK environment variables, never from manifests, and are never printed.

use std::fmt;
use std::path::PathBuf;

/// A secret value whose `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the app proves itself to each customer tenant's token endpoint (or, for the Azure
/// CLI, where a person's token comes from). See `graph::credentials` for the sources.
#[derive(Clone, Debug)]
pub enum Credential {
    /// AZURE_CLIENT_SECRET.
    ClientSecret(Secret),
    /// AZURE_FEDERATED_TOKEN_FILE: the CI's OIDC token, re-read for every token request
    /// (runners rotate it).
    FederatedTokenFile(PathBuf),
    /// AZURE_CLIENT_CERTIFICATE_PATH: a PEM file with the certificate and its private key.
    Certificate(PathBuf),
    /// GitHub Actions' OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN) as the assertion.
    GithubActions {
        request_url: String,
        request_token: Secret,
    },
    /// An Azure DevOps service connection's OIDC token (workload identity federation).
    AzurePipelines {
        request_uri: String,
        access_token: Secret,
        service_connection_id: String,
    },
    /// A user-assigned managed identity's token for `api://AzureADTokenExchange`, trusted
    /// by a federated identity credential of the app, as the assertion.
    ManagedIdentity {
        endpoint: super::credentials::IdentityEndpoint,
        /// The identity's own client id (TENANTFORM_MANAGED_IDENTITY_CLIENT_ID), not the app's.
        identity_client_id: String,
    },
    /// A person's delegated token per tenant from `az account get-access-token`.
    AzureCli {
        program: PathBuf,
        timeout: std::time::Duration,
    },
}

/// Login and Graph base URLs of a national cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cloud {
    Global,
    UsGov,
    China,
}

impl Cloud {
    pub fn parse(name: &str) -> Option<Cloud> {
        match name.to_ascii_lowercase().as_str() {
            "global" | "public" | "azurecloud" => Some(Cloud::Global),
            "usgov" | "azureusgovernment" => Some(Cloud::UsGov),
            "china" | "azurechinacloud" => Some(Cloud::China),
            _ => None,
        }
    }
    pub fn login_url(self) -> &'static str {
        match self {
            Cloud::Global => "https://login.microsoftonline.com",
            Cloud::UsGov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }
    pub fn graph_url(self) -> &'static str {
        match self {
            Cloud::Global => "https://graph.microsoft.com/v1.0",
            Cloud::UsGov => "https://graph.microsoft.us/v1.0",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn/v1.0",
        }
    }
}

#[derive(Clone, Debug)]
pub struct GraphConfig {
    pub client_id: String,
    /// The MSP's own tenant (AZURE_TENANT_ID): partner calls such as `/contracts` go there.
    pub home_tenant_id: Option<String>,
    pub credential: Credential,
    /// Which credential source was used and why the others were not (for `auth check`).
    pub choice: super::credentials::CredentialChoice,
    /// e.g. `https://login.microsoftonline.com` (token URL: `{login}/{tenant}/oauth2/v2.0/token`).
    pub login_url: String,
    /// e.g. `https://graph.microsoft.com/v1.0`.
    pub graph_url: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "AZURE_CLIENT_ID is not set: set it to the application (client) id of the MSP's multi-tenant app"
    )]
    NoClientId,
    #[error(
        "no credential: set AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE, run in a GitHub Actions job with `permissions: id-token: write` or an Azure DevOps task with a workload identity service connection, or pick one with --auth (client-secret, certificate, federated-token-file, github-actions, azure-pipelines, managed-identity, azure-cli)"
    )]
    NoCredential,
    #[error("--auth {name}: {missing}")]
    SourceMissing { name: &'static str, missing: String },
    #[error("unknown credential source `{0}` (TENANTFORM_AUTH or --auth: {names})", names = super::credentials::SourceKind::names())]
    UnknownSource(String),
    #[error("unknown cloud `{0}` (global, usgov or china)")]
    UnknownCloud(String),
}

impl GraphConfig {
    /// From the environment: AZURE_CLIENT_ID, AZURE_TENANT_ID, one of AZURE_CLIENT_SECRET /
    /// AZURE_CLIENT_CERTIFICATE_PATH / AZURE_FEDERATED_TOKEN_FILE; TENANTFORM_CLOUD, or
    /// TENANTFORM_LOGIN_URL and TENANTFORM_GRAPH_URL for the sandbox or a proxy.
    /// The source is TENANTFORM_AUTH's when set, else the default chain's.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<GraphConfig, ConfigError> {
        let picked = match env("TENANTFORM_AUTH").filter(|v| !v.trim().is_empty()) {
            Some(name) => Some(
                super::credentials::SourceKind::parse(&name)
                    .ok_or(ConfigError::UnknownSource(name))?,
            ),
            None => None,
        };
        Self::from_env_picking(env, picked)
    }

    /// [`GraphConfig::from_env`] with the source `picked` (`--auth`), or the default chain.
    pub fn from_env_picking(
        env: impl Fn(&str) -> Option<String>,
        picked: Option<super::credentials::SourceKind>,
    ) -> Result<GraphConfig, ConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let (client_id, credential, choice) =
            super::credentials::choose(&env, picked)?.ok_or(ConfigError::NoClientId)?;
        let cloud = match get("TENANTFORM_CLOUD") {
            Some(name) => Cloud::parse(&name).ok_or(ConfigError::UnknownCloud(name))?,
            None => Cloud::Global,
        };
        Ok(GraphConfig {
            client_id,
            home_tenant_id: get("AZURE_TENANT_ID"),
            credential,
            choice,
            login_url: get("TENANTFORM_LOGIN_URL")
                .unwrap_or_else(|| cloud.login_url().to_string())
                .trim_end_matches('/')
                .to_string(),
            graph_url: get("TENANTFORM_GRAPH_URL")
                .unwrap_or_else(|| cloud.graph_url().to_string())
                .trim_end_matches('/')
                .to_string(),
        })
    }

    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.login_url)
    }

    /// The resource (audience) of this cloud's Graph, e.g. `https://graph.microsoft.com`: what
    /// `az account get-access-token --resource` asks for.
    pub fn resource(&self) -> String {
        self.scope().trim_end_matches("/.default").to_string()
    }

    /// Whether tokens are a person's (delegated, from the Azure CLI), not the app's.
    pub fn is_delegated(&self) -> bool {
        matches!(self.credential, Credential::AzureCli { .. })
    }

    /// The `.default` scope of this cloud's Graph (e.g. `https://graph.microsoft.com/.default`).
    pub fn scope(&self) -> String {
        let origin = self
            .graph_url
            .trim_end_matches("/v1.0")
            .trim_end_matches("/beta");
        if origin.starts_with("http://127.") || origin.starts_with("http://localhost") {
            "https://graph.microsoft.com/.default".to_string()
        } else {
            format!("{origin}/.default")
        }
    }

    /// The admin consent URL to send a customer's administrator.
    pub fn consent_url(&self, tenant: &str, redirect_uri: &str, state: &str) -> String {
        let mut url = url::Url::parse(&format!("{}/{tenant}/v2.0/adminconsent", self.login_url))
            .expect("login URL is a URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", &self.scope())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_azure_environment_and_hides_secrets() {
        let env = |k: &str| match k {
            "AZURE_CLIENT_ID" => Some("app".to_string()),
            "AZURE_TENANT_ID" => Some("home".to_string()),
            "AZURE_CLIENT_SECRET" => Some("s3cret-value".to_string()),
            "TENANTFORM_CLOUD" => Some("usgov".to_string()),
            _ => None,
        };
        let config = GraphConfig::from_env(env).unwrap();
        assert_eq!(config.graph_url, "https://graph.microsoft.us/v1.0");
        assert_eq!(config.scope(), "https://graph.microsoft.us/.default");
        assert_eq!(
            config.token_url("t"),
            "https://login.microsoftonline.us/t/oauth2/v2.0/token"
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(matches!(
            GraphConfig::from_env(|_| None),
            Err(ConfigError::NoClientId)
        ));
        let url = config.consent_url("contoso.onmicrosoft.com", "https://msp.example/done", "xyz");
        assert!(url.starts_with("https://login.microsoftonline.us/contoso.onmicrosoft.com/v2.0/adminconsent?client_id=app&scope="));
    }
}
