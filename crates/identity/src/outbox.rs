//! Messages to people: written to `identity.outbox` in the transaction that
//! causes them, delivered by a worker with retries. Development logs that a
//! message went out (never its body, which carries a single-use link);
//! with `smtp_url` configured, it goes out over SMTP.

use std::time::Duration;

use cg_db::{ControlPool, DbError};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::secrets::SecretBox;

/// Where messages go.
#[derive(Debug, Clone, Default)]
pub struct MailConfig {
    /// `smtp://host:port`, `smtps://user:password@host` …; `None` logs only.
    pub smtp_url: Option<String>,
    /// The sender, e.g. `ClaimGuardian <no-reply@claimguardian.ai>`.
    pub from: Option<String>,
}

/// The sender of messages.
#[derive(Clone)]
pub enum Mailer {
    /// Logs recipient and subject (development).
    Log,
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Log => f.write_str("Mailer::Log"),
            Mailer::Smtp { from, .. } => f
                .debug_struct("Mailer::Smtp")
                .field("from", from)
                .finish_non_exhaustive(),
        }
    }
}

/// Why mail could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid mail configuration: {0}")]
    Config(String),
    #[error("sending failed: {0}")]
    Send(String),
}

impl Mailer {
    pub fn from_config(config: &MailConfig) -> Result<Mailer, MailError> {
        let Some(url) = &config.smtp_url else {
            return Ok(Mailer::Log);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(format!("smtp url: {e}")))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from = config
            .from
            .as_deref()
            .unwrap_or("ClaimGuardian <no-reply@claimguardian.ai>")
            .parse()
            .map_err(|e| MailError::Config(format!("sender address: {e}")))?;
        Ok(Mailer::Smtp {
            transport: Box::new(transport),
            from,
        })
    }

    async fn send(&self, recipient: &str, subject: &str, body: String) -> Result<(), MailError> {
        match self {
            Mailer::Log => {
                tracing::info!(
                    recipient,
                    subject,
                    "message delivered to the log (no SMTP configured)"
                );
                Ok(())
            }
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = recipient
                    .parse()
                    .map_err(|e| MailError::Send(format!("recipient: {e}")))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(subject)
                    .body(body)
                    .map_err(|e| MailError::Send(e.to_string()))?;
                transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                Ok(())
            }
        }
    }
}

/// Queues a message in the caller's transaction.
pub async fn enqueue(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    organization: Option<Uuid>,
    kind: &str,
    recipient: &str,
    subject: &str,
    body: &str,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO identity.outbox (id, organization_id, kind, recipient, subject, body_enc) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(organization)
    .bind(kind)
    .bind(recipient)
    .bind(subject)
    .bind(secrets.seal(body.as_bytes()))
    .execute(conn)
    .await?;
    Ok(id)
}

/// Attempts before a message is given up.
const MAX_ATTEMPTS: i32 = 10;

#[derive(sqlx::FromRow)]
struct DueMessage {
    id: Uuid,
    recipient: String,
    subject: String,
    body_enc: Option<Vec<u8>>,
    attempts: i32,
}

/// Delivers the messages that are due; returns how many went out.
pub async fn deliver_due(
    pool: &ControlPool,
    secrets: &SecretBox,
    mailer: &Mailer,
) -> Result<usize, DbError> {
    let mut tx = pool.begin().await?;
    let due: Vec<DueMessage> = sqlx::query_as(
        "SELECT id, recipient, subject, body_enc, attempts FROM identity.outbox \
         WHERE delivered_at IS NULL AND next_attempt_at <= now() AND attempts < $1 \
         ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED",
    )
    .bind(MAX_ATTEMPTS)
    .fetch_all(&mut *tx)
    .await?;
    let mut delivered = 0;
    for DueMessage {
        id,
        recipient,
        subject,
        body_enc: sealed,
        attempts,
    } in due
    {
        let body = sealed
            .and_then(|sealed| secrets.open(&sealed).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let outcome = match body {
            Some(body) => mailer.send(&recipient, &subject, body).await,
            None => Err(MailError::Send(
                "the body cannot be opened with this secrets key".to_owned(),
            )),
        };
        match outcome {
            Ok(()) => {
                // The body held a single-use link: it goes once delivered.
                sqlx::query("UPDATE identity.outbox SET delivered_at = now(), body_enc = NULL, attempts = attempts + 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                delivered += 1;
            }
            Err(error) => {
                tracing::warn!(%error, %id, "message not delivered; will retry");
                let backoff = 2f64.powi(attempts.min(12)) * 5.0;
                sqlx::query(
                    "UPDATE identity.outbox SET attempts = attempts + 1, last_error = $2, \
                     next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
                )
                .bind(id)
                .bind(error.to_string())
                .bind(backoff)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(delivered)
}

/// The delivery worker: looks for due messages every `tick`.
pub async fn run(pool: ControlPool, secrets: SecretBox, mailer: Mailer, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    loop {
        interval.tick().await;
        if let Err(error) = deliver_due(&pool, &secrets, &mailer).await {
            tracing::warn!(%error, "outbox delivery failed");
        }
    }
}
