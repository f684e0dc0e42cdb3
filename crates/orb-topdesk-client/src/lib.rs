//! The TOPdesk REST client: reservations (list with FIQL and keyset paging, get,
//! create, update, reschedule, room changes, cancel/reject, series), rooms
//! (reservable locations, location cards, branches) and persons (e-mail lookup over
//! the v2 API with a v1 fallback). The wire format lives in pure `build_*`/`parse_*`
//! functions in [`wire`]; [`TopdeskClient`] is the thin async transport over them with
//! HTTP Basic authentication, timeouts, retries on 429/502/503/504 and an audit hook.
//!
//! It never decides what to sync, never stores anything, never logs or returns request
//! bodies or credentials, and never lets another crate see a TOPdesk JSON type: callers
//! get domain types and newtype ids.
//!
//! ```no_run
//! use orb_topdesk_client::{Config, ExternalLinkType, Fiql, PersonLookup, ReservationQuery, TopdeskClient};
//!
//! # async fn example() -> Result<(), orb_topdesk_client::Error> {
//! let link_type = ExternalLinkType::new(4711).expect("non-zero");
//! let config = Config::new("https://example.topdesk.net/tas/api", "orb-operator", "app-password", link_type);
//! let client = TopdeskClient::new(config, None)?;
//! let upcoming = Fiql::eq("externalLinks.type", link_type.to_string())
//!     .and(Fiql::ge("plannedEndDate", jiff::Timestamp::now()));
//! let linked = client.list_reservations(&ReservationQuery::new(upcoming)).await?;
//! if let PersonLookup::Found(person) = client.person_by_email("eva@example.com").await? {
//!     tracing::info!(count = linked.len(), requester = %person.id, "linked reservations");
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
pub mod fiql;
mod ids;
mod model;
pub mod time;
pub mod wire;

pub use client::{AuditRecord, AuditSink, Config, RetryPolicy, TopdeskClient};
pub use error::{ApiErrorDetail, ApiErrors, Error};
pub use fiql::{Fiql, FiqlOp, FiqlValue};
pub use ids::{
    BranchId, ExternalLinkId, ExternalLinkType, LocationId, PersonId, ReservationNumber,
    ReservationRef, SearchlistId, SeriesId, TopdeskReservationId,
};
pub use model::{
    Branch, BranchRef, CancelOutcome, ExternalLink, Location, LocationQuery, NamedRef,
    NewReservation, NewReservationStatus, Occurrences, OptionalTexts, Person, PersonLookup,
    PersonRef, ReservableLocation, Reservation, ReservationQuery, ReservationStatus,
    ReservationUpdate, ReservedFacility, ReservedLocation, SeriesDates, SeriesOccurrence,
};
