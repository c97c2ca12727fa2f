//! [`Text`]: an immutable, shared string for the few distinct texts every block repeats
//! (`TCP`, `TCP SYN/Normal scan`, `crowdsec crowdsec crowdsecurity/ssh-bf`).
//!
//! In: a `&str` or `String`. Out: a cheap-to-clone handle; equal texts made through
//! [`Text::from`] share one allocation while the pool has room ([`POOL_MAX`] distinct
//! texts), so 100 000 blocks with the same scan type hold one copy of it. Must not: grow
//! without bound (texts beyond the pool are plain, unshared allocations) or change a text.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

/// Distinct texts kept for sharing; later ones are not shared.
pub const POOL_MAX: usize = 4096;

/// An immutable string; clones share it. One pointer wide (a record holds several).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(Arc<String>);

impl std::hash::Hash for Text {
    /// As the `str` it holds, so the pool can be searched with a `&str`.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

fn pool() -> &'static Mutex<HashSet<Text>> {
    static POOL: OnceLock<Mutex<HashSet<Text>>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(HashSet::new()))
}

impl Text {
    /// The shared copy of `s`, added to the pool when there is room.
    fn interned(s: &str) -> Text {
        let mut pool = match pool().lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(t) = pool.get(s) {
            return t.clone();
        }
        let t = Text(Arc::new(s.to_string()));
        if pool.len() < POOL_MAX {
            pool.insert(t.clone());
        }
        t
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::interned("")
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::interned(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::interned(&s)
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Text::interned(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_copy() {
        let a = Text::from("TCP SYN/Normal scan");
        let b = Text::from(String::from("TCP SYN/Normal scan"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "TCP SYN/Normal scan");
        assert_eq!(a.to_string(), "TCP SYN/Normal scan");
        assert_eq!(format!("{a:?}"), "\"TCP SYN/Normal scan\"");
        assert_eq!(Text::default(), "");
        assert!(a.starts_with("TCP"));
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<usize>());
    }
}
