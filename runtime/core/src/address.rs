//! Addresses (`module` or `module/key`) and call chains (who is waiting on whom,
//! to refuse a call that would wait on itself).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// An actor's address: a singleton is `module` (key ""), a keyed actor
/// `module/key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    /// The module's name.
    pub module: String,
    /// The actor's key within the module ("" for a singleton).
    pub key: String,
}

impl Address {
    /// `module/key`.
    pub fn new(module: impl Into<String>, key: impl Into<String>) -> Address {
        Address {
            module: module.into(),
            key: key.into(),
        }
    }

    /// Parses `module` or `module/key` (the key may itself contain `/`).
    pub fn parse(s: &str) -> Address {
        match s.split_once('/') {
            Some((m, k)) => Address::new(m, k),
            None => Address::new(s, ""),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.module)
        } else {
            write!(f, "{}/{}", self.module, self.key)
        }
    }
}

/// The actors blocked in `call`, innermost last, for the message being handled.
/// A persistent list: extending it for a nested call is one allocation.
#[derive(Debug, Clone, Default)]
pub struct CallChain(Option<Arc<Link>>);

#[derive(Debug)]
struct Link {
    address: Address,
    parent: CallChain,
}

impl CallChain {
    /// This chain with `address` (now waiting) appended.
    pub fn push(&self, address: Address) -> CallChain {
        CallChain(Some(Arc::new(Link {
            address,
            parent: self.clone(),
        })))
    }

    /// Whether `address` is waiting in this chain.
    pub fn contains(&self, address: &Address) -> bool {
        let mut cur = &self.0;
        while let Some(link) = cur {
            if &link.address == address {
                return true;
            }
            cur = &link.parent.0;
        }
        false
    }

    /// The waiting actors, outermost first: how a chain crosses to another node.
    pub fn addresses(&self) -> Vec<Address> {
        let mut out = Vec::new();
        let mut cur = &self.0;
        while let Some(link) = cur {
            out.push(link.address.clone());
            cur = &link.parent.0;
        }
        out.reverse();
        out
    }

    /// The chain [`CallChain::addresses`] listed.
    pub fn from_addresses(addresses: impl IntoIterator<Item = Address>) -> CallChain {
        addresses
            .into_iter()
            .fold(CallChain::default(), |chain, a| chain.push(a))
    }

    /// `a → b → a`, outermost first, ending with `next`.
    pub fn describe(&self, next: &Address) -> String {
        let mut names = Vec::new();
        let mut cur = &self.0;
        while let Some(link) = cur {
            names.push(link.address.to_string());
            cur = &link.parent.0;
        }
        names.reverse();
        names.push(next.to_string());
        names.join(" → ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_addresses() {
        assert_eq!(Address::parse("echo"), Address::new("echo", ""));
        assert_eq!(Address::parse("arena/room/7").key, "room/7");
        assert_eq!(Address::new("counter", "k").to_string(), "counter/k");
    }

    #[test]
    fn chains_detect_and_name_cycles() {
        let a = Address::parse("a");
        let b = Address::parse("b/1");
        let chain = CallChain::default().push(a.clone()).push(b.clone());
        assert!(chain.contains(&a) && chain.contains(&b));
        assert!(!chain.contains(&Address::parse("c")));
        assert_eq!(chain.describe(&a), "a → b/1 → a");
        let crossed = CallChain::from_addresses(chain.addresses());
        assert_eq!(crossed.describe(&a), "a → b/1 → a");
    }
}
