//! Tokens already verified, by the SHA-256 digest of the token string, so
//! that the next request with the same token costs a hash and a lookup
//! instead of a signature check.
//!
//! An entry lives until the token's `exp` (plus leeway) at most. Capacity
//! is bounded: a full cache first drops expired entries, then the entries
//! that expire soonest; access tokens all live the same 15 minutes, so
//! those are also the oldest. Entries remember the key that verified them,
//! and a JWKS refresh that removes or replaces that key drops them
//! ([`VerifiedCache::retain_keys_of`]).

use std::collections::{BTreeSet, HashMap};

use cg_identity::tokens::claims::AccessClaims;

use super::keys::KeySet;

/// The SHA-256 digest of a token string.
pub(super) type Digest = [u8; 32];

/// One verified token.
#[derive(Debug)]
struct Entry {
    claims: AccessClaims,
    kid: String,
    public: [u8; 32],
}

/// Verified tokens, bounded, soonest-expiring evicted first.
#[derive(Debug)]
pub(super) struct VerifiedCache {
    capacity: usize,
    entries: HashMap<Digest, Entry>,
    /// `(exp, digest)` of every entry: the first is the next to evict.
    by_expiry: BTreeSet<(i64, Digest)>,
}

impl VerifiedCache {
    /// An empty cache of at most `capacity` tokens (0 disables caching).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// The claims of a cached token. Time checks are the caller's: an
    /// entry can outlive its `exp` until evicted.
    pub(super) fn get(&self, digest: &Digest) -> Option<&AccessClaims> {
        self.entries.get(digest).map(|entry| &entry.claims)
    }

    /// Caches a token verified by the key `public` under `kid`. `expired_before`
    /// is the `exp` at or below which a token no longer verifies (now minus
    /// leeway): such entries are dropped first when the cache is full.
    pub(super) fn insert(
        &mut self,
        digest: Digest,
        claims: AccessClaims,
        kid: &str,
        public: [u8; 32],
        expired_before: i64,
    ) {
        if self.capacity == 0 || self.entries.contains_key(&digest) {
            return;
        }
        if self.entries.len() >= self.capacity {
            while let Some(&(exp, oldest)) = self.by_expiry.first() {
                if exp > expired_before {
                    break;
                }
                self.remove(&oldest);
            }
        }
        while self.entries.len() >= self.capacity {
            let Some(&(_, oldest)) = self.by_expiry.first() else {
                break;
            };
            self.remove(&oldest);
        }
        self.by_expiry.insert((claims.exp, digest));
        self.entries.insert(
            digest,
            Entry {
                claims,
                kid: kid.to_owned(),
                public,
            },
        );
    }

    /// Drops one token; whether it was cached.
    pub(super) fn remove(&mut self, digest: &Digest) -> bool {
        match self.entries.remove(digest) {
            Some(entry) => {
                self.by_expiry.remove(&(entry.claims.exp, *digest));
                true
            }
            None => false,
        }
    }

    /// Keeps only tokens whose key `keys` still holds, unchanged.
    pub(super) fn retain_keys_of(&mut self, keys: &KeySet) {
        let by_expiry = &mut self.by_expiry;
        self.entries.retain(|digest, entry| {
            let keep = keys.holds(&entry.kid, &entry.public);
            if !keep {
                by_expiry.remove(&(entry.claims.exp, *digest));
            }
            keep
        });
    }

    /// Drops every token.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.by_expiry.clear();
    }

    /// The number of cached tokens.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}
