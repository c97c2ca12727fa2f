//! Packets per second through parse + port filter + the real engine
//! (`Engine::observe`: classify, ignore list, SCAN_TRIGGER, block cache, the decision) on
//! one core (issue #3 target: at least 1 M/s; issue #13: the engine, not a copy of it).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portsentry::capture::Ports;
use portsentry::config::ignore;
use portsentry::engine::trigger::{Trigger, DEFAULT_CAP};
use portsentry::engine::{Engine, Ignore, Policy, Rules};
use portsentry::facts::{FixedFacts, HostFacts, SystemFacts};
use portsentry::model::ports::{parse_list, to_set};
use portsentry::model::BlockMode;
use portsentry::packet::{parse, LinkType};
use portsentry::pipeline::event_of;

/// An Ethernet + IPv4 + TCP SYN frame from `src` to 198.18.0.2:`port`.
fn syn(src: u32, port: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&src.to_be_bytes());
    f[30..34].copy_from_slice(&[198, 18, 0, 2]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&port.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x02;
    f
}

fn bench(c: &mut Criterion) {
    let ports = Ports {
        tcp: to_set(&parse_list("1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337,32771-32774,40421,49724,54320").0),
        udp: to_set(&parse_list("1,7,9,69,161,162,513,635,640,641,700").0),
    };
    let (ign, _) = ignore::parse(
        std::path::Path::new("bench"),
        b"127.0.0.0/8\n::1\n203.0.113.0/24\n",
    )
    .unwrap_or_default();
    const N: u32 = 4096;
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|i| syn(0xc613_0000 | (i % 1024), [1, 79, 31337, 22][i as usize % 4]))
        .collect();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(u64::from(N)));
    let rules = Rules {
        policy: Policy::V2 { local_check: true },
        service_check: true,
        block_tcp: BlockMode::Block,
        block_udp: BlockMode::Block,
        hosts_deny: false,
        route: false,
        backends: true,
        run_cmd: false,
        run_cmd_first: false,
        banner: false,
        resolve: false,
        scan_trigger: 3,
        block_max: usize::MAX,
        block_rate: u32::MAX,
    };
    let fixed = FixedFacts::default();
    // The real service check (issue #14 item 5): every event here is a miss, so this
    // is the worst case of the synchronous refresh (one sock_diag snapshot per 20 ms).
    let system = SystemFacts::start(true, false);
    let ts = std::time::SystemTime::UNIX_EPOCH;
    let cases: [(&str, &dyn HostFacts); 2] = [
        ("parse+filter+engine", &fixed),
        ("parse+filter+engine, real service check", system.as_ref()),
    ];
    for (name, facts) in cases {
        g.bench_function(name, |b| {
            let mut engine = Engine::new(rules.clone(), Ignore::List(ign.clone()));
            b.iter(|| {
                let mut acts = 0u32;
                for f in &frames {
                    let Some(input) = ports.input(parse(LinkType::Ethernet, f), || ts) else {
                        continue;
                    };
                    let Ok((ev, _)) = event_of(input) else {
                        continue;
                    };
                    let d = engine.observe(ts, &ev, facts);
                    acts += u32::from(d.acts());
                    black_box(d);
                }
                // the executor reports back as blocks are lifted; keep the engine acting
                engine.set_blocked(std::iter::empty());
                black_box(acts)
            })
        });
    }
    g.bench_function("trigger, spoofed sources", |b| {
        let mut trig = Trigger::new(3, DEFAULT_CAP);
        let mut n: u32 = 0;
        b.iter(|| {
            for _ in 0..N {
                n = n.wrapping_add(1);
                black_box(trig.hit(IpAddr::V4(Ipv4Addr::from(0xc613_0000 ^ n))));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
