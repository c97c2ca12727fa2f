//! Bad config and ignore-file input: one `path:line` message, exit 78, nothing touched.

use crate::util::{run, stderr, write};

/// (name, config text, expected stderr after "PATH:")
fn cases() -> Vec<(&'static str, Vec<u8>, String)> {
    let base = "UDP_PORTS=\"7\"\nBLOCK_TCP=\"0\"\nBLOCK_UDP=\"0\"\n";
    let mut v: Vec<(&'static str, Vec<u8>, String)> = vec![
        ("empty value", "TCP_PORTS=\"\"\n".into(), "1: TCP_PORTS: the value is empty".into()),
        ("missing quotes", "TCP_PORTS=1\n".into(), "1: TCP_PORTS: the value must be in double quotes, as TCP_PORTS=\"...\"".into()),
        ("unterminated quote", "TCP_PORTS=\"1\n".into(), "1: TCP_PORTS: the value has no closing quote".into()),
        ("unknown key", "# c\nFOO=\"1\"\n".into(), "2: FOO: unknown key".into()),
        ("abbreviated key", "BLOCK=\"1\"\n".into(), "1: BLOCK: unknown key (keys are never abbreviated: BLOCK is the start of BLOCKED_FILE, BLOCK_TCP, BLOCK_UDP, ...)".into()),
        ("port 0", "TCP_PORTS=\"0\"\n".into(), "1: TCP_PORTS: port 0 is out of range (1-65535)".into()),
        ("port 65536", "TCP_PORTS=\"1,65536\"\n".into(), "1: TCP_PORTS: port 65536 is out of range (1-65535)".into()),
        ("reversed range", "TCP_PORTS=\"20-10\"\n".into(), "1: TCP_PORTS: port range 20-10 is reversed".into()),
        ("advanced not a number", "ADVANCED_PORTS_TCP=\"abc\"\n".into(), "1: ADVANCED_PORTS_TCP: \"abc\" must be a whole number from 1 to 65535".into()),
        ("bad exclude item", "ADVANCED_EXCLUDE_UDP=\"67,x\"\n".into(), "1: ADVANCED_EXCLUDE_UDP: port item \"x\" is not a number or a range A-B".into()),
        ("binary garbage", b"\x7fELF\x02\x01\x01\x00\x00".to_vec(), "1: expected KEY=\"value\" with an upper-case KEY starting in column 1".into()),
        ("not utf-8", b"TCP_PORTS=\"1\xff\"\n".to_vec(), "1: line is not valid UTF-8 text".into()),
        ("block 3", "BLOCK_TCP=\"3\"\n".into(), "1: BLOCK_TCP: \"3\" must be 0 (log only), 1 (block) or 2 (run KILL_RUN_CMD only)".into()),
        ("kill route without target", "KILL_ROUTE=\"/sbin/route add\"\n".into(), "1: KILL_ROUTE: must contain the $TARGET$ token".into()),
        ("bad duration", "BLOCK_TIMEOUT=\"3y\"\n".into(), "1: BLOCK_TIMEOUT: \"3y\" is not a duration such as 90s, 30m, 12h, 7d or 0 (permanent)".into()),
        ("bad backend", "BLOCK_BACKEND=\"iptables\"\n".into(), "1: BLOCK_BACKEND: unknown block backend \"iptables\" (known: auto, nft, pf, ipfw, npf, route, hosts-deny, command)".into()),
        ("bad hook", "NFT_HOOKS=\"output\"\n".into(), "1: NFT_HOOKS: unknown hook \"output\" (known: input, forward)".into()),
        ("run cmd missing", "TCP_PORTS=\"1\"\nBLOCK_TCP=\"2\"\n".into(), "2: BLOCK_TCP: is 2 (run KILL_RUN_CMD only) but KILL_RUN_CMD is not set".into()),
        ("nothing can block", "TCP_PORTS=\"1\"\nBLOCK_UDP=\"1\"\n".into(), "2: BLOCK_UDP: is 1 (block) but nothing can block: set BLOCK_BACKEND, KILL_ROUTE or KILL_HOSTS_DENY".into()),
    ];
    let long = format!("TCP_PORTS=\"{}\"\n", "1,".repeat(512 * 1024));
    v.push((
        "1 MB line",
        long.clone().into_bytes(),
        format!(
            "1: line is too long ({} bytes, at most 65536)",
            long.len() - 1
        ),
    ));
    v.push((
        "1,,2 is fine but 0 after it is not",
        "TCP_PORTS=\"1,,2\"\nUDP_PORTS=\"0\"\n".into(),
        "2: UDP_PORTS: port 0 is out of range (1-65535)".into(),
    ));
    v.push((
        "no ports at all",
        base.replace("UDP_PORTS=\"7\"\n", "").into_bytes(),
        String::new(),
    ));
    v
}

#[test]
fn every_bad_config_names_path_and_line_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, want) in cases() {
        let hist = dir.path().join(format!("hist-{}", name.replace(' ', "_")));
        let mut data = text.clone();
        data.extend_from_slice(format!("\nHISTORY_FILE=\"{}\"\n", hist.display()).as_bytes());
        let conf = write(dir.path(), "bad.conf", &data);
        // The daemon itself (not check-config): it must stop before touching anything.
        let o = run(&["-c", conf.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(78), "{name}: {err}");
        if want.is_empty() {
            assert_eq!(
                err.trim(),
                format!(
                    "{}: no TCP_PORTS or UDP_PORTS set: stealth mode has no port to watch",
                    conf.display()
                ),
                "{name}"
            );
        } else {
            assert_eq!(err.trim(), format!("{}:{want}", conf.display()), "{name}");
        }
        assert!(!hist.exists(), "{name}: history file was created");
    }
}

#[test]
fn empty_items_and_duplicate_keys_follow_2x() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "p.conf",
        b"TCP_PORTS=\"1,,2\"\nTCP_PORTS=\"3\"\nBLOCK_TCP=\"0\"\n",
    );
    let o = run(&["-c", conf.to_str().unwrap(), "check-config"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(crate::util::stdout(&o).contains("TCP_PORTS=\"3\""));
}

#[test]
fn legacy_dialect_ignores_unknown_keys_and_first_wins() {
    // The 1.2 mode words run the daemon now (its `adminalert:` lines are checked in
    // tests/integration/legacy.rs); the dialect itself is checked through the library.
    use portsentry::config::{BlockMode, Config, Dialect};
    let cfg = Config::parse(
        std::path::Path::new("p.conf"),
        b"FOO=\"1\"\nTCP_PORTS=\"1,x,2\"\nTCP_PORTS=\"3\"\nBLOCK_TCP=\"7\"\n",
        Dialect::Legacy,
    )
    .unwrap();
    assert_eq!(cfg.tcp_ports.to_string(), "1-2");
    assert_eq!(cfg.block_tcp, BlockMode::LogOnly);
    assert_eq!(
        cfg.warnings,
        ["p.conf:2: TCP_PORTS: port item \"x\" is not a number or a range A-B; item skipped"]
    );
}

#[test]
fn ignore_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&[u8], Option<&str>)> = vec![
        (b"198.18.0.1\n198.18.0.0/33\n", Some(":2: prefix length /33 is too long for IPv4 (at most /32) (expected an address or ADDRESS/PREFIX)")),
        (b"fd00:5e5e::/129\n", Some(":1: prefix length /129 is too long for IPv6 (at most /128) (expected an address or ADDRESS/PREFIX)")),
        (b"198.18.0.0/x\n", Some(":1: prefix length \"x\" is not a number (expected an address or ADDRESS/PREFIX)")),
        (b"\x00\x01\x02binary\xff", Some(":1: line is not valid UTF-8 text")),
        (b"::ffff:198.18.0.1\n198.18.0.9/24\n", None),
        (b"", None),
    ];
    for (text, want) in cases {
        let ign = write(dir.path(), "ign", text);
        let conf = write(
            dir.path(),
            "p.conf",
            format!("TCP_PORTS=\"1\"\nIGNORE_FILE=\"{}\"\n", ign.display()).as_bytes(),
        );
        let o = run(&["-c", conf.to_str().unwrap(), "check-config"]);
        match want {
            Some(w) => {
                assert_eq!(o.status.code(), Some(78));
                assert_eq!(stderr(&o).trim(), format!("{}{w}", ign.display()));
            }
            None => assert_eq!(o.status.code(), Some(0), "{}", stderr(&o)),
        }
    }
    // host bits are masked with a warning
    let ign = write(dir.path(), "ign", b"198.18.0.9/24\n");
    let conf = write(
        dir.path(),
        "p.conf",
        format!("TCP_PORTS=\"1\"\nIGNORE_FILE=\"{}\"\n", ign.display()).as_bytes(),
    );
    let o = run(&["-c", conf.to_str().unwrap(), "check-config"]);
    assert!(stderr(&o).contains(":1: 198.18.0.9/24 has host bits set; using 198.18.0.0/24"));
    // a missing ignore file
    let conf = write(
        dir.path(),
        "p.conf",
        b"TCP_PORTS=\"1\"\nIGNORE_FILE=\"/nonexistent/ign\"\n",
    );
    let o = run(&["-c", conf.to_str().unwrap(), "check-config"]);
    assert_eq!(o.status.code(), Some(78));
    assert_eq!(
        stderr(&o).trim(),
        "/nonexistent/ign: cannot read the ignore file: No such file or directory (os error 2)"
    );
    // a missing config file
    let o = run(&["-c", "/nonexistent/p.conf", "check-config"]);
    assert_eq!(o.status.code(), Some(78));
    assert_eq!(
        stderr(&o).trim(),
        "/nonexistent/p.conf: cannot read the config file: No such file or directory (os error 2)"
    );
}

/// Issue #17 item 3: a FIFO as the config or ignore path is refused at once (it used to
/// hang both check-config and the daemon).
#[test]
fn a_fifo_is_refused_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let start = std::time::Instant::now();
    let o = crate::util::run(&["-c", fifo.to_str().unwrap(), "check-config"]);
    assert_eq!(o.status.code(), Some(78));
    assert!(
        crate::util::stderr(&o).contains("not a regular file"),
        "{}",
        crate::util::stderr(&o)
    );
    let conf = crate::util::write(
        dir.path(),
        "p.conf",
        format!("TCP_PORTS=\"1\"\nIGNORE_FILE=\"{}\"\n", fifo.display()).as_bytes(),
    );
    let o = crate::util::run(&["-c", conf.to_str().unwrap(), "check-config"]);
    assert_eq!(o.status.code(), Some(78));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
