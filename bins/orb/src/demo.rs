//! `orb demo [--seconds N]`: orb against its built-in Graph and TOPdesk emulators, the
//! showcase scenarios, and a summary of the bookings on both sides
//! (`orb_service::demo` does the work; this prints it).
//!
//! Exit 0: every scenario converged within the time bound. 1: a scenario did not
//! converge, or the bound was exceeded. 2: the demo could not start.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use orb_service::demo::{self, DemoOptions, Progress};

/// A scenario failed or the time bound was exceeded.
const FAILED: u8 = 1;
/// The emulators or the daemon could not start.
const UNUSABLE: u8 = 2;

pub(crate) fn demo(seconds: u64) -> ExitCode {
    let budget = Duration::from_secs(seconds.max(1));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orb demo: cannot start the runtime: {e}");
            return ExitCode::from(UNUSABLE);
        }
    };
    println!(
        "orb demo: the real orb service against built-in Graph and TOPdesk emulators, loopback only"
    );
    let options = DemoOptions {
        budget,
        ..DemoOptions::default()
    };
    let mut print = |p: Progress| print_progress(&p);
    // The library keeps within the budget; this bound also covers start-up and shutdown.
    let outcome = runtime
        .block_on(async { tokio::time::timeout(budget, demo::run(options, &mut print)).await });
    runtime.shutdown_timeout(Duration::from_secs(1));
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprintln!("orb demo: could not start: {e}");
            return ExitCode::from(UNUSABLE);
        }
        Err(_) => {
            println!("✗ the demo did not finish within {seconds} s (--seconds)");
            return ExitCode::from(FAILED);
        }
    };
    println!("\nBookings on both sides");
    println!("{}", report.summary);
    println!();
    let converged = report.results.iter().filter(|r| r.converged()).count();
    let total = demo::Scenario::ALL.len();
    if report.all_converged() {
        println!(
            "✓ {converged} of {total} scenarios converged in {:.1} s",
            report.elapsed.as_secs_f64()
        );
        return ExitCode::SUCCESS;
    }
    for r in &report.results {
        if let Err(reason) = &r.outcome {
            println!("✗ FAILED: {}: {reason}", r.scenario);
        }
    }
    for s in &report.skipped {
        println!("✗ NOT RUN: {s}: the {seconds} s bound (--seconds) was spent");
    }
    println!(
        "✗ {converged} of {total} scenarios converged in {:.1} s",
        report.elapsed.as_secs_f64()
    );
    ExitCode::from(FAILED)
}

fn print_progress(p: &Progress) {
    match p {
        Progress::Ready {
            graph,
            topdesk,
            webhook,
            rooms,
            elapsed,
        } => {
            println!("  Graph emulator    {graph}");
            println!("  TOPdesk emulator  {topdesk}");
            println!("  orb webhook       {webhook}");
            println!(
                "  orb subscribed to {} room calendars ({}) in {:.1} s",
                rooms.len(),
                rooms.join(", "),
                elapsed.as_secs_f64()
            );
        }
        Progress::Started {
            index,
            total,
            scenario,
        } => println!("\n[{index}/{total}] {scenario}"),
        Progress::Action(text) => println!("      → {text}"),
        Progress::Observed { text, elapsed } => {
            println!("      ← {text}  ({:.2} s)", elapsed.as_secs_f64());
        }
        Progress::Finished(result) => match &result.outcome {
            Ok(()) => println!("  ✓ converged in {:.2} s", result.elapsed.as_secs_f64()),
            Err(reason) => println!("  ✗ {reason}"),
        },
        Progress::Skipped(scenario) => println!("\n  ✗ not run (time bound spent): {scenario}"),
        // Kinds added later are shown plainly rather than dropped.
        other => println!("      {other:?}"),
    }
    // Progress should show as it happens, also when piped.
    let _ = std::io::stdout().flush();
}
