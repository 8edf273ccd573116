//! Integration tests: the real `tenantform` binary on fixtures. One test binary, a module per
//! area, keeps linking cheap.

mod concurrent_apply;
mod contacts;
mod delta;
mod drift;
mod end_users;
mod entra;
mod examples;
mod gitops;
mod graph_client;
mod history;
mod honest;
mod licences;
mod model;
mod onboarding;
mod permissions;
mod pipelines;
mod plan_apply;
mod plan_cases;
mod postgres_state;
mod privileged;
mod progress;
mod queries;
mod random_kill;
mod replication;
mod sandbox;
mod schema;
mod sdk_shapes;
mod secure_score;
mod sources;
mod standalone;
mod state_partitions;
mod state_store;
mod support;
mod validate_cases;
mod validate_cli;
