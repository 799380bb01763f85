//! Row-level security on its own, in raw SQL as the application role: even
//! with `search_path` on another tenant's schema, the organization setting
//! decides what is visible, and the role cannot switch the policies off.

use cg_testkit::TestStack;
use sqlx::{Connection, PgConnection};

use crate::fixtures::{create_enterprise, create_property, property};

async fn as_app_role(stack: &TestStack, schema: &str, org_id: &str) -> PgConnection {
    let mut conn = PgConnection::connect(&stack.database.url)
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET ROLE cg_app; SET search_path TO {schema}; SELECT set_config('app.org_id', '{org_id}', false);"
    )))
    .execute(&mut conn)
    .await
    .expect("become the application role");
    conn
}

#[tokio::test]
async fn rows_of_another_organization_stay_invisible_and_policies_stay_on() {
    let stack = TestStack::spawn().await;
    let a = create_enterprise(&stack, "rls-a").await;
    let b = create_enterprise(&stack, "rls-b").await;
    create_property(&stack, "rls-b", property("B's house", "FL"))
        .await
        .expect("create in B");

    // The role itself: no superuser, no BYPASSRLS.
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'cg_app'")
            .fetch_one(&stack.control)
            .await
            .expect("role attributes");
    assert!(!superuser && !bypass);

    // Sanity: with B's own organization id the row is there, so the next
    // assertion can fail.
    let mut own = as_app_role(&stack, &b.schema_name, &b.id).await;
    for table in ["properties", "audit_log", "audit_head"] {
        let visible: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut own)
                .await
                .expect("count");
        assert!(visible >= 1, "{table} of B is visible to B");
    }

    // search_path on B's schema, app.org_id of A: nothing of B is visible.
    let mut conn = as_app_role(&stack, &b.schema_name, &a.id).await;
    for table in [
        "properties",
        "policies",
        "claims",
        "documents",
        "ai_usage_log",
        "audit_log",
        "audit_head",
        "audit_checkpoints",
    ] {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut conn)
                .await
                .expect("count");
        assert_eq!(count, 0, "{table} leaks rows of B to A");
    }
    // Nor can A write rows into B's schema under B's id.
    let insert = sqlx::query(
        "INSERT INTO properties (id, organization_id, display_name, address_line1, city, state, postal_code, property_type) \
         VALUES (gen_random_uuid(), $1::uuid, 'forged', '1 St', 'Miami', 'FL', '33139', 'condo')",
    )
    .bind(&b.id)
    .execute(&mut conn)
    .await;
    assert!(insert.is_err(), "a row for B was written with A's setting");

    for statement in [
        format!(
            "ALTER TABLE {}.properties DISABLE ROW LEVEL SECURITY",
            b.schema_name
        ),
        format!(
            "ALTER TABLE {}.properties NO FORCE ROW LEVEL SECURITY",
            b.schema_name
        ),
        format!(
            "DROP POLICY organization_isolation ON {}.properties",
            b.schema_name
        ),
        format!(
            "ALTER POLICY organization_isolation ON {}.properties USING (true)",
            b.schema_name
        ),
        format!(
            "CREATE POLICY open_door ON {}.properties USING (true)",
            b.schema_name
        ),
    ] {
        let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut conn)
            .await;
        let error = result.expect_err(&format!("the application role could run: {statement}"));
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
    }
    // Turning row security off does not reveal rows: the query is refused.
    let mut conn = as_app_role(&stack, &b.schema_name, &a.id).await;
    let off = sqlx::raw_sql("SET row_security = off; SELECT * FROM properties")
        .execute(&mut conn)
        .await;
    assert!(off.is_err(), "row_security = off must refuse, not reveal");
}
