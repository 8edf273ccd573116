//! Client assertions signed with a certificate (AZURE_CLIENT_CERTIFICATE_PATH).

use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

/// A JWT for the token endpoint: RS256, `x5t#S256` of the certificate, aud = the token URL,
/// iss = sub = the client id, ten minutes of validity.
pub fn certificate_assertion(
    path: &Path,
    client_id: &str,
    token_url: &str,
) -> Result<String, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read AZURE_CLIENT_CERTIFICATE_PATH {}: {e}",
            path.display()
        )
    })?;
    let cert_der = pem_block(&pem, "CERTIFICATE").ok_or("no CERTIFICATE block in the PEM file")?;
    let key_pem = ["PRIVATE KEY", "RSA PRIVATE KEY"]
        .iter()
        .find_map(|label| {
            let begin = format!("-----BEGIN {label}-----");
            let end = format!("-----END {label}-----");
            let start = pem.find(&begin)?;
            let stop = pem[start..].find(&end)? + start + end.len();
            Some(pem[start..stop].to_string())
        })
        .ok_or("no PRIVATE KEY block in the PEM file")?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
        .map_err(|e| format!("private key: {e}"))?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t_s256 =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&cert_der)));
    let now = jiff::Timestamp::now().as_second();
    let claims = serde_json::json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    });
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| format!("signing the client assertion: {e}"))
}

fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}
