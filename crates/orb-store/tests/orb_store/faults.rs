//! Disk-full and read-only directory: clear errors, no corruption.

use std::io::Read as _;
use std::path::Path;

use orb_store::Store;

use super::child;
use super::common::{booking, key, open};

fn run(mut cmd: std::process::Command) -> (String, String) {
    let mut c = cmd.spawn().unwrap();
    let mut out = String::new();
    let mut err = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = c.wait().unwrap();
    assert!(status.success(), "child failed ({status}): {out}\n{err}");
    (out, err)
}

#[test]
fn disk_full_gives_a_clear_error_and_keeps_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // The child may write files of at most ~4 MiB (ulimit -f counts 512- or 1024-byte
    // blocks depending on the shell); SIGXFSZ is ignored so writes fail with EFBIG,
    // which is what a full disk looks like to the store.
    let wrapper = [
        "sh",
        "-c",
        "trap '' XFSZ; ulimit -f 4096; exec \"$@\"",
        "sh",
    ];
    let (out, _) = run(child::command("fill", &db, &wrapper));
    let acked: Vec<u32> = out
        .lines()
        .filter_map(|l| l.strip_prefix("ack ")?.parse().ok())
        .collect();
    let error = out
        .lines()
        .find_map(|l| l.strip_prefix("error "))
        .unwrap_or_else(|| panic!("no error reported: {out}"));
    eprintln!(
        "disk-full child: {} acknowledged, then: {error}",
        acked.len()
    );
    assert!(!acked.is_empty(), "some writes fit: {out}");
    assert!(
        error.contains("i/o failed") || error.contains("flushing the state store"),
        "{error}"
    );
    assert!(
        error.contains("File too large") || error.contains("FileTooLarge"),
        "{error}"
    );

    // Without the limit: everything acknowledged is there, nothing is corrupt, and the
    // store accepts writes again.
    let store = open(&db);
    store.verify_integrity().unwrap();
    for i in &acked {
        let b = store.booking(&format!("fill-{i}").into()).unwrap();
        assert_eq!(b, Some(child::bulky(*i)), "acknowledged booking fill-{i}");
    }
    store.save_booking(&booking("after")).unwrap();
    assert!(store.booking(&"after".into()).unwrap().is_some());
}

fn chmod_recursive(path: &Path, dir_mode: u32, file_mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = if path.is_dir() { dir_mode } else { file_mode };
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chmod_recursive(&e.unwrap().path(), dir_mode, file_mode);
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs a child that opens `target` while `ro_root` is read-only. A process with
/// CAP_DAC_OVERRIDE (root) ignores permission bits, so then the child runs under
/// `setpriv` without that capability.
fn open_in_read_only(ro_root: &Path, target: &Path) -> String {
    chmod_recursive(ro_root, 0o555, 0o444);
    let probe = ro_root.join("probe");
    let privileged = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    let wrapper: &[&str] = if privileged {
        &[
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
        ]
    } else {
        &[]
    };
    let (out, _) = run(child::command("open", target, wrapper));
    chmod_recursive(ro_root, 0o755, 0o644);
    out
}

#[test]
fn read_only_directory_gives_a_clear_error_and_no_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    {
        let store = open(&db);
        store.save_booking(&booking("m1")).unwrap();
        store.set_secret("s", &"v".into()).unwrap();
    }
    let out = open_in_read_only(dir.path(), &db);
    let error = out
        .lines()
        .find_map(|l| l.strip_prefix("error "))
        .unwrap_or_else(|| panic!("opening a read-only store must fail: {out}"));
    assert!(
        error.starts_with(&format!("cannot open the state store at {}", db.display())),
        "{error}"
    );
    assert!(error.contains("PermissionDenied"), "{error}");

    // A new store inside a read-only directory fails the same way.
    let fresh_target = dir.path().join("new");
    let out = open_in_read_only(dir.path(), &fresh_target);
    let error = out.lines().find_map(|l| l.strip_prefix("error ")).unwrap();
    assert!(
        error.starts_with("cannot open the state store at"),
        "{error}"
    );

    let store = Store::open(&db, &key()).unwrap();
    store.verify_integrity().unwrap();
    assert!(store.booking(&"m1".into()).unwrap().is_some());
    assert!(store.secret("s").unwrap().is_some());
}
