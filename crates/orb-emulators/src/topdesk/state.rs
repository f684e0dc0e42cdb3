//! The emulator's data and TOPdesk's rules. Every mutation goes through here, under the
//! one lock, and stamps a strictly increasing `modificationDate`.

use std::collections::BTreeSet;

use jiff::civil::{Date, Weekday};
use jiff::{Timestamp, ToSpan};
use serde_json::{Map, Value, json};

use super::json::{format_time, parse_time, truncate_minute};
use super::{
    BranchSeed, DoubleBooking, Exchange, Fault, LocationSeed, PersonSeed, ReservationSnapshot,
    TopdeskConfig, codes,
};

/// An HTTP answer in the making.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// The Reservations-style `{"errors":[…]}` 400.
    pub(crate) fn error(code: &str, applies_to: &[&str], message: &str) -> Self {
        Self::json(
            400,
            json!({"errors": [{"errorCode": code, "appliesTo": applies_to, "errorMessage": message}]}),
        )
    }

    /// The supporting-files style `[{"message"}]`.
    pub(crate) fn message(status: u16, message: &str) -> Self {
        Self::json(status, json!([{"message": message}]))
    }

    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

pub(crate) type Outcome<T> = Result<T, Reply>;

#[derive(Debug, Clone)]
pub(crate) struct BranchRec {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) time_zone: Option<String>,
    pub(crate) modified: Timestamp,
}

#[derive(Debug, Clone)]
pub(crate) struct LocationRec {
    pub(crate) id: String,
    pub(crate) seed: LocationSeed,
    pub(crate) modified: Timestamp,
}

#[derive(Debug, Clone)]
pub(crate) struct PersonRec {
    pub(crate) id: String,
    pub(crate) seed: PersonSeed,
    pub(crate) modified: Timestamp,
}

#[derive(Debug, Clone)]
pub(crate) struct ReasonRec {
    pub(crate) id: String,
    pub(crate) name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct FacilityRec {
    pub(crate) id: String,
    pub(crate) location_id: String,
    pub(crate) issued: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub(crate) struct ReservationRec {
    pub(crate) id: String,
    pub(crate) number: String,
    pub(crate) status: String,
    pub(crate) archived: bool,
    pub(crate) brief_description: String,
    pub(crate) notes: String,
    pub(crate) requester_id: String,
    pub(crate) number_of_persons: i64,
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) facilities: Vec<FacilityRec>,
    pub(crate) series_id: Option<String>,
    pub(crate) external_link: Option<(String, String, Option<Timestamp>)>,
    pub(crate) modified: Timestamp,
    pub(crate) seq: u64,
}

pub(crate) struct Store {
    pub(crate) config: TopdeskConfig,
    pub(crate) origin: String,
    pub(crate) credentials_expired: bool,
    pub(crate) person_accounts: Vec<(String, String)>,
    pub(crate) branches: Vec<BranchRec>,
    pub(crate) locations: Vec<LocationRec>,
    pub(crate) persons: Vec<PersonRec>,
    pub(crate) reservations: Vec<ReservationRec>,
    pub(crate) cancellation_reasons: Vec<ReasonRec>,
    pub(crate) rejection_reasons: Vec<ReasonRec>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) latency: std::time::Duration,
    pub(crate) persons_page_cap: Option<usize>,
    pub(crate) recording: bool,
    pub(crate) log: Vec<Exchange>,
    last_modified: Timestamp,
    seq: u64,
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

const ACTIVE: [&str; 4] = [
    "planned",
    "request",
    "conflictingPlanned",
    "conflictingRequest",
];

impl Store {
    pub(crate) fn new(config: TopdeskConfig) -> Self {
        Self {
            config,
            origin: String::new(),
            credentials_expired: false,
            person_accounts: Vec::new(),
            branches: Vec::new(),
            locations: Vec::new(),
            persons: Vec::new(),
            reservations: Vec::new(),
            cancellation_reasons: Vec::new(),
            rejection_reasons: Vec::new(),
            faults: Vec::new(),
            latency: std::time::Duration::ZERO,
            persons_page_cap: None,
            recording: true,
            log: Vec::new(),
            last_modified: Timestamp::UNIX_EPOCH,
            seq: 0,
        }
    }

    /// A strictly increasing modification stamp (millisecond resolution).
    fn stamp(&mut self) -> Timestamp {
        let now = Timestamp::now();
        let now = Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
        let next = if now > self.last_modified {
            now
        } else {
            self.last_modified
                .checked_add(1.millisecond())
                .unwrap_or(now)
        };
        self.last_modified = next;
        next
    }

    // ---- seeding -------------------------------------------------------------------

    pub(crate) fn add_branch(&mut self, seed: BranchSeed) -> String {
        let id = uuid();
        let modified = self.stamp();
        self.branches.push(BranchRec {
            id: id.clone(),
            name: seed.name,
            time_zone: seed.time_zone,
            modified,
        });
        id
    }

    pub(crate) fn add_location(&mut self, seed: LocationSeed) -> String {
        let id = uuid();
        let modified = self.stamp();
        self.locations.push(LocationRec {
            id: id.clone(),
            seed,
            modified,
        });
        id
    }

    pub(crate) fn add_person(&mut self, seed: PersonSeed) -> String {
        let id = uuid();
        let modified = self.stamp();
        self.persons.push(PersonRec {
            id: id.clone(),
            seed,
            modified,
        });
        id
    }

    pub(crate) fn add_reason(&mut self, cancellation: bool, name: &str) -> String {
        let id = uuid();
        let rec = ReasonRec {
            id: id.clone(),
            name: name.to_owned(),
        };
        if cancellation {
            self.cancellation_reasons.push(rec)
        } else {
            self.rejection_reasons.push(rec)
        }
        id
    }

    pub(crate) fn issue(&mut self, id: &str) -> bool {
        let Some(i) = self.find(id) else { return false };
        let now = Timestamp::now();
        let stamp = self.stamp();
        let r = &mut self.reservations[i];
        for f in &mut r.facilities {
            f.issued = Some(now);
        }
        r.modified = stamp;
        true
    }

    pub(crate) fn archive(&mut self, id: &str) -> bool {
        let Some(i) = self.find(id) else { return false };
        let stamp = self.stamp();
        self.reservations[i].archived = true;
        self.reservations[i].modified = stamp;
        true
    }

    // ---- lookups -------------------------------------------------------------------

    pub(crate) fn find(&self, identifier: &str) -> Option<usize> {
        self.reservations
            .iter()
            .position(|r| r.id == identifier || r.number == identifier)
    }

    fn location(&self, id: &str) -> Option<&LocationRec> {
        self.locations.iter().find(|l| l.id == id)
    }

    fn person(&self, id: &str) -> Option<&PersonRec> {
        self.persons.iter().find(|p| p.id == id)
    }

    fn branch(&self, id: &str) -> Option<&BranchRec> {
        self.branches.iter().find(|b| b.id == id)
    }

    pub(crate) fn snapshots(&self) -> Vec<ReservationSnapshot> {
        self.reservations
            .iter()
            .map(|r| ReservationSnapshot {
                id: r.id.clone(),
                number: r.number.clone(),
                status: r.status.clone(),
                archived: r.archived,
                brief_description: r.brief_description.clone(),
                requester_id: r.requester_id.clone(),
                start: r.start,
                end: r.end,
                location_ids: r.facilities.iter().map(|f| f.location_id.clone()).collect(),
                series_id: r.series_id.clone(),
                external_link: r
                    .external_link
                    .as_ref()
                    .map(|(id, t, _)| (id.clone(), t.clone())),
                modification_date: r.modified,
            })
            .collect()
    }

    // ---- rendering -----------------------------------------------------------------

    fn branch_json(&self, id: Option<&str>) -> Option<Value> {
        let b = self.branch(id?)?;
        Some(json!({"id": b.id, "name": b.name}))
    }

    pub(crate) fn render_reservation(&self, r: &ReservationRec) -> Value {
        let requester = self.person(&r.requester_id);
        let mut out = Map::new();
        out.insert("id".into(), json!(r.id));
        out.insert("status".into(), json!(r.status));
        out.insert("number".into(), json!(r.number));
        out.insert("briefDescription".into(), json!(r.brief_description));
        out.insert("notes".into(), json!(r.notes));
        out.insert("archived".into(), json!(r.archived));
        let mut req = Map::new();
        req.insert("id".into(), json!(r.requester_id));
        if let Some(p) = requester {
            req.insert("name".into(), json!(dynamic_name(&p.seed)));
            req.insert(
                "email".into(),
                json!(p.seed.email.clone().unwrap_or_default()),
            );
            req.insert("telephone".into(), json!(""));
            if let Some(b) = self.branch_json(p.seed.branch_id.as_deref()) {
                req.insert("branch".into(), b);
            }
        }
        out.insert("requester".into(), Value::Object(req));
        out.insert("numberOfPersons".into(), json!(r.number_of_persons));
        out.insert("plannedStartDate".into(), json!(format_time(r.start)));
        out.insert("plannedEndDate".into(), json!(format_time(r.end)));
        let facilities: Vec<Value> = r
            .facilities
            .iter()
            .map(|f| {
                let loc = self.location(&f.location_id);
                let block = loc.map_or(0, |l| l.seed.block_time_minutes);
                let mut fac = Map::new();
                fac.insert("id".into(), json!(f.id));
                fac.insert("plannedStartDate".into(), json!(format_time(r.start)));
                fac.insert("plannedEndDate".into(), json!(format_time(r.end)));
                let start_block = r.start.checked_sub(block.minutes()).unwrap_or(r.start);
                let end_block = r.end.checked_add(block.minutes()).unwrap_or(r.end);
                fac.insert("startDateBlock".into(), json!(format_time(start_block)));
                fac.insert("endDateBlock".into(), json!(format_time(end_block)));
                if let Some(issued) = f.issued {
                    fac.insert("issueDate".into(), json!(format_time(issued)));
                }
                let mut l = Map::new();
                l.insert("id".into(), json!(f.location_id));
                if let Some(loc) = loc {
                    l.insert("name".into(), json!(loc.seed.name));
                    l.insert(
                        "roomNumber".into(),
                        json!(loc.seed.room_number.clone().unwrap_or_default()),
                    );
                    if let Some(b) = self.branch_json(loc.seed.branch_id.as_deref()) {
                        l.insert("branch".into(), b);
                    }
                }
                fac.insert("location".into(), Value::Object(l));
                Value::Object(fac)
            })
            .collect();
        out.insert("reservedFacilities".into(), Value::Array(facilities));
        if let Some(series) = &r.series_id {
            out.insert("series".into(), json!({"id": series}));
        }
        let links: Vec<Value> = r
            .external_link
            .iter()
            .map(|(id, t, date)| {
                let mut l = Map::new();
                l.insert("id".into(), json!(id));
                l.insert("type".into(), json!(t));
                if let Some(d) = date {
                    l.insert("date".into(), json!(format_time(*d)));
                }
                Value::Object(l)
            })
            .collect();
        out.insert("externalLinks".into(), Value::Array(links));
        out.insert("modificationDate".into(), json!(format_time(r.modified)));
        Value::Object(out)
    }

    /// The document FIQL filters see: the rendering plus requester fields TOPdesk can
    /// filter on but does not return.
    pub(crate) fn filter_doc(&self, r: &ReservationRec) -> Value {
        let mut doc = self.render_reservation(r);
        if let (Some(p), Some(obj)) = (
            self.person(&r.requester_id),
            doc.get_mut("requester").and_then(Value::as_object_mut),
        ) {
            {
                obj.insert(
                    "networkLoginName".into(),
                    json!(p.seed.network_login_name.clone().unwrap_or_default()),
                );
                obj.insert(
                    "employeeNumber".into(),
                    json!(p.seed.employee_number.clone().unwrap_or_default()),
                );
            }
        }
        doc
    }

    /// The short form the series endpoints return.
    fn render_series_member(&self, r: &ReservationRec) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(r.id));
        out.insert("number".into(), json!(r.number));
        out.insert("status".into(), json!(r.status));
        if let Some(s) = &r.series_id {
            out.insert("series".into(), json!({"id": s}));
        }
        out.insert("plannedStartDate".into(), json!(format_time(r.start)));
        out.insert("plannedEndDate".into(), json!(format_time(r.end)));
        Value::Object(out)
    }

    pub(crate) fn render_location(&self, l: &LocationRec) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(l.id));
        out.insert("name".into(), json!(l.seed.name));
        out.insert(
            "roomNumber".into(),
            json!(l.seed.room_number.clone().unwrap_or_default()),
        );
        if let Some(c) = l.seed.capacity {
            out.insert("capacity".into(), json!(c));
        }
        if let Some(b) = self.branch_json(l.seed.branch_id.as_deref()) {
            out.insert("branch".into(), b);
        }
        out.insert(
            "reservationManagement".into(),
            json!({"reservable": l.seed.reservable, "blockTime": l.seed.block_time_minutes}),
        );
        let mut tab = Map::new();
        if let Some(t) = &l.seed.optional_text1 {
            tab.insert("text1".into(), json!(t));
        }
        out.insert("optionalFields1".into(), Value::Object(tab));
        out.insert("optionalFields2".into(), json!({}));
        out.insert("modificationDate".into(), json!(format_time(l.modified)));
        Value::Object(out)
    }

    pub(crate) fn render_reservable_location(&self, l: &LocationRec) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(l.id));
        out.insert("name".into(), json!(l.seed.name));
        out.insert(
            "roomNumber".into(),
            json!(l.seed.room_number.clone().unwrap_or_default()),
        );
        if let Some(c) = l.seed.capacity {
            out.insert("capacity".into(), json!(c));
        }
        if let Some(b) = self.branch_json(l.seed.branch_id.as_deref()) {
            out.insert("branch".into(), b);
        }
        Value::Object(out)
    }

    pub(crate) fn render_branch(&self, b: &BranchRec) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(b.id));
        out.insert("name".into(), json!(b.name));
        if let Some(tz) = &b.time_zone {
            out.insert("timeZone".into(), json!(tz));
        }
        out.insert("modificationDate".into(), json!(format_time(b.modified)));
        Value::Object(out)
    }

    pub(crate) fn render_person_v2(&self, p: &PersonRec) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(p.id));
        out.insert("firstName".into(), json!(p.seed.first_name));
        out.insert("surName".into(), json!(p.seed.sur_name));
        out.insert("dynamicName".into(), json!(dynamic_name(&p.seed)));
        out.insert("archived".into(), json!(p.seed.archived));
        if let Some(e) = &p.seed.email {
            out.insert("email".into(), json!(e));
        }
        if let Some(n) = &p.seed.network_login_name {
            out.insert("networkLoginName".into(), json!(n));
        }
        if let Some(n) = &p.seed.employee_number {
            out.insert("employeeNumber".into(), json!(n));
        }
        if let Some(b) = self.branch(p.seed.branch_id.as_deref().unwrap_or("")) {
            out.insert("branch".into(), json!({"id": b.id, "name": b.name}));
        }
        out.insert("modificationDate".into(), json!(format_time(p.modified)));
        Value::Object(out)
    }

    pub(crate) fn render_person_v1(&self, p: &PersonRec) -> Value {
        let mut v = self.render_person_v2(p);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("archived");
            obj.insert(
                "status".into(),
                json!(if p.seed.archived {
                    "personArchived"
                } else {
                    "person"
                }),
            );
        }
        v
    }

    // ---- reservations: rules ---------------------------------------------------------

    pub(crate) fn create_direct(&mut self, body: Value) -> Result<String, Value> {
        match self.create(&body) {
            Ok(i) => Ok(self.reservations[i].id.clone()),
            Err(reply) => Err(reply.body.unwrap_or(Value::Null)),
        }
    }

    /// `POST /reservations`: returns the index of the new reservation.
    pub(crate) fn create(&mut self, body: &Value) -> Outcome<usize> {
        let obj = body
            .as_object()
            .ok_or_else(|| Reply::error(codes::INVALID_VALUE, &[], "body must be an object"))?;
        const ALLOWED: [&str; 14] = [
            "briefDescription",
            "notes",
            "status",
            "requester",
            "operatorGroup",
            "operator",
            "processingStatus",
            "participants",
            "numberOfPersons",
            "plannedStartDate",
            "plannedEndDate",
            "reservedFacilities",
            "externalLink",
            "optionalFields1",
        ];
        unknown_fields(obj, &ALLOWED, &["optionalFields2"])?;
        let requester_id = lookup_id(obj.get("requester"), "requester")?;
        let start = required_time(obj, "plannedStartDate")?;
        let end = required_time(obj, "plannedEndDate")?;
        let facilities = obj
            .get("reservedFacilities")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Reply::error(
                    codes::FIELD_REQUIRED,
                    &["reservedFacilities"],
                    "at least one facility is required",
                )
            })?;
        let mut location_ids = Vec::new();
        for f in facilities {
            location_ids.push(self.facility_location(f, "reservedFacilities")?);
        }
        let status = match obj.get("status") {
            None => "planned",
            Some(Value::String(s)) if s == "planned" => "planned",
            Some(Value::String(s)) if s == "request" => "request",
            Some(_) => {
                return Err(Reply::error(
                    codes::INVALID_VALUE,
                    &["status"],
                    "status must be planned or request",
                ));
            }
        };
        let brief = optional_text(obj, "briefDescription", Some(100))?;
        let notes = optional_text(obj, "notes", None)?;
        let persons = optional_count(obj)?;
        let link = match obj.get("externalLink") {
            None | Some(Value::Null) => None,
            Some(v) => Some(external_link(v)?),
        };
        self.check_requester(&requester_id)?;
        let (start, end) = check_times(start, end)?;
        for l in &location_ids {
            self.check_window(l, start, end)?;
        }
        let status = self.resolve_conflict(None, &location_ids, start, end, status)?;
        let stamp = self.stamp();
        self.seq += 1;
        let rec = ReservationRec {
            id: uuid(),
            number: format!(
                "R{:02}{:02} {:04}",
                stamp.to_zoned(jiff::tz::TimeZone::UTC).year() % 100,
                stamp.to_zoned(jiff::tz::TimeZone::UTC).month(),
                self.seq
            ),
            status: status.to_owned(),
            archived: false,
            brief_description: brief.unwrap_or_default(),
            notes: notes.unwrap_or_default(),
            requester_id,
            number_of_persons: persons.unwrap_or(0),
            start,
            end,
            facilities: location_ids
                .into_iter()
                .map(|location_id| FacilityRec {
                    id: uuid(),
                    location_id,
                    issued: None,
                })
                .collect(),
            series_id: None,
            external_link: link,
            modified: stamp,
            seq: self.seq,
        };
        self.reservations.push(rec);
        Ok(self.reservations.len() - 1)
    }

    fn facility_location(&self, facility: &Value, field: &str) -> Outcome<String> {
        let obj = facility.as_object().ok_or_else(|| {
            Reply::error(
                codes::INVALID_VALUE,
                &[field],
                "a facility must be an object",
            )
        })?;
        unknown_fields(obj, &["location", "object", "asset", "services"], &[])?;
        if obj.contains_key("object") || obj.contains_key("asset") {
            return Err(Reply::error(
                codes::NOT_FOUND,
                &[field],
                "the emulator only knows locations",
            ));
        }
        let id = lookup_id(obj.get("location"), &format!("{field}.location"))?;
        match self.location(&id) {
            Some(l) if l.seed.reservable && !l.seed.archived => Ok(id),
            _ => Err(Reply::error(
                codes::NOT_FOUND,
                &[&format!("{field}.location")],
                "no reservable location with this id",
            )),
        }
    }

    fn check_requester(&self, id: &str) -> Outcome<()> {
        match self.person(id) {
            Some(p) if !p.seed.archived => Ok(()),
            Some(_) => Err(Reply::error(
                codes::NOT_FOUND,
                &["requester"],
                "the requester is archived",
            )),
            None => Err(Reply::error(
                codes::NOT_FOUND,
                &["requester"],
                "no person with this id",
            )),
        }
    }

    fn check_window(&self, location_id: &str, start: Timestamp, end: Timestamp) -> Outcome<()> {
        let Some(window) = self
            .location(location_id)
            .and_then(|l| l.seed.service_window)
        else {
            return Ok(());
        };
        let utc = jiff::tz::TimeZone::UTC;
        let (s, e) = (start.to_zoned(utc.clone()), end.to_zoned(utc));
        let weekend = |d: Weekday| matches!(d, Weekday::Saturday | Weekday::Sunday);
        let ok = s.date() == e.date()
            && s.time() >= window.opens
            && e.time() <= window.closes
            && !(window.weekdays_only && weekend(s.weekday()));
        if ok {
            Ok(())
        } else {
            Err(Reply::error(
                codes::OUTSIDE_SERVICE_WINDOW,
                &["plannedStartDate", "plannedEndDate"],
                "the reservation lies outside the service window of a reserved facility",
            ))
        }
    }

    fn overlaps(
        &self,
        exclude: Option<&str>,
        location_ids: &[String],
        start: Timestamp,
        end: Timestamp,
    ) -> bool {
        self.reservations.iter().any(|r| {
            if Some(r.id.as_str()) == exclude || r.archived || !ACTIVE.contains(&r.status.as_str())
            {
                return false;
            }
            r.facilities.iter().any(|f| {
                if !location_ids.contains(&f.location_id) {
                    return false;
                }
                let block = self
                    .location(&f.location_id)
                    .map_or(0, |l| l.seed.block_time_minutes);
                let their_start = r.start.checked_sub(block.minutes()).unwrap_or(r.start);
                let their_end = r.end.checked_add(block.minutes()).unwrap_or(r.end);
                start < their_end && their_start < end
            })
        })
    }

    /// The status a (re)booked reservation gets, or the double-booking 400.
    fn resolve_conflict(
        &self,
        exclude: Option<&str>,
        location_ids: &[String],
        start: Timestamp,
        end: Timestamp,
        status: &str,
    ) -> Outcome<&'static str> {
        let base = if status.ends_with("equest") || status == "conflictingRequest" {
            "request"
        } else {
            "planned"
        };
        if !self.overlaps(exclude, location_ids, start, end) {
            return Ok(if base == "request" {
                "request"
            } else {
                "planned"
            });
        }
        match self.config.double_booking {
            DoubleBooking::Reject => Err(Reply::error(
                codes::CONFLICT,
                &["reservedFacilities"],
                "a reserved facility is already booked at this time",
            )),
            DoubleBooking::MarkConflicting => Ok(if base == "request" {
                "conflictingRequest"
            } else {
                "conflictingPlanned"
            }),
        }
    }

    fn editable(&self, i: usize, facilities_change: bool) -> Outcome<()> {
        let r = &self.reservations[i];
        if r.archived || !ACTIVE.contains(&r.status.as_str()) {
            return Err(Reply::error(
                codes::INVALID_STATUS,
                &["status"],
                "the reservation cannot be changed in this status",
            ));
        }
        if r.facilities.iter().any(|f| f.issued.is_some()) {
            return Err(Reply::error(
                codes::FACILITY_ISSUED,
                &["reservedFacilities"],
                "a facility has been issued",
            ));
        }
        if facilities_change && r.series_id.is_some() {
            return Err(Reply::error(
                codes::SERIES_OCCURRENCE,
                &["series"],
                "facilities of a series occurrence cannot be changed",
            ));
        }
        Ok(())
    }

    /// `PATCH /reservations/{identifier}`.
    pub(crate) fn update(&mut self, i: usize, body: &Value, future: bool) -> Outcome<()> {
        let obj = body
            .as_object()
            .ok_or_else(|| Reply::error(codes::INVALID_VALUE, &[], "body must be an object"))?;
        for key in [
            "status",
            "plannedStartDate",
            "plannedEndDate",
            "reservedFacilities",
        ] {
            if obj.contains_key(key) {
                return Err(Reply::error(
                    codes::NOT_UPDATABLE,
                    &[key],
                    "use the dedicated endpoint for this field",
                ));
            }
        }
        unknown_fields(
            obj,
            &[
                "briefDescription",
                "notes",
                "numberOfPersons",
                "requester",
                "operatorGroup",
                "operator",
                "processingStatus",
                "externalLink",
            ],
            &["optionalFields1", "optionalFields2"],
        )?;
        let brief = optional_text(obj, "briefDescription", Some(100))?;
        let notes = optional_text(obj, "notes", None)?;
        let persons = optional_count(obj)?;
        let requester = match obj.get("requester") {
            None => None,
            Some(v) => {
                let id = lookup_id(Some(v), "requester")?;
                self.check_requester(&id)?;
                Some(id)
            }
        };
        let link = match obj.get("externalLink") {
            None | Some(Value::Null) => None,
            Some(v) => {
                if self.reservations[i].external_link.is_some() {
                    return Err(Reply::error(
                        codes::EXTERNAL_LINK_SET,
                        &["externalLink"],
                        "only one external link can be set; an existing link cannot be updated",
                    ));
                }
                Some(external_link(v)?)
            }
        };
        let targets: Vec<usize> = match (&self.reservations[i].series_id, future) {
            (Some(series), true) => {
                let from = self.reservations[i].start;
                let series = series.clone();
                (0..self.reservations.len())
                    .filter(|&j| {
                        self.reservations[j].series_id.as_ref() == Some(&series)
                            && self.reservations[j].start >= from
                    })
                    .collect()
            }
            _ => vec![i],
        };
        for j in targets {
            let stamp = self.stamp();
            let r = &mut self.reservations[j];
            if let Some(b) = &brief {
                r.brief_description = b.clone();
            }
            if let Some(n) = &notes {
                r.notes = n.clone();
            }
            if let Some(n) = persons {
                r.number_of_persons = n;
            }
            if let Some(p) = &requester {
                r.requester_id = p.clone();
            }
            if let (true, Some(l)) = (j == i, &link) {
                r.external_link = Some(l.clone());
            }
            r.modified = stamp;
        }
        Ok(())
    }

    /// `POST …/reschedule`.
    pub(crate) fn reschedule(&mut self, i: usize, body: &Value) -> Outcome<()> {
        let obj = body
            .as_object()
            .ok_or_else(|| Reply::error(codes::INVALID_VALUE, &[], "body must be an object"))?;
        unknown_fields(obj, &["plannedStartDate", "plannedEndDate"], &[])?;
        self.editable(i, false)?;
        let start = required_time(obj, "plannedStartDate")?;
        let end = required_time(obj, "plannedEndDate")?;
        let (start, end) = check_times(start, end)?;
        let locations: Vec<String> = self.reservations[i]
            .facilities
            .iter()
            .map(|f| f.location_id.clone())
            .collect();
        for l in &locations {
            self.check_window(l, start, end)?;
        }
        let id = self.reservations[i].id.clone();
        let status = self.resolve_conflict(
            Some(&id),
            &locations,
            start,
            end,
            &self.reservations[i].status.clone(),
        )?;
        let stamp = self.stamp();
        let r = &mut self.reservations[i];
        r.start = start;
        r.end = end;
        r.status = status.to_owned();
        r.modified = stamp;
        Ok(())
    }

    /// `POST …/reservedFacilities/{add|move|remove}`.
    pub(crate) fn facilities(&mut self, i: usize, action: &str, body: &Value) -> Outcome<()> {
        let obj = body
            .as_object()
            .ok_or_else(|| Reply::error(codes::INVALID_VALUE, &[], "body must be an object"))?;
        self.editable(i, true)?;
        let mut current: Vec<String> = self.reservations[i]
            .facilities
            .iter()
            .map(|f| f.location_id.clone())
            .collect();
        match action {
            "add" => {
                unknown_fields(obj, &["add"], &[])?;
                let list = obj.get("add").and_then(Value::as_array).ok_or_else(|| {
                    Reply::error(codes::FIELD_REQUIRED, &["add"], "add is required")
                })?;
                for f in list {
                    let id = self.facility_location(f, "add")?;
                    if !current.contains(&id) {
                        current.push(id);
                    }
                }
            }
            "remove" => {
                unknown_fields(obj, &["remove"], &[])?;
                let list = obj.get("remove").and_then(Value::as_array).ok_or_else(|| {
                    Reply::error(codes::FIELD_REQUIRED, &["remove"], "remove is required")
                })?;
                for f in list {
                    let id = lookup_id(f.get("location"), "remove.location")?;
                    if !current.contains(&id) {
                        return Err(Reply::error(
                            codes::NOT_FOUND,
                            &["remove"],
                            "the facility is not reserved",
                        ));
                    }
                    current.retain(|c| c != &id);
                }
                if current.is_empty() {
                    return Err(Reply::error(
                        codes::INVALID_VALUE,
                        &["remove"],
                        "a reservation needs at least one facility",
                    ));
                }
            }
            _ => {
                unknown_fields(obj, &["from", "to"], &[])?;
                let from = lookup_id(
                    obj.get("from").and_then(|f| f.get("location")),
                    "from.location",
                )?;
                let to_value = obj.get("to").ok_or_else(|| {
                    Reply::error(codes::FIELD_REQUIRED, &["to"], "to is required")
                })?;
                let to = self.facility_location(to_value, "to")?;
                let Some(pos) = current.iter().position(|c| c == &from) else {
                    return Err(Reply::error(
                        codes::NOT_FOUND,
                        &["from"],
                        "the facility is not reserved",
                    ));
                };
                current[pos] = to;
            }
        }
        let (start, end) = (self.reservations[i].start, self.reservations[i].end);
        for l in &current {
            self.check_window(l, start, end)?;
        }
        let id = self.reservations[i].id.clone();
        let status = self.resolve_conflict(
            Some(&id),
            &current,
            start,
            end,
            &self.reservations[i].status.clone(),
        )?;
        let stamp = self.stamp();
        let r = &mut self.reservations[i];
        let mut kept: Vec<FacilityRec> = Vec::new();
        for l in current {
            match r.facilities.iter().find(|f| f.location_id == l) {
                Some(f) => kept.push(f.clone()),
                None => kept.push(FacilityRec {
                    id: uuid(),
                    location_id: l,
                    issued: None,
                }),
            }
        }
        r.facilities = kept;
        r.status = status.to_owned();
        r.modified = stamp;
        Ok(())
    }

    fn reason(&self, cancellation: bool, body: Option<&Value>) -> Outcome<()> {
        let (reasons, default) = if cancellation {
            (
                &self.cancellation_reasons,
                &self.config.default_cancellation_reason,
            )
        } else {
            (
                &self.rejection_reasons,
                &self.config.default_rejection_reason,
            )
        };
        match body {
            None | Some(Value::Null) => {
                if default.is_some() {
                    Ok(())
                } else {
                    Err(Reply::error(
                        codes::REASON_REQUIRED,
                        &["id", "name"],
                        "a reason is required: no default reason is configured",
                    ))
                }
            }
            Some(Value::Object(obj)) => {
                unknown_fields(obj, &["id", "name"], &[])?;
                let by_id = obj.get("id").and_then(Value::as_str);
                let by_name = obj.get("name").and_then(Value::as_str);
                let found = match (by_id, by_name) {
                    (Some(id), _) => reasons.iter().filter(|r| r.id == id).count(),
                    (None, Some(name)) => reasons.iter().filter(|r| r.name == name).count(),
                    (None, None) => {
                        return Err(Reply::error(
                            codes::FIELD_REQUIRED,
                            &["id", "name"],
                            "id or name is required",
                        ));
                    }
                };
                match found {
                    1 => Ok(()),
                    0 => Err(Reply::error(
                        codes::NOT_FOUND,
                        &["id", "name"],
                        "no such reason",
                    )),
                    _ => Err(Reply::error(
                        codes::INVALID_VALUE,
                        &["name"],
                        "the name is ambiguous",
                    )),
                }
            }
            Some(_) => Err(Reply::error(
                codes::INVALID_VALUE,
                &[],
                "body must be an object",
            )),
        }
    }

    /// `POST …/cancel`.
    pub(crate) fn cancel(&mut self, i: usize, body: Option<&Value>) -> Outcome<()> {
        let r = &self.reservations[i];
        if r.archived || !matches!(r.status.as_str(), "planned" | "conflictingPlanned") {
            return Err(Reply::error(
                codes::INVALID_STATUS,
                &["status"],
                "only planned reservations can be cancelled",
            ));
        }
        if r.facilities.iter().any(|f| f.issued.is_some()) {
            return Err(Reply::error(
                codes::FACILITY_ISSUED,
                &["reservedFacilities"],
                "a facility has been issued",
            ));
        }
        self.reason(true, body)?;
        let stamp = self.stamp();
        self.reservations[i].status = "cancelled".into();
        self.reservations[i].modified = stamp;
        Ok(())
    }

    /// `POST …/reject`.
    pub(crate) fn reject(&mut self, i: usize, body: Option<&Value>) -> Outcome<()> {
        let r = &self.reservations[i];
        if r.archived
            || !matches!(r.status.as_str(), "request" | "conflictingRequest")
            || r.series_id.is_some()
        {
            return Err(Reply::error(
                codes::INVALID_STATUS,
                &["status"],
                "only single requests can be rejected",
            ));
        }
        self.reason(false, body)?;
        let stamp = self.stamp();
        self.reservations[i].status = "rejectedRequest".into();
        self.reservations[i].modified = stamp;
        Ok(())
    }

    /// `POST …/approve`.
    pub(crate) fn approve(&mut self, i: usize) -> Outcome<()> {
        let r = &self.reservations[i];
        if r.archived || r.status != "request" || r.series_id.is_some() {
            return Err(Reply::error(
                codes::INVALID_STATUS,
                &["status"],
                "only single requests can be approved",
            ));
        }
        let stamp = self.stamp();
        self.reservations[i].status = "planned".into();
        self.reservations[i].modified = stamp;
        Ok(())
    }

    /// The series endpoints. `operation` is `make`, `add` or `set`.
    pub(crate) fn series(
        &mut self,
        i: usize,
        operation: &str,
        body: &Value,
        allow_conflicts: bool,
    ) -> Outcome<Value> {
        let obj = body
            .as_object()
            .ok_or_else(|| Reply::error(codes::INVALID_VALUE, &[], "body must be an object"))?;
        unknown_fields(obj, &["dates"], &[])?;
        let raw = obj
            .get("dates")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty() && a.len() <= 1000)
            .ok_or_else(|| {
                Reply::error(
                    codes::FIELD_REQUIRED,
                    &["dates"],
                    "1 to 1000 dates are required",
                )
            })?;
        let mut dates = BTreeSet::new();
        for d in raw {
            let date = d
                .as_str()
                .and_then(|s| s.parse::<Date>().ok())
                .ok_or_else(|| {
                    Reply::error(codes::INVALID_VALUE, &["dates"], "dates must be yyyy-MM-dd")
                })?;
            if !dates.insert(date) {
                return Err(Reply::error(
                    codes::INVALID_VALUE,
                    &["dates"],
                    "dates must be unique",
                ));
            }
        }
        let anchor = self.reservations[i].clone();
        if anchor.archived || !ACTIVE.contains(&anchor.status.as_str()) {
            return Err(Reply::error(
                codes::INVALID_STATUS,
                &["status"],
                "the reservation cannot be made recurrent",
            ));
        }
        if anchor.facilities.iter().any(|f| f.issued.is_some()) {
            return Err(Reply::error(
                codes::FACILITY_ISSUED,
                &["reservedFacilities"],
                "a facility has been issued",
            ));
        }
        match (operation, &anchor.series_id) {
            ("make", Some(_)) => {
                return Err(Reply::error(
                    codes::INVALID_STATUS,
                    &["series"],
                    "the reservation is already recurrent",
                ));
            }
            ("add" | "set", None) => {
                return Err(Reply::error(
                    codes::INVALID_STATUS,
                    &["series"],
                    "the reservation is not part of a series",
                ));
            }
            _ => {}
        }
        let utc = jiff::tz::TimeZone::UTC;
        let anchor_date = anchor.start.to_zoned(utc.clone()).date();
        if dates.iter().any(|d| *d < anchor_date) {
            return Err(Reply::error(
                codes::INVALID_VALUE,
                &["dates"],
                "dates must be after the reservation",
            ));
        }
        let series_id = anchor.series_id.clone().unwrap_or_else(uuid);
        let members: Vec<usize> = (0..self.reservations.len())
            .filter(|&j| {
                j == i
                    || (anchor.series_id.is_some()
                        && self.reservations[j].series_id == anchor.series_id)
            })
            .collect();
        let existing: BTreeSet<Date> = members
            .iter()
            .map(|&j| self.reservations[j].start.to_zoned(utc.clone()).date())
            .collect();
        // PUT: later occurrences not listed are deleted.
        let mut delete: Vec<String> = Vec::new();
        if operation == "set" {
            for &j in &members {
                let d = self.reservations[j].start.to_zoned(utc.clone()).date();
                if d > anchor_date && !dates.contains(&d) {
                    delete.push(self.reservations[j].id.clone());
                }
            }
        }
        let new_dates: Vec<Date> = dates
            .iter()
            .copied()
            .filter(|d| !existing.contains(d) && *d != anchor_date)
            .collect();
        if existing.len() + new_dates.len() - delete.len() > 999 {
            return Err(Reply::error(
                codes::INVALID_VALUE,
                &["dates"],
                "a series has at most 999 occurrences",
            ));
        }
        let locations: Vec<String> = anchor
            .facilities
            .iter()
            .map(|f| f.location_id.clone())
            .collect();
        let duration = anchor.end.duration_since(anchor.start);
        let time_of_day = anchor.start.to_zoned(utc.clone()).time();
        let mut planned = Vec::new();
        for d in &new_dates {
            let start = d
                .to_datetime(time_of_day)
                .to_zoned(utc.clone())
                .map_err(|_| Reply::error(codes::INVALID_VALUE, &["dates"], "date out of range"))?
                .timestamp();
            let end = start
                .checked_add(duration)
                .map_err(|_| Reply::error(codes::INVALID_VALUE, &["dates"], "date out of range"))?;
            for l in &locations {
                self.check_window(l, start, end)?;
            }
            let base = if anchor.status.contains("equest") {
                "request"
            } else {
                "planned"
            };
            let status = if self.overlaps(None, &locations, start, end) {
                if !allow_conflicts {
                    return Err(Reply::error(
                        codes::CONFLICT,
                        &["dates"],
                        "an occurrence would conflict with another booking",
                    ));
                }
                if base == "request" {
                    "conflictingRequest"
                } else {
                    "conflictingPlanned"
                }
            } else {
                base
            };
            planned.push((start, end, status));
        }
        self.reservations.retain(|r| !delete.contains(&r.id));
        let anchor_index = self.find(&anchor.id).unwrap_or(i);
        let stamp = self.stamp();
        self.reservations[anchor_index].series_id = Some(series_id.clone());
        self.reservations[anchor_index].modified = stamp;
        for (start, end, status) in planned {
            let stamp = self.stamp();
            self.seq += 1;
            let mut copy = anchor.clone();
            copy.id = uuid();
            copy.number = format!("{}-{}", anchor.number, self.seq);
            copy.seq = self.seq;
            copy.start = start;
            copy.end = end;
            copy.status = status.to_owned();
            copy.series_id = Some(series_id.clone());
            copy.external_link = None;
            copy.modified = stamp;
            copy.facilities = locations
                .iter()
                .map(|l| FacilityRec {
                    id: uuid(),
                    location_id: l.clone(),
                    issued: None,
                })
                .collect();
            self.reservations.push(copy);
        }
        let mut series: Vec<&ReservationRec> = self
            .reservations
            .iter()
            .filter(|r| r.series_id.as_deref() == Some(series_id.as_str()))
            .collect();
        series.sort_by_key(|r| (r.start, r.seq));
        Ok(
            json!({"results": series.iter().map(|r| self.render_series_member(r)).collect::<Vec<_>>()}),
        )
    }

    /// Matching reservations in list order (planned start, then creation).
    pub(crate) fn ordered(&self) -> Vec<&ReservationRec> {
        let mut all: Vec<&ReservationRec> = self.reservations.iter().collect();
        all.sort_by_key(|r| (r.start, r.seq));
        all
    }
}

fn dynamic_name(p: &PersonSeed) -> String {
    if p.first_name.is_empty() {
        p.sur_name.clone()
    } else {
        format!("{}, {}", p.sur_name, p.first_name)
    }
}

fn unknown_fields(obj: &Map<String, Value>, allowed: &[&str], also: &[&str]) -> Outcome<()> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) && !also.contains(&key.as_str()) {
            return Err(Reply::error(codes::UNKNOWN_FIELD, &[key], "unknown field"));
        }
    }
    Ok(())
}

fn lookup_id(value: Option<&Value>, field: &str) -> Outcome<String> {
    let id = value
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| Reply::error(codes::FIELD_REQUIRED, &[field], "an id is required"))?;
    if !is_uuid(id) {
        return Err(Reply::error(
            codes::INVALID_VALUE,
            &[field],
            "the id is not a uuid",
        ));
    }
    Ok(id.to_owned())
}

fn required_time(obj: &Map<String, Value>, field: &str) -> Outcome<Timestamp> {
    let text = obj
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Reply::error(codes::FIELD_REQUIRED, &[field], "this field is required"))?;
    parse_time(text).ok_or_else(|| {
        Reply::error(
            codes::INVALID_VALUE,
            &[field],
            "not an ISO 8601 date-time with a zone",
        )
    })
}

fn check_times(start: Timestamp, end: Timestamp) -> Outcome<(Timestamp, Timestamp)> {
    let (start, end) = (truncate_minute(start), truncate_minute(end));
    if start >= end {
        return Err(Reply::error(
            codes::INVALID_VALUE,
            &["plannedStartDate", "plannedEndDate"],
            "start must be before end",
        ));
    }
    Ok((start, end))
}

fn optional_text(
    obj: &Map<String, Value>,
    field: &str,
    max: Option<usize>,
) -> Outcome<Option<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if max.is_some_and(|m| s.chars().count() > m) {
                return Err(Reply::error(
                    codes::INVALID_VALUE,
                    &[field],
                    "text too long",
                ));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(Reply::error(
            codes::INVALID_VALUE,
            &[field],
            "must be a string",
        )),
    }
}

fn optional_count(obj: &Map<String, Value>) -> Outcome<Option<i64>> {
    match obj.get("numberOfPersons") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (0..=99_999).contains(&n) => Ok(Some(n)),
            _ => Err(Reply::error(
                codes::INVALID_VALUE,
                &["numberOfPersons"],
                "must be 0 to 99999",
            )),
        },
    }
}

fn external_link(value: &Value) -> Outcome<(String, String, Option<Timestamp>)> {
    let obj = value.as_object().ok_or_else(|| {
        Reply::error(codes::INVALID_VALUE, &["externalLink"], "must be an object")
    })?;
    unknown_fields(obj, &["id", "type", "date"], &[])?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Reply::error(
                codes::FIELD_REQUIRED,
                &["externalLink.id"],
                "id is required",
            )
        })?;
    if id.chars().count() > 450 {
        return Err(Reply::error(
            codes::INVALID_VALUE,
            &["externalLink.id"],
            "at most 450 characters",
        ));
    }
    let link_type = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        Reply::error(
            codes::FIELD_REQUIRED,
            &["externalLink.type"],
            "type is required",
        )
    })?;
    if !link_type.parse::<i64>().is_ok_and(|n| n != 0) {
        return Err(Reply::error(
            codes::INVALID_VALUE,
            &["externalLink.type"],
            "a non-zero integer formatted as string",
        ));
    }
    let date = match obj.get("date") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().and_then(parse_time).ok_or_else(|| {
            Reply::error(
                codes::INVALID_VALUE,
                &["externalLink.date"],
                "not a date-time",
            )
        })?),
    };
    Ok((id.to_owned(), link_type.to_owned(), date))
}
