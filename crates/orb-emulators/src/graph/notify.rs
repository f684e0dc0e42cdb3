//! Notification delivery: the validation handshake, change notifications (rich ones
//! sealed with the subscription's certificate, with `validationTokens`), lifecycle
//! notifications, and the delivery faults.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::calendar::{self, Change};
use super::{DeliveryKind, DeliveryRecord, Shared, State, Subscription};

/// Work for the delivery task.
pub(crate) enum Job {
    Post {
        kind: DeliveryKind,
        subscription_id: String,
        url: String,
        body: Vec<u8>,
    },
    Flush(oneshot::Sender<()>),
}

pub(crate) fn http_client(config: &super::GraphEmulatorConfig) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in &config.webhook_root_certificates {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| e.to_string())?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// The delivery task: one POST at a time, in queue order.
pub(crate) async fn deliver(mut rx: mpsc::UnboundedReceiver<Job>, shared: Arc<Shared>) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Flush(done) => {
                let _ = done.send(());
            }
            Job::Post {
                kind,
                subscription_id,
                url,
                body,
            } => {
                // A non-2xx answer or a timeout is retried with exponential backoff, as
                // Graph does (for hours; here `delivery_retries` times).
                let mut delay = shared.config.delivery_retry_delay;
                for attempt in 0..=shared.config.delivery_retries {
                    let status = post(&shared, &url, body.clone(), "application/json").await;
                    shared.lock().deliveries.push(DeliveryRecord {
                        kind,
                        subscription_id: subscription_id.clone(),
                        url: url.clone(),
                        status,
                        body: body.clone(),
                    });
                    if status.is_some_and(|s| (200..300).contains(&s))
                        || attempt == shared.config.delivery_retries
                    {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }
}

async fn post(shared: &Shared, url: &str, body: Vec<u8>, content_type: &str) -> Option<u16> {
    let request = shared
        .http
        .post(url)
        .header("Content-Type", content_type)
        .body(body)
        .timeout(shared.config.delivery_timeout);
    request.send().await.ok().map(|r| r.status().as_u16())
}

/// The validation handshake: POST `url?validationToken=…`; the endpoint must answer
/// 200 with `text/plain` and the decoded token, within the configured deadline.
pub(crate) async fn validate(shared: &Shared, url: &str) -> bool {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    let target = format!(
        "{url}{sep}validationToken={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let attempt = async {
        let response = shared
            .http
            .post(&target)
            .header("Content-Type", "text/plain; charset=utf-8")
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        let plain = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/plain"));
        let body = response.text().await.ok()?;
        Some((status, plain && body == token))
    };
    let outcome = tokio::time::timeout(shared.config.validation_timeout, attempt).await;
    let (status, ok) = match outcome {
        Ok(Some((status, ok))) => (Some(status), ok && status == 200),
        _ => (None, false),
    };
    shared.lock().deliveries.push(DeliveryRecord {
        kind: DeliveryKind::Validation,
        subscription_id: String::new(),
        url: target,
        status,
        body: Vec::new(),
    });
    ok
}

/// Queues the change notifications `changes` cause, applying delivery faults.
pub(crate) fn changes(shared: &Shared, st: &mut State, changes: &[Change]) {
    st.prune_expired();
    let mut jobs = Vec::new();
    for change in changes {
        let subs: Vec<&Subscription> = st
            .subscriptions
            .values()
            .filter(|s| {
                s.mailbox == change.mailbox
                    && s.change_types.iter().any(|t| t == change.change_type)
            })
            .collect();
        for sub in subs {
            if let Some(body) = change_body(shared, st, sub, change) {
                jobs.push((
                    sub.id.clone(),
                    Job::Post {
                        kind: DeliveryKind::Change,
                        subscription_id: sub.id.clone(),
                        url: sub.notification_url.clone(),
                        body,
                    },
                ));
            }
        }
    }
    for (sub_id, job) in jobs {
        enqueue(shared, st, sub_id, job);
    }
}

fn enqueue(shared: &Shared, st: &mut State, sub_id: String, job: Job) {
    let faults = &mut st.notify_faults;
    if faults.drop > 0 {
        faults.drop -= 1;
        faults.dropped_subscriptions.insert(sub_id);
        if faults.drop == 0 {
            let dropped: Vec<String> = std::mem::take(&mut faults.dropped_subscriptions)
                .into_iter()
                .collect();
            for id in dropped {
                lifecycle(shared, st, &id, "missed");
            }
        }
        return;
    }
    if faults.duplicate > 0 {
        faults.duplicate -= 1;
        if let Job::Post {
            kind,
            subscription_id,
            url,
            body,
        } = &job
        {
            let copy = Job::Post {
                kind: *kind,
                subscription_id: subscription_id.clone(),
                url: url.clone(),
                body: body.clone(),
            };
            let _ = shared.jobs.send(copy);
        }
    }
    if faults.reorder > 0 {
        faults.reorder -= 1;
        faults.reorder_buffer.push(job);
        if faults.reorder == 0 {
            for j in std::mem::take(&mut faults.reorder_buffer).into_iter().rev() {
                let _ = shared.jobs.send(j);
            }
        }
        return;
    }
    let _ = shared.jobs.send(job);
}

fn change_body(
    shared: &Shared,
    st: &State,
    sub: &Subscription,
    change: &Change,
) -> Option<Vec<u8>> {
    let mb = st.cal.mailboxes.get(&change.mailbox)?;
    let resource = format!("Users/{}/Events/{}", mb.object_id, change.id);
    let item = mb.items.get(&change.id);
    let etag = item.map_or_else(String::new, |i| format!("W/\"{}\"", i.version));
    let mut entry = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": format!("{}Z", calendar::fmt_utc(sub.expiration)),
        "changeType": change.change_type,
        "tenantId": shared.config.tenant_id,
        "resource": resource,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": resource,
            "@odata.etag": etag,
            "id": change.id,
        },
    });
    if let Some(cs) = &sub.client_state {
        entry["clientState"] = json!(cs);
    }
    let mut collection = json!({"value": [entry]});
    if let Some((certificate, certificate_id)) = &sub.rich {
        if let Some(item) = item {
            let full = calendar::render(item, None, None);
            let mut selected = serde_json::Map::new();
            for key in ["@odata.type", "@odata.id", "@odata.etag", "id"] {
                if let Some(v) = full.get(key) {
                    selected.insert(key.to_owned(), v.clone());
                }
            }
            selected.insert("@odata.type".into(), json!("#Microsoft.Graph.Event"));
            selected.insert("@odata.id".into(), json!(resource));
            for field in sub.select.iter().flatten() {
                if let Some((k, v)) = full
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)))
                {
                    selected.insert(k.clone(), v.clone());
                }
            }
            let plaintext = Value::Object(selected).to_string();
            let sealed =
                orb_notification_crypto::seal(plaintext.as_bytes(), certificate, certificate_id)
                    .ok()?;
            collection["value"][0]["encryptedContent"] = serde_json::to_value(sealed).ok()?;
        }
        collection["validationTokens"] = json!([validation_token(shared, st, &sub.app)?]);
    }
    serde_json::to_vec(&collection).ok()
}

fn validation_token(shared: &Shared, st: &State, app: &str) -> Option<String> {
    let now: SystemTime = st.now().into();
    let claims = orb_notification_crypto::jwt::TokenSigner::graph_claims_v2(
        &shared.base_url,
        app,
        &shared.config.tenant_id,
        now,
    );
    shared.signer.sign(&claims).ok()
}

/// Queues a lifecycle notification. False when there is no such subscription or it has
/// no lifecycle URL.
pub(crate) fn lifecycle(shared: &Shared, st: &State, subscription_id: &str, event: &str) -> bool {
    let Some(sub) = st.subscriptions.get(subscription_id) else {
        return false;
    };
    let Some(url) = &sub.lifecycle_url else {
        return false;
    };
    let mut entry = json!({
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": format!("{}Z", calendar::fmt_utc(sub.expiration)),
        "tenantId": shared.config.tenant_id,
        "lifecycleEvent": event,
    });
    if let Some(cs) = &sub.client_state {
        entry["clientState"] = json!(cs);
    }
    let mut collection = json!({"value": [entry]});
    if sub.rich.is_some()
        && let Some(token) = validation_token(shared, st, &sub.app)
    {
        collection["validationTokens"] = json!([token]);
    }
    let Ok(body) = serde_json::to_vec(&collection) else {
        return false;
    };
    shared
        .jobs
        .send(Job::Post {
            kind: DeliveryKind::Lifecycle,
            subscription_id: sub.id.clone(),
            url: url.clone(),
            body,
        })
        .is_ok()
}
