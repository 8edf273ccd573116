//! Reading a tenant's Secure Score: its records of the last 90 days (`$top=90`, newest first
//! from Graph, returned oldest first) and the control profiles, in one `$batch`.

use super::read::all_items;
use super::{BatchRequest, GraphClient, GraphClientError};
use crate::secure_score::{ControlProfile, DailyScore};

/// A tenant's Secure Score as read.
#[derive(Clone, Debug, Default)]
pub struct ScoreRead {
    /// One record a day, oldest first.
    pub days: Vec<DailyScore>,
    pub profiles: Vec<ControlProfile>,
}

fn get(id: &str, url: &str) -> BatchRequest {
    BatchRequest {
        id: id.into(),
        method: "GET".into(),
        url: url.into(),
        body: None,
        depends_on: Vec::new(),
    }
}

/// Reads `tenant`'s Secure Score; a request that fails, or an answer that does not read,
/// fails the read.
pub async fn read_secure_score(
    client: &GraphClient,
    tenant: &str,
) -> Result<ScoreRead, GraphClientError> {
    let requests = vec![
        // securescore.md: about 90 days kept, `$top=n` for the last n.
        get("scores", "/security/secureScores?$top=90"),
        get("profiles", "/security/secureScoreControlProfiles"),
    ];
    let mut read = ScoreRead::default();
    for answer in client.batch(tenant, requests).await? {
        answer.ok(tenant)?;
        let unreadable = |what: String| GraphClientError::Transport {
            tenant: tenant.to_string(),
            method: answer.method.clone(),
            path: answer.url.clone(),
            message: format!("unreadable answer: {what}"),
        };
        let items = all_items(client, tenant, answer.body.clone()).await?;
        if answer.id == "scores" {
            for item in &items {
                let day = DailyScore::from_graph(item)
                    .ok_or_else(|| unreadable("a score without a date or current score".into()))?;
                read.days.push(day);
            }
            read.days.sort_by(|a, b| a.date.cmp(&b.date));
            read.days.dedup_by(|a, b| a.date == b.date);
        } else {
            read.profiles = items
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<_, _>>()
                .map_err(|e| unreadable(e.to_string()))?;
        }
    }
    Ok(read)
}
