//! Least privilege as data: every operation this client can perform declares the one
//! application permission it needs; [`required_permissions`] derives the set from those
//! declarations (what `orb permissions` prints and `orb doctor` checks).

use std::fmt;

/// A Microsoft Graph application permission (app role) orb may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// `Calendars.Read`: subscriptions on room calendars, reads, delta.
    CalendarsRead,
    /// `Calendars.ReadWrite`: creating, updating and cancelling events.
    CalendarsReadWrite,
    /// `Place.Read.All`: listing rooms and room lists.
    PlaceReadAll,
    /// `Mail.Send`: the optional notification mail, from one configured mailbox.
    MailSend,
}

impl Permission {
    /// The permission's name as the Entra admin center and tokens' `roles` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Permission::CalendarsRead => "Calendars.Read",
            Permission::CalendarsReadWrite => "Calendars.ReadWrite",
            Permission::PlaceReadAll => "Place.Read.All",
            Permission::MailSend => "Mail.Send",
        }
    }

    /// The app-role id of the permission on the Microsoft Graph service principal.
    pub fn app_role_id(self) -> &'static str {
        match self {
            Permission::CalendarsRead => "089fe4d0-434a-44c5-8827-41ba8a0b17f5",
            Permission::CalendarsReadWrite => "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
            Permission::PlaceReadAll => "913b9306-0ce1-42b8-9137-6a7df690a760",
            Permission::MailSend => "b633e1c5-b582-4048-a93e-9f11b44c7e96",
        }
    }

    /// Whether the permission reaches mailboxes (and so should be scoped with RBAC for
    /// Applications or an application access policy).
    pub fn is_mailbox_scoped(self) -> bool {
        !matches!(self, Permission::PlaceReadAll)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every call this client makes to Graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /subscriptions`.
    CreateSubscription,
    /// `PATCH /subscriptions/{id}`.
    RenewSubscription,
    /// `POST /subscriptions/{id}/reauthorize`.
    ReauthorizeSubscription,
    /// `DELETE /subscriptions/{id}`.
    DeleteSubscription,
    /// `GET /subscriptions`.
    ListSubscriptions,
    /// `POST /users/{mailbox}/events`.
    CreateEvent,
    /// `GET /users/{mailbox}/events/{id}`.
    GetEvent,
    /// `PATCH /users/{mailbox}/events/{id}`.
    UpdateEvent,
    /// `POST /users/{mailbox}/events/{id}/cancel`.
    CancelEvent,
    /// `DELETE /users/{mailbox}/events/{id}`.
    DeleteEvent,
    /// `POST /users/{mailbox}/events/{id}/decline`.
    DeclineEvent,
    /// `GET /users/{mailbox}/events?$filter=singleValueExtendedProperties/Any(…)`.
    FindEventsByMatchId,
    /// `GET /users/{mailbox}/events?$filter=iCalUId eq '…'`.
    FindEventsByIcalUid,
    /// `GET /users/{mailbox}/events/{id}/instances`.
    ListInstances,
    /// `GET /users/{mailbox}/calendarView`.
    CalendarView,
    /// `GET /users/{mailbox}/calendarView/delta`.
    CalendarViewDelta,
    /// `GET /places/microsoft.graph.room`.
    ListRooms,
    /// `GET /places/microsoft.graph.roomlist`.
    ListRoomLists,
    /// `GET /places/{roomlist}/microsoft.graph.roomlist/rooms`.
    ListRoomsInList,
    /// `GET /places/{email}`.
    GetRoom,
    /// `POST /users/{sender}/sendMail`.
    SendMail,
}

impl Operation {
    /// Every operation, in a stable order.
    pub const ALL: [Operation; 21] = [
        Operation::CreateSubscription,
        Operation::RenewSubscription,
        Operation::ReauthorizeSubscription,
        Operation::DeleteSubscription,
        Operation::ListSubscriptions,
        Operation::CreateEvent,
        Operation::GetEvent,
        Operation::UpdateEvent,
        Operation::CancelEvent,
        Operation::DeleteEvent,
        Operation::DeclineEvent,
        Operation::FindEventsByMatchId,
        Operation::FindEventsByIcalUid,
        Operation::ListInstances,
        Operation::CalendarView,
        Operation::CalendarViewDelta,
        Operation::ListRooms,
        Operation::ListRoomLists,
        Operation::ListRoomsInList,
        Operation::GetRoom,
        Operation::SendMail,
    ];

    /// The least-privileged application permission the call needs (graph.md §12).
    pub fn permission(self) -> Permission {
        use Operation::*;
        match self {
            // Event subscriptions take a *read* permission; write permissions are not
            // accepted where read suffices.
            CreateSubscription
            | RenewSubscription
            | ReauthorizeSubscription
            | DeleteSubscription
            | ListSubscriptions => Permission::CalendarsRead,
            CreateEvent | UpdateEvent | CancelEvent | DeleteEvent | DeclineEvent => {
                Permission::CalendarsReadWrite
            }
            GetEvent | FindEventsByMatchId | FindEventsByIcalUid | ListInstances | CalendarView
            | CalendarViewDelta => Permission::CalendarsRead,
            ListRooms | ListRoomLists | ListRoomsInList | GetRoom => Permission::PlaceReadAll,
            SendMail => Permission::MailSend,
        }
    }

    /// The HTTP method.
    pub fn method(self) -> http::Method {
        use Operation::*;
        match self {
            CreateSubscription
            | ReauthorizeSubscription
            | CreateEvent
            | CancelEvent
            | DeclineEvent
            | SendMail => http::Method::POST,
            RenewSubscription | UpdateEvent => http::Method::PATCH,
            DeleteSubscription | DeleteEvent => http::Method::DELETE,
            _ => http::Method::GET,
        }
    }

    /// The path with placeholders instead of ids: what the audit trail records.
    pub fn path_template(self) -> &'static str {
        use Operation::*;
        match self {
            CreateSubscription | ListSubscriptions => "/subscriptions",
            RenewSubscription | DeleteSubscription => "/subscriptions/{id}",
            ReauthorizeSubscription => "/subscriptions/{id}/reauthorize",
            CreateEvent | FindEventsByMatchId | FindEventsByIcalUid => "/users/{mailbox}/events",
            GetEvent | UpdateEvent | DeleteEvent => "/users/{mailbox}/events/{id}",
            CancelEvent => "/users/{mailbox}/events/{id}/cancel",
            DeclineEvent => "/users/{mailbox}/events/{id}/decline",
            ListInstances => "/users/{mailbox}/events/{id}/instances",
            CalendarView => "/users/{mailbox}/calendarView",
            CalendarViewDelta => "/users/{mailbox}/calendarView/delta",
            ListRooms => "/places/microsoft.graph.room",
            ListRoomLists => "/places/microsoft.graph.roomlist",
            ListRoomsInList => "/places/{roomlist}/microsoft.graph.roomlist/rooms",
            GetRoom => "/places/{email}",
            SendMail => "/users/{sender}/sendMail",
        }
    }

    /// A short stable name (logs, metrics).
    pub fn name(self) -> &'static str {
        use Operation::*;
        match self {
            CreateSubscription => "create_subscription",
            RenewSubscription => "renew_subscription",
            ReauthorizeSubscription => "reauthorize_subscription",
            DeleteSubscription => "delete_subscription",
            ListSubscriptions => "list_subscriptions",
            CreateEvent => "create_event",
            GetEvent => "get_event",
            UpdateEvent => "update_event",
            CancelEvent => "cancel_event",
            DeclineEvent => "decline_event",
            DeleteEvent => "delete_event",
            FindEventsByMatchId => "find_events_by_match_id",
            FindEventsByIcalUid => "find_events_by_ical_uid",
            ListInstances => "list_instances",
            CalendarView => "calendar_view",
            CalendarViewDelta => "calendar_view_delta",
            ListRooms => "list_rooms",
            ListRoomLists => "list_room_lists",
            ListRoomsInList => "list_rooms_in_list",
            GetRoom => "get_room",
            SendMail => "send_mail",
        }
    }

    /// Why orb makes this call, in an admin's words.
    pub fn purpose(self) -> &'static str {
        use Operation::*;
        match self {
            CreateSubscription => "subscribe to change notifications on each managed room calendar",
            RenewSubscription => {
                "renew subscriptions before they expire and rotate the encryption certificate"
            }
            ReauthorizeSubscription => "answer reauthorizationRequired lifecycle notifications",
            DeleteSubscription => "remove subscriptions of rooms no longer managed",
            ListSubscriptions => "find orb's own subscriptions after a restart",
            CreateEvent => "book a room from TOPdesk as a meeting in the organizer's calendar",
            GetEvent => "read the current state of a notified event",
            UpdateEvent => "carry TOPdesk changes (time, room, subject, attendees) to the meeting",
            CancelEvent => "cancel a meeting whose TOPdesk reservation was cancelled",
            DeclineEvent => {
                "decline, as the room, a meeting TOPdesk refused or marked as conflicting"
            }
            DeleteEvent => "remove a meeting orb created (room-only mode)",
            FindEventsByMatchId => "find orb's own events by OrbMatchId (idempotent creates)",
            FindEventsByIcalUid => "correlate a room's copy with the organizer's event",
            ListInstances => "expand recurring series",
            CalendarView => "read a room calendar window",
            CalendarViewDelta => "recover missed changes per room (delta sync)",
            ListRooms => "map Exchange rooms to TOPdesk locations",
            ListRoomLists => "show room lists in doctor output",
            ListRoomsInList => "list the rooms of one room list",
            GetRoom => "check one configured room exists",
            SendMail => "optional e-mail to organizers, from the one configured sender mailbox",
        }
    }

    /// Whether the call addresses one mailbox (and so counts towards that mailbox's
    /// concurrency limit and can be denied by mailbox scoping).
    pub fn is_mailbox_call(self) -> bool {
        self.path_template().starts_with("/users/")
    }
}

/// One permission with the operations that need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionUse {
    /// The permission.
    pub permission: Permission,
    /// The operations declaring it, in [`Operation::ALL`] order.
    pub operations: Vec<Operation>,
}

/// The application permissions orb needs, each with the operations that need it, in a
/// stable order. `mail_enabled = false` leaves out `Mail.Send`.
pub fn required_permissions(mail_enabled: bool) -> Vec<PermissionUse> {
    let mut uses: Vec<PermissionUse> = Vec::new();
    for op in Operation::ALL {
        let permission = op.permission();
        if permission == Permission::MailSend && !mail_enabled {
            continue;
        }
        match uses.iter_mut().find(|u| u.permission == permission) {
            Some(u) => u.operations.push(op),
            None => uses.push(PermissionUse {
                permission,
                operations: vec![op],
            }),
        }
    }
    uses.sort_by_key(|u| u.permission);
    uses
}

/// The permission set as text for `orb permissions`: one block per permission with its
/// app-role id, then each call that needs it and why.
pub fn render_permissions(mail_enabled: bool) -> String {
    let mut out = String::new();
    for u in required_permissions(mail_enabled) {
        let scope = match u.permission {
            Permission::MailSend => {
                "scope it to the one sender mailbox (graph.mail_sender) with RBAC for Applications"
            }
            Permission::CalendarsRead | Permission::CalendarsReadWrite => {
                "scope it to the managed room mailboxes and, in organizer mode, the organizers' \
                 mailboxes (RBAC for Applications or an application access policy)"
            }
            Permission::PlaceReadAll => "tenant-wide, not mailbox-scoped",
        };
        out.push_str(&format!(
            "{} (application permission, app role {}; {scope})\n",
            u.permission.name(),
            u.permission.app_role_id()
        ));
        for op in &u.operations {
            out.push_str(&format!(
                "  {:<6} {:<52} {}\n",
                op.method().as_str(),
                op.path_template(),
                op.purpose()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_set_is_exactly_the_least_privileged_four() {
        let names: Vec<&str> = required_permissions(true)
            .iter()
            .map(|u| u.permission.name())
            .collect();
        assert_eq!(
            names,
            [
                "Calendars.Read",
                "Calendars.ReadWrite",
                "Place.Read.All",
                "Mail.Send"
            ]
        );
    }

    #[test]
    fn mail_send_is_used_by_send_mail_alone() {
        let all = required_permissions(true);
        let mail = all
            .iter()
            .find(|u| u.permission == Permission::MailSend)
            .map(|u| u.operations.clone());
        assert_eq!(mail, Some(vec![Operation::SendMail]));
        assert!(
            required_permissions(false)
                .iter()
                .all(|u| u.permission != Permission::MailSend)
        );
    }

    #[test]
    fn the_rendering_names_every_permission_and_call() {
        let text = render_permissions(true);
        for name in [
            "Calendars.Read ",
            "Calendars.ReadWrite ",
            "Place.Read.All ",
            "Mail.Send ",
        ] {
            assert!(text.contains(name), "{text}");
        }
        assert!(text.contains("POST   /users/{sender}/sendMail"));
        assert!(!render_permissions(false).contains("Mail.Send"));
    }

    #[test]
    fn every_operation_is_listed_once() {
        let total: usize = required_permissions(true)
            .iter()
            .map(|u| u.operations.len())
            .sum();
        assert_eq!(total, Operation::ALL.len());
        for op in Operation::ALL {
            assert!(op.path_template().starts_with('/'));
            assert!(!op.purpose().is_empty());
        }
    }
}
