//! Microsoft Graph: configuration, authentication and the HTTP client. Everything that talks
//! to Entra goes through here; the planner only sees the snapshots it returns.

pub mod assertion;
pub mod client;
pub mod config;
pub mod consent;
pub mod credentials;
pub mod gdap;
pub mod licences;
pub mod permissions;
pub mod posture;
pub mod read;
pub mod secure_score;
pub mod sources;
pub mod users;

pub use client::{
    BatchRequest, BatchResponse, GraphClient, GraphClientError, GraphResponse, RetryPolicy,
};
pub use config::{Cloud, Credential, GraphConfig, Secret};
