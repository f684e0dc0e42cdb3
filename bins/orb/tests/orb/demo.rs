//! `orb demo` as a newcomer runs it: the whole showcase against the built-in emulators,
//! exit 0, one ✓ per scenario and the summary of both sides.

use std::process::Command;

#[test]
fn orb_demo_converges_every_scenario_and_prints_both_sides() {
    let out = Command::new(env!("CARGO_BIN_EXE_orb"))
        .args(["demo", "--seconds", "120"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for n in 1..=8 {
        assert!(
            stdout.contains(&format!("[{n}/8] ")),
            "scenario {n}:\n{stdout}"
        );
    }
    assert_eq!(stdout.matches("  ✓ converged in").count(), 8, "{stdout}");
    assert!(!stdout.contains('✗'), "{stdout}");
    assert!(stdout.contains("Bookings on both sides"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("When (UTC)") && l.contains("TOPdesk")),
        "the summary table:\n{stdout}"
    );
    assert!(stdout.contains("✓ 8 of 8 scenarios converged"), "{stdout}");
    // Loopback only.
    for line in stdout.lines().filter(|l| l.contains("http://")) {
        assert!(line.contains("http://127.0.0.1:"), "{line}");
    }
}

#[test]
fn orb_demo_help_names_the_time_bound() {
    let out = Command::new(env!("CARGO_BIN_EXE_orb"))
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--seconds <N>"), "{help}");
}
