//! API tokens scoped to one tenant. Only a SHA-256 of each token is stored;
//! the token itself is shown once, when created.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::StoreError;
use crate::model::Token;
use crate::now_ms;
use crate::store::Store;

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random bearer token.
pub fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!("orb_{}", URL_SAFE_NO_PAD.encode(raw))
}

impl Store {
    /// Create a token for `tenant_id`; returns its record and the token text.
    pub async fn create_token(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<(Token, String), StoreError> {
        if self.directory().tenant(tenant_id).is_none() {
            return Err(StoreError::NotFound("tenant"));
        }
        let secret = new_token();
        let t = Token {
            id: uuid::Uuid::new_v4().simple().to_string(),
            tenant_id: tenant_id.to_string(),
            name: name.to_string(),
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO api_tokens (id, tenant_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t.id)
            .bind(&t.tenant_id)
            .bind(&t.name)
            .bind(token_hash(&secret))
            .bind(t.created_at)
            .execute(&self.pool)
            .await?;
        Ok((t, secret))
    }

    /// The tenant a bearer token belongs to, if it is one of ours. The
    /// lookup is by hash, so timing says nothing about the token itself.
    pub async fn token_tenant(&self, token: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT tenant_id FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }
}
