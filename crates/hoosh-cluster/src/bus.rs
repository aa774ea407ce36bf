//! One Redis pub/sub channel (`{namespace}:events`) on which an instance
//! says "shared records changed" (a key created, edited or revoked, a team
//! or budget changed) or "reload your config"; every other instance acts on
//! it within a round trip. Messages can be missed while the subscription
//! is down, so after every (re)subscription the receiver is told to reload
//! everything, and a slow periodic reload backs it all up.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::redis_state::Unavailable;

/// What happened, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Keys, teams or budget definitions changed in the database.
    RecordsChanged,
    /// Reload the config file.
    ReloadConfig,
}

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    event: Event,
    /// The publishing instance (which ignores its own messages).
    from: String,
}

/// Publishes on, and listens to, the cluster's channel.
#[derive(Clone)]
pub struct Bus {
    conn: ConnectionManager,
    channel: String,
    instance: String,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("channel", &self.channel).finish_non_exhaustive()
    }
}

/// How often everything is reloaded even without a message.
const BACKSTOP: Duration = Duration::from_secs(30);

impl Bus {
    /// Connects the publisher, and spawns the listener, which calls
    /// `on_event` for every event from another instance — and with
    /// [`Event::RecordsChanged`] after each (re)subscription and every 30 s.
    pub async fn start(
        url: &str,
        namespace: &str,
        instance: &str,
        on_event: Arc<dyn Fn(Event) + Send + Sync>,
    ) -> Result<Bus, Unavailable> {
        let conn = crate::redis_state::connect(url).await?;
        let bus = Bus { conn, channel: format!("{namespace}:events"), instance: instance.to_string() };
        let client = redis::Client::open(url).map_err(|e| Unavailable(e.to_string()))?;
        tokio::spawn(listen(client, bus.channel.clone(), bus.instance.clone(), on_event));
        Ok(bus)
    }

    /// Tells the other instances; an error is logged (they catch up at the backstop).
    pub async fn publish(&self, event: Event) {
        let msg = Message { event, from: self.instance.clone() };
        let Ok(payload) = serde_json::to_string(&msg) else { return };
        let mut conn = self.conn.clone();
        let sent: redis::RedisResult<i64> =
            redis::cmd("PUBLISH").arg(&self.channel).arg(payload).query_async(&mut conn).await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, ?event, "could not tell the other instances; they reload within 30 s");
        }
    }
}

async fn listen(client: redis::Client, channel: String, me: String, on_event: Arc<dyn Fn(Event) + Send + Sync>) {
    let mut first = true;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    if !first {
                        tracing::info!(channel, "resubscribed to the cluster channel");
                    }
                    // Whatever was said while we were not listening.
                    on_event(Event::RecordsChanged);
                    first = false;
                    let mut messages = pubsub.on_message();
                    loop {
                        let next = tokio::time::timeout(BACKSTOP, messages.next()).await;
                        match next {
                            Err(_) => on_event(Event::RecordsChanged),
                            Ok(None) => break,
                            Ok(Some(msg)) => {
                                let Ok(payload) = msg.get_payload::<String>() else { continue };
                                match serde_json::from_str::<Message>(&payload) {
                                    Ok(m) if m.from != me => on_event(m.event),
                                    Ok(_) => {}
                                    Err(e) => tracing::debug!(error = %e, "ignoring a message on the cluster channel"),
                                }
                            }
                        }
                    }
                    tracing::warn!(channel, "cluster channel lost; resubscribing");
                }
                Err(e) => tracing::debug!(error = %e, "subscribing to the cluster channel"),
            },
            Err(e) => tracing::debug!(error = %e, "connecting to the cluster channel"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
