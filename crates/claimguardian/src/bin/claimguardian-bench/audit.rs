//! The audit log benchmark: appends per second across organizations and on
//! one, against plain inserts of the same row; then verification of one
//! long chain from the database and in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cg_audit::checkpoint::CheckpointSigner;
use cg_audit::entry::{Actor, ActorKind, GENESIS_HASH, NewEntry, Outcome, chain};
use cg_audit::verify::{ChainExpectation, verify_chain};
use cg_audit::{AuditApi, PgAudit};
use cg_context::{Role, Tenant, TenantContext};
use cg_db::{ControlPool, TenantPool};
use cg_pgcluster::{ClusterOptions, PgCluster, ServerBinaries};
use cg_tenancy::model::NewOrganization;
use cg_tenancy::{PgTenancy, TenancyApi};
use chrono::Utc;
use sqlx::Connection;

use crate::latency::median;

const ORGANIZATIONS: usize = 8;

fn new_entry(org: uuid::Uuid, n: u64) -> NewEntry {
    NewEntry {
        organization_id: Some(org),
        time: Utc::now(),
        actor: Actor {
            kind: ActorKind::User,
            id: "01a21c16-d441-77aa-94ec-e1dcb5ce84cb".to_owned(),
        },
        action: "claims.property.create".to_owned(),
        resource_type: "property".to_owned(),
        resource_id: format!("01a21c16-d4a3-76b9-8f3f-{n:012}"),
        outcome: Outcome::Success,
        request_id: "01a21c17-0a2d-7503-9adf-051a109a774b".to_owned(),
        trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
        source_ip: "203.0.113.7".to_owned(),
        user_agent: "grpc-rust/0.14".to_owned(),
        summary: serde_json::json!({"display_name": format!("Property {n}"), "state": "FL", "property_type": "condo"}),
    }
}

async fn setup(url: &str) -> anyhow::Result<(ControlPool, Vec<(uuid::Uuid, String)>)> {
    claimguardian::database::migrate_all(url, &mut ()).await?;
    let pool = cg_db::connect_control(url, 20).await?;
    let tenancy = PgTenancy::new(pool.clone());
    let ctx = TenantContext::service("bench", None);
    let mut orgs = Vec::new();
    for i in 0..ORGANIZATIONS {
        let org = tenancy
            .create_organization(
                &ctx,
                NewOrganization {
                    code: format!("bench-{i}"),
                    display_name: format!("Bench {i}"),
                    primary_contact_email: "ops@bench.example".to_owned(),
                    tier: "enterprise".to_owned(),
                    allowed_states: vec!["FL".to_owned()],
                    primary_state: "FL".to_owned(),
                    ..NewOrganization::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("create organization: {e}"))?;
        orgs.push((org.id.0, org.schema_name));
    }
    sqlx::raw_sql("CREATE TABLE public.bench_plain (LIKE org_bench_0.audit_log); ALTER TABLE public.bench_plain ADD COLUMN id bigserial PRIMARY KEY")
        .execute(&pool)
        .await?;
    Ok((pool, orgs))
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// The same row, inserted without a chain: the floor.
    PlainInsert,
    /// Appends spread over the organizations' chains.
    AcrossOrganizations,
    /// Every writer appending to one chain.
    OneOrganization,
}

async fn run_phase(
    pool: &ControlPool,
    orgs: &[(uuid::Uuid, String)],
    phase: Phase,
    writers: usize,
    length: Duration,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let pool = pool.clone();
        let orgs = orgs.to_vec();
        let done = done.clone();
        tasks.spawn(async move {
            let mut n = writer as u64;
            while Instant::now() < deadline {
                let (org, schema) = match phase {
                    Phase::OneOrganization => &orgs[0],
                    _ => &orgs[n as usize % orgs.len()],
                };
                let mut conn = pool.acquire().await?;
                let mut tx = conn.begin().await?;
                match phase {
                    Phase::PlainInsert => {
                        let entry = chain(new_entry(*org, n), 1, GENESIS_HASH);
                        sqlx::query(
                            "INSERT INTO public.bench_plain (sequence, organization_id, occurred_at, actor_kind, actor_id, action, \
                             resource_type, resource_id, outcome, request_id, trace_id, source_ip, user_agent, summary, previous_hash, hash) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                        )
                        .bind(n as i64 + 1)
                        .bind(entry.organization_id)
                        .bind(entry.time)
                        .bind(entry.actor.kind.as_str())
                        .bind(&entry.actor.id)
                        .bind(&entry.action)
                        .bind(&entry.resource_type)
                        .bind(&entry.resource_id)
                        .bind(entry.outcome.as_str())
                        .bind(&entry.request_id)
                        .bind(&entry.trace_id)
                        .bind(&entry.source_ip)
                        .bind(&entry.user_agent)
                        .bind(entry.summary.to_string())
                        .bind(entry.previous_hash.to_vec())
                        .bind(entry.hash.to_vec())
                        .execute(&mut *tx)
                        .await?;
                    }
                    _ => {
                        cg_audit::store::append(&mut tx, schema, new_entry(*org, n)).await?;
                    }
                }
                tx.commit().await?;
                done.fetch_add(1, Ordering::Relaxed);
                n += writers as u64;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / length.as_secs_f64())
}

async fn fill_chain(
    pool: &ControlPool,
    org: uuid::Uuid,
    schema: &str,
    entries: i64,
    signer: &CheckpointSigner,
) -> anyhow::Result<()> {
    // Continue the chain the organization's creation started.
    let (mut sequence, hash): (i64, Vec<u8>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT sequence, hash FROM {schema}.audit_head"
    )))
    .fetch_one(pool)
    .await?;
    let mut previous: [u8; 32] = hash.try_into().map_err(|_| anyhow::anyhow!("head hash"))?;
    let mut batch = Vec::with_capacity(2_000);
    let mut checkpoints = Vec::new();
    let started = Instant::now();
    while sequence < entries {
        batch.clear();
        while batch.len() < 2_000 && sequence < entries {
            sequence += 1;
            let entry = chain(new_entry(org, sequence as u64), sequence, previous);
            previous = entry.hash;
            if sequence % 1_000 == 0 {
                checkpoints.push(signer.checkpoint(&entry, Utc::now()));
            }
            batch.push(entry);
        }
        let mut builder = sqlx::QueryBuilder::new(format!(
            "INSERT INTO {schema}.audit_log (sequence, organization_id, occurred_at, actor_kind, actor_id, action, resource_type, \
             resource_id, outcome, request_id, trace_id, source_ip, user_agent, summary, previous_hash, hash) "
        ));
        builder.push_values(&batch, |mut row, e| {
            row.push_bind(e.sequence)
                .push_bind(e.organization_id)
                .push_bind(e.time)
                .push_bind(e.actor.kind.as_str())
                .push_bind(e.actor.id.clone())
                .push_bind(e.action.clone())
                .push_bind(e.resource_type.clone())
                .push_bind(e.resource_id.clone())
                .push_bind(e.outcome.as_str())
                .push_bind(e.request_id.clone())
                .push_bind(e.trace_id.clone())
                .push_bind(e.source_ip.clone())
                .push_bind(e.user_agent.clone())
                .push_bind(
                    String::from_utf8(cg_audit::encoding::canonical_json(&e.summary))
                        .unwrap_or_default(),
                )
                .push_bind(e.previous_hash.to_vec())
                .push_bind(e.hash.to_vec());
        });
        builder.build().execute(pool).await?;
        if sequence % 100_000 < 2_000 {
            eprint!(
                "\r  filling the chain: {sequence}/{entries} entries ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!();
    for c in &checkpoints {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.audit_checkpoints (sequence, organization_id, head_hash, signed_at, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6)"
        )))
        .bind(c.sequence)
        .bind(c.organization_id)
        .bind(c.head_hash.to_vec())
        .bind(c.time)
        .bind(&c.key_id)
        .bind(c.signature.to_vec())
        .execute(pool)
        .await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {schema}.audit_head SET sequence = $1, hash = $2"
    )))
    .bind(sequence)
    .bind(previous.to_vec())
    .execute(pool)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "VACUUM ANALYZE {schema}.audit_log"
    )))
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn run(
    length: Duration,
    rounds: usize,
    writers: usize,
    entries: i64,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let binaries = ServerBinaries::locate()?;
    let cluster =
        PgCluster::start(&binaries, ClusterOptions::durable(dir.path().join("pg"))).await?;
    claimguardian::database::ensure_database(&cluster.url("postgres"), "bench").await?;
    let url = cluster.url("bench");
    let result = async {
        let (pool, orgs) = setup(&url).await.context("set up")?;
        println!("audit appends: {writers} writers, {rounds} interleaved rounds of {} s per phase, durable PostgreSQL (fsync on)", length.as_secs());
        let mut plain = Vec::new();
        let mut across = Vec::new();
        let mut one = Vec::new();
        for round in 1..=rounds {
            plain.push(run_phase(&pool, &orgs, Phase::PlainInsert, writers, length).await?);
            across.push(run_phase(&pool, &orgs, Phase::AcrossOrganizations, writers, length).await?);
            one.push(run_phase(&pool, &orgs, Phase::OneOrganization, writers, length).await?);
            eprintln!("  round {round}: plain {:.0}/s, across {ORGANIZATIONS} organizations {:.0}/s, one organization {:.0}/s", plain[round - 1], across[round - 1], one[round - 1]);
        }
        let (plain, across, one) = (median(&mut plain), median(&mut across), median(&mut one));
        println!("  plain insert (no chain)            {plain:>8.0} rows/s     1.00");
        println!("  appends across {ORGANIZATIONS} organizations     {across:>8.0} entries/s  {:.2}", across / plain);
        println!("  appends on one organization        {one:>8.0} entries/s  {:.2}", one / plain);

        let signer = CheckpointSigner::generate();
        let (org, schema) = orgs[1].clone();
        fill_chain(&pool, org, &schema, entries, &signer).await.context("fill the chain")?;
        let tenant_pool = TenantPool::connect(&url, 4)?;
        let ctx = TenantContext {
            tenant: Some(Tenant {
                org_id: cg_context::OrganizationId(org),
                org_code: "bench-1".to_owned(),
                schema: schema.to_owned(),
                tier: "enterprise".to_owned(),
                allowed_states: vec!["FL".to_owned()],
                role: Role::Owner,
            }),
            ..TenantContext::service("bench", None)
        };
        let audit = PgAudit::new(tenant_pool.clone(), signer.verifier());
        let started = Instant::now();
        let verdict = audit.verify(&ctx, None, None).await.map_err(|e| anyhow::anyhow!("verify: {e}"))?;
        let from_db = started.elapsed();
        anyhow::ensure!(verdict.report.ok, "the benchmark chain did not verify: {:?}", verdict.report.problem);

        // The same chain verified in memory: what the database adds.
        let rows: Vec<cg_audit::entry::AuditEntry> = tenant_pool
            .in_tenant(&ctx, async |tx| cg_audit::store::entries_between(tx, 1, entries, entries).await)
            .await?;
        let checkpoints = tenant_pool
            .in_tenant(&ctx, async |tx| cg_audit::store::checkpoints_between(tx, 0, entries).await)
            .await?;
        let started = Instant::now();
        let report = verify_chain(&rows, &checkpoints, &signer.verifier(), ChainExpectation::genesis(Some(org)));
        let in_memory = started.elapsed();
        anyhow::ensure!(report.ok, "in-memory verification failed");
        println!("verification of {} entries:", verdict.report.entries_checked);
        println!("  VerifyAuditChain from PostgreSQL   {:>8.2} s  ({:.0} entries/s)", from_db.as_secs_f64(), entries as f64 / from_db.as_secs_f64());
        println!("  verify_chain in memory             {:>8.2} s  ({:.0} entries/s)", in_memory.as_secs_f64(), entries as f64 / in_memory.as_secs_f64());
        anyhow::Ok(())
    }
    .await;
    cluster.stop().await?;
    result
}
