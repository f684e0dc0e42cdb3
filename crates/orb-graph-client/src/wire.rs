//! Graph's wire format as pure functions: `build_*` produce an [`http::Request`] without
//! the `Authorization` header (the transport adds it), `parse_*` read an
//! [`http::Response`]. The DTOs below never leave this module.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::ids::{GraphEventId, IcalUid, Mailbox, OrbMatchId, RoomMailbox, SubscriptionId};
use crate::model::{
    Attendee, AttendeeType, BookingType, DeltaItem, DeltaNext, DeltaPage, EmailAddress, Event,
    EventKind, EventPatch, Location, Mail, NewAttendee, NewEvent, NewSubscription, Recurrence,
    RecurrencePattern, RecurrenceRange, ResponseType, Room, RoomBooking, RoomList, Sensitivity,
    Subscription, SubscriptionEncryption, WeekIndex, When,
};
use crate::permissions::Operation;
use crate::time::{
    format_civil, format_iso_z, format_utc, parse_all_day_date, parse_date_time_time_zone,
    parse_instant,
};

/// The MAPI property set orb's named properties live in.
pub const ORB_PROPERTY_SET: &str = "{7c1d0f5e-3b2a-4e8f-9a61-5d2c8b4e0f17}";

/// The single-value extended property carrying orb's match id on events orb creates.
pub const ORB_MATCH_ID_PROPERTY: &str =
    "String {7c1d0f5e-3b2a-4e8f-9a61-5d2c8b4e0f17} Name OrbMatchId";

/// `Prefer` values sent on every request: stable ids and UTC times.
pub const PREFER_IMMUTABLE_ID: &str = "IdType=\"ImmutableId\"";
/// See [`PREFER_IMMUTABLE_ID`].
pub const PREFER_UTC: &str = "outlook.timezone=\"UTC\"";

/// The Graph API root, e.g. `https://graph.microsoft.com/v1.0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiBase {
    url: url::Url,
}

impl ApiBase {
    /// Parses the configured `api_url`. Only `https`, or `http` to a loopback host
    /// (emulators), is accepted: the bearer token must never travel in clear text.
    pub fn new(api_url: &str) -> Result<Self, Error> {
        let url = url::Url::parse(api_url.trim_end_matches('/'))
            .map_err(|e| Error::InvalidInput(format!("api url: {e}")))?;
        check_secure(&url)?;
        Ok(Self { url })
    }

    /// The token scope for this API: `{origin}/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.url.origin().ascii_serialization())
    }

    fn at(&self, segments: &[&str]) -> url::Url {
        let mut url = self.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    fn same_origin(&self, link: &url::Url) -> bool {
        link.origin() == self.url.origin() && link.path().starts_with(self.url.path())
    }
}

pub(crate) fn check_secure(url: &url::Url) -> Result<(), Error> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::InvalidInput(format!(
            "{} must be https (http only for loopback)",
            url.origin().ascii_serialization()
        ))),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(crate) fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_query(mut url: url::Url, pairs: &[(&str, String)]) -> url::Url {
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_query(if query.is_empty() { None } else { Some(&query) });
    url
}

fn request(
    method: Method,
    url: &url::Url,
    body: Option<&Value>,
) -> Result<Request<Vec<u8>>, Error> {
    let mut builder = Request::builder()
        .method(method)
        .uri(url.as_str())
        .header("Prefer", PREFER_IMMUTABLE_ID)
        .header("Prefer", PREFER_UTC)
        .header(header::ACCEPT, "application/json");
    let bytes = match body {
        Some(v) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            serde_json::to_vec(v).map_err(|e| Error::InvalidInput(e.to_string()))?
        }
        None => Vec::new(),
    };
    builder
        .body(bytes)
        .map_err(|e| Error::InvalidInput(format!("request: {e}")))
}

// ---------------------------------------------------------------------------------------
// Subscriptions

/// `POST /subscriptions`.
pub fn build_create_subscription(
    api: &ApiBase,
    new: &NewSubscription,
) -> Result<Request<Vec<u8>>, Error> {
    if new.client_state.chars().count() > 128 {
        return Err(Error::InvalidInput(
            "clientState longer than 128 characters".into(),
        ));
    }
    let mut body = json!({
        "changeType": new.change_type,
        "notificationUrl": new.notification_url,
        "resource": new.resource,
        "expirationDateTime": format_iso_z(new.expiration),
        "clientState": new.client_state,
        "latestSupportedTlsVersion": "v1_2",
    });
    if let Some(url) = &new.lifecycle_notification_url {
        body["lifecycleNotificationUrl"] = json!(url);
    }
    if let Some(enc) = &new.encryption {
        add_encryption(&mut body, enc)?;
        body["includeResourceData"] = json!(true);
    }
    request(Method::POST, &api.at(&["subscriptions"]), Some(&body))
}

fn add_encryption(body: &mut Value, enc: &SubscriptionEncryption) -> Result<(), Error> {
    if enc.certificate_id.is_empty() || enc.certificate_id.chars().count() > 128 {
        return Err(Error::InvalidInput(
            "encryptionCertificateId must be 1 to 128 characters".into(),
        ));
    }
    body["encryptionCertificate"] = json!(enc.certificate_base64_der);
    body["encryptionCertificateId"] = json!(enc.certificate_id);
    Ok(())
}

/// `PATCH /subscriptions/{id}`: new expiry, optionally a new encryption certificate.
pub fn build_renew_subscription(
    api: &ApiBase,
    id: &SubscriptionId,
    expiration: Timestamp,
    encryption: Option<&SubscriptionEncryption>,
) -> Result<Request<Vec<u8>>, Error> {
    let mut body = json!({ "expirationDateTime": format_iso_z(expiration) });
    if let Some(enc) = encryption {
        add_encryption(&mut body, enc)?;
    }
    request(
        Method::PATCH,
        &api.at(&["subscriptions", id.as_str()]),
        Some(&body),
    )
}

/// `POST /subscriptions/{id}/reauthorize`.
pub fn build_reauthorize_subscription(
    api: &ApiBase,
    id: &SubscriptionId,
) -> Result<Request<Vec<u8>>, Error> {
    request(
        Method::POST,
        &api.at(&["subscriptions", id.as_str(), "reauthorize"]),
        None,
    )
}

/// `DELETE /subscriptions/{id}`.
pub fn build_delete_subscription(
    api: &ApiBase,
    id: &SubscriptionId,
) -> Result<Request<Vec<u8>>, Error> {
    request(
        Method::DELETE,
        &api.at(&["subscriptions", id.as_str()]),
        None,
    )
}

/// `GET /subscriptions`.
pub fn build_list_subscriptions(api: &ApiBase) -> Result<Request<Vec<u8>>, Error> {
    request(Method::GET, &api.at(&["subscriptions"]), None)
}

/// Parses one subscription (201 or 200).
pub fn parse_subscription(response: &Response<Vec<u8>>) -> Result<Subscription, Error> {
    let dto: SubscriptionDto = parse_json(response, "subscription")?;
    subscription_from_dto(dto)
}

/// Parses a page of subscriptions.
pub fn parse_subscriptions_page(response: &Response<Vec<u8>>) -> Result<Page<Subscription>, Error> {
    let page: PageDto<SubscriptionDto> = parse_json(response, "list_subscriptions")?;
    Ok(Page {
        items: page
            .value
            .into_iter()
            .map(subscription_from_dto)
            .collect::<Result<_, _>>()?,
        next_link: page.next_link,
    })
}

fn subscription_from_dto(dto: SubscriptionDto) -> Result<Subscription, Error> {
    let invalid = |detail: &str| Error::InvalidResponse {
        operation: "subscription",
        detail: detail.into(),
    };
    Ok(Subscription {
        id: SubscriptionId::new(dto.id.unwrap_or_default()).map_err(|_| invalid("no id"))?,
        resource: dto.resource.unwrap_or_default(),
        change_type: dto.change_type.unwrap_or_default(),
        notification_url: dto.notification_url.unwrap_or_default(),
        lifecycle_notification_url: dto.lifecycle_notification_url,
        expiration: parse_instant(dto.expiration_date_time.as_deref().unwrap_or(""))
            .map_err(|_| invalid("bad expirationDateTime"))?,
        include_resource_data: dto.include_resource_data.unwrap_or(false),
        encryption_certificate_id: dto.encryption_certificate_id,
        application_id: dto.application_id,
    })
}

// ---------------------------------------------------------------------------------------
// Events

fn user_events(api: &ApiBase, mailbox: &Mailbox, rest: &[&str]) -> url::Url {
    let mut segs = vec!["users", mailbox.as_str(), "events"];
    segs.extend_from_slice(rest);
    api.at(&segs)
}

fn expand_match_id() -> (&'static str, String) {
    (
        "$expand",
        format!("singleValueExtendedProperties($filter=id eq '{ORB_MATCH_ID_PROPERTY}')"),
    )
}

/// `POST /users/{organizer}/events`: the room as a `resource` attendee and as
/// `location` with `locationEmailAddress`, a `transactionId`, and `OrbMatchId`.
pub fn build_create_event(
    api: &ApiBase,
    organizer: &Mailbox,
    event: &NewEvent,
) -> Result<Request<Vec<u8>>, Error> {
    if event.transaction_id.is_empty() {
        return Err(Error::InvalidInput("transactionId is required".into()));
    }
    let mut body = json!({
        "subject": event.subject,
        "allowNewTimeProposals": false,
        "responseRequested": true,
        "showAs": "busy",
        "transactionId": event.transaction_id,
        "singleValueExtendedProperties": [
            {"id": ORB_MATCH_ID_PROPERTY, "value": event.orb_match_id.as_str()}
        ],
    });
    if let Some(text) = &event.body {
        body["body"] = json!({"contentType": "text", "content": text});
    }
    set_when(&mut body, &event.when)?;
    body["attendees"] = attendees_json(&event.attendees, event.room.as_ref());
    if let Some(room) = &event.room {
        body["location"] = room_location_json(room);
    }
    if let Some(r) = &event.recurrence {
        body["recurrence"] = recurrence_json(r);
    }
    if let Some(s) = event.sensitivity {
        body["sensitivity"] = json!(sensitivity_str(s));
    }
    let url = with_query(user_events(api, organizer, &[]), &[expand_match_id()]);
    request(Method::POST, &url, Some(&body))
}

/// `PATCH /users/{mailbox}/events/{id}`.
pub fn build_update_event(
    api: &ApiBase,
    mailbox: &Mailbox,
    id: &GraphEventId,
    patch: &EventPatch,
) -> Result<Request<Vec<u8>>, Error> {
    let mut body = json!({});
    if let Some(s) = &patch.subject {
        body["subject"] = json!(s);
    }
    if let Some(text) = &patch.body {
        body["body"] = json!({"contentType": "text", "content": text});
    }
    if let Some(when) = &patch.when {
        set_when(&mut body, when)?;
    }
    match (&patch.room, &patch.attendees) {
        (Some(_), None) => {
            return Err(Error::InvalidInput(
                "changing the room needs the complete attendee list".into(),
            ));
        }
        (room, Some(attendees)) => {
            let room = room.as_ref().and_then(|r| r.as_ref());
            body["attendees"] = attendees_json(attendees, room);
        }
        (None, None) => {}
    }
    match &patch.room {
        Some(Some(room)) => body["location"] = room_location_json(room),
        Some(None) => body["location"] = json!({"displayName": ""}),
        None => {}
    }
    if let Some(r) = &patch.recurrence {
        body["recurrence"] = recurrence_json(r);
    }
    if let Some(m) = &patch.orb_match_id {
        body["singleValueExtendedProperties"] =
            json!([{"id": ORB_MATCH_ID_PROPERTY, "value": m.as_str()}]);
    }
    let url = with_query(
        user_events(api, mailbox, &[id.as_str()]),
        &[expand_match_id()],
    );
    request(Method::PATCH, &url, Some(&body))
}

/// `GET /users/{mailbox}/events/{id}` with `OrbMatchId` expanded.
pub fn build_get_event(
    api: &ApiBase,
    mailbox: &Mailbox,
    id: &GraphEventId,
) -> Result<Request<Vec<u8>>, Error> {
    let url = with_query(
        user_events(api, mailbox, &[id.as_str()]),
        &[expand_match_id()],
    );
    request(Method::GET, &url, None)
}

/// `POST /users/{mailbox}/events/{id}/cancel` (organizer only; also on one occurrence).
pub fn build_cancel_event(
    api: &ApiBase,
    mailbox: &Mailbox,
    id: &GraphEventId,
    comment: Option<&str>,
) -> Result<Request<Vec<u8>>, Error> {
    let body = match comment {
        Some(c) => json!({"comment": c}),
        None => json!({}),
    };
    request(
        Method::POST,
        &user_events(api, mailbox, &[id.as_str(), "cancel"]),
        Some(&body),
    )
}

/// `POST /users/{mailbox}/events/{id}/decline`: an attendee (here: the room) declines
/// the meeting; `sendResponse` tells the organizer, with `comment`.
pub fn build_decline_event(
    api: &ApiBase,
    mailbox: &Mailbox,
    id: &GraphEventId,
    comment: Option<&str>,
) -> Result<Request<Vec<u8>>, Error> {
    let mut body = json!({"sendResponse": true});
    if let Some(c) = comment {
        body["comment"] = json!(c);
    }
    request(
        Method::POST,
        &user_events(api, mailbox, &[id.as_str(), "decline"]),
        Some(&body),
    )
}

/// `DELETE /users/{mailbox}/events/{id}`.
pub fn build_delete_event(
    api: &ApiBase,
    mailbox: &Mailbox,
    id: &GraphEventId,
) -> Result<Request<Vec<u8>>, Error> {
    request(
        Method::DELETE,
        &user_events(api, mailbox, &[id.as_str()]),
        None,
    )
}

/// `GET /users/{mailbox}/events?$filter=singleValueExtendedProperties/Any(…)`.
pub fn build_find_events_by_match_id(
    api: &ApiBase,
    mailbox: &Mailbox,
    match_id: &OrbMatchId,
) -> Result<Request<Vec<u8>>, Error> {
    let filter = format!(
        "singleValueExtendedProperties/Any(ep: ep/id eq '{ORB_MATCH_ID_PROPERTY}' and ep/value eq '{}')",
        odata_string(match_id.as_str())
    );
    let url = with_query(
        user_events(api, mailbox, &[]),
        &[("$filter", filter), expand_match_id()],
    );
    request(Method::GET, &url, None)
}

/// `GET /users/{mailbox}/events?$filter=iCalUId eq '…'`.
pub fn build_find_events_by_ical_uid(
    api: &ApiBase,
    mailbox: &Mailbox,
    ical_uid: &IcalUid,
) -> Result<Request<Vec<u8>>, Error> {
    let filter = format!("iCalUId eq '{}'", odata_string(ical_uid.as_str()));
    let url = with_query(
        user_events(api, mailbox, &[]),
        &[("$filter", filter), expand_match_id()],
    );
    request(Method::GET, &url, None)
}

/// `GET /users/{mailbox}/events/{master}/instances?startDateTime&endDateTime`.
pub fn build_list_instances(
    api: &ApiBase,
    mailbox: &Mailbox,
    master: &GraphEventId,
    start: Timestamp,
    end: Timestamp,
) -> Result<Request<Vec<u8>>, Error> {
    let url = with_query(
        user_events(api, mailbox, &[master.as_str(), "instances"]),
        &window(start, end),
    );
    request(Method::GET, &url, None)
}

/// `GET /users/{mailbox}/calendarView?startDateTime&endDateTime` (expanded series).
pub fn build_calendar_view(
    api: &ApiBase,
    mailbox: &Mailbox,
    start: Timestamp,
    end: Timestamp,
) -> Result<Request<Vec<u8>>, Error> {
    let url = with_query(
        api.at(&["users", mailbox.as_str(), "calendarView"]),
        &window(start, end),
    );
    request(Method::GET, &url, None)
}

/// `GET /users/{mailbox}/calendarView/delta`: a new chain over a window, or a stored
/// next/delta link (used verbatim, after checking it points at the configured API).
pub fn build_calendar_view_delta(
    api: &ApiBase,
    mailbox: &Mailbox,
    cursor: &crate::model::DeltaCursor,
    page_size: Option<u32>,
) -> Result<Request<Vec<u8>>, Error> {
    let mut req = match cursor {
        crate::model::DeltaCursor::Start { start, end } => {
            let url = with_query(
                api.at(&["users", mailbox.as_str(), "calendarView", "delta"]),
                &window(*start, *end),
            );
            request(Method::GET, &url, None)?
        }
        crate::model::DeltaCursor::Link(link) => build_follow_link(api, link)?,
    };
    if let Some(n) = page_size {
        let v = HeaderValue::from_str(&format!("odata.maxpagesize={n}"))
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        req.headers_mut().append("Prefer", v);
    }
    Ok(req)
}

/// A GET of an `@odata.nextLink` / `@odata.deltaLink`, refused unless it points at the
/// configured API (a link elsewhere would receive orb's bearer token).
pub fn build_follow_link(api: &ApiBase, link: &str) -> Result<Request<Vec<u8>>, Error> {
    let url = url::Url::parse(link)
        .map_err(|_| Error::InvalidInput("paging link is not a URL".into()))?;
    if !api.same_origin(&url) {
        return Err(Error::InvalidInput(
            "paging link points outside the configured Graph API".into(),
        ));
    }
    request(Method::GET, &url, None)
}

fn window(start: Timestamp, end: Timestamp) -> [(&'static str, String); 2] {
    [
        ("startDateTime", format_iso_z(start)),
        ("endDateTime", format_iso_z(end)),
    ]
}

fn odata_string(s: &str) -> String {
    s.replace('\'', "''")
}

fn set_when(body: &mut Value, when: &When) -> Result<(), Error> {
    match when {
        When::Timed { start, end } => {
            if end <= start {
                return Err(Error::InvalidInput("event ends before it starts".into()));
            }
            body["start"] = json!({"dateTime": format_utc(*start), "timeZone": "UTC"});
            body["end"] = json!({"dateTime": format_utc(*end), "timeZone": "UTC"});
            body["isAllDay"] = json!(false);
        }
        When::AllDay { start, end } => {
            if end <= start {
                return Err(Error::InvalidInput(
                    "all-day event ends before it starts".into(),
                ));
            }
            body["start"] = json!({"dateTime": format_civil(start.to_datetime(jiff::civil::Time::midnight())), "timeZone": "UTC"});
            body["end"] = json!({"dateTime": format_civil(end.to_datetime(jiff::civil::Time::midnight())), "timeZone": "UTC"});
            body["isAllDay"] = json!(true);
        }
    }
    Ok(())
}

fn attendees_json(attendees: &[NewAttendee], room: Option<&RoomBooking>) -> Value {
    let mut list: Vec<Value> = attendees
        .iter()
        .map(|a| {
            json!({
                "emailAddress": {"address": a.address, "name": a.name.clone().unwrap_or_else(|| a.address.clone())},
                "type": attendee_type_str(a.kind),
            })
        })
        .collect();
    if let Some(room) = room {
        list.push(json!({
            "emailAddress": {"address": room.mailbox.as_str(), "name": room.display_name},
            "type": "resource",
        }));
    }
    Value::Array(list)
}

fn room_location_json(room: &RoomBooking) -> Value {
    json!({
        "displayName": room.display_name,
        "locationEmailAddress": room.mailbox.as_str(),
        "locationType": "conferenceRoom",
    })
}

fn attendee_type_str(kind: AttendeeType) -> &'static str {
    match kind {
        AttendeeType::Required => "required",
        AttendeeType::Optional => "optional",
        AttendeeType::Resource => "resource",
    }
}

fn sensitivity_str(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Normal => "normal",
        Sensitivity::Personal => "personal",
        Sensitivity::Private => "private",
        Sensitivity::Confidential => "confidential",
    }
}

fn weekday_str(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "monday",
        Weekday::Tuesday => "tuesday",
        Weekday::Wednesday => "wednesday",
        Weekday::Thursday => "thursday",
        Weekday::Friday => "friday",
        Weekday::Saturday => "saturday",
        Weekday::Sunday => "sunday",
    }
}

fn index_str(i: WeekIndex) -> &'static str {
    match i {
        WeekIndex::First => "first",
        WeekIndex::Second => "second",
        WeekIndex::Third => "third",
        WeekIndex::Fourth => "fourth",
        WeekIndex::Last => "last",
    }
}

fn recurrence_json(r: &Recurrence) -> Value {
    let days = |d: &[Weekday]| d.iter().map(|d| weekday_str(*d)).collect::<Vec<_>>();
    let pattern = match &r.pattern {
        RecurrencePattern::Daily { interval } => json!({"type": "daily", "interval": interval}),
        RecurrencePattern::Weekly {
            interval,
            days: d,
            first_day_of_week,
        } => json!({"type": "weekly", "interval": interval, "daysOfWeek": days(d),
                    "firstDayOfWeek": weekday_str(*first_day_of_week)}),
        RecurrencePattern::AbsoluteMonthly {
            interval,
            day_of_month,
        } => json!({"type": "absoluteMonthly", "interval": interval, "dayOfMonth": day_of_month}),
        RecurrencePattern::RelativeMonthly {
            interval,
            days: d,
            index,
        } => json!({"type": "relativeMonthly", "interval": interval, "daysOfWeek": days(d),
                    "index": index_str(*index)}),
        RecurrencePattern::AbsoluteYearly {
            interval,
            day_of_month,
            month,
        } => json!({"type": "absoluteYearly", "interval": interval, "dayOfMonth": day_of_month,
                    "month": month}),
        RecurrencePattern::RelativeYearly {
            interval,
            days: d,
            index,
            month,
        } => json!({"type": "relativeYearly", "interval": interval, "daysOfWeek": days(d),
                    "index": index_str(*index), "month": month}),
    };
    let mut range = match &r.range {
        RecurrenceRange::EndDate { start, end } => {
            json!({"type": "endDate", "startDate": start.to_string(), "endDate": end.to_string()})
        }
        RecurrenceRange::NoEnd { start } => {
            json!({"type": "noEnd", "startDate": start.to_string()})
        }
        RecurrenceRange::Numbered { start, count } => {
            json!({"type": "numbered", "startDate": start.to_string(), "numberOfOccurrences": count})
        }
    };
    if let Some(tz) = &r.time_zone {
        range["recurrenceTimeZone"] = json!(tz);
    }
    json!({"pattern": pattern, "range": range})
}

/// Parses one event (200/201).
pub fn parse_event(response: &Response<Vec<u8>>) -> Result<Event, Error> {
    let dto: EventDto = parse_json(response, "event")?;
    event_from_dto(dto)
}

/// Parses an event from raw Graph JSON: the decrypted `encryptedContent` of a rich
/// notification (only the `$select`ed properties; `id`, `start` and `end` must be among
/// them) or any stored event body.
pub fn parse_event_json(json: &[u8]) -> Result<Event, Error> {
    let dto: EventDto = serde_json::from_slice(json).map_err(|e| Error::InvalidResponse {
        operation: "event",
        detail: format!("not the expected JSON: {e}"),
    })?;
    event_from_dto(dto)
}

/// Parses a page of events (list, find, instances, calendarView).
pub fn parse_events_page(response: &Response<Vec<u8>>) -> Result<Page<Event>, Error> {
    let page: PageDto<EventDto> = parse_json(response, "events")?;
    Ok(Page {
        items: page
            .value
            .into_iter()
            .map(event_from_dto)
            .collect::<Result<_, _>>()?,
        next_link: page.next_link,
    })
}

/// Parses one page of a calendarView delta round.
pub fn parse_delta_page(response: &Response<Vec<u8>>) -> Result<DeltaPage, Error> {
    let page: PageDto<EventDto> = parse_json(response, "calendar_view_delta")?;
    let next = match (page.next_link, page.delta_link) {
        (Some(next), _) => DeltaNext::NextLink(next),
        (None, Some(delta)) => DeltaNext::DeltaLink(delta),
        (None, None) => {
            return Err(Error::InvalidResponse {
                operation: "calendar_view_delta",
                detail: "neither @odata.nextLink nor @odata.deltaLink".into(),
            });
        }
    };
    let mut items = Vec::with_capacity(page.value.len());
    for dto in page.value {
        if let Some(removed) = &dto.removed {
            let id = GraphEventId::new(dto.id.clone().unwrap_or_default()).map_err(|_| {
                Error::InvalidResponse {
                    operation: "calendar_view_delta",
                    detail: "@removed item without id".into(),
                }
            })?;
            items.push(DeltaItem::Removed {
                id,
                reason: removed.reason.clone().unwrap_or_else(|| "deleted".into()),
            });
        } else {
            items.push(DeltaItem::Changed(Box::new(event_from_dto(dto)?)));
        }
    }
    Ok(DeltaPage { items, next })
}

fn event_from_dto(dto: EventDto) -> Result<Event, Error> {
    let invalid = |detail: String| Error::InvalidResponse {
        operation: "event",
        detail,
    };
    let id = GraphEventId::new(dto.id.unwrap_or_default())
        .map_err(|_| invalid("event without id".into()))?;
    let all_day = dto.is_all_day.unwrap_or(false);
    let (Some(start), Some(end)) = (dto.start, dto.end) else {
        return Err(invalid("event without start/end".into()));
    };
    let when = if all_day {
        When::AllDay {
            start: parse_all_day_date(&start.date_time).map_err(|e| invalid(e.to_string()))?,
            end: parse_all_day_date(&end.date_time).map_err(|e| invalid(e.to_string()))?,
        }
    } else {
        When::Timed {
            start: parse_date_time_time_zone(&start.date_time, &start.time_zone)
                .map_err(|e| invalid(e.to_string()))?,
            end: parse_date_time_time_zone(&end.date_time, &end.time_zone)
                .map_err(|e| invalid(e.to_string()))?,
        }
    };
    let kind = match dto.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("occurrence") => EventKind::Occurrence,
        Some("exception") => EventKind::Exception,
        Some("seriesmaster") => EventKind::SeriesMaster,
        _ => EventKind::SingleInstance,
    };
    let orb_match_id = dto
        .single_value_extended_properties
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.id.eq_ignore_ascii_case(ORB_MATCH_ID_PROPERTY))
        .and_then(|p| p.value)
        .and_then(|v| OrbMatchId::new(v).ok());
    let recurrence = match dto.recurrence {
        Some(r) => Some(recurrence_from_dto(r).map_err(invalid)?),
        None => None,
    };
    Ok(Event {
        id,
        ical_uid: dto.ical_uid.and_then(|u| IcalUid::new(u).ok()),
        kind,
        series_master_id: dto.series_master_id.and_then(|s| GraphEventId::new(s).ok()),
        original_start: dto.original_start.and_then(|s| parse_instant(&s).ok()),
        subject: dto.subject,
        body: dto.body.and_then(|b| b.content),
        when,
        organizer: dto
            .organizer
            .and_then(|o| o.email_address)
            .map(email_from_dto),
        is_organizer: dto.is_organizer.unwrap_or(false),
        attendees: dto
            .attendees
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| {
                Some(Attendee {
                    email: email_from_dto(a.email_address?),
                    kind: match a.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
                        Some("optional") => AttendeeType::Optional,
                        Some("resource") => AttendeeType::Resource,
                        _ => AttendeeType::Required,
                    },
                    response: response_from_str(a.status.and_then(|s| s.response).as_deref()),
                })
            })
            .collect(),
        location: dto.location.and_then(location_from_dto),
        locations: dto
            .locations
            .unwrap_or_default()
            .into_iter()
            .filter_map(location_from_dto)
            .collect(),
        is_cancelled: dto.is_cancelled.unwrap_or(false),
        sensitivity: match dto
            .sensitivity
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("personal") => Sensitivity::Personal,
            Some("private") => Sensitivity::Private,
            Some("confidential") => Sensitivity::Confidential,
            _ => Sensitivity::Normal,
        },
        show_as: dto.show_as,
        response: dto
            .response_status
            .map(|r| response_from_str(r.response.as_deref())),
        recurrence,
        orb_match_id,
        transaction_id: dto.transaction_id,
        change_key: dto.change_key,
        created: dto.created_date_time.and_then(|s| parse_instant(&s).ok()),
        last_modified: dto
            .last_modified_date_time
            .and_then(|s| parse_instant(&s).ok()),
    })
}

fn email_from_dto(e: EmailDto) -> EmailAddress {
    EmailAddress {
        address: e.address.unwrap_or_default(),
        name: e.name,
    }
}

fn location_from_dto(l: LocationDto) -> Option<Location> {
    let display_name = l.display_name.unwrap_or_default();
    let email = l.location_email_address.filter(|e| !e.is_empty());
    if display_name.is_empty() && email.is_none() {
        return None;
    }
    Some(Location {
        display_name,
        email,
    })
}

fn response_from_str(s: Option<&str>) -> ResponseType {
    match s.map(str::to_ascii_lowercase).as_deref() {
        Some("organizer") => ResponseType::Organizer,
        Some("tentativelyaccepted") => ResponseType::TentativelyAccepted,
        Some("accepted") => ResponseType::Accepted,
        Some("declined") => ResponseType::Declined,
        Some("notresponded") => ResponseType::NotResponded,
        _ => ResponseType::None,
    }
}

fn weekday_from_str(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

fn recurrence_from_dto(r: RecurrenceDto) -> Result<Recurrence, String> {
    let p = r.pattern.ok_or("recurrence without pattern")?;
    let interval = p.interval.unwrap_or(1).max(1);
    let days = p
        .days_of_week
        .unwrap_or_default()
        .iter()
        .map(|d| weekday_from_str(d).ok_or_else(|| format!("bad day {d:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let index = match p.index.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("second") => WeekIndex::Second,
        Some("third") => WeekIndex::Third,
        Some("fourth") => WeekIndex::Fourth,
        Some("last") => WeekIndex::Last,
        _ => WeekIndex::First,
    };
    let day_of_month = p.day_of_month.unwrap_or(1);
    let month = p.month.unwrap_or(1);
    let pattern = match p.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("daily") => RecurrencePattern::Daily { interval },
        Some("weekly") => RecurrencePattern::Weekly {
            interval,
            days,
            first_day_of_week: p
                .first_day_of_week
                .as_deref()
                .and_then(weekday_from_str)
                .unwrap_or(Weekday::Sunday),
        },
        Some("absolutemonthly") => RecurrencePattern::AbsoluteMonthly {
            interval,
            day_of_month,
        },
        Some("relativemonthly") => RecurrencePattern::RelativeMonthly {
            interval,
            days,
            index,
        },
        Some("absoluteyearly") => RecurrencePattern::AbsoluteYearly {
            interval,
            day_of_month,
            month,
        },
        Some("relativeyearly") => RecurrencePattern::RelativeYearly {
            interval,
            days,
            index,
            month,
        },
        other => return Err(format!("unknown recurrence type {other:?}")),
    };
    let range = r.range.ok_or("recurrence without range")?;
    let date = |s: Option<&str>| -> Result<Date, String> {
        s.ok_or("missing date")?
            .parse::<Date>()
            .map_err(|e| e.to_string())
    };
    let start = date(range.start_date.as_deref())?;
    let range_value = match range
        .kind
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("enddate") => RecurrenceRange::EndDate {
            start,
            end: date(range.end_date.as_deref())?,
        },
        Some("numbered") => RecurrenceRange::Numbered {
            start,
            count: range.number_of_occurrences.unwrap_or(1).max(1),
        },
        _ => RecurrenceRange::NoEnd { start },
    };
    Ok(Recurrence {
        pattern,
        range: range_value,
        time_zone: range.recurrence_time_zone.filter(|t| !t.is_empty()),
    })
}

// ---------------------------------------------------------------------------------------
// Places

/// `GET /places/microsoft.graph.room` (paged, 100 per page by default).
pub fn build_list_rooms(api: &ApiBase) -> Result<Request<Vec<u8>>, Error> {
    request(
        Method::GET,
        &api.at(&["places", "microsoft.graph.room"]),
        None,
    )
}

/// `GET /places/microsoft.graph.roomlist`.
pub fn build_list_room_lists(api: &ApiBase) -> Result<Request<Vec<u8>>, Error> {
    request(
        Method::GET,
        &api.at(&["places", "microsoft.graph.roomlist"]),
        None,
    )
}

/// `GET /places/{roomlist-email}/microsoft.graph.roomlist/rooms`.
pub fn build_list_rooms_in_list(
    api: &ApiBase,
    list_email: &str,
) -> Result<Request<Vec<u8>>, Error> {
    let list = Mailbox::new(list_email)?;
    request(
        Method::GET,
        &api.at(&["places", list.as_str(), "microsoft.graph.roomlist", "rooms"]),
        None,
    )
}

/// `GET /places/{email}`.
pub fn build_get_room(api: &ApiBase, room: &RoomMailbox) -> Result<Request<Vec<u8>>, Error> {
    request(Method::GET, &api.at(&["places", room.as_str()]), None)
}

/// Parses a page of rooms (tolerating `capacity` as string, both wheelchair spellings).
pub fn parse_rooms_page(response: &Response<Vec<u8>>) -> Result<Page<Room>, Error> {
    let page: PageDto<Value> = parse_json(response, "rooms")?;
    Ok(Page {
        items: page.value.iter().filter_map(room_from_value).collect(),
        next_link: page.next_link,
    })
}

/// Parses one room.
pub fn parse_room(response: &Response<Vec<u8>>) -> Result<Room, Error> {
    let value: Value = parse_json(response, "room")?;
    room_from_value(&value).ok_or_else(|| Error::InvalidResponse {
        operation: "get_room",
        detail: "not a room with an emailAddress".into(),
    })
}

/// Parses a page of room lists.
pub fn parse_room_lists_page(response: &Response<Vec<u8>>) -> Result<Page<RoomList>, Error> {
    let page: PageDto<Value> = parse_json(response, "room_lists")?;
    Ok(Page {
        items: page
            .value
            .iter()
            .filter_map(|v| {
                Some(RoomList {
                    email: v.get("emailAddress")?.as_str()?.to_owned(),
                    display_name: str_field(v, "displayName").unwrap_or_default(),
                    id: str_field(v, "id"),
                })
            })
            .collect(),
        next_link: page.next_link,
    })
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn room_from_value(v: &Value) -> Option<Room> {
    if let Some(t) = v.get("@odata.type").and_then(Value::as_str)
        && !t.eq_ignore_ascii_case("#microsoft.graph.room")
    {
        return None;
    }
    let mailbox = RoomMailbox::new(v.get("emailAddress")?.as_str()?).ok()?;
    let int = |name: &str| -> Option<i64> {
        match v.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    Some(Room {
        mailbox,
        display_name: str_field(v, "displayName").unwrap_or_default(),
        id: str_field(v, "id"),
        capacity: int("capacity").and_then(|c| u32::try_from(c).ok()),
        building: str_field(v, "building").filter(|b| !b.is_empty()),
        floor_number: int("floorNumber").and_then(|f| i32::try_from(f).ok()),
        booking_type: match str_field(v, "bookingType")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("standard") => BookingType::Standard,
            Some("reserved") => BookingType::Reserved,
            _ => BookingType::Unknown,
        },
    })
}

// ---------------------------------------------------------------------------------------
// Mail

/// `POST /users/{sender}/sendMail` (plain text).
pub fn build_send_mail(
    api: &ApiBase,
    sender: &Mailbox,
    mail: &Mail,
) -> Result<Request<Vec<u8>>, Error> {
    if mail.to.is_empty() {
        return Err(Error::InvalidInput("mail without recipients".into()));
    }
    let to: Vec<Value> = mail
        .to
        .iter()
        .map(|a| json!({"emailAddress": {"address": a}}))
        .collect();
    let mut body = json!({
        "message": {
            "subject": mail.subject,
            "body": {"contentType": "Text", "content": mail.body},
            "toRecipients": to,
        }
    });
    if !mail.save_to_sent_items {
        body["saveToSentItems"] = json!(false);
    }
    request(
        Method::POST,
        &api.at(&["users", sender.as_str(), "sendMail"]),
        Some(&body),
    )
}

// ---------------------------------------------------------------------------------------
// Responses and errors

/// One page of a paged collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// `@odata.nextLink`, when there are more pages.
    pub next_link: Option<String>,
}

/// Checks a response that carries no body (204/202).
pub fn parse_empty(
    response: &Response<Vec<u8>>,
    operation: Operation,
    mailbox: Option<&Mailbox>,
) -> Result<(), Error> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(parse_error(response, operation, mailbox))
    }
}

/// Whether the response is a throttling answer the transport retries (429, 503, 504).
pub fn is_throttling(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 503 | 504)
}

/// `Retry-After` as delay-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = at.as_second().saturating_sub(now.as_second());
    Some(Duration::from_secs(u64::try_from(delta).unwrap_or(0)))
}

/// Graph's error JSON → a typed [`Error`]. `mailbox` is the mailbox the call addressed
/// (a 403 `ErrorAccessDenied` on a mailbox call is mailbox scoping).
pub fn parse_error(
    response: &Response<Vec<u8>>,
    operation: Operation,
    mailbox: Option<&Mailbox>,
) -> Error {
    let status = response.status().as_u16();
    let dto: Option<ErrorEnvelope> = serde_json::from_slice(response.body()).ok();
    let (code, message, inner_request_id) = match dto.and_then(|e| e.error) {
        Some(e) => (
            e.code.unwrap_or_else(|| "unknown".into()),
            e.message.unwrap_or_default(),
            e.inner_error.and_then(|i| i.request_id),
        ),
        None => ("unknown".into(), String::new(), None),
    };
    let request_id = response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(inner_request_id);
    let lower = code.to_ascii_lowercase();
    if status == 410 || lower == "syncstatenotfound" || lower == "resyncrequired" {
        return Error::ResyncRequired { code, request_id };
    }
    if status == 400
        && matches!(
            operation,
            Operation::CreateSubscription | Operation::RenewSubscription
        )
        && let Some(max_minutes) = expiration_limit(&message)
    {
        return Error::ExpirationTooFar {
            max_minutes,
            request_id,
        };
    }
    match status {
        401 => Error::Unauthorized { code, request_id },
        403 if lower == "erroraccessdenied" && operation.is_mailbox_call() => {
            Error::MailboxAccessDenied {
                mailbox: mailbox.map(|m| m.to_string()).unwrap_or_default(),
                code,
                request_id,
            }
        }
        403 => Error::Forbidden { code, request_id },
        404 => Error::NotFound { code, request_id },
        _ => Error::Graph {
            status,
            code,
            request_id,
        },
    }
}

/// "Subscription expiration can only be N minutes in the future": Graph offers the
/// limit only in the message text (graph.md §15.1), so it is read from there.
fn expiration_limit(message: &str) -> Option<u32> {
    let lower = message.to_ascii_lowercase();
    let rest = lower.split("can only be").nth(1)?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if !rest.trim_start()[digits.len()..]
        .trim_start()
        .starts_with("minute")
    {
        return None;
    }
    digits.parse().ok()
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    response: &Response<Vec<u8>>,
    operation: &'static str,
) -> Result<T, Error> {
    serde_json::from_slice(response.body()).map_err(|e| Error::InvalidResponse {
        operation,
        detail: format!("not the expected JSON: {e}"),
    })
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorDto>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDto {
    code: Option<String>,
    message: Option<String>,
    #[serde(alias = "innererror")]
    inner_error: Option<InnerErrorDto>,
}

#[derive(Deserialize)]
struct InnerErrorDto {
    #[serde(rename = "request-id")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct PageDto<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionDto {
    id: Option<String>,
    resource: Option<String>,
    change_type: Option<String>,
    notification_url: Option<String>,
    lifecycle_notification_url: Option<String>,
    expiration_date_time: Option<String>,
    include_resource_data: Option<bool>,
    encryption_certificate_id: Option<String>,
    application_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventDto {
    id: Option<String>,
    #[serde(rename = "iCalUId")]
    ical_uid: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    series_master_id: Option<String>,
    original_start: Option<String>,
    subject: Option<String>,
    body: Option<BodyDto>,
    start: Option<DateTimeTzDto>,
    end: Option<DateTimeTzDto>,
    is_all_day: Option<bool>,
    organizer: Option<RecipientDto>,
    is_organizer: Option<bool>,
    attendees: Option<Vec<AttendeeDto>>,
    location: Option<LocationDto>,
    locations: Option<Vec<LocationDto>>,
    is_cancelled: Option<bool>,
    sensitivity: Option<String>,
    show_as: Option<String>,
    response_status: Option<StatusDto>,
    recurrence: Option<RecurrenceDto>,
    single_value_extended_properties: Option<Vec<ExtPropDto>>,
    transaction_id: Option<String>,
    change_key: Option<String>,
    created_date_time: Option<String>,
    last_modified_date_time: Option<String>,
    #[serde(rename = "@removed")]
    removed: Option<RemovedDto>,
}

#[derive(Deserialize)]
struct BodyDto {
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DateTimeTzDto {
    date_time: String,
    #[serde(default)]
    time_zone: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecipientDto {
    email_address: Option<EmailDto>,
}

#[derive(Deserialize)]
struct EmailDto {
    address: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttendeeDto {
    email_address: Option<EmailDto>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<StatusDto>,
}

#[derive(Deserialize)]
struct StatusDto {
    response: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocationDto {
    display_name: Option<String>,
    location_email_address: Option<String>,
}

#[derive(Deserialize)]
struct RecurrenceDto {
    pattern: Option<PatternDto>,
    range: Option<RangeDto>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatternDto {
    #[serde(rename = "type")]
    kind: Option<String>,
    interval: Option<u32>,
    month: Option<u8>,
    day_of_month: Option<u8>,
    days_of_week: Option<Vec<String>>,
    first_day_of_week: Option<String>,
    index: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeDto {
    #[serde(rename = "type")]
    kind: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    number_of_occurrences: Option<u32>,
    recurrence_time_zone: Option<String>,
}

#[derive(Deserialize)]
struct ExtPropDto {
    id: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct RemovedDto {
    reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> ApiBase {
        ApiBase::new("https://graph.microsoft.com/v1.0").unwrap()
    }

    fn response(status: u16, body: &str) -> Response<Vec<u8>> {
        Response::builder()
            .status(status)
            .header("request-id", "req-1")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn api_base_refuses_plain_http_off_loopback() {
        assert!(ApiBase::new("http://graph.example.com/v1.0").is_err());
        assert!(ApiBase::new("http://127.0.0.1:8080/v1.0").is_ok());
        assert_eq!(api().scope(), "https://graph.microsoft.com/.default");
    }

    #[test]
    fn create_event_books_the_room_three_ways() {
        let organizer = Mailbox::new("alice@example.com").unwrap();
        let event = NewEvent {
            subject: "Budget".into(),
            body: None,
            when: When::Timed {
                start: "2026-03-02T09:00:00Z".parse().unwrap(),
                end: "2026-03-02T10:00:00Z".parse().unwrap(),
            },
            room: Some(RoomBooking {
                mailbox: RoomMailbox::new("room-2.14@example.com").unwrap(),
                display_name: "Room 2.14".into(),
            }),
            attendees: vec![],
            recurrence: None,
            orb_match_id: OrbMatchId::new("m-1").unwrap(),
            transaction_id: "t-1".into(),
            sensitivity: None,
        };
        let req = build_create_event(&api(), &organizer, &event).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert!(req.uri().to_string().starts_with(
            "https://graph.microsoft.com/v1.0/users/alice@example.com/events?$expand="
        ));
        let prefer: Vec<_> = req.headers().get_all("Prefer").iter().collect();
        assert_eq!(prefer, [PREFER_IMMUTABLE_ID, PREFER_UTC]);
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body["attendees"][0]["type"], "resource");
        assert_eq!(
            body["attendees"][0]["emailAddress"]["address"],
            "room-2.14@example.com"
        );
        assert_eq!(
            body["location"]["locationEmailAddress"],
            "room-2.14@example.com"
        );
        assert_eq!(body["transactionId"], "t-1");
        assert_eq!(
            body["singleValueExtendedProperties"][0]["id"],
            ORB_MATCH_ID_PROPERTY
        );
        assert_eq!(body["start"]["dateTime"], "2026-03-02T09:00:00.0000000");
        assert_eq!(body["allowNewTimeProposals"], false);
    }

    #[test]
    fn filters_are_percent_encoded_and_quoted() {
        let mb = Mailbox::new("room@example.com").unwrap();
        let req =
            build_find_events_by_ical_uid(&api(), &mb, &IcalUid::new("it's").unwrap()).unwrap();
        let uri = req.uri().to_string();
        assert!(
            uri.contains("$filter=iCalUId%20eq%20%27it%27%27s%27"),
            "{uri}"
        );
    }

    #[test]
    fn paging_links_must_stay_on_the_api() {
        assert!(
            build_follow_link(
                &api(),
                "https://graph.microsoft.com/v1.0/users/x/calendarView/delta?$skiptoken=a"
            )
            .is_ok()
        );
        assert!(build_follow_link(&api(), "https://evil.example.com/v1.0/x").is_err());
        assert!(build_follow_link(&api(), "not a url").is_err());
    }

    #[test]
    fn event_parsing_handles_windows_zones_all_day_and_extended_property() {
        let body = format!(
            r#"{{"id":"AAMk=","iCalUId":"040000008200E0","type":"occurrence","seriesMasterId":"M",
               "start":{{"dateTime":"2026-01-15T09:00:00.0000000","timeZone":"W. Europe Standard Time"}},
               "end":{{"dateTime":"2026-01-15T10:00:00.0000000","timeZone":"W. Europe Standard Time"}},
               "attendees":[{{"type":"resource","status":{{"response":"accepted","time":"x"}},
                              "emailAddress":{{"name":"R","address":"r@x.com"}}}}],
               "location":{{"displayName":"R","locationEmailAddress":"r@x.com"}},
               "singleValueExtendedProperties":[{{"id":"{ORB_MATCH_ID_PROPERTY}","value":"m-9"}}],
               "responseStatus":{{"response":"organizer"}},"isOrganizer":true,"unknownField":1}}"#
        );
        let ev = parse_event(&response(200, &body)).unwrap();
        assert_eq!(ev.kind, EventKind::Occurrence);
        assert_eq!(
            ev.when,
            When::Timed {
                start: "2026-01-15T08:00:00Z".parse().unwrap(),
                end: "2026-01-15T09:00:00Z".parse().unwrap()
            }
        );
        assert_eq!(ev.orb_match_id.unwrap().as_str(), "m-9");
        assert_eq!(ev.attendees[0].response, ResponseType::Accepted);
        assert_eq!(ev.response, Some(ResponseType::Organizer));

        let all_day = r#"{"id":"A","isAllDay":true,
            "start":{"dateTime":"2026-03-02T00:00:00.0000000","timeZone":"UTC"},
            "end":{"dateTime":"2026-03-03T00:00:00.0000000","timeZone":"UTC"}}"#;
        let ev = parse_event(&response(200, all_day)).unwrap();
        assert_eq!(
            ev.when,
            When::AllDay {
                start: jiff::civil::date(2026, 3, 2),
                end: jiff::civil::date(2026, 3, 3)
            }
        );
    }

    #[test]
    fn hostile_bodies_never_panic() {
        for body in [
            "",
            "null",
            "[]",
            "{\"id\":5}",
            "{\"value\":7}",
            "\u{0}",
            "{\"id\":\"x\",\"start\":{}}",
        ] {
            let r = response(200, body);
            assert!(parse_event(&r).is_err());
            let _ = parse_events_page(&r);
            let _ = parse_delta_page(&r);
            let _ = parse_rooms_page(&r);
            let _ = parse_subscription(&r);
            let _ = parse_error(&r, Operation::GetEvent, None);
        }
    }

    #[test]
    fn errors_are_typed() {
        let mb = Mailbox::new("room@example.com").unwrap();
        let denied = response(
            403,
            r#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled."}}"#,
        );
        assert!(matches!(
            parse_error(&denied, Operation::CalendarView, Some(&mb)),
            Error::MailboxAccessDenied { ref mailbox, ref request_id, .. }
                if mailbox == "room@example.com" && request_id.as_deref() == Some("req-1")
        ));
        assert!(matches!(
            parse_error(&denied, Operation::ListRooms, None),
            Error::Forbidden { .. }
        ));
        let gone = response(410, r#"{"error":{"code":"Gone"}}"#);
        assert!(matches!(
            parse_error(&gone, Operation::CalendarViewDelta, Some(&mb)),
            Error::ResyncRequired { .. }
        ));
        let sync = response(400, r#"{"error":{"code":"SyncStateNotFound"}}"#);
        assert!(matches!(
            parse_error(&sync, Operation::CalendarViewDelta, Some(&mb)),
            Error::ResyncRequired { .. }
        ));
        let far = response(
            400,
            r#"{"error":{"code":"ExtensionError","message":"Subscription expiration can only be 1440 minutes in the future."}}"#,
        );
        assert!(matches!(
            parse_error(&far, Operation::CreateSubscription, None),
            Error::ExpirationTooFar {
                max_minutes: 1440,
                ..
            }
        ));
        let inner = Response::builder()
            .status(404)
            .body(
                br#"{"error":{"code":"ErrorItemNotFound","innerError":{"request-id":"in-1"}}}"#
                    .to_vec(),
            )
            .unwrap();
        let e = parse_error(&inner, Operation::GetEvent, Some(&mb));
        assert!(matches!(e, Error::NotFound { .. }));
        assert_eq!(e.request_id(), Some("in-1"));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now: Timestamp = "2015-10-21T07:27:00Z".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(60)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn rooms_parse_tolerantly() {
        let body = r##"{"value":[
            {"@odata.type":"#microsoft.graph.room","id":"1","emailAddress":"Room1@x.com","displayName":"One","capacity":"50","bookingType":"standard","floorNumber":2},
            {"id":"2","displayName":"No mail"}],
            "@odata.nextLink":"https://graph.microsoft.com/v1.0/places/microsoft.graph.room?$skip=2"}"##;
        let page = parse_rooms_page(&response(200, body)).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].capacity, Some(50));
        assert_eq!(page.items[0].mailbox.as_str(), "room1@x.com");
        assert!(page.next_link.is_some());
    }

    #[test]
    fn delta_pages_distinguish_removed_items() {
        let body = r##"{"value":[{"@odata.type":"#microsoft.graph.event","id":"gone","@removed":{"reason":"deleted"}}],
                       "@odata.deltaLink":"https://graph.microsoft.com/v1.0/users/r/calendarView/delta?$deltatoken=x"}"##;
        let page = parse_delta_page(&response(200, body)).unwrap();
        assert!(
            matches!(&page.items[0], DeltaItem::Removed { id, reason } if id.as_str() == "gone" && reason == "deleted")
        );
        assert!(matches!(page.next, DeltaNext::DeltaLink(_)));
    }

    #[test]
    fn recurrence_round_trips_through_json() {
        let r = Recurrence {
            pattern: RecurrencePattern::Weekly {
                interval: 1,
                days: vec![Weekday::Monday, Weekday::Thursday],
                first_day_of_week: Weekday::Monday,
            },
            range: RecurrenceRange::Numbered {
                start: jiff::civil::date(2026, 3, 2),
                count: 6,
            },
            time_zone: None,
        };
        let dto: RecurrenceDto = serde_json::from_value(recurrence_json(&r)).unwrap();
        assert_eq!(recurrence_from_dto(dto).unwrap(), r);
    }
}
