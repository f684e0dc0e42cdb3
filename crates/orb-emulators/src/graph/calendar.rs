//! Mailboxes and calendars: events, series expansion, and what Exchange does on its own
//! when a meeting invites a room (the room's copy, auto-accept or decline, subject
//! rewriting, propagation of updates and cancellations).

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

/// Exchange calendar-processing options of a room mailbox (`Set-CalendarProcessing`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomOptions {
    /// `DeleteSubject` (default true): the room's copy loses the subject.
    pub delete_subject: bool,
    /// `AddOrganizerToSubject` (default true): the organizer's name becomes the subject.
    pub add_organizer_to_subject: bool,
    /// `RemoveCanceledMeetings` (default false): cancelled meetings are removed instead
    /// of lingering with `isCancelled: true`.
    pub remove_canceled_meetings: bool,
    /// `AllowConflicts` (default false): when false, a conflicting request is declined.
    pub allow_conflicts: bool,
}

impl Default for RoomOptions {
    fn default() -> Self {
        Self {
            delete_subject: true,
            add_organizer_to_subject: true,
            remove_canceled_meetings: false,
            allow_conflicts: false,
        }
    }
}

/// An error answer in Graph's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`.
    pub code: String,
    /// `error.message`.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(400, "ErrorInvalidRequest", message)
    }

    pub(crate) fn not_found() -> Self {
        Self::new(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attendee {
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) response: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) display_name: String,
    pub(crate) email: Option<String>,
}

/// What can differ per occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) location: Option<Loc>,
    pub(crate) attendees: Vec<Attendee>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Override {
    pub(crate) fields: Fields,
    pub(crate) version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) mailbox: String,
    pub(crate) id: String,
    pub(crate) occurrence: Option<i64>,
}

/// A stored item: a single event, a series master (with its exceptions and cancelled
/// occurrences), or an attendee's copy of either.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) ical_uid: String,
    pub(crate) fields: Fields,
    pub(crate) is_all_day: bool,
    pub(crate) zone: String,
    pub(crate) organizer: (String, String),
    pub(crate) is_organizer: bool,
    pub(crate) is_cancelled: bool,
    pub(crate) response: String,
    pub(crate) sensitivity: String,
    pub(crate) show_as: String,
    pub(crate) recurrence: Option<Value>,
    pub(crate) overrides: BTreeMap<i64, Override>,
    pub(crate) cancelled: BTreeSet<i64>,
    pub(crate) transaction_id: Option<String>,
    pub(crate) ext: BTreeMap<String, String>,
    pub(crate) version: u64,
    pub(crate) created: Timestamp,
    pub(crate) modified: Timestamp,
    pub(crate) source: Option<Source>,
    pub(crate) original_start: Option<i64>,
}

/// One expanded calendar entry (what calendarView and delta return).
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) ical_uid: String,
    pub(crate) fields: Fields,
    pub(crate) occurrence: Option<i64>,
    pub(crate) etag: String,
    pub(crate) master_id: Option<String>,
}

/// Whether a mailbox is a person's or a room's.
#[derive(Clone, Debug)]
pub(crate) enum MailboxKind {
    Person,
    Room {
        options: RoomOptions,
        capacity: Option<u32>,
        building: Option<String>,
        floor: Option<i32>,
        room_list: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct MailboxData {
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) object_id: String,
    pub(crate) place_id: String,
    pub(crate) kind: MailboxKind,
    pub(crate) items: BTreeMap<String, Item>,
}

/// A change a subscription may be told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) mailbox: String,
    pub(crate) id: String,
    pub(crate) change_type: &'static str,
}

/// All calendars.
#[derive(Debug, Default)]
pub(crate) struct Calendars {
    pub(crate) mailboxes: BTreeMap<String, MailboxData>,
    next_id: u64,
}

const OCC_SEP: &str = "-occ-";

impl Calendars {
    pub(crate) fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!(
            "{prefix}{:08}{}",
            self.next_id,
            uuid::Uuid::new_v4().simple()
        )
    }

    pub(crate) fn mailbox(&self, email: &str) -> Result<&MailboxData, ApiError> {
        self.mailboxes
            .get(&email.to_ascii_lowercase())
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "ErrorInvalidUser",
                    format!("The requested user '{email}' is invalid."),
                )
            })
    }

    fn mailbox_mut(&mut self, email: &str) -> Result<&mut MailboxData, ApiError> {
        self.mailboxes
            .get_mut(&email.to_ascii_lowercase())
            .ok_or_else(|| ApiError::new(404, "ErrorInvalidUser", "The requested user is invalid."))
    }

    /// `POST /users/{mailbox}/events`.
    pub(crate) fn create(
        &mut self,
        mailbox: &str,
        body: &Value,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) -> Result<String, ApiError> {
        let owner = self.mailbox(mailbox)?;
        let owner_key = owner.email.clone();
        let organizer = (owner.email.clone(), owner.name.clone());
        if let Some(tx) = body.get("transactionId").and_then(Value::as_str)
            && let Some(existing) = owner
                .items
                .values()
                .find(|i| i.transaction_id.as_deref() == Some(tx))
        {
            // A retried POST with the same transactionId: no second event.
            return Ok(existing.id.clone());
        }
        let (start, zone) = parse_dt(body.get("start"))?;
        let (end, _) = parse_dt(body.get("end"))?;
        let is_all_day = body
            .get("isAllDay")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        check_times(start, end, is_all_day)?;
        let recurrence = match body.get("recurrence") {
            Some(Value::Null) | None => None,
            Some(r) => {
                Rule::parse(r)?;
                Some(r.clone())
            }
        };
        let id = self.fresh_id("AAMkEv");
        let item = Item {
            id: id.clone(),
            ical_uid: format!(
                "040000008200E00074C5B7101A82E008{}",
                uuid::Uuid::new_v4().simple()
            )
            .to_ascii_uppercase(),
            fields: Fields {
                subject: str_of(body, "subject").unwrap_or_default(),
                body: body
                    .get("body")
                    .and_then(|b| b.get("content"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                start,
                end,
                location: parse_location(body.get("location")),
                attendees: parse_attendees(body.get("attendees"))?,
            },
            is_all_day,
            zone,
            organizer,
            is_organizer: true,
            is_cancelled: false,
            response: "organizer".into(),
            sensitivity: str_of(body, "sensitivity").unwrap_or_else(|| "normal".into()),
            show_as: str_of(body, "showAs").unwrap_or_else(|| "busy".into()),
            recurrence,
            overrides: BTreeMap::new(),
            cancelled: BTreeSet::new(),
            transaction_id: str_of(body, "transactionId"),
            ext: parse_ext(body.get("singleValueExtendedProperties")),
            version: 1,
            created: now,
            modified: now,
            source: None,
            original_start: None,
        };
        self.mailbox_mut(&owner_key)?.items.insert(id.clone(), item);
        changes.push(Change {
            mailbox: owner_key.clone(),
            id: id.clone(),
            change_type: "created",
        });
        self.propagate(&owner_key, &id, now, changes);
        Ok(id)
    }

    /// `PATCH /users/{mailbox}/events/{id}` (an occurrence id makes an exception).
    pub(crate) fn update(
        &mut self,
        mailbox: &str,
        id: &str,
        body: &Value,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) -> Result<String, ApiError> {
        let owner = self.mailbox(mailbox)?.email.clone();
        if body.get("transactionId").is_some() {
            return Err(ApiError::bad(
                "The property 'transactionId' cannot be updated.",
            ));
        }
        let (item_id, occurrence) = self.resolve(&owner, id)?;
        let mb = self.mailbox_mut(&owner)?;
        let item = mb.items.get_mut(&item_id).ok_or_else(ApiError::not_found)?;
        match occurrence {
            Some(occ) => {
                if body.get("recurrence").is_some() {
                    return Err(ApiError::bad("An occurrence cannot carry a recurrence."));
                }
                let base = item
                    .overrides
                    .get(&occ)
                    .map(|o| o.fields.clone())
                    .unwrap_or_else(|| occurrence_fields(item, occ));
                let fields = apply_fields(base, body)?;
                check_boundaries(item, occ, fields.start)?;
                let version = item.overrides.get(&occ).map_or(1, |o| o.version + 1);
                item.overrides.insert(occ, Override { fields, version });
            }
            None => {
                let fields = apply_fields(item.fields.clone(), body)?;
                if let Some(all_day) = body.get("isAllDay").and_then(Value::as_bool) {
                    item.is_all_day = all_day;
                }
                check_times(fields.start, fields.end, item.is_all_day)?;
                if let Some((_, zone)) = body.get("start").map(|v| parse_dt(Some(v))).transpose()? {
                    item.zone = zone;
                }
                item.fields = fields;
                match body.get("recurrence") {
                    Some(Value::Null) => item.recurrence = None,
                    Some(r) => {
                        Rule::parse(r)?;
                        item.recurrence = Some(r.clone());
                    }
                    None => {}
                }
                if let Some(s) = str_of(body, "sensitivity") {
                    item.sensitivity = s;
                }
                if let Some(s) = str_of(body, "showAs") {
                    item.show_as = s;
                }
                item.ext
                    .extend(parse_ext(body.get("singleValueExtendedProperties")));
            }
        }
        item.version += 1;
        item.modified = now;
        changes.push(Change {
            mailbox: owner.clone(),
            id: item_id.clone(),
            change_type: "updated",
        });
        let propagate = item.is_organizer && item.source.is_none();
        if propagate {
            self.propagate(&owner, &item_id, now, changes);
        }
        Ok(id.to_owned())
    }

    /// `POST …/cancel` (organizer only) and `DELETE` (anyone; the organizer's delete
    /// also cancels the meeting for attendees).
    pub(crate) fn remove(
        &mut self,
        mailbox: &str,
        id: &str,
        organizer_only: bool,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) -> Result<(), ApiError> {
        let owner = self.mailbox(mailbox)?.email.clone();
        let (item_id, occurrence) = self.resolve(&owner, id)?;
        let mb = self.mailbox_mut(&owner)?;
        let item = mb.items.get_mut(&item_id).ok_or_else(ApiError::not_found)?;
        if organizer_only && !item.is_organizer {
            return Err(ApiError::bad(
                "You need to be an organizer to cancel a meeting.",
            ));
        }
        let propagate = item.is_organizer && item.source.is_none();
        match occurrence {
            Some(occ) => {
                item.overrides.remove(&occ);
                item.cancelled.insert(occ);
                item.version += 1;
                item.modified = now;
                changes.push(Change {
                    mailbox: owner.clone(),
                    id: item_id.clone(),
                    change_type: "updated",
                });
            }
            None => {
                mb.items.remove(&item_id);
                changes.push(Change {
                    mailbox: owner.clone(),
                    id: item_id.clone(),
                    change_type: "deleted",
                });
            }
        }
        if propagate {
            self.propagate(&owner, &item_id, now, changes);
        }
        Ok(())
    }

    /// Splits an id into the stored item and, for occurrence ids, the occurrence key.
    pub(crate) fn resolve(
        &self,
        mailbox: &str,
        id: &str,
    ) -> Result<(String, Option<i64>), ApiError> {
        let mb = self.mailbox(mailbox)?;
        if mb.items.contains_key(id) {
            return Ok((id.to_owned(), None));
        }
        let (master, occ) = id.rsplit_once(OCC_SEP).ok_or_else(ApiError::not_found)?;
        let occ: i64 = occ.parse().map_err(|_| ApiError::not_found())?;
        let item = mb.items.get(master).ok_or_else(ApiError::not_found)?;
        if item.cancelled.contains(&occ) || !occurrence_starts(item, occ, occ).contains(&occ) {
            return Err(ApiError::not_found());
        }
        Ok((master.to_owned(), Some(occ)))
    }

    /// The expanded entries of a mailbox overlapping `[start, end)`.
    pub(crate) fn view(
        &self,
        mailbox: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Instance>, ApiError> {
        let mb = self.mailbox(mailbox)?;
        let mut out = Vec::new();
        for item in mb.items.values() {
            out.extend(expand(item, start, end));
        }
        out.sort_by(|a, b| (a.fields.start, &a.id).cmp(&(b.fields.start, &b.id)));
        Ok(out)
    }

    /// Occurrences and exceptions of one master in a window.
    pub(crate) fn instances(
        &self,
        mailbox: &str,
        id: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Instance>, ApiError> {
        let mb = self.mailbox(mailbox)?;
        let item = mb.items.get(id).ok_or_else(ApiError::not_found)?;
        if item.recurrence.is_none() {
            return Err(ApiError::bad("The event is not a series master."));
        }
        Ok(expand(item, start, end))
    }

    /// Re-derives every attendee's copy of an organizer's item, as Exchange's calendar
    /// processing would: rooms accept unless busy, rewrite the subject, and receive
    /// updates and cancellations; people get a copy awaiting their response.
    fn propagate(&mut self, org: &str, id: &str, now: Timestamp, changes: &mut Vec<Change>) {
        let src = self
            .mailboxes
            .get(org)
            .and_then(|m| m.items.get(id))
            .cloned();
        // Desired copies keyed by (mailbox, occurrence).
        let mut desired: BTreeMap<(String, Option<i64>), Item> = BTreeMap::new();
        if let Some(src) = &src
            && !src.is_cancelled
        {
            let mut invitees: BTreeSet<String> = src
                .fields
                .attendees
                .iter()
                .map(|a| a.email.clone())
                .collect();
            for o in src.overrides.values() {
                invitees.extend(o.fields.attendees.iter().map(|a| a.email.clone()));
            }
            for m in invitees {
                if m == org || !self.mailboxes.contains_key(&m) {
                    continue;
                }
                let in_master = src.fields.attendees.iter().any(|a| a.email == m);
                if in_master {
                    let mut copy = src.clone();
                    copy.overrides
                        .retain(|_, o| o.fields.attendees.iter().any(|a| a.email == m));
                    for occ in src.overrides.keys() {
                        if !copy.overrides.contains_key(occ) {
                            copy.cancelled.insert(*occ);
                        }
                    }
                    desired.insert((m.clone(), None), copy);
                }
                if src.recurrence.is_some() {
                    for (occ, o) in &src.overrides {
                        if !in_master && o.fields.attendees.iter().any(|a| a.email == m) {
                            let mut single = src.clone();
                            single.fields = o.fields.clone();
                            single.recurrence = None;
                            single.overrides.clear();
                            single.cancelled.clear();
                            single.ical_uid = occurrence_uid(&src.ical_uid, *occ);
                            single.original_start = Some(*occ);
                            desired.insert((m.clone(), Some(*occ)), single);
                        }
                    }
                }
            }
        }
        // Existing copies.
        let mut existing: BTreeMap<(String, Option<i64>), String> = BTreeMap::new();
        for (m, mb) in &self.mailboxes {
            for item in mb.items.values() {
                if let Some(s) = &item.source
                    && s.mailbox == org
                    && s.id == id
                {
                    existing.insert((m.clone(), s.occurrence), item.id.clone());
                }
            }
        }
        let mut responses: Vec<(String, Option<i64>, &'static str)> = Vec::new();
        for ((m, occ), template) in &desired {
            let Some(mb) = self.mailboxes.get(m) else {
                continue;
            };
            let is_room = matches!(mb.kind, MailboxKind::Room { .. });
            let copy_fields = |f: &Fields| rewrite_for(mb, f, &template.organizer);
            let mut copy = template.clone();
            copy.fields = copy_fields(&template.fields);
            for o in copy.overrides.values_mut() {
                o.fields = copy_fields(&o.fields);
            }
            copy.is_organizer = false;
            copy.source = Some(Source {
                mailbox: org.to_owned(),
                id: id.to_owned(),
                occurrence: *occ,
            });
            copy.transaction_id = None;
            copy.ext.clear();
            if is_room {
                copy.sensitivity = "normal".into();
            }
            let busy = is_room && !room_allows_conflicts(mb) && self.conflicts(m, &copy, org, id);
            match existing.get(&(m.clone(), *occ)) {
                Some(existing_id) => {
                    if busy {
                        responses.push((m.clone(), *occ, "declined"));
                        self.cancel_copy(m, existing_id, now, changes);
                        continue;
                    }
                    let Some(mbm) = self.mailboxes.get_mut(m) else {
                        continue;
                    };
                    let Some(current) = mbm.items.get_mut(existing_id) else {
                        continue;
                    };
                    let changed = current.fields != copy.fields
                        || current.overrides != copy.overrides
                        || current.cancelled != copy.cancelled
                        || current.recurrence != copy.recurrence
                        || current.is_all_day != copy.is_all_day
                        || current.is_cancelled;
                    if changed {
                        current.fields = copy.fields;
                        current.overrides = copy.overrides;
                        current.cancelled = copy.cancelled;
                        current.recurrence = copy.recurrence;
                        current.is_all_day = copy.is_all_day;
                        current.zone = copy.zone;
                        current.is_cancelled = false;
                        current.version += 1;
                        current.modified = now;
                        changes.push(Change {
                            mailbox: m.clone(),
                            id: existing_id.clone(),
                            change_type: "updated",
                        });
                    }
                    if is_room {
                        responses.push((m.clone(), *occ, "accepted"));
                    }
                }
                None => {
                    if busy {
                        responses.push((m.clone(), *occ, "declined"));
                        continue;
                    }
                    let new_id = self.fresh_id("AAMkCp");
                    copy.id = new_id.clone();
                    copy.response = if is_room {
                        "accepted".into()
                    } else {
                        "notResponded".into()
                    };
                    copy.version = 1;
                    copy.created = now;
                    copy.modified = now;
                    if let Some(mbm) = self.mailboxes.get_mut(m) {
                        mbm.items.insert(new_id.clone(), copy);
                    }
                    changes.push(Change {
                        mailbox: m.clone(),
                        id: new_id,
                        change_type: "created",
                    });
                    if is_room {
                        responses.push((m.clone(), *occ, "accepted"));
                    }
                }
            }
        }
        for (key, copy_id) in &existing {
            if !desired.contains_key(key) {
                self.cancel_copy(&key.0, copy_id, now, changes);
            }
        }
        // The rooms' answers arrive in the organizer's copy.
        self.record_responses(org, id, responses, now, changes);
    }

    /// An attendee declines (`POST …/events/{id}/decline`): as Exchange does by default,
    /// its copy leaves its calendar, and the organizer's copy records the answer.
    pub(crate) fn decline(
        &mut self,
        mailbox: &str,
        id: &str,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) -> Result<(), ApiError> {
        let owner = self.mailbox(mailbox)?.email.clone();
        let (item_id, occurrence) = self.resolve(&owner, id)?;
        let item = self
            .mailbox(&owner)?
            .items
            .get(&item_id)
            .ok_or_else(ApiError::not_found)?;
        if item.is_organizer {
            return Err(ApiError::bad(
                "Your request can't be completed. You can't respond to a meeting you organized.",
            ));
        }
        let source = item.source.clone();
        self.remove(&owner, id, false, now, changes)?;
        if let Some(src) = source {
            let occ = occurrence.or(src.occurrence);
            self.record_responses(
                &src.mailbox,
                &src.id,
                vec![(owner, occ, "declined")],
                now,
                changes,
            );
        }
        Ok(())
    }

    /// Writes attendees' answers into the organizer's copy `org`/`id`.
    fn record_responses(
        &mut self,
        org: &str,
        id: &str,
        responses: Vec<(String, Option<i64>, &'static str)>,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) {
        if let Some(item) = self
            .mailboxes
            .get_mut(org)
            .and_then(|m| m.items.get_mut(id))
        {
            let mut touched = false;
            for (m, occ, response) in responses {
                let lists: Vec<&mut Vec<Attendee>> = match occ {
                    None => {
                        let mut v = vec![&mut item.fields.attendees];
                        v.extend(item.overrides.values_mut().map(|o| &mut o.fields.attendees));
                        v
                    }
                    Some(occ) => item
                        .overrides
                        .get_mut(&occ)
                        .map(|o| vec![&mut o.fields.attendees])
                        .unwrap_or_default(),
                };
                for list in lists {
                    for a in list.iter_mut().filter(|a| a.email == m) {
                        if a.response != response {
                            a.response = response.to_owned();
                            touched = true;
                        }
                    }
                }
            }
            if touched {
                item.version += 1;
                item.modified = now;
                changes.push(Change {
                    mailbox: org.to_owned(),
                    id: id.to_owned(),
                    change_type: "updated",
                });
            }
        }
    }

    fn cancel_copy(&mut self, mailbox: &str, id: &str, now: Timestamp, changes: &mut Vec<Change>) {
        let Some(mb) = self.mailboxes.get_mut(mailbox) else {
            return;
        };
        let remove = match &mb.kind {
            MailboxKind::Room { options, .. } => options.remove_canceled_meetings,
            MailboxKind::Person => false,
        };
        if remove {
            if mb.items.remove(id).is_some() {
                changes.push(Change {
                    mailbox: mailbox.to_owned(),
                    id: id.to_owned(),
                    change_type: "deleted",
                });
            }
            return;
        }
        if let Some(item) = mb.items.get_mut(id)
            && !item.is_cancelled
        {
            item.is_cancelled = true;
            item.fields.subject = format!("Canceled: {}", item.fields.subject);
            item.version += 1;
            item.modified = now;
            changes.push(Change {
                mailbox: mailbox.to_owned(),
                id: id.to_owned(),
                change_type: "updated",
            });
        }
    }

    /// Whether `candidate` overlaps anything else (not cancelled, not free) in `room`.
    fn conflicts(&self, room: &str, candidate: &Item, org: &str, id: &str) -> bool {
        let Some(mb) = self.mailboxes.get(room) else {
            return false;
        };
        let horizon_end = candidate
            .fields
            .start
            .checked_add(jiff::SignedDuration::from_hours(24 * 730))
            .unwrap_or(candidate.fields.start);
        let mine: Vec<(Timestamp, Timestamp)> =
            expand(candidate, candidate.fields.start, horizon_end)
                .into_iter()
                .take(500)
                .map(|i| (i.fields.start, i.fields.end))
                .collect();
        let (Some(lo), Some(hi)) = (
            mine.iter().map(|m| m.0).min(),
            mine.iter().map(|m| m.1).max(),
        ) else {
            return false;
        };
        mb.items.values().any(|other| {
            let same = other
                .source
                .as_ref()
                .is_some_and(|s| s.mailbox == org && s.id == id);
            if same || other.is_cancelled || other.show_as == "free" {
                return false;
            }
            expand(other, lo, hi).iter().any(|o| {
                mine.iter()
                    .any(|(s, e)| o.fields.start < *e && *s < o.fields.end)
            })
        })
    }
}

fn room_allows_conflicts(mb: &MailboxData) -> bool {
    matches!(&mb.kind, MailboxKind::Room { options, .. } if options.allow_conflicts)
}

fn rewrite_for(mb: &MailboxData, f: &Fields, organizer: &(String, String)) -> Fields {
    let mut f = f.clone();
    if let MailboxKind::Room { options, .. } = &mb.kind {
        let name = if organizer.1.is_empty() {
            organizer.0.clone()
        } else {
            organizer.1.clone()
        };
        f.subject = match (options.delete_subject, options.add_organizer_to_subject) {
            (true, true) => name,
            (true, false) => String::new(),
            (false, true) => format!("{name} {}", f.subject),
            (false, false) => f.subject,
        };
        // DeleteComments (default true): the room's copy has no body.
        f.body = String::new();
    }
    f
}

/// An occurrence may not move onto or before the day of the previous occurrence, nor
/// onto or after the day of the next one (`ErrorOccurrenceCrossingBoundary`).
fn check_boundaries(item: &Item, occ: i64, new_start: Timestamp) -> Result<(), ApiError> {
    const YEAR: i64 = 400 * 86_400;
    let slots = occurrence_starts(item, occ.saturating_sub(YEAR), occ.saturating_add(YEAR));
    let effective = |slot: i64| {
        item.overrides
            .get(&slot)
            .map_or(slot, |o| o.fields.start.as_second())
    };
    let day = |secs: i64| {
        Timestamp::from_second(secs)
            .map(|t| t.to_zoned(TimeZone::UTC).date())
            .ok()
    };
    let new_day = day(new_start.as_second());
    let prev = slots
        .iter()
        .rev()
        .find(|s| **s < occ && !item.cancelled.contains(s));
    let next = slots
        .iter()
        .find(|s| **s > occ && !item.cancelled.contains(s));
    let crossing = prev.is_some_and(|p| new_day <= day(effective(*p)))
        || next.is_some_and(|n| new_day >= day(effective(*n)));
    if crossing {
        return Err(ApiError::new(
            400,
            "ErrorOccurrenceCrossingBoundary",
            "An occurrence can't be moved onto or past the day of an adjacent occurrence.",
        ));
    }
    Ok(())
}

fn check_times(start: Timestamp, end: Timestamp, all_day: bool) -> Result<(), ApiError> {
    if end <= start {
        return Err(ApiError::bad("The end time must be after the start time."));
    }
    if all_day {
        let midnight = |t: Timestamp| t.to_zoned(TimeZone::UTC).time() == Time::midnight();
        if !midnight(start) || !midnight(end) {
            return Err(ApiError::bad(
                "Start and end of an all-day event must be at midnight.",
            ));
        }
    }
    Ok(())
}

pub(crate) fn str_of(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Resolves the zone names the emulator understands: UTC, IANA, and a few Windows names.
pub(crate) fn zone(name: &str) -> Option<TimeZone> {
    const WINDOWS: &[(&str, &str)] = &[
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Romance Standard Time", "Europe/Paris"),
        ("GMT Standard Time", "Europe/London"),
        ("Eastern Standard Time", "America/New_York"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Central Europe Standard Time", "Europe/Budapest"),
    ];
    if name.is_empty() || name.eq_ignore_ascii_case("utc") {
        return Some(TimeZone::UTC);
    }
    let iana = WINDOWS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(name))
        .map_or(name, |(_, i)| *i);
    TimeZone::get(iana).ok()
}

fn parse_dt(v: Option<&Value>) -> Result<(Timestamp, String), ApiError> {
    let v = v.ok_or_else(|| ApiError::bad("start and end are required."))?;
    let dt = v
        .get("dateTime")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("dateTime is required."))?;
    let tz_name = v.get("timeZone").and_then(Value::as_str).unwrap_or("UTC");
    let tz = zone(tz_name).ok_or_else(|| {
        ApiError::new(
            400,
            "TimeZoneNotSupportedException",
            format!("A valid TimeZone value must be specified: {tz_name}"),
        )
    })?;
    let civil: jiff::civil::DateTime = dt
        .trim_end_matches('Z')
        .parse()
        .map_err(|_| ApiError::bad("Cannot convert the literal to a date-time."))?;
    let ts = civil
        .to_zoned(tz)
        .map_err(|_| ApiError::bad("The date-time does not exist in the zone."))?
        .timestamp();
    Ok((ts, tz_name.to_owned()))
}

fn parse_location(v: Option<&Value>) -> Option<Loc> {
    let v = v?;
    let display_name = str_of(v, "displayName").unwrap_or_default();
    let email = str_of(v, "locationEmailAddress")
        .map(|e| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty());
    if display_name.is_empty() && email.is_none() {
        return None;
    }
    Some(Loc {
        display_name,
        email,
    })
}

fn parse_attendees(v: Option<&Value>) -> Result<Vec<Attendee>, ApiError> {
    let Some(list) = v else { return Ok(Vec::new()) };
    let Some(list) = list.as_array() else {
        return Err(ApiError::bad("attendees must be a collection."));
    };
    if list.len() > 500 {
        return Err(ApiError::bad("An event can have at most 500 attendees."));
    }
    list.iter()
        .map(|a| {
            let email = a
                .get("emailAddress")
                .and_then(|e| e.get("address"))
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad("An attendee needs an emailAddress."))?
                .to_ascii_lowercase();
            let name = a
                .get("emailAddress")
                .and_then(|e| e.get("name"))
                .and_then(Value::as_str)
                .unwrap_or(&email)
                .to_owned();
            let kind = str_of(a, "type")
                .unwrap_or_else(|| "required".into())
                .to_ascii_lowercase();
            if !matches!(kind.as_str(), "required" | "optional" | "resource") {
                return Err(ApiError::bad(
                    "attendee type must be required, optional or resource.",
                ));
            }
            Ok(Attendee {
                email,
                name,
                kind,
                response: "none".into(),
            })
        })
        .collect()
}

fn parse_ext(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|p| Some((str_of(p, "id")?, str_of(p, "value")?)))
                .collect()
        })
        .unwrap_or_default()
}

fn apply_fields(mut f: Fields, body: &Value) -> Result<Fields, ApiError> {
    if let Some(s) = str_of(body, "subject") {
        f.subject = s;
    }
    if let Some(c) = body
        .get("body")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_str)
    {
        f.body = c.to_owned();
    }
    if body.get("start").is_some() {
        f.start = parse_dt(body.get("start"))?.0;
    }
    if body.get("end").is_some() {
        f.end = parse_dt(body.get("end"))?.0;
    }
    if body.get("location").is_some() {
        f.location = parse_location(body.get("location"));
    }
    if body.get("attendees").is_some() {
        let mut new = parse_attendees(body.get("attendees"))?;
        // Responses of attendees who stay are kept.
        for a in &mut new {
            if let Some(old) = f.attendees.iter().find(|o| o.email == a.email) {
                a.response = old.response.clone();
            }
        }
        f.attendees = new;
    }
    if f.end <= f.start {
        return Err(ApiError::bad("The end time must be after the start time."));
    }
    Ok(f)
}

pub(crate) fn occurrence_id(master: &str, occ: i64) -> String {
    format!("{master}{OCC_SEP}{occ}")
}

pub(crate) fn occurrence_uid(master_uid: &str, occ: i64) -> String {
    format!("{master_uid}{occ:016X}")
}

fn occurrence_fields(item: &Item, occ: i64) -> Fields {
    let mut f = item.fields.clone();
    let duration = item.fields.end.duration_since(item.fields.start);
    f.start = Timestamp::from_second(occ).unwrap_or(item.fields.start);
    f.end = f.start.checked_add(duration).unwrap_or(f.end);
    f
}

/// Expands an item into the entries overlapping `[start, end)`.
pub(crate) fn expand(item: &Item, start: Timestamp, end: Timestamp) -> Vec<Instance> {
    let overlaps = |f: &Fields| f.start < end && start < f.end;
    if item.recurrence.is_none() {
        if !overlaps(&item.fields) {
            return Vec::new();
        }
        return vec![Instance {
            id: item.id.clone(),
            kind: if item.original_start.is_some() && item.source.is_none() {
                "exception"
            } else {
                "singleInstance"
            },
            ical_uid: item.ical_uid.clone(),
            fields: item.fields.clone(),
            occurrence: item.original_start,
            etag: item.version.to_string(),
            master_id: None,
        }];
    }
    let duration = item.fields.end.duration_since(item.fields.start);
    // Exceptions may have moved into the window from a slot outside it.
    let slot_lo = start.checked_sub(duration).unwrap_or(start);
    let mut slots: BTreeSet<i64> = occurrence_starts(item, slot_lo.as_second(), end.as_second())
        .into_iter()
        .collect();
    slots.extend(item.overrides.keys().copied());
    let mut out = Vec::new();
    for occ in slots {
        if item.cancelled.contains(&occ) {
            continue;
        }
        let (fields, kind, etag) = match item.overrides.get(&occ) {
            Some(o) => (
                o.fields.clone(),
                "exception",
                format!("{}.{}", item.version, o.version),
            ),
            None => (
                occurrence_fields(item, occ),
                "occurrence",
                item.version.to_string(),
            ),
        };
        if !overlaps(&fields) {
            continue;
        }
        out.push(Instance {
            id: occurrence_id(&item.id, occ),
            kind,
            ical_uid: occurrence_uid(&item.ical_uid, occ),
            fields,
            occurrence: Some(occ),
            etag,
            master_id: Some(item.id.clone()),
        });
    }
    out
}

/// The original start instants (unix seconds) of a series' pattern slots in `[lo, hi]`.
pub(crate) fn occurrence_starts(item: &Item, lo: i64, hi: i64) -> Vec<i64> {
    let Some(rule) = item.recurrence.as_ref().and_then(|r| Rule::parse(r).ok()) else {
        return if item.fields.start.as_second() >= lo && item.fields.start.as_second() <= hi {
            vec![item.fields.start.as_second()]
        } else {
            Vec::new()
        };
    };
    let tz = zone(&item.zone).unwrap_or(TimeZone::UTC);
    let start_zoned = item.fields.start.to_zoned(tz.clone());
    let time = start_zoned.time();
    let mut out = Vec::new();
    let mut count = 0u32;
    let mut day = rule.start;
    // Scan at most ~30 years of days: a guard against unbounded series and far windows.
    for _ in 0..11_000 {
        if let Some(last) = rule.end
            && day > last
        {
            break;
        }
        if let Some(max) = rule.count
            && count >= max
        {
            break;
        }
        if rule.matches(day) {
            count += 1;
            let Ok(z) = day.to_datetime(time).to_zoned(tz.clone()) else {
                break;
            };
            let s = z.timestamp().as_second();
            if s > hi {
                break;
            }
            if s >= lo {
                out.push(s);
            }
        }
        let Ok(next) = day.tomorrow() else { break };
        day = next;
    }
    out
}

/// A parsed `patternedRecurrence`.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    kind: String,
    interval: i64,
    days: Vec<Weekday>,
    day_of_month: i8,
    month: i8,
    index: String,
    first_day: Weekday,
    start: Date,
    end: Option<Date>,
    count: Option<u32>,
}

impl Rule {
    pub(crate) fn parse(r: &Value) -> Result<Rule, ApiError> {
        let bad = |m: &str| ApiError::bad(format!("Invalid recurrence: {m}."));
        let p = r.get("pattern").ok_or_else(|| bad("pattern is required"))?;
        let g = r.get("range").ok_or_else(|| bad("range is required"))?;
        let kind = str_of(p, "type")
            .ok_or_else(|| bad("pattern.type is required"))?
            .to_ascii_lowercase();
        let interval = p.get("interval").and_then(Value::as_i64).unwrap_or(1);
        if interval < 1 {
            return Err(bad("interval must be positive"));
        }
        let days = p
            .get("daysOfWeek")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str().and_then(weekday))
                    .collect()
            })
            .unwrap_or_default();
        let rule = Rule {
            interval,
            days,
            day_of_month: p
                .get("dayOfMonth")
                .and_then(Value::as_i64)
                .and_then(|d| i8::try_from(d).ok())
                .unwrap_or(0),
            month: p
                .get("month")
                .and_then(Value::as_i64)
                .and_then(|d| i8::try_from(d).ok())
                .unwrap_or(0),
            index: str_of(p, "index")
                .unwrap_or_else(|| "first".into())
                .to_ascii_lowercase(),
            first_day: p
                .get("firstDayOfWeek")
                .and_then(Value::as_str)
                .and_then(weekday)
                .unwrap_or(Weekday::Sunday),
            start: str_of(g, "startDate")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("range.startDate is required"))?,
            end: match str_of(g, "type").map(|t| t.to_ascii_lowercase()).as_deref() {
                Some("enddate") => Some(
                    str_of(g, "endDate")
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad("range.endDate is required"))?,
                ),
                _ => None,
            },
            count: match str_of(g, "type").map(|t| t.to_ascii_lowercase()).as_deref() {
                Some("numbered") => Some(
                    g.get("numberOfOccurrences")
                        .and_then(Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("numberOfOccurrences must be positive"))?,
                ),
                _ => None,
            },
            kind,
        };
        match rule.kind.as_str() {
            "daily" => {}
            "weekly" | "relativemonthly" | "relativeyearly" if rule.days.is_empty() => {
                return Err(bad("daysOfWeek is required"));
            }
            "weekly" | "relativemonthly" => {}
            "absolutemonthly" if !(1..=31).contains(&rule.day_of_month) => {
                return Err(bad("dayOfMonth"));
            }
            "absolutemonthly" => {}
            "absoluteyearly" | "relativeyearly" if !(1..=12).contains(&rule.month) => {
                return Err(bad("month"));
            }
            "absoluteyearly" | "relativeyearly" => {}
            _ => return Err(bad("unknown pattern type")),
        }
        Ok(rule)
    }

    fn matches(&self, day: Date) -> bool {
        let months = |d: Date| i64::from(d.year()) * 12 + i64::from(d.month());
        let month_delta = months(day) - months(self.start);
        match self.kind.as_str() {
            "daily" => {
                let days = (day - self.start).get_days();
                i64::from(days) % self.interval == 0
            }
            "weekly" => {
                let week_start = |d: Date| {
                    let back = (d.weekday().to_monday_zero_offset()
                        - self.first_day.to_monday_zero_offset())
                    .rem_euclid(7);
                    d.checked_sub(i64::from(back).days()).unwrap_or(d)
                };
                let weeks = i64::from((week_start(day) - week_start(self.start)).get_days()) / 7;
                self.days.contains(&day.weekday()) && weeks % self.interval == 0
            }
            "absolutemonthly" => day.day() == self.day_of_month && month_delta % self.interval == 0,
            "relativemonthly" => {
                self.days.contains(&day.weekday())
                    && self.index_matches(day)
                    && month_delta % self.interval == 0
            }
            "absoluteyearly" => {
                day.month() == self.month
                    && day.day() == self.day_of_month
                    && (i64::from(day.year()) - i64::from(self.start.year())) % self.interval == 0
            }
            "relativeyearly" => {
                day.month() == self.month
                    && self.days.contains(&day.weekday())
                    && self.index_matches(day)
                    && (i64::from(day.year()) - i64::from(self.start.year())) % self.interval == 0
            }
            _ => false,
        }
    }

    fn index_matches(&self, day: Date) -> bool {
        let nth = (day.day() - 1) / 7;
        match self.index.as_str() {
            "second" => nth == 1,
            "third" => nth == 2,
            "fourth" => nth == 3,
            "last" => day.day() + 7 > day.days_in_month(),
            _ => nth == 0,
        }
    }
}

fn weekday(s: &str) -> Option<Weekday> {
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

/// Graph's UTC date-time rendering.
pub(crate) fn fmt_utc(ts: Timestamp) -> String {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.0000000",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Renders an entry as Graph's event JSON. `ext` names the extended property to
/// expand (only `$expand=singleValueExtendedProperties($filter=id eq '…')` shows it).
pub(crate) fn render(item: &Item, inst: Option<&Instance>, ext: Option<&str>) -> Value {
    let (id, kind, uid, fields, occ, master, etag) = match inst {
        Some(i) => (
            i.id.clone(),
            i.kind,
            i.ical_uid.clone(),
            &i.fields,
            i.occurrence,
            i.master_id.clone(),
            i.etag.clone(),
        ),
        None => (
            item.id.clone(),
            if item.recurrence.is_some() {
                "seriesMaster"
            } else {
                "singleInstance"
            },
            item.ical_uid.clone(),
            &item.fields,
            item.original_start,
            None,
            item.version.to_string(),
        ),
    };
    let loc = |l: &Option<Loc>| match l {
        Some(l) => {
            let mut v = json!({"displayName": l.display_name, "locationType": if l.email.is_some() {"conferenceRoom"} else {"default"}, "uniqueIdType": "unknown"});
            if let Some(e) = &l.email {
                v["locationEmailAddress"] = json!(e);
            }
            v
        }
        None => json!({"displayName": "", "locationType": "default", "uniqueIdType": "unknown"}),
    };
    let mut v = json!({
        "@odata.etag": format!("W/\"{etag}\""),
        "id": id,
        "createdDateTime": format!("{}Z", fmt_utc(item.created)),
        "lastModifiedDateTime": format!("{}Z", fmt_utc(item.modified)),
        "changeKey": etag,
        "iCalUId": uid,
        "subject": fields.subject,
        "bodyPreview": fields.body.chars().take(255).collect::<String>(),
        "body": {"contentType": "text", "content": fields.body},
        "start": {"dateTime": fmt_utc(fields.start), "timeZone": "UTC"},
        "end": {"dateTime": fmt_utc(fields.end), "timeZone": "UTC"},
        "isAllDay": item.is_all_day,
        "isCancelled": item.is_cancelled,
        "isOrganizer": item.is_organizer,
        "responseRequested": true,
        "allowNewTimeProposals": false,
        "showAs": item.show_as,
        "type": kind,
        "sensitivity": item.sensitivity,
        "seriesMasterId": master,
        "originalStartTimeZone": item.zone,
        "originalEndTimeZone": item.zone,
        "location": loc(&fields.location),
        "locations": fields.location.iter().map(|l| loc(&Some(l.clone()))).collect::<Vec<_>>(),
        "recurrence": if inst.is_none() { item.recurrence.clone().unwrap_or(Value::Null) } else { Value::Null },
        "attendees": fields.attendees.iter().map(|a| json!({
            "type": a.kind,
            "status": {"response": a.response, "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": a.name, "address": a.email},
        })).collect::<Vec<_>>(),
        "organizer": {"emailAddress": {"name": item.organizer.1, "address": item.organizer.0}},
        "responseStatus": {"response": item.response, "time": "0001-01-01T00:00:00Z"},
    });
    if let Some(occ) = occ
        && let Ok(ts) = Timestamp::from_second(occ)
    {
        v["originalStart"] = json!(format!("{}Z", fmt_utc(ts)));
    }
    if let Some(tx) = &item.transaction_id {
        v["transactionId"] = json!(tx);
    }
    if inst.is_none() && item.recurrence.is_some() {
        v["cancelledOccurrences"] = json!(
            item.cancelled
                .iter()
                .map(|c| occurrence_id(&item.id, *c))
                .collect::<Vec<_>>()
        );
    }
    if let Some(name) = ext {
        let props: Vec<Value> = item
            .ext
            .iter()
            .filter(|(k, _)| k.as_str() == name)
            .map(|(k, val)| json!({"id": k, "value": val}))
            .collect();
        if !props.is_empty() {
            v["singleValueExtendedProperties"] = json!(props);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(recurrence: Value) -> Item {
        Item {
            id: "M".into(),
            ical_uid: "U".into(),
            fields: Fields {
                subject: "s".into(),
                body: String::new(),
                start: "2026-03-02T09:00:00Z"
                    .parse()
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                end: "2026-03-02T10:00:00Z"
                    .parse()
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                location: None,
                attendees: vec![],
            },
            is_all_day: false,
            zone: "UTC".into(),
            organizer: ("a@x".into(), "A".into()),
            is_organizer: true,
            is_cancelled: false,
            response: "organizer".into(),
            sensitivity: "normal".into(),
            show_as: "busy".into(),
            recurrence: Some(recurrence),
            overrides: BTreeMap::new(),
            cancelled: BTreeSet::new(),
            transaction_id: None,
            ext: BTreeMap::new(),
            version: 1,
            created: Timestamp::UNIX_EPOCH,
            modified: Timestamp::UNIX_EPOCH,
            source: None,
            original_start: None,
        }
    }

    fn window() -> (Timestamp, Timestamp) {
        (
            "2026-03-01T00:00:00Z"
                .parse()
                .unwrap_or(Timestamp::UNIX_EPOCH),
            "2026-04-30T00:00:00Z"
                .parse()
                .unwrap_or(Timestamp::UNIX_EPOCH),
        )
    }

    #[test]
    fn weekly_numbered_series_expands() {
        // 2026-03-02 is a Monday.
        let it = item(
            json!({"pattern":{"type":"weekly","interval":1,"daysOfWeek":["monday","thursday"]},
                             "range":{"type":"numbered","startDate":"2026-03-02","numberOfOccurrences":5}}),
        );
        let (s, e) = window();
        let got: Vec<String> = expand(&it, s, e)
            .iter()
            .map(|i| fmt_utc(i.fields.start))
            .collect();
        assert_eq!(
            got,
            [
                "2026-03-02T09:00:00.0000000",
                "2026-03-05T09:00:00.0000000",
                "2026-03-09T09:00:00.0000000",
                "2026-03-12T09:00:00.0000000",
                "2026-03-16T09:00:00.0000000"
            ]
        );
    }

    #[test]
    fn biweekly_relative_and_absolute_patterns() {
        let (s, e) = window();
        let it = item(
            json!({"pattern":{"type":"weekly","interval":2,"daysOfWeek":["monday"],"firstDayOfWeek":"monday"},
                             "range":{"type":"endDate","startDate":"2026-03-02","endDate":"2026-03-31"}}),
        );
        // Mondays 2, 16 and 30 March; not 9 and 23.
        let got: Vec<String> = expand(&it, s, e)
            .iter()
            .map(|i| fmt_utc(i.fields.start))
            .collect();
        assert_eq!(
            got,
            [
                "2026-03-02T09:00:00.0000000",
                "2026-03-16T09:00:00.0000000",
                "2026-03-30T09:00:00.0000000"
            ]
        );
        let it = item(
            json!({"pattern":{"type":"relativeMonthly","interval":1,"daysOfWeek":["monday"],"index":"last"},
                             "range":{"type":"noEnd","startDate":"2026-03-02"}}),
        );
        let got: Vec<String> = expand(&it, s, e)
            .iter()
            .map(|i| fmt_utc(i.fields.start))
            .collect();
        assert_eq!(
            got,
            ["2026-03-30T09:00:00.0000000", "2026-04-27T09:00:00.0000000"]
        );
        let it = item(
            json!({"pattern":{"type":"absoluteMonthly","interval":1,"dayOfMonth":15},
                             "range":{"type":"noEnd","startDate":"2026-03-02"}}),
        );
        assert_eq!(expand(&it, s, e).len(), 2);
        assert!(Rule::parse(&json!({"pattern":{"type":"hourly"},"range":{"type":"noEnd","startDate":"2026-03-02"}})).is_err());
    }
}
