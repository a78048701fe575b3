//! Parameters: numbered settings an administrator sets, as in 4biz
//! (`417` names the template of technician mail).

use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// The parameter whose value is the id of the outbound e-mail template.
pub const TEMPLATE_PARAM: i64 = 417;

impl Store {
    pub async fn param_get(&self, number: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM parameters WHERE number = $1")
            .bind(number)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn param_set(&self, number: i64, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO parameters (number, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (number) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(number)
        .bind(value)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
