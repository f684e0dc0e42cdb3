//! The wire format, as pure functions: `build_*` turn domain values into
//! `http::Request<Vec<u8>>`, `parse_*` turn `http::Response<Vec<u8>>` into domain values
//! or a typed [`Error`]. No I/O, no clock (callers pass `now`), no credentials: the
//! transport adds `Authorization`.
//!
//! Every request carries its [`PathTemplate`] (for the audit hook) in its extensions.

use std::fmt::Write as _;
use std::time::Duration;

use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{ApiErrorDetail, ApiErrors, Error};
use crate::fiql::Fiql;
use crate::ids::{
    BranchId, ExternalLinkId, ExternalLinkType, LocationId, PersonId, ReservationNumber,
    ReservationRef, SearchlistId, SeriesId, TopdeskReservationId,
};
use crate::model::{
    Branch, BranchRef, Location, LocationQuery, NamedRef, NewReservation, NewReservationStatus,
    Occurrences, OptionalTexts, Person, PersonRef, ReservableLocation, Reservation,
    ReservationQuery, ReservationStatus, ReservationUpdate, ReservedFacility, ReservedLocation,
    SeriesDates, SeriesOccurrence,
};
use crate::time::{format_timestamp, parse_timestamp, truncate_to_minute};

/// The media type of a persons v2 collection.
pub const PERSON_V2_COLLECTION: &str = "application/x.topdesk-collection-person-v2+json";
/// The most reservations one page may hold (`$top` maximum).
pub const MAX_TOP: u32 = 10_000;
/// `briefDescription` is at most this many characters on write.
pub const BRIEF_DESCRIPTION_MAX: usize = 100;
/// The person fields a lookup asks for.
pub const PERSON_FIELDS: &str =
    "id,dynamicName,email,archived,networkLoginName,employeeNumber,branch";
const JSON: &str = "application/json";

/// The path template of a request (e.g. `/reservations/{identifier}`), stored in the
/// request's extensions for audit records. Never contains ids or query values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathTemplate(pub &'static str);

/// Marks a request that must not be repeated after a 502/504, because TOPdesk may have
/// carried it out already (creating reservations or occurrences).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotIdempotent;

/// The API root, `https://host/tas/api`, validated once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopdeskUrl(Url);

impl TopdeskUrl {
    /// Parses and checks a base URL: http(s), and a path ending in `/tas/api` (without
    /// it every call is a 404).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim().trim_end_matches('/');
        let url = Url::parse(trimmed)
            .map_err(|_| Error::InvalidConfig("topdesk url is not a valid url"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidConfig("topdesk url must be http or https"));
        }
        if !url.path().ends_with("/tas/api") {
            return Err(Error::InvalidConfig("topdesk url must end in /tas/api"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::InvalidConfig(
                "topdesk url must not have a query or fragment",
            ));
        }
        Ok(Self(url))
    }

    /// The URL as a string, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut out = String::from(self.as_str());
        out.push_str(path);
        for (i, (key, value)) in query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(&encode_component(key));
            out.push('=');
            out.push_str(&encode_component(value));
        }
        out
    }

    /// Resolves a persons `next` link, relative (with or without the `/tas/api` prefix)
    /// or absolute; refuses a link to another origin, which would leak the credentials.
    pub fn resolve_next(&self, next: &str) -> Result<String, Error> {
        let invalid = || Error::InvalidResponse {
            what: "persons next link",
            source: None,
        };
        if next.starts_with("http://") || next.starts_with("https://") {
            let url = Url::parse(next).map_err(|_| invalid())?;
            if url.origin() != self.0.origin() {
                return Err(invalid());
            }
            return Ok(url.to_string());
        }
        let base_path = self.0.path().trim_end_matches('/');
        let joined = if next.starts_with(base_path) {
            let mut origin = self.0.clone();
            origin.set_path("");
            origin.set_query(None);
            format!("{}{}", origin.as_str().trim_end_matches('/'), next)
        } else if next.starts_with('/') {
            format!("{}{}", self.as_str(), next)
        } else {
            format!("{}/{}", self.as_str(), next)
        };
        Url::parse(&joined)
            .map(|u| u.to_string())
            .map_err(|_| invalid())
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so `;`, `=`, `+`,
/// quotes and spaces in FIQL survive any server's query decoding.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn request(
    method: Method,
    url: String,
    template: &'static str,
    accept: &str,
    body: Option<Vec<u8>>,
) -> Result<Request<Vec<u8>>, Error> {
    let mut builder = Request::builder()
        .method(method)
        .uri(url)
        .header(ACCEPT, accept);
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json; charset=utf-8");
    }
    let mut req = builder
        .body(body.unwrap_or_default())
        .map_err(|_| Error::InvalidRequest("request could not be encoded as a uri"))?;
    req.extensions_mut().insert(PathTemplate(template));
    Ok(req)
}

fn json_body<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|_| Error::InvalidRequest("request body could not be serialised"))
}

fn identifier_path(reference: &ReservationRef, suffix: &str) -> String {
    format!(
        "/reservations/{}{suffix}",
        encode_component(reference.as_str())
    )
}

// ---------------------------------------------------------------------------------
// Reservations: builders
// ---------------------------------------------------------------------------------

/// The fields every list request asks for, whatever the caller selected: paging needs
/// `id` and `plannedStartDate`.
const PAGING_FIELDS: [&str; 3] = ["id", "plannedStartDate", "plannedEndDate"];

/// `GET /reservations` for one page: the caller's filter, narrowed to
/// `plannedStartDate=ge=<after>` on continuation pages, with `$fields` and `$top`.
pub fn build_list_reservations(
    base: &TopdeskUrl,
    query: &ReservationQuery,
    after: Option<Timestamp>,
    top: u32,
) -> Result<Request<Vec<u8>>, Error> {
    let filter = match (&query.filter, after) {
        (Some(f), Some(ts)) => Some(f.clone().and(Fiql::ge("plannedStartDate", ts))),
        (None, Some(ts)) => Some(Fiql::ge("plannedStartDate", ts)),
        (f, None) => f.clone(),
    };
    let mut params = Vec::new();
    if let Some(filter) = filter {
        params.push(("query", filter.to_string()));
    }
    if let Some(fields) = &query.fields {
        let mut all: Vec<&str> = PAGING_FIELDS.to_vec();
        for f in fields {
            if !all.contains(&f.as_str()) {
                all.push(f);
            }
        }
        params.push(("$fields", all.join(",")));
    }
    params.push(("$top", top.clamp(1, MAX_TOP).to_string()));
    request(
        Method::GET,
        base.url("/reservations", &params),
        "/reservations",
        JSON,
        None,
    )
}

/// `GET /reservations/{identifier}` (id or number).
pub fn build_get_reservation(
    base: &TopdeskUrl,
    reference: &ReservationRef,
) -> Result<Request<Vec<u8>>, Error> {
    request(
        Method::GET,
        base.url(&identifier_path(reference, ""), &[]),
        "/reservations/{identifier}",
        JSON,
        None,
    )
}

/// `GET /reservations/{identifier}?$fields=id,status,archived`: the cheap status check
/// before cancelling.
pub fn build_get_reservation_status(
    base: &TopdeskUrl,
    reference: &ReservationRef,
) -> Result<Request<Vec<u8>>, Error> {
    let params = [("$fields", "id,status,archived".to_owned())];
    request(
        Method::GET,
        base.url(&identifier_path(reference, ""), &params),
        "/reservations/{identifier}",
        JSON,
        None,
    )
}

#[derive(Serialize)]
struct LookupBody<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct FacilityBody<'a> {
    location: LookupBody<'a>,
}

#[derive(Serialize)]
struct ExternalLinkBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    link_type: String,
    date: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateReservationBody<'a> {
    requester: LookupBody<'a>,
    planned_start_date: String,
    planned_end_date: String,
    reserved_facilities: Vec<FacilityBody<'a>>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    brief_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    number_of_persons: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_link: Option<ExternalLinkBody<'a>>,
}

/// Truncates a subject to TOPdesk's 100 characters, on a character boundary.
pub fn truncate_brief_description(text: &str) -> String {
    text.chars().take(BRIEF_DESCRIPTION_MAX).collect()
}

fn external_link<'a>(
    id: &'a ExternalLinkId,
    link_type: ExternalLinkType,
    now: Timestamp,
) -> ExternalLinkBody<'a> {
    ExternalLinkBody {
        id: id.as_str(),
        link_type: link_type.to_string(),
        date: format_timestamp(truncate_to_second(now)),
    }
}

fn truncate_to_second(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// `POST /reservations`. Start and end are truncated to whole minutes, the subject to
/// 100 characters; our external link carries `link_type` and `now` as its date.
pub fn build_create_reservation(
    base: &TopdeskUrl,
    new: &NewReservation,
    link_type: ExternalLinkType,
    now: Timestamp,
) -> Result<Request<Vec<u8>>, Error> {
    if new.locations.is_empty() {
        return Err(Error::InvalidRequest(
            "a reservation needs at least one location",
        ));
    }
    let start = truncate_to_minute(new.start);
    let end = truncate_to_minute(new.end);
    if start >= end {
        return Err(Error::InvalidRequest(
            "a reservation must start before it ends",
        ));
    }
    let body = CreateReservationBody {
        requester: LookupBody {
            id: new.requester.as_str(),
        },
        planned_start_date: format_timestamp(start),
        planned_end_date: format_timestamp(end),
        reserved_facilities: new
            .locations
            .iter()
            .map(|l| FacilityBody {
                location: LookupBody { id: l.as_str() },
            })
            .collect(),
        status: match new.status {
            NewReservationStatus::Planned => "planned",
            NewReservationStatus::Request => "request",
        },
        brief_description: new
            .brief_description
            .as_deref()
            .map(truncate_brief_description),
        notes: new.notes.as_deref(),
        number_of_persons: new.number_of_persons.map(|n| n.min(99_999)),
        external_link: new
            .external_link_id
            .as_ref()
            .map(|id| external_link(id, link_type, now)),
    };
    let mut req = request(
        Method::POST,
        base.url("/reservations", &[]),
        "/reservations",
        JSON,
        Some(json_body(&body)?),
    )?;
    req.extensions_mut().insert(NotIdempotent);
    Ok(req)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateReservationBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    brief_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    number_of_persons: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requester: Option<LookupBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_link: Option<ExternalLinkBody<'a>>,
}

/// `PATCH /reservations/{identifier}` with the descriptive fields that are set.
pub fn build_update_reservation(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    update: &ReservationUpdate,
    link_type: ExternalLinkType,
    now: Timestamp,
) -> Result<Request<Vec<u8>>, Error> {
    let body = UpdateReservationBody {
        brief_description: update
            .brief_description
            .as_deref()
            .map(truncate_brief_description),
        notes: update.notes.as_deref(),
        number_of_persons: update.number_of_persons.map(|n| n.min(99_999)),
        requester: update
            .requester
            .as_ref()
            .map(|p| LookupBody { id: p.as_str() }),
        external_link: update
            .external_link_id
            .as_ref()
            .map(|id| external_link(id, link_type, now)),
    };
    let mut params = Vec::new();
    if update.occurrences == Occurrences::Future {
        params.push(("occurrences", "future".to_owned()));
    }
    request(
        Method::PATCH,
        base.url(&identifier_path(reference, ""), &params),
        "/reservations/{identifier}",
        JSON,
        Some(json_body(&body)?),
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RescheduleBody {
    planned_start_date: String,
    planned_end_date: String,
}

/// `POST /reservations/{identifier}/reschedule`, truncated to minutes.
pub fn build_reschedule(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    start: Timestamp,
    end: Timestamp,
) -> Result<Request<Vec<u8>>, Error> {
    let (start, end) = (truncate_to_minute(start), truncate_to_minute(end));
    if start >= end {
        return Err(Error::InvalidRequest(
            "a reservation must start before it ends",
        ));
    }
    let body = RescheduleBody {
        planned_start_date: format_timestamp(start),
        planned_end_date: format_timestamp(end),
    };
    request(
        Method::POST,
        base.url(&identifier_path(reference, "/reschedule"), &[]),
        "/reservations/{identifier}/reschedule",
        JSON,
        Some(json_body(&body)?),
    )
}

#[derive(Serialize)]
struct MoveBody<'a> {
    from: FacilityBody<'a>,
    to: FacilityBody<'a>,
}

/// `POST /reservations/{identifier}/reservedFacilities/move`: swap one room for another.
pub fn build_move_facility(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    from: &LocationId,
    to: &LocationId,
) -> Result<Request<Vec<u8>>, Error> {
    let body = MoveBody {
        from: FacilityBody {
            location: LookupBody { id: from.as_str() },
        },
        to: FacilityBody {
            location: LookupBody { id: to.as_str() },
        },
    };
    request(
        Method::POST,
        base.url(&identifier_path(reference, "/reservedFacilities/move"), &[]),
        "/reservations/{identifier}/reservedFacilities/move",
        JSON,
        Some(json_body(&body)?),
    )
}

#[derive(Serialize)]
struct AddBody<'a> {
    add: Vec<FacilityBody<'a>>,
}

#[derive(Serialize)]
struct RemoveBody<'a> {
    remove: Vec<FacilityBody<'a>>,
}

fn facilities(locations: &[LocationId]) -> Result<Vec<FacilityBody<'_>>, Error> {
    if locations.is_empty() {
        return Err(Error::InvalidRequest("at least one location is needed"));
    }
    Ok(locations
        .iter()
        .map(|l| FacilityBody {
            location: LookupBody { id: l.as_str() },
        })
        .collect())
}

/// `POST /reservations/{identifier}/reservedFacilities/add`.
pub fn build_add_facilities(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    locations: &[LocationId],
) -> Result<Request<Vec<u8>>, Error> {
    let body = AddBody {
        add: facilities(locations)?,
    };
    request(
        Method::POST,
        base.url(&identifier_path(reference, "/reservedFacilities/add"), &[]),
        "/reservations/{identifier}/reservedFacilities/add",
        JSON,
        Some(json_body(&body)?),
    )
}

/// `POST /reservations/{identifier}/reservedFacilities/remove`.
pub fn build_remove_facilities(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    locations: &[LocationId],
) -> Result<Request<Vec<u8>>, Error> {
    let body = RemoveBody {
        remove: facilities(locations)?,
    };
    request(
        Method::POST,
        base.url(
            &identifier_path(reference, "/reservedFacilities/remove"),
            &[],
        ),
        "/reservations/{identifier}/reservedFacilities/remove",
        JSON,
        Some(json_body(&body)?),
    )
}

/// `POST /reservations/{identifier}/cancel`, with a reason or, when TOPdesk has a
/// default cancellation reason, without a body.
pub fn build_cancel(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    reason: Option<&SearchlistId>,
) -> Result<Request<Vec<u8>>, Error> {
    let body = reason
        .map(|r| json_body(&LookupBody { id: r.as_str() }))
        .transpose()?;
    request(
        Method::POST,
        base.url(&identifier_path(reference, "/cancel"), &[]),
        "/reservations/{identifier}/cancel",
        JSON,
        body,
    )
}

/// `POST /reservations/{identifier}/reject`, for reservations still in `request`.
pub fn build_reject(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    reason: Option<&SearchlistId>,
) -> Result<Request<Vec<u8>>, Error> {
    let body = reason
        .map(|r| json_body(&LookupBody { id: r.as_str() }))
        .transpose()?;
    request(
        Method::POST,
        base.url(&identifier_path(reference, "/reject"), &[]),
        "/reservations/{identifier}/reject",
        JSON,
        body,
    )
}

/// `GET /reservationCancellationReasons?archived=false` (`archived` may not be left out).
pub fn build_cancellation_reasons(base: &TopdeskUrl) -> Result<Request<Vec<u8>>, Error> {
    let params = [("archived", "false".to_owned())];
    request(
        Method::GET,
        base.url("/reservationCancellationReasons", &params),
        "/reservationCancellationReasons",
        JSON,
        None,
    )
}

/// `GET /reservationRejectionReasons?archived=false`.
pub fn build_rejection_reasons(base: &TopdeskUrl) -> Result<Request<Vec<u8>>, Error> {
    let params = [("archived", "false".to_owned())];
    request(
        Method::GET,
        base.url("/reservationRejectionReasons", &params),
        "/reservationRejectionReasons",
        JSON,
        None,
    )
}

#[derive(Serialize)]
struct DatesBody {
    dates: Vec<String>,
}

/// Which series endpoint to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesOperation {
    /// `POST …/makeRecurrent/dates`: turn a single reservation into a series.
    MakeRecurrent,
    /// `POST …/occurrences/dates`: add dates to a series.
    AddOccurrences,
    /// `PUT …/occurrences/dates`: replace the later dates of a series.
    SetOccurrences,
}

/// One of the "specific dates" series calls.
pub fn build_series_dates(
    base: &TopdeskUrl,
    reference: &ReservationRef,
    operation: SeriesOperation,
    dates: &SeriesDates,
) -> Result<Request<Vec<u8>>, Error> {
    if dates.dates.is_empty() || dates.dates.len() > 1000 {
        return Err(Error::InvalidRequest("a series call needs 1 to 1000 dates"));
    }
    let mut unique: Vec<String> = dates.dates.iter().map(|d| d.to_string()).collect();
    unique.sort();
    unique.dedup();
    let body = DatesBody { dates: unique };
    let (method, suffix, template) = match operation {
        SeriesOperation::MakeRecurrent => (
            Method::POST,
            "/makeRecurrent/dates",
            "/reservations/{identifier}/makeRecurrent/dates",
        ),
        SeriesOperation::AddOccurrences => (
            Method::POST,
            "/occurrences/dates",
            "/reservations/{identifier}/occurrences/dates",
        ),
        SeriesOperation::SetOccurrences => (
            Method::PUT,
            "/occurrences/dates",
            "/reservations/{identifier}/occurrences/dates",
        ),
    };
    let params: Vec<(&str, String)> = if dates.allow_conflicts {
        vec![("allowConflicts", "true".to_owned())]
    } else {
        Vec::new()
    };
    let mut req = request(
        method,
        base.url(&identifier_path(reference, suffix), &params),
        template,
        JSON,
        Some(json_body(&body)?),
    )?;
    if operation != SeriesOperation::SetOccurrences {
        req.extensions_mut().insert(NotIdempotent);
    }
    Ok(req)
}

// ---------------------------------------------------------------------------------
// Rooms and branches: builders
// ---------------------------------------------------------------------------------

/// `GET /reservableLocations`, optionally limited to branches.
pub fn build_reservable_locations(
    base: &TopdeskUrl,
    branches: &[BranchId],
    top: u32,
) -> Result<Request<Vec<u8>>, Error> {
    let mut params: Vec<(&str, String)> = branches
        .iter()
        .map(|b| ("branchId", b.as_str().to_owned()))
        .collect();
    params.push(("$top", top.clamp(1, MAX_TOP).to_string()));
    request(
        Method::GET,
        base.url("/reservableLocations", &params),
        "/reservableLocations",
        JSON,
        None,
    )
}

/// The location fields orb asks for.
const LOCATION_FIELDS: &str =
    "id,name,roomNumber,branch,capacity,reservationManagement,modificationDate";

/// `GET /locations` with the fields orb uses (and the optional-field tabs on request).
pub fn build_locations(
    base: &TopdeskUrl,
    query: &LocationQuery,
) -> Result<Request<Vec<u8>>, Error> {
    let mut params = Vec::new();
    if let Some(filter) = &query.filter {
        params.push(("query", filter.to_string()));
    }
    let mut fields = LOCATION_FIELDS.to_owned();
    if query.with_optional_fields {
        fields.push_str(",optionalFields1,optionalFields2");
    }
    params.push(("$fields", fields));
    if let Some(size) = query.page_size {
        params.push(("pageSize", size.max(1).to_string()));
    }
    request(
        Method::GET,
        base.url("/locations", &params),
        "/locations",
        JSON,
        None,
    )
}

/// `GET /branches` with id, name and time zone.
pub fn build_branches(base: &TopdeskUrl, filter: Option<&Fiql>) -> Result<Request<Vec<u8>>, Error> {
    let mut params = Vec::new();
    if let Some(filter) = filter {
        params.push(("query", filter.to_string()));
    }
    params.push(("$fields", "id,name,timeZone".to_owned()));
    request(
        Method::GET,
        base.url("/branches", &params),
        "/branches",
        JSON,
        None,
    )
}

// ---------------------------------------------------------------------------------
// Persons: builders
// ---------------------------------------------------------------------------------

fn email_filter(email: &str) -> Fiql {
    Fiql::eq("email", email.trim()).and(Fiql::eq("archived", false))
}

/// Persons v2: `GET /persons?query=email=="…";archived==false&fields=…&pageSize=2` with
/// the vendor media type. Two results are enough to see a duplicate.
pub fn build_find_person_v2(base: &TopdeskUrl, email: &str) -> Result<Request<Vec<u8>>, Error> {
    let params = [
        ("query", email_filter(email).to_string()),
        ("fields", PERSON_FIELDS.to_owned()),
        ("pageSize", "2".to_owned()),
    ];
    request(
        Method::GET,
        base.url("/persons", &params),
        "/persons",
        PERSON_V2_COLLECTION,
        None,
    )
}

/// Follows a persons v2 `next` link (already resolved with [`TopdeskUrl::resolve_next`]).
pub fn build_persons_next(url: &str) -> Result<Request<Vec<u8>>, Error> {
    request(
        Method::GET,
        url.to_owned(),
        "/persons",
        PERSON_V2_COLLECTION,
        None,
    )
}

/// Persons v1 (TOPdesk releases without v2): `GET /persons?query=…&page_size=2&start=…`
/// with `Accept: application/json`.
pub fn build_find_person_v1(
    base: &TopdeskUrl,
    email: &str,
    start: u32,
) -> Result<Request<Vec<u8>>, Error> {
    let params = [
        ("query", email_filter(email).to_string()),
        ("page_size", "2".to_owned()),
        ("start", start.to_string()),
        (
            "$fields",
            "id,dynamicName,email,status,networkLoginName,employeeNumber,branch".to_owned(),
        ),
    ];
    request(
        Method::GET,
        base.url("/persons", &params),
        "/persons",
        JSON,
        None,
    )
}

// ---------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------

/// Maps a non-success response to the typed error, reading both error body shapes.
pub fn error_from_response(response: &Response<Vec<u8>>, now: Timestamp) -> Error {
    let status = response.status();
    let details = parse_error_body(response.body());
    match status.as_u16() {
        401 => Error::CredentialsRejected { details },
        403 => Error::Forbidden { details },
        404 => Error::NotFound { details },
        406 => Error::NotAcceptable,
        429 | 502 | 503 | 504 => Error::Unavailable {
            status,
            retry_after: retry_after(response.headers(), now),
        },
        400..=499 => Error::Rejected { status, details },
        _ => Error::Server { status },
    }
}

/// Reads `{"errors":[{errorCode,appliesTo,errorMessage}]}`, `[{"message"}]`, and the
/// array-of-envelopes variant some supporting-files endpoints document. Anything else
/// gives no details (never a failure: error bodies are best effort).
pub fn parse_error_body(body: &[u8]) -> ApiErrors {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ApiErrors::default();
    };
    let mut out = Vec::new();
    collect_errors(&value, &mut out, 0);
    ApiErrors(out)
}

fn collect_errors(value: &serde_json::Value, out: &mut Vec<ApiErrorDetail>, depth: u8) {
    if depth > 3 {
        return;
    }
    match value {
        serde_json::Value::Array(items) => {
            for item in items {
                collect_errors(item, out, depth + 1);
            }
        }
        serde_json::Value::Object(map) => {
            if let Some(errors) = map.get("errors") {
                collect_errors(errors, out, depth + 1);
                return;
            }
            let text = |key: &str| map.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            let detail = ApiErrorDetail {
                error_code: text("errorCode"),
                applies_to: map
                    .get("appliesTo")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                message: text("errorMessage").or_else(|| text("message")),
            };
            if detail != ApiErrorDetail::default() {
                out.push(detail);
            }
        }
        _ => {}
    }
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`).
pub fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = at.as_second().saturating_sub(now.as_second());
    Some(Duration::from_secs(u64::try_from(delta).unwrap_or(0)))
}

fn expect_status(response: &Response<Vec<u8>>, ok: &[u16], now: Timestamp) -> Result<(), Error> {
    if ok.contains(&response.status().as_u16()) {
        Ok(())
    } else {
        Err(error_from_response(response, now))
    }
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8], what: &'static str) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidResponse {
        what,
        source: Some(e),
    })
}

fn timestamp(text: Option<String>, what: &'static str) -> Result<Option<Timestamp>, Error> {
    match text {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => parse_timestamp(&t)
            .map(Some)
            .ok_or(Error::InvalidResponse { what, source: None }),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct IdNameDto {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RequesterDto {
    id: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ReservedLocationDto {
    id: Option<String>,
    name: Option<String>,
    room_number: Option<String>,
    branch: Option<IdNameDto>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct FacilityDto {
    id: Option<String>,
    location: Option<ReservedLocationDto>,
    start_date_block: Option<String>,
    end_date_block: Option<String>,
    issue_date: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ExternalLinkDto {
    id: Option<String>,
    #[serde(rename = "type")]
    link_type: Option<String>,
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReservationDto {
    id: String,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default)]
    brief_description: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    requester: Option<RequesterDto>,
    #[serde(default)]
    number_of_persons: Option<i64>,
    #[serde(default)]
    planned_start_date: Option<String>,
    #[serde(default)]
    planned_end_date: Option<String>,
    #[serde(default)]
    reserved_facilities: Option<Vec<FacilityDto>>,
    #[serde(default)]
    series: Option<IdNameDto>,
    #[serde(default)]
    external_links: Option<Vec<ExternalLinkDto>>,
    #[serde(default)]
    modification_date: Option<String>,
}

#[derive(Deserialize)]
struct ResultsDto<T> {
    #[serde(default = "Vec::new")]
    results: Vec<T>,
}

fn branch_ref(dto: Option<IdNameDto>) -> Option<BranchRef> {
    dto.and_then(|b| {
        b.id.map(|id| BranchRef {
            id: BranchId::new(id),
            name: b.name,
        })
    })
}

fn reservation_from(dto: ReservationDto) -> Result<Reservation, Error> {
    let facilities = dto
        .reserved_facilities
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            Ok(ReservedFacility {
                id: f.id,
                location: f.location.and_then(|l| {
                    l.id.map(|id| ReservedLocation {
                        id: LocationId::new(id),
                        name: l.name,
                        room_number: l.room_number,
                        branch: branch_ref(l.branch),
                    })
                }),
                start_block: timestamp(f.start_date_block, "reserved facility startDateBlock")?,
                end_block: timestamp(f.end_date_block, "reserved facility endDateBlock")?,
                issued_at: timestamp(f.issue_date, "reserved facility issueDate")?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let external_links = dto
        .external_links
        .unwrap_or_default()
        .into_iter()
        .filter_map(|l| match (l.id, l.link_type) {
            (Some(id), Some(link_type)) => Some((id, link_type, l.date)),
            _ => None,
        })
        .map(|(id, link_type, date)| {
            Ok(crate::model::ExternalLink {
                id: ExternalLinkId::new(id),
                link_type,
                date: timestamp(date, "externalLinks date")?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Reservation {
        id: TopdeskReservationId::new(dto.id),
        number: dto.number.map(ReservationNumber::new),
        status: dto.status.as_deref().map(ReservationStatus::from_wire),
        archived: dto.archived,
        brief_description: dto.brief_description,
        notes: dto.notes,
        requester: dto.requester.and_then(|r| {
            r.id.map(|id| PersonRef {
                id: PersonId::new(id),
                name: r.name,
                email: r.email,
            })
        }),
        number_of_persons: dto.number_of_persons,
        planned_start: timestamp(dto.planned_start_date, "plannedStartDate")?,
        planned_end: timestamp(dto.planned_end_date, "plannedEndDate")?,
        facilities,
        series: dto.series.and_then(|s| s.id).map(SeriesId::new),
        external_links,
        modification_date: timestamp(dto.modification_date, "modificationDate")?,
    })
}

/// One page of a reservation list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationPage {
    /// The reservations, ordered by planned start.
    pub reservations: Vec<Reservation>,
    /// True on 206: more reservations start at or after the last one.
    pub more: bool,
}

/// Parses `GET /reservations`: 200 is the last page, 206 means "ask again from a later
/// plannedStartDate".
pub fn parse_reservation_page(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<ReservationPage, Error> {
    expect_status(response, &[200, 206], now)?;
    let dto: ResultsDto<ReservationDto> = decode(response.body(), "reservation list")?;
    let reservations = dto
        .results
        .into_iter()
        .map(reservation_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReservationPage {
        reservations,
        more: response.status() == StatusCode::PARTIAL_CONTENT,
    })
}

/// Parses a single reservation (get, create, update, reschedule, facilities, reject).
pub fn parse_reservation(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<Reservation, Error> {
    expect_status(response, &[200, 201], now)?;
    reservation_from(decode(response.body(), "reservation")?)
}

/// Parses a cancel: 204 without a body.
pub fn parse_cancel(response: &Response<Vec<u8>>, now: Timestamp) -> Result<(), Error> {
    expect_status(response, &[200, 204], now)
}

/// Parses the list returned by the series endpoints.
pub fn parse_series(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<Vec<SeriesOccurrence>, Error> {
    expect_status(response, &[200, 201], now)?;
    let dto: ResultsDto<ReservationDto> = decode(response.body(), "series list")?;
    dto.results
        .into_iter()
        .map(|r| {
            let r = reservation_from(r)?;
            Ok(SeriesOccurrence {
                id: r.id,
                number: r.number,
                status: r.status,
                series: r.series,
                planned_start: r.planned_start,
                planned_end: r.planned_end,
            })
        })
        .collect()
}

/// Parses a search-list envelope (`{"results":[{id,name}]}`).
pub fn parse_searchlist(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<Vec<NamedRef>, Error> {
    expect_status(response, &[200], now)?;
    let dto: ResultsDto<IdNameDto> = decode(response.body(), "search list")?;
    Ok(dto
        .results
        .into_iter()
        .filter_map(|e| {
            e.id.map(|id| NamedRef {
                id: SearchlistId::new(id),
                name: e.name,
            })
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReservableLocationDto {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    room_number: Option<String>,
    #[serde(default)]
    capacity: Option<i64>,
    #[serde(default)]
    branch: Option<IdNameDto>,
}

/// Parses `GET /reservableLocations`.
pub fn parse_reservable_locations(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<Vec<ReservableLocation>, Error> {
    expect_status(response, &[200, 206], now)?;
    let dto: ResultsDto<ReservableLocationDto> = decode(response.body(), "reservable locations")?;
    Ok(dto
        .results
        .into_iter()
        .map(|l| ReservableLocation {
            id: LocationId::new(l.id),
            name: l.name,
            room_number: l.room_number,
            capacity: l.capacity,
            branch: branch_ref(l.branch),
        })
        .collect())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ReservationManagementDto {
    reservable: Option<bool>,
    block_time: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OptionalFieldsDto {
    text1: Option<String>,
    text2: Option<String>,
    text3: Option<String>,
    text4: Option<String>,
    text5: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocationDto {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    room_number: Option<String>,
    #[serde(default)]
    branch: Option<IdNameDto>,
    #[serde(default)]
    capacity: Option<i64>,
    #[serde(default)]
    reservation_management: Option<ReservationManagementDto>,
    #[serde(default)]
    optional_fields1: Option<OptionalFieldsDto>,
    #[serde(default)]
    optional_fields2: Option<OptionalFieldsDto>,
    #[serde(default)]
    modification_date: Option<String>,
}

fn texts(dto: Option<OptionalFieldsDto>) -> Option<OptionalTexts> {
    dto.map(|o| OptionalTexts {
        text: [o.text1, o.text2, o.text3, o.text4, o.text5],
    })
}

/// Parses `GET /locations` (a plain array).
pub fn parse_locations(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<Vec<Location>, Error> {
    expect_status(response, &[200, 206], now)?;
    let dto: Vec<LocationDto> = decode(response.body(), "locations")?;
    dto.into_iter()
        .map(|l| {
            let rm = l.reservation_management.unwrap_or_default();
            Ok(Location {
                id: LocationId::new(l.id),
                name: l.name,
                room_number: l.room_number,
                branch: branch_ref(l.branch),
                capacity: l.capacity,
                reservable: rm.reservable,
                block_time_minutes: rm.block_time,
                optional_fields1: texts(l.optional_fields1),
                optional_fields2: texts(l.optional_fields2),
                modification_date: timestamp(l.modification_date, "location modificationDate")?,
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BranchDto {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
}

/// Parses `GET /branches` (a plain array).
pub fn parse_branches(response: &Response<Vec<u8>>, now: Timestamp) -> Result<Vec<Branch>, Error> {
    expect_status(response, &[200, 206], now)?;
    let dto: Vec<BranchDto> = decode(response.body(), "branches")?;
    Ok(dto
        .into_iter()
        .map(|b| Branch {
            id: BranchId::new(b.id),
            name: b.name,
            time_zone: b.time_zone,
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonDto {
    id: String,
    #[serde(default)]
    dynamic_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    archived: Option<bool>,
    /// v1 only: `person` or `personArchived`.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    network_login_name: Option<String>,
    #[serde(default)]
    employee_number: Option<String>,
    #[serde(default)]
    branch: Option<IdNameDto>,
}

fn person_from(dto: PersonDto) -> Person {
    let archived = dto.archived.unwrap_or(false) || dto.status.as_deref() == Some("personArchived");
    Person {
        id: PersonId::new(dto.id),
        dynamic_name: dto.dynamic_name,
        email: dto.email,
        archived,
        network_login_name: dto.network_login_name,
        employee_number: dto.employee_number,
        branch: branch_ref(dto.branch),
    }
}

#[derive(Deserialize)]
struct PersonsV2Dto {
    #[serde(default = "Vec::new")]
    item: Vec<PersonDto>,
    #[serde(default)]
    next: Option<String>,
}

/// One page of persons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonsPage {
    /// The persons on this page.
    pub persons: Vec<Person>,
    /// v2: the `next` link, if more pages exist.
    pub next: Option<String>,
    /// True when TOPdesk answered 206.
    pub more: bool,
}

/// Parses a persons v2 collection (200 last page, 206 more, `next` link).
pub fn parse_persons_v2(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<PersonsPage, Error> {
    expect_status(response, &[200, 206], now)?;
    let dto: PersonsV2Dto = decode(response.body(), "persons")?;
    Ok(PersonsPage {
        persons: dto.item.into_iter().map(person_from).collect(),
        next: dto.next.filter(|n| !n.is_empty()),
        more: response.status() == StatusCode::PARTIAL_CONTENT,
    })
}

/// Parses a persons v1 list: an array, 206 while more remain, 204 when nothing matched.
pub fn parse_persons_v1(
    response: &Response<Vec<u8>>,
    now: Timestamp,
) -> Result<PersonsPage, Error> {
    expect_status(response, &[200, 204, 206], now)?;
    if response.status() == StatusCode::NO_CONTENT
        || response.body().iter().all(u8::is_ascii_whitespace)
    {
        return Ok(PersonsPage {
            persons: Vec::new(),
            next: None,
            more: false,
        });
    }
    let dto: Vec<PersonDto> = decode(response.body(), "persons")?;
    Ok(PersonsPage {
        persons: dto.into_iter().map(person_from).collect(),
        next: None,
        more: response.status() == StatusCode::PARTIAL_CONTENT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ExternalLinkType;

    fn base() -> TopdeskUrl {
        TopdeskUrl::parse("https://example.topdesk.net/tas/api/").unwrap()
    }

    fn ts(text: &str) -> Timestamp {
        parse_timestamp(text).unwrap()
    }

    fn response(status: u16, body: &str) -> Response<Vec<u8>> {
        Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn base_url_must_end_in_tas_api() {
        assert!(TopdeskUrl::parse("https://example.topdesk.net").is_err());
        assert!(TopdeskUrl::parse("ftp://example.topdesk.net/tas/api").is_err());
        assert_eq!(base().as_str(), "https://example.topdesk.net/tas/api");
    }

    #[test]
    fn list_request_encodes_fiql_and_adds_paging_fields() {
        let query = ReservationQuery::new(Fiql::eq("externalLinks.type", "4711"))
            .with_fields(["status"])
            .with_page_size(50);
        let req =
            build_list_reservations(&base(), &query, Some(ts("2026-05-04T08:00:00Z")), 50).unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://example.topdesk.net/tas/api/reservations?query=externalLinks.type%3D%3D%224711%22%3B\
             plannedStartDate%3Dge%3D2026-05-04T08%3A00%3A00Z&%24fields=id%2CplannedStartDate%2CplannedEndDate%2Cstatus&%24top=50"
        );
        assert_eq!(
            req.extensions().get::<PathTemplate>(),
            Some(&PathTemplate("/reservations"))
        );
    }

    #[test]
    fn create_truncates_times_and_subject() {
        let subject: String = std::iter::repeat_n('é', 150).collect();
        let new = NewReservation {
            requester: PersonId::new("p"),
            start: ts("2026-05-04T08:00:42.5Z"),
            end: ts("2026-05-04T09:00:59Z"),
            locations: vec![LocationId::new("l")],
            brief_description: Some(subject),
            notes: None,
            number_of_persons: Some(4),
            status: NewReservationStatus::Planned,
            external_link_id: Some(ExternalLinkId::new("ical-1")),
        };
        let link = ExternalLinkType::new(4711).unwrap();
        let req =
            build_create_reservation(&base(), &new, link, ts("2026-05-01T10:00:00.25Z")).unwrap();
        let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body["plannedStartDate"], "2026-05-04T08:00:00Z");
        assert_eq!(body["plannedEndDate"], "2026-05-04T09:00:00Z");
        assert_eq!(
            body["briefDescription"].as_str().unwrap().chars().count(),
            100
        );
        assert_eq!(body["externalLink"]["type"], "4711");
        assert_eq!(body["externalLink"]["date"], "2026-05-01T10:00:00Z");
        assert!(req.extensions().get::<NotIdempotent>().is_some());
    }

    #[test]
    fn both_error_shapes_parse() {
        let modern = parse_error_body(
            br#"{"errors":[{"errorCode":"x","appliesTo":["a"],"errorMessage":"m"}]}"#,
        );
        assert!(modern.has_code("x"));
        assert_eq!(modern.0[0].applies_to, vec!["a".to_owned()]);
        let legacy = parse_error_body(br#"[{"message":"Entity not found"}]"#);
        assert_eq!(legacy.0[0].message.as_deref(), Some("Entity not found"));
        let nested = parse_error_body(br#"[{"errors":[{"errorCode":"y"}]}]"#);
        assert!(nested.has_code("y"));
        assert!(parse_error_body(b"<html>").0.is_empty());
    }

    #[test]
    fn status_mapping() {
        let now = ts("2026-05-01T10:00:00Z");
        assert!(matches!(
            error_from_response(&response(401, ""), now),
            Error::CredentialsRejected { .. }
        ));
        assert!(matches!(
            error_from_response(&response(406, ""), now),
            Error::NotAcceptable
        ));
        assert!(matches!(
            error_from_response(&response(409, "{}"), now),
            Error::Rejected { .. }
        ));
        assert!(matches!(
            error_from_response(&response(500, ""), now),
            Error::Server { .. }
        ));
        let mut throttled = response(429, "");
        throttled
            .headers_mut()
            .insert(RETRY_AFTER, "7".parse().unwrap());
        match error_from_response(&throttled, now) {
            Error::Unavailable { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_http_date() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            "Fri, 01 May 2026 10:00:30 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers, ts("2026-05-01T10:00:00Z")),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn garbage_responses_are_errors_not_panics() {
        let now = ts("2026-05-01T10:00:00Z");
        for body in [
            "",
            "[",
            "{\"results\":[{}]}",
            "{\"results\":[{\"id\":\"a\",\"plannedStartDate\":\"nope\"}]}",
        ] {
            assert!(
                parse_reservation_page(&response(200, body), now).is_err(),
                "{body}"
            );
        }
        assert!(parse_persons_v2(&response(200, "{\"item\":5}"), now).is_err());
        assert!(
            parse_persons_v1(&response(204, ""), now)
                .unwrap()
                .persons
                .is_empty()
        );
    }

    /// A deterministic pseudo-random byte source (no dependency, reproducible).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn network_input_never_panics() {
        let now = ts("2026-05-01T10:00:00Z");
        // Fragments of plausible and implausible TOPdesk answers, spliced at random.
        let pieces: [&[u8]; 16] = [
            b"{\"results\":[",
            b"{\"id\":\"a\"",
            b",\"plannedStartDate\":\"2026-05-04T08:00:00+0000\"",
            b",\"reservedFacilities\":[{\"location\":{\"id\":null}}]",
            b"]}",
            b"[{\"message\":1}]",
            b"{\"errors\":[{\"errorCode\":[]}]}",
            b"{\"item\":[{\"id\":\"p\",\"archived\":\"yes\"}],\"next\":7}",
            b"\xff\xfe",
            b"null",
            b"}",
            b",",
            b"\"",
            b"{\"externalLinks\":[{\"id\":1}]}",
            b"[",
            b"{\"status\":5}",
        ];
        let mut rng = Lcg(42);
        for _ in 0..3000 {
            let mut body = Vec::new();
            for _ in 0..(rng.next() % 6) {
                body.extend_from_slice(pieces[(rng.next() % pieces.len() as u64) as usize]);
            }
            let status = [200u16, 201, 204, 206, 400, 401, 404, 406, 429, 500, 503]
                [(rng.next() % 11) as usize];
            let mut r = Response::builder().status(status).body(body).unwrap();
            if rng.next().is_multiple_of(3) {
                r.headers_mut().insert(
                    RETRY_AFTER,
                    http::HeaderValue::from_static("Thu, 99 Foo 2026 99:99:99 GMT"),
                );
            }
            let _ = parse_reservation_page(&r, now);
            let _ = parse_reservation(&r, now);
            let _ = parse_cancel(&r, now);
            let _ = parse_series(&r, now);
            let _ = parse_searchlist(&r, now);
            let _ = parse_reservable_locations(&r, now);
            let _ = parse_locations(&r, now);
            let _ = parse_branches(&r, now);
            let _ = parse_persons_v2(&r, now);
            let _ = parse_persons_v1(&r, now);
            let _ = error_from_response(&r, now);
        }
    }

    #[test]
    fn next_links_resolve_and_stay_on_origin() {
        let b = base();
        assert_eq!(
            b.resolve_next("/tas/api/persons?pageStart=2").unwrap(),
            "https://example.topdesk.net/tas/api/persons?pageStart=2"
        );
        assert_eq!(
            b.resolve_next("/persons?pageStart=2").unwrap(),
            "https://example.topdesk.net/tas/api/persons?pageStart=2"
        );
        assert!(
            b.resolve_next("https://evil.example/tas/api/persons")
                .is_err()
        );
    }
}
