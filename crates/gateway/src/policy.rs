//! The policy table, built from the access option of every method in the
//! descriptor set. A method absent from the table is denied.

use std::collections::{BTreeMap, BTreeSet};

use cg_proto::policy::{MethodPolicy, PolicyError, methods};

/// Policies by call path, and the paths of methods that exist but lack one.
#[derive(Debug, Clone)]
pub struct PolicyTable {
    policies: BTreeMap<String, MethodPolicy>,
    known_methods: BTreeSet<String>,
}

impl PolicyTable {
    pub fn from_descriptor_set(descriptor_set: &[u8]) -> Result<PolicyTable, PolicyError> {
        let all = methods(descriptor_set)?;
        let known_methods = all.iter().map(|m| m.path.clone()).collect();
        let policies = all
            .iter()
            .filter_map(MethodPolicy::from_method)
            .map(|p| (p.path.clone(), p))
            .collect();
        Ok(PolicyTable {
            policies,
            known_methods,
        })
    }

    pub fn get(&self, path: &str) -> Option<&MethodPolicy> {
        self.policies.get(path)
    }

    /// Whether the path names a method of one of our services.
    pub fn is_known_method(&self, path: &str) -> bool {
        self.known_methods.contains(path)
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}
