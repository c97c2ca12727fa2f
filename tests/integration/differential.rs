//! Differential test against Debian's real Portsentry 1.2 (issue #14): the same config,
//! the same scans and the same actions, run once with Debian's binary and once with
//! ours, each in a fresh pair of network namespaces and a private mount namespace (its
//! own `/dev/log`, an overlay over `/etc` so both binaries see the same
//! `/etc/portsentry/portsentry.conf` and `/etc/hosts.deny`). The syslog lines (the
//! version normalised), the history and blocked files (times normalised), hosts.deny
//! (a plain file or a bind mount), the commands KILL_ROUTE and KILL_RUN_CMD ran, and
//! the start (listening or failed) must be equal. A difference we keep on purpose
//! (`docs/compat.md` §10.8 and §10.2) is written into the scenario by name, and only
//! that difference is forgiven. Debian's package is fetched by the test set-up
//! (`apt-get download`), never committed. Root only; everything is torn down on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::legacy::{
    alive, private_dev_log, tcp_listener, Helper, Sink, ADMIN_DOWN, LISTENING, PYTHON,
};
use crate::netns::{Bed, SCANNER4, TARGET4, TARGET6};
use crate::util::{bin, is_root};

/// What the scanner does, in order.
#[derive(Clone, Copy)]
enum Step {
    /// `nmap -r --max-parallelism 1` with these scan flags and ports (one probe at a
    /// time, in port order: both daemons see the same sequence).
    Nmap(&'static str, &'static str),
    /// nmap over IPv6 (1.2 and our 1.2 mode watch IPv4 only).
    Nmap6(&'static str, &'static str),
    /// A full TCP connection to the port.
    Connect(u16),
    /// One UDP datagram to the port.
    Udp(u16),
    /// A TCP listener on the target, started after the daemon (a new service).
    Listen(u16),
    /// Lets the daemon settle.
    Pause(u64),
}

#[derive(Clone, Copy, PartialEq)]
enum HostsDeny {
    Plain,
    BindMount,
}

/// A difference we keep on purpose: its name, the line each side may have that the
/// other has not (`None`: the side has nothing extra), and text Debian's binary writes
/// where ours writes the right thing (replaced in Debian's lines and files).
#[derive(Clone, Copy)]
struct Deliberate {
    name: &'static str,
    debian_only: Option<&'static str>,
    ours_only: Option<&'static str>,
    debian_wrote: Option<(&'static str, &'static str)>,
}

/// Which test runs a scenario (three tests, so that they run side by side).
#[derive(Clone, Copy, PartialEq)]
enum Group {
    Connect,
    Stealth,
    Config,
}

struct Scenario {
    name: &'static str,
    group: Group,
    modes: &'static [&'static str],
    /// The config, without the common file keys (added in front).
    conf: &'static str,
    ignore: &'static str,
    hosts_deny: HostsDeny,
    /// TCP ports with a service on the target before the daemons start.
    busy: &'static [u16],
    steps: &'static [Step],
    /// Whether every mode comes up (else the start fails and both say why).
    starts: bool,
    deliberate: &'static [Deliberate],
}

/// The file keys every scenario uses (first occurrence wins in 1.2, so a scenario can
/// leave one out by writing it first with another meaning: see `missing_history_file`).
const FILES: &str = "IGNORE_FILE=\"/etc/portsentry/portsentry.ignore\"\n\
HISTORY_FILE=\"/etc/portsentry/portsentry.history\"\n\
BLOCKED_FILE=\"/etc/portsentry/portsentry.blocked\"\n";

/// The deliberate difference of every start that fails after the config was read:
/// Debian's parent had exited 0 before the mode started; ours waits and exits 255
/// (§10.2). Compared by [`Outcome::code`], forgiven by name here.
const PARENT_REPORTS_FAILURE: &str =
    "§10.2: the parent exits 255 when the daemon could not start (1.2: 0)";

/// Debian's ports, in Debian's order (issue #14 item 2).
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "tcp_block1_every_action_in_2x_order_tokens_and_hosts_deny",
        group: Group::Connect,
        modes: &["-tcp"],
        conf: "TCP_PORTS=\"1,11,15,79,111,119,143,540\"\nBLOCK_TCP=\"1\"\n\
KILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY $PORT$ $MODE$\"\n\
KILL_ROUTE=\"/etc/portsentry/record route $TARGET$ $PORT$ $MODE$\"\n\
KILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$ $PORT$ $MODE$\"\nKILL_RUN_CMD_FIRST=\"0\"\n\
SCAN_TRIGGER=\"0\"\n",
        ignore: "127.0.0.1\n",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[Step::Connect(11), Step::Connect(79)],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "udp_config_order_run_cmd_first_and_bind_failure",
        group: Group::Connect,
        modes: &["-udp"],
        conf: "UDP_PORTS=\"1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,31337,54321\"\n\
BLOCK_UDP=\"1\"\nKILL_RUN_CMD_FIRST=\"1\"\n\
KILL_ROUTE=\"/etc/portsentry/record route $TARGET$\"\n\
KILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$ $PORT$\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[Step::Udp(700), Step::Udp(37444)],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "tcp_port_in_use_logs_listen_line_then_error",
        group: Group::Connect,
        modes: &["-tcp"],
        conf: "TCP_PORTS=\"1,11,15,79\"\nBLOCK_TCP=\"0\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[11],
        steps: &[Step::Connect(15)],
        starts: true,
        deliberate: &[Deliberate {
            name: "§10.8: 1.2 reports the wrong port after an earlier port failed to bind",
            debian_only: None,
            ours_only: None,
            debian_wrote: Some(("to TCP port: 11", "to TCP port: 15")),
        }],
    },
    Scenario {
        name: "stcp_every_scan_type_in_use_port_ipv6_and_block0",
        group: Group::Stealth,
        modes: &["-stcp"],
        conf: "TCP_PORTS=\"1,11,15,79,143\"\nBLOCK_TCP=\"0\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[143],
        steps: &[
            Step::Nmap("-sS", "1"),
            Step::Nmap("-sF", "11"),
            Step::Nmap("-sN", "15"),
            Step::Nmap("-sX", "79"),
            Step::Nmap6("-sS", "1,11"),
        ],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "stcp_a_service_started_later_is_not_a_scan",
        group: Group::Stealth,
        modes: &["-stcp"],
        conf: "TCP_PORTS=\"11,79\"\nBLOCK_TCP=\"1\"\nKILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[Step::Listen(79), Step::Connect(79), Step::Pause(300), Step::Nmap("-sS", "11")],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "atcp_excludes_trigger_and_bind_mounted_hosts_deny",
        group: Group::Stealth,
        modes: &["-atcp"],
        conf: "ADVANCED_PORTS_TCP=\"1024\"\nADVANCED_EXCLUDE_TCP=\"113,139\"\nBLOCK_TCP=\"1\"\n\
KILL_HOSTS_DENY=\"ALL: $TARGET$ : DENY\"\nSCAN_TRIGGER=\"2\"\n",
        ignore: "",
        hosts_deny: HostsDeny::BindMount,
        busy: &[22],
        steps: &[Step::Nmap("-sS", "113"), Step::Nmap("-sS", "20,21,23"), Step::Nmap("-sS", "2000")],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "sudp_and_audp_block2_run_cmd_only",
        group: Group::Stealth,
        modes: &["-sudp", "-audp"],
        // two daemons side by side, each with its own ports (7, 9, 69 / 1 to 5 minus 2)
        conf: "UDP_PORTS=\"7,9,69\"\nADVANCED_PORTS_UDP=\"6\"\nADVANCED_EXCLUDE_UDP=\"2\"\n\
BLOCK_UDP=\"2\"\nKILL_HOSTS_DENY=\"ALL: $TARGET$\"\n\
KILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$ $PORT$ $MODE$\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[
            Step::Udp(7),
            Step::Pause(300),
            Step::Udp(2),
            Step::Udp(3),
            Step::Pause(300),
            Step::Udp(9),
        ],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "ignore_file_silences_a_source",
        group: Group::Connect,
        modes: &["-tcp"],
        conf: "TCP_PORTS=\"1,11\"\nBLOCK_TCP=\"1\"\n\
KILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$ $PORT$ $MODE$\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "# the scanner, as a network\r\n198.18.0.0/31\r\n",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[Step::Connect(11), Step::Connect(1)],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "resolve_host_names_the_scanner",
        group: Group::Connect,
        modes: &["-udp"],
        conf: "UDP_PORTS=\"1,7\"\nBLOCK_UDP=\"1\"\nRESOLVE_HOST=\"1\"\n\
KILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$ $PORT$ $MODE$\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[Step::Udp(7), Step::Udp(1)],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "unquoted_values_are_skipped_with_1_2s_lines",
        group: Group::Config,
        modes: &["-tcp"],
        conf: "TCP_PORTS=\"1,11\"\nSCAN_TRIGGER=0\nBLOCK_TCP=1\nRESOLVE_HOST=0\n\
KILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[Step::Connect(11)],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "kill_route_and_hosts_deny_without_target_block_nothing",
        group: Group::Config,
        modes: &["-tcp"],
        conf: "TCP_PORTS=\"1,11\"\nBLOCK_TCP=\"1\"\nKILL_ROUTE=\"/etc/portsentry/record route\"\n\
KILL_RUN_CMD=\"/etc/portsentry/record run $TARGET$\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[Step::Connect(11), Step::Pause(300), Step::Connect(1)],
        starts: true,
        deliberate: &[],
    },
    Scenario {
        name: "missing_history_file",
        group: Group::Config,
        modes: &["-tcp"],
        conf: "HISTORY_FILE=/nowhere\nTCP_PORTS=\"1,11\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[],
        starts: false,
        deliberate: &[],
    },
    Scenario {
        name: "missing_port_list",
        group: Group::Config,
        modes: &["-stcp"],
        conf: "UDP_PORTS=\"1\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[],
        starts: false,
        deliberate: &[Deliberate {
            name: PARENT_REPORTS_FAILURE,
            debian_only: None,
            ours_only: None,
            debian_wrote: None,
        }],
    },
    Scenario {
        name: "duplicate_port_is_bound_once",
        group: Group::Connect,
        modes: &["-udp"],
        conf: "UDP_PORTS=\"1,7,9,7\"\nSCAN_TRIGGER=\"0\"\n",
        ignore: "",
        hosts_deny: HostsDeny::Plain,
        busy: &[],
        steps: &[],
        starts: true,
        deliberate: &[
            Deliberate {
                name: "issue #14 item 2: a duplicate port is listed once (1.2 tried it twice)",
                debian_only: Some("adminalert: Going into listen mode on UDP port: 7"),
                ours_only: None,
                debian_wrote: None,
            },
            Deliberate {
                name: "issue #14 item 2: a duplicate port is listed once (1.2 tried it twice)",
                debian_only: Some(
                    "adminalert: ERROR: could not bind UDP socket: 7. Attempting to continue",
                ),
                ours_only: None,
                debian_wrote: None,
            },
        ],
    },
];

/// What one binary did in one scenario.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    lines: Vec<String>,
    history: String,
    blocked: Vec<(String, String)>,
    hosts_deny: String,
    ran: String,
    /// The parent's exit status of each mode's start.
    code: Vec<Option<i32>>,
}

fn can_run(test: &str) -> Option<PathBuf> {
    if !is_root(test) {
        return None;
    }
    for need in [PYTHON, "/usr/bin/nmap"] {
        if !Path::new(need).exists() {
            eprintln!("SKIP {test}: needs {need}");
            return None;
        }
    }
    let pkg = crate::debian::debian_package()?;
    Some(pkg.join("usr/sbin/portsentry"))
}

/// `MM/DD/YYYY HH:MM:SS` and the epoch in front of a history line become `T`.
fn untimed(line: &str) -> String {
    match line.split_once(" - ") {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) && rest.len() > 20 => {
            format!("T {}", &rest[20..])
        }
        _ => line.to_string(),
    }
}

fn read_untimed(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(untimed)
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_exec(p: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, body).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs one scenario with `binary` and collects what it did.
fn run(binary: &Path, sc: &Scenario) -> Outcome {
    // Dropped in reverse: the namespaces (and the daemons in them) first.
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::new();
    let bed = Bed::new();
    let r = root.path();
    let etc = r.join("etc-up");
    std::fs::create_dir_all(etc.join("portsentry")).unwrap();
    std::fs::create_dir_all(r.join("etc-work")).unwrap();
    std::fs::write(
        etc.join("portsentry/portsentry.conf"),
        format!("# {}\n{}{FILES}", sc.name, sc.conf),
    )
    .unwrap();
    std::fs::write(etc.join("portsentry/portsentry.ignore"), sc.ignore).unwrap();
    write_exec(
        &etc.join("portsentry/record"),
        "#!/bin/sh\necho \"$*\" >> /etc/portsentry/ran.log\n",
    );
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    std::fs::write(
        etc.join("hosts"),
        format!("{hosts}\n{SCANNER4} scanner.example\n"),
    )
    .unwrap();
    let deny = match sc.hosts_deny {
        HostsDeny::Plain => etc.join("hosts.deny"),
        HostsDeny::BindMount => r.join("hosts.deny.src"),
    };
    std::fs::write(&deny, "# /etc/hosts.deny\nsshd: 192.0.2.1\n").unwrap();
    let _busy: Vec<Helper> = sc
        .busy
        .iter()
        .map(|p| tcp_listener(&bed.target, *p))
        .collect();

    let rd = r.display();
    let mut script = format!(
        "{} && mount -t overlay overlay -o lowerdir=/etc,upperdir={rd}/etc-up,workdir={rd}/etc-work /etc",
        private_dev_log(&sink)
    );
    if sc.hosts_deny == HostsDeny::BindMount {
        script.push_str(&format!(
            " && touch /etc/hosts.deny && mount --bind {} /etc/hosts.deny",
            deny.display()
        ));
    }
    // every mode from the same mount namespace, as one init script would start them
    script.push_str(" && for m in \"$@\"; do \"$0\" \"$m\"; echo \"code=$?\"; done");
    let o = Command::new("timeout")
        .args([
            "-k",
            "2",
            "60",
            "ip",
            "netns",
            "exec",
            &bed.target,
            "unshare",
            "-m",
        ])
        .args(["sh", "-c", &script])
        .arg(binary)
        .args(sc.modes)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("start");
    let code: Vec<Option<i32>> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("code="))
        .map(|c| c.parse().ok())
        .collect();
    let n = sc.modes.len();
    if sc.starts {
        sink.wait_for("every mode listening", |m| {
            m.iter().filter(|x| x.text == LISTENING).count() >= n
        });
    } else {
        sink.wait_for("the failed start", |m| {
            m.iter().filter(|x| x.text == ADMIN_DOWN).count() >= n
        });
    }
    let _later: Vec<Helper> = run_steps(&bed, sc.steps);
    settle(&sink);
    let pids: Vec<u32> = sink
        .all()
        .iter()
        .filter(|m| m.text == LISTENING)
        .map(|m| m.pid)
        .collect();
    for pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    sink.wait_for("the shutdown of every daemon", |m| {
        pids.iter()
            .all(|p| m.iter().any(|x| x.pid == *p && x.text == ADMIN_DOWN))
    });
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let version = format!("PortSentry {} is starting.", env!("CARGO_PKG_VERSION"));
    let lines = sink
        .all()
        .into_iter()
        .map(|m| {
            m.text
                .replace("PortSentry 1.2 is starting.", "PortSentry V is starting.")
                .replace(&version, "PortSentry V is starting.")
        })
        .collect();
    let mut blocked = Vec::new();
    for m in sc.modes {
        let p = etc.join(format!("portsentry/portsentry.blocked.{}", &m[1..]));
        if p.exists() {
            blocked.push((m.to_string(), read_untimed(&p)));
        }
    }
    Outcome {
        lines,
        // §10.6: ours creates the history file empty at start (fail2ban's jail needs
        // it); an absent file and an empty one compare equal.
        history: read_untimed(&etc.join("portsentry/portsentry.history")),
        blocked,
        hosts_deny: std::fs::read_to_string(&deny).unwrap_or_default(),
        ran: std::fs::read_to_string(etc.join("portsentry/ran.log")).unwrap_or_default(),
        code,
    }
}

fn run_steps(bed: &Bed, steps: &[Step]) -> Vec<Helper> {
    let mut helpers = Vec::new();
    for s in steps {
        match *s {
            Step::Nmap(flags, ports) => {
                bed.nmap(&[flags, "-r", "--max-parallelism", "1", "-p", ports, TARGET4]);
            }
            Step::Nmap6(flags, ports) => {
                bed.nmap(&[
                    "-6",
                    flags,
                    "-r",
                    "--max-parallelism",
                    "1",
                    "-p",
                    ports,
                    TARGET6,
                ]);
            }
            Step::Connect(port) => {
                let code = format!(
                    "import socket\ns=socket.socket()\ns.settimeout(3)\ntry:\n  s.connect(('{TARGET4}',{port}))\n  s.recv(64)\nexcept Exception:\n  pass\n"
                );
                bed.exec(
                    &bed.scanner,
                    &[PYTHON, "-c", &code],
                    Duration::from_secs(10),
                );
            }
            Step::Udp(port) => {
                let code = format!(
                    "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.sendto(b'x',('{TARGET4}',{port}))\n"
                );
                bed.exec(
                    &bed.scanner,
                    &[PYTHON, "-c", &code],
                    Duration::from_secs(10),
                );
            }
            Step::Listen(port) => helpers.push(tcp_listener(&bed.target, port)),
            Step::Pause(ms) => std::thread::sleep(Duration::from_millis(ms)),
        }
        // one step's lines before the next step's
        std::thread::sleep(Duration::from_millis(150));
    }
    helpers
}

/// Waits until no new line came for 700 ms (10 s at most).
fn settle(sink: &Sink) {
    let start = Instant::now();
    let mut last = (sink.all().len(), Instant::now());
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        let n = sink.all().len();
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(700) {
            return;
        }
    }
}

/// Removes the lines a deliberate difference explains, once each.
fn forgive(lines: &mut Vec<String>, extra: Option<&str>) {
    if let Some(line) = extra {
        if let Some(i) = lines.iter().rposition(|l| l == line) {
            lines.remove(i);
        }
    }
}

fn compare(sc: &Scenario, mut debian: Outcome, mut ours: Outcome) -> Result<(), String> {
    if sc.modes.len() > 1 {
        // Two daemons answer the same probe at the same time: each one's own order is
        // what the single-mode scenarios check; here the lines and commands of both
        // are compared as sets.
        for o in [&mut debian, &mut ours] {
            o.lines.sort();
            let mut ran: Vec<&str> = o.ran.lines().collect();
            ran.sort_unstable();
            o.ran = ran.join("\n");
        }
    }
    for d in sc.deliberate {
        forgive(&mut debian.lines, d.debian_only);
        forgive(&mut ours.lines, d.ours_only);
        if let Some((wrong, right)) = d.debian_wrote {
            for l in &mut debian.lines {
                *l = l.replace(wrong, right);
            }
            debian.history = debian.history.replace(
                &wrong.replace("to TCP port:", "Port:"),
                &right.replace("to TCP port:", "Port:"),
            );
            for (_, b) in &mut debian.blocked {
                *b = b.replace(
                    &wrong.replace("to TCP port:", "Port:"),
                    &right.replace("to TCP port:", "Port:"),
                );
            }
        }
        if d.name == PARENT_REPORTS_FAILURE {
            debian.code.clear();
            ours.code.clear();
        }
    }
    if std::env::var_os("PORTSENTRY_DIFF_SHOW").is_some() {
        eprintln!("{}:\n--- debian\n{debian:#?}\n--- ours\n{ours:#?}", sc.name);
    }
    if debian == ours {
        for d in sc.deliberate {
            eprintln!("{}: deliberate difference: {}", sc.name, d.name);
        }
        return Ok(());
    }
    Err(format!(
        "{}: Debian's 1.2 and ours differ\n--- debian\n{debian:#?}\n--- ours\n{ours:#?}",
        sc.name
    ))
}

fn run_scenarios(test: &str, group: Group) {
    let Some(debian) = can_run(test) else {
        return;
    };
    let mut failures = Vec::new();
    for sc in SCENARIOS.iter().filter(|s| s.group == group) {
        let theirs = run(&debian, sc);
        let ours = run(&bin(), sc);
        if let Err(e) = compare(sc, theirs, ours) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn differential_connect_modes() {
    run_scenarios("differential_connect_modes", Group::Connect);
}

#[test]
fn differential_stealth_modes() {
    run_scenarios("differential_stealth_modes", Group::Stealth);
}

#[test]
fn differential_config_and_start_up() {
    run_scenarios("differential_config_and_start_up", Group::Config);
}
