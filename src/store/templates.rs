//! E-mail templates as the administrator stored them (raw text with `${KEY}`
//! markers; parsing and rendering live in `outbound::template`).

use sqlx::FromRow;

use super::{Store, StoreError, now_ms};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct TemplateRow {
    pub id: i64,
    pub name: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Inserts a template and returns its id; None when the name is taken.
    pub async fn template_add(
        &self,
        name: &str,
        subject: &str,
        body_text: &str,
        body_html: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO templates (name, subject, body_text, body_html, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(subject)
        .bind(body_text)
        .bind(body_html)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn template_get(&self, id: i64) -> Result<Option<TemplateRow>, StoreError> {
        Ok(sqlx::query_as("SELECT id, name, subject, body_text, body_html, created_at FROM templates WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn template_list(&self) -> Result<Vec<TemplateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name, subject, body_text, body_html, created_at FROM templates ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?)
    }
}
