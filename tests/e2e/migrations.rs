//! `migrate` is idempotent and reaches every tenant schema.

use cg_db::migrate::{Progress, migrate_all};
use cg_testkit::TestStack;

use crate::fixtures::create_enterprise;

#[derive(Default)]
struct Recorded(Vec<(String, Vec<i64>)>);

impl Progress for Recorded {
    fn schema_done(&mut self, schema: &str, applied: &[i64], _: usize, _: usize) {
        self.0.push((schema.to_owned(), applied.to_vec()));
    }
}

#[tokio::test]
async fn migrating_again_changes_nothing_and_visits_every_tenant_schema() {
    let stack = TestStack::spawn().await;
    create_enterprise(&stack, "one").await;
    create_enterprise(&stack, "two").await;

    let mut progress = Recorded::default();
    migrate_all(&stack.control, &mut progress)
        .await
        .expect("migrate");
    let schemas: Vec<&str> = progress.0.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        schemas,
        ["tenancy", "identity", "audit", "org_one", "org_two"]
    );
    assert!(
        progress.0.iter().all(|(_, applied)| applied.is_empty()),
        "nothing to apply: {:?}",
        progress.0
    );

    // A tenant schema that lost its tables and version record (a half-made
    // schema from an interrupted rollout) is completed by the next run.
    sqlx::raw_sql("DROP SCHEMA org_two CASCADE; CREATE SCHEMA org_two")
        .execute(&stack.control)
        .await
        .expect("arrange");
    let mut progress = Recorded::default();
    migrate_all(&stack.control, &mut progress)
        .await
        .expect("migrate again");
    let two = progress
        .0
        .iter()
        .find(|(s, _)| s == "org_two")
        .expect("org_two visited");
    let every_version: Vec<i64> = cg_db::migrate::TENANT.iter().map(|m| m.version).collect();
    assert_eq!(two.1, every_version);
}
