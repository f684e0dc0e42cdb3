//! Graph rich-notification crypto (work in progress in this session).
