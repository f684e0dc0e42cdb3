//! glibc malloc settings for the daemon.
//!
//! Measured under the webhook load (`benches/load/`, README "Webhook under load"):
//! glibc gives each thread that allocates an arena of its own and raises its mmap
//! threshold after the first large free, so buffers the store allocates and frees all
//! the time stay resident in a dozen arenas. With one arena and a fixed 128 KiB mmap
//! threshold, orb's peak RSS at 500 notifications/s was 62–68 MB instead of 87–109 MB,
//! with the same ack latency.
//!
//! glibc reads these settings only from the environment at process start (`mallopt`
//! would need unsafe code, which this workspace forbids), so `orb run` re-executes
//! itself once with them set, unless the operator set either variable (their values
//! win) or `ORB_MALLOC_TUNING=off`. Other targets and other commands are unaffected.

/// The variables and the values orb sets.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SETTINGS: [(&str, &str); 2] = [
    ("MALLOC_ARENA_MAX", "1"),
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
];

/// Re-executes this process with [`SETTINGS`] in its environment when they are missing
/// (see the module docs). Returns only if nothing needs doing or the exec failed (then
/// orb runs on without them, after a warning).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn tune_for_daemon() {
    use std::os::unix::process::CommandExt as _;

    if std::env::var_os("ORB_MALLOC_TUNING").is_some_and(|v| v == "off") {
        return;
    }
    if SETTINGS.iter().any(|(k, _)| std::env::var_os(k).is_some()) {
        return;
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "orb".into());
    let mut command = std::process::Command::new("/proc/self/exe");
    command.arg0(arg0).args(args);
    for (k, v) in SETTINGS {
        command.env(k, v);
    }
    // Only returns on failure.
    let error = command.exec();
    eprintln!(
        "orb: warning: could not restart with the glibc malloc settings ({error}); running without them"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune_for_daemon() {}
