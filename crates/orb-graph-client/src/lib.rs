//! The Microsoft Graph app-only client: client-credential tokens (secret or certificate
//! assertion), change-notification subscriptions, events in user and room calendars
//! (create, read, update, cancel, delete, find by `OrbMatchId` or `iCalUId`, instances,
//! calendarView and its delta), Places rooms and room lists, and `sendMail` from one
//! configured sender. Graph's wire format lives in pure `build_*`/`parse_*` functions
//! ([`wire`]); [`GraphClient`] is the thin async transport around them with token caching,
//! throttling retries, at most four concurrent requests per mailbox, timeouts and an
//! audit hook. Each [`Operation`] declares its application permission, and
//! [`required_permissions`] derives the least-privilege set from those declarations.
//!
//! It never uses delegated (user) sign-in, never logs a secret, token, assertion or
//! body, never sends the bearer token anywhere but the configured API origin, never
//! decrypts notifications (that is orb-notification-crypto) and never decides what to
//! sync (that is orb-reconcile). No other crate knows Graph's JSON.

mod client;
mod error;
mod ids;
mod model;
mod permissions;
pub mod time;
pub mod token;
pub mod wire;

pub use client::{
    AuditRecord, AuditSink, DEFAULT_API_URL, DEFAULT_LOGIN_URL, GraphClient, GraphConfig,
    MAILBOX_CONCURRENCY, RetryPolicy,
};
pub use error::Error;
pub use ids::{GraphEventId, IcalUid, Mailbox, OrbMatchId, RoomMailbox, SubscriptionId};
pub use model::{
    Attendee, AttendeeType, BookingType, DeltaCursor, DeltaItem, DeltaNext, DeltaPage, DeltaRound,
    EmailAddress, Event, EventKind, EventPatch, Location, Mail, NOTIFICATION_SELECT, NewAttendee,
    NewEvent, NewSubscription, Recurrence, RecurrencePattern, RecurrenceRange, ResponseType, Room,
    RoomBooking, RoomList, Sensitivity, Subscription, SubscriptionEncryption, WeekIndex, When,
    events_resource,
};
pub use permissions::{
    Operation, Permission, PermissionUse, render_permissions, required_permissions,
};
pub use token::{AccessToken, AssertionStyle, ClientCertificate, Credential, Secret};
pub use wire::ORB_MATCH_ID_PROPERTY;
