//! The isolation matrix: every tenant-scoped method of the descriptor set,
//! tried every way across a tenant boundary, each with its exact refusal.
//!
//! The methods come from the access options in the descriptor set, so a
//! new RPC is in the matrix the moment it is declared. For each method the
//! matrix decides from its policy and request message which of the nine
//! [`Case`]s apply (every case but three applies to every method; a role
//! without the permission needs a permission some role lacks, an
//! organization without the feature a feature some tier lacks, a foreign
//! resource id a request field that names a resource) and then tries them:
//!
//! * eight cases the gateway decides before any service sees the call, so
//!   they hold for unimplemented methods too; each is one or more calls
//!   with a default request and an exact code, `ErrorInfo` reason and
//!   metadata ([`cases`]);
//! * the foreign resource id, which the services decide: a probe per
//!   implemented method sends the rival's ids from home and asserts
//!   `NOT_FOUND` (an empty page for list filters), never the rival's data,
//!   and the rival's resources are checked unchanged afterwards
//!   ([`resource_ids`]). A method that names resources and has no probe must
//!   still answer `UNIMPLEMENTED`, so implementing it without a probe fails.
//!
//! Removing any case makes the matrix fail: every call made is recorded as a
//! (method, case) pair, and the recorded set must equal the set the policies
//! call for; the cases themselves must be exactly the nine of the gateway
//! issue, named in [`ISSUE_CASES`]. A case that stops making calls, a case
//! dropped from [`Case::ALL`], or a method left without its cases all show
//! up as a difference.
//!
//! "A token of another organization" is a stranger's: a member (and an API
//! key) of the rival only, on home. "An `x-tenant` that disagrees with the
//! token" is a person who *is* a member of home but presents the token of
//! their other organization; membership does not make a token issued
//! elsewhere good here.

mod cases;
mod resource_ids;
mod world;

use std::collections::BTreeSet;

use cg_context::{Permission, Role};
use cg_proto::access::v1::Scope;
use cg_proto::policy::{MethodPolicy, policy_table};
use cg_testkit::TestStack;
use futures::StreamExt as _;
use prost_reflect::DescriptorPool;

use cases::{Case, MethodFacts, attempts};
use world::{Needs, World};

/// The cases of the gateway issue, in its words and order.
const ISSUE_CASES: [&str; 9] = [
    "no credentials",
    "a token of another organization",
    "a token of a role without the permission",
    "an organization without the feature",
    "a blocked source address",
    "a suspended organization",
    "a forged x-cg-context",
    "an x-tenant that disagrees with the token",
    "a resource id of another organization",
];

/// Calls in flight at once: enough to finish quickly, few enough for two cores.
const CONCURRENCY: usize = 16;

fn tenant_policies() -> Vec<MethodPolicy> {
    policy_table(cg_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set")
        .into_values()
        .filter(|policy| policy.scope == Scope::Tenant)
        .collect()
}

fn permission_of(policy: &MethodPolicy) -> Option<Permission> {
    policy.permission.as_ref().map(|name| {
        name.parse()
            .unwrap_or_else(|_| panic!("{}: unknown permission {name}", policy.path))
    })
}

fn needs_of(policies: &[MethodPolicy]) -> Needs {
    Needs {
        roles: policies
            .iter()
            .filter_map(permission_of)
            .flat_map(|p| Role::ALL.into_iter().filter(move |r| !r.has(p)))
            .collect(),
        features: policies.iter().filter_map(|p| p.feature.clone()).collect(),
    }
}

fn facts_of(policy: &MethodPolicy, world: &World, pool: &DescriptorPool) -> MethodFacts {
    let permission = permission_of(policy);
    let lacking_roles = permission
        .map(|p| Role::ALL.into_iter().filter(|r| !r.has(p)).collect())
        .unwrap_or_default();
    let (lacking_tiers, required_tier) = match &policy.feature {
        Some(feature) => (
            world
                .tiers
                .iter()
                .filter(|t| !t.features.contains(feature))
                .map(|t| t.code.clone())
                .collect(),
            world
                .tiers
                .iter()
                .filter(|t| t.features.contains(feature))
                .min_by_key(|t| t.rank)
                .map(|t| t.code.clone()),
        ),
        None => (Vec::new(), None),
    };
    MethodFacts {
        policy: policy.clone(),
        method: policy
            .path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned(),
        permission,
        lacking_roles,
        lacking_tiers,
        required_tier,
        id_fields: resource_ids::id_fields(pool, policy),
    }
}

#[tokio::test]
async fn every_tenant_scoped_method_refuses_every_way_across_organizations() {
    assert_eq!(
        Case::ALL.map(Case::name),
        ISSUE_CASES,
        "the matrix tries exactly the cases of the gateway issue"
    );
    let stack = TestStack::spawn().await;
    let pool = DescriptorPool::decode(cg_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let policies = tenant_policies();
    assert!(
        policies.len() > 40,
        "only {} tenant-scoped methods found",
        policies.len()
    );
    let world = World::arrange(&stack, &needs_of(&policies)).await;
    let facts: Vec<MethodFacts> = policies
        .iter()
        .map(|p| facts_of(p, &world, &pool))
        .collect();
    let expected: BTreeSet<(String, Case)> = facts
        .iter()
        .flat_map(|f| {
            Case::ALL
                .into_iter()
                .filter(|c| f.applies(*c))
                .map(|c| (f.policy.path.clone(), c))
        })
        .collect();

    // The gateway's cases, concurrently.
    let calls: Vec<_> = facts
        .iter()
        .flat_map(|f| {
            Case::ALL
                .into_iter()
                .filter(|c| f.applies(*c))
                .flat_map(|c| attempts(&world, &stack.mesh_key, f, c))
                .collect::<Vec<_>>()
        })
        .collect();
    let total = calls.len();
    let verdicts: Vec<_> = futures::stream::iter(calls)
        .map(|attempt| attempt.run(world.channel.clone()))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut tried = BTreeSet::new();
    let mut failures = Vec::new();
    for (case, path, label, verdict) in verdicts {
        if let Err(why) = verdict {
            failures.push(format!("{path} · {} · {label}: {why}", case.name()));
        }
        tried.insert((path, case));
    }

    // The services' case: a probe per implemented method naming resources.
    for f in facts.iter().filter(|f| f.applies(Case::ForeignResourceId)) {
        match resource_ids::probe(&stack, &world, &f.method).await {
            Some(covered) => {
                let uncovered: Vec<&String> = f
                    .id_fields
                    .iter()
                    .filter(|field| !covered.contains(&field.as_str()))
                    .collect();
                assert!(
                    uncovered.is_empty(),
                    "{}: the probe names no rival id in {uncovered:?}",
                    f.policy.path
                );
            }
            None => {
                resource_ids::assert_awaiting_implementation(
                    &stack,
                    &world,
                    &pool,
                    &f.policy,
                    &f.id_fields,
                )
                .await;
            }
        }
        tried.insert((f.policy.path.clone(), Case::ForeignResourceId));
    }
    resource_ids::assert_rival_untouched(&stack, &world).await;

    assert!(
        failures.is_empty(),
        "{} of {total} calls were not refused as they must be:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let missing: Vec<_> = expected.difference(&tried).collect();
    let unexpected: Vec<_> = tried.difference(&expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "cases not tried: {missing:?}; tried without applying: {unexpected:?}"
    );
    let kinds: BTreeSet<Case> = tried.iter().map(|(_, case)| *case).collect();
    assert_eq!(
        kinds,
        Case::ALL.into_iter().collect::<BTreeSet<_>>(),
        "every case is tried on some method"
    );
    let methods: BTreeSet<&String> = tried.iter().map(|(path, _)| path).collect();
    assert_eq!(
        methods.len(),
        policies.len(),
        "every tenant-scoped method has its cases"
    );
}
