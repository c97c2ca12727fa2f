use super::*;

fn spec(p: &Program) -> Spec<'_> {
    Spec {
        stdout: Stdout::Capture,
        ..Spec::new(p, Duration::from_secs(10))
    }
}

#[test]
fn argv_is_not_a_shell() {
    let p = Program::Argv(vec!["echo".into(), "$TARGET$; rm -rf /".into()]);
    let r = run(&spec(&p)).unwrap();
    assert!(r.success());
    assert_eq!(r.stdout, b"$TARGET$; rm -rf /\n");
}

#[test]
fn shell_strings_run_through_sh() {
    let p = Program::Shell("echo a; echo b >&2; exit 3".into());
    let r = run(&spec(&p)).unwrap();
    assert_eq!(r.stdout, b"a\n");
    assert_eq!(r.stderr, "b");
    assert_eq!(r.failed_code(), Some(3));
    let k = run(&spec(&Program::Shell("kill -9 $$".into()))).unwrap();
    assert_eq!(k.failed_code(), Some(137));
}

#[test]
fn stdin_is_written_and_closed() {
    let p = Program::Argv(vec!["cat".into()]);
    let mut s = spec(&p);
    let data = vec![b'x'; 300_000];
    s.stdin = Some(&data);
    let r = run(&s).unwrap();
    assert_eq!(r.stdout.len(), 300_000);
}

#[test]
fn the_time_limit_kills_the_whole_group() {
    let p = Program::Shell("sleep 30 & sleep 30; echo never".into());
    let mut s = spec(&p);
    s.limit = Duration::from_millis(200);
    let r = run(&s).unwrap();
    assert!(r.status.is_none());
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    assert!(!r.success());
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let p = Program::Argv(vec!["/nonexistent/tool".into()]);
    let e = run(&spec(&p)).unwrap_err();
    assert!(matches!(e, ExecError::Spawn { .. }), "{e}");
    assert!(e.to_string().starts_with("cannot start /nonexistent/tool"));
    assert!(matches!(
        run(&spec(&Program::Argv(vec![]))),
        Err(ExecError::Empty)
    ));
}

#[test]
fn no_descriptor_leaks_into_the_child() {
    // A descriptor without CLOEXEC (as libpcap's eventfd): the child must not see it.
    let f = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    sys::clear_cloexec(fd);
    let p = Program::Shell(format!(
        "test -e /proc/self/fd/{fd} && echo leaked || echo closed"
    ));
    if !std::path::Path::new("/proc/self/fd").exists() {
        eprintln!("skipped: no /proc/self/fd here");
        return;
    }
    let r = run(&spec(&p)).unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "closed\n");
}
