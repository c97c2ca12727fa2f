//! RESOLVE_HOST: a bounded reverse lookup for the log's name field.
//!
//! In: an address. Out: its name, or the address as text when there is none or the
//! lookup takes longer than the budget. Lookups run on a helper thread so a slow
//! resolver never holds the engine longer than the budget; answers (also negative ones)
//! are cached, with a bounded cache. `$TARGET$` never uses this: it is always the IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::Duration;

const CACHE: usize = 4096;

pub struct Resolver {
    budget: Duration,
    cache: HashMap<IpAddr, String>,
}

impl Resolver {
    pub fn new(budget: Duration) -> Resolver {
        Resolver {
            budget,
            cache: HashMap::new(),
        }
    }

    pub fn name(&mut self, ip: IpAddr) -> String {
        if let Some(n) = self.cache.get(&ip) {
            return n.clone();
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(dns_lookup::lookup_addr(&ip).ok());
        });
        let name = match rx.recv_timeout(self.budget) {
            Ok(Some(n)) if !n.is_empty() => n,
            _ => ip.to_string(),
        };
        if self.cache.len() >= CACHE {
            self.cache.clear();
        }
        self.cache.insert(ip, name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_resolves_or_falls_back_to_the_address() {
        let mut r = super::Resolver::new(std::time::Duration::from_secs(2));
        let n = r.name("127.0.0.1".parse().unwrap());
        assert!(!n.is_empty());
        assert_eq!(r.name("127.0.0.1".parse().unwrap()), n);
    }
}
