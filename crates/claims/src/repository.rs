//! SQL of the tenant `properties` table, run inside a tenant-scoped
//! transaction (search_path, role and RLS settings already in place).

use cg_context::{OrganizationId, UserId};
use cg_db::DbError;
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use crate::model::{Address, Property, PropertyFields, PropertyType};

const COLUMNS: &str = "id, display_name, address_line1, address_line2, city, state::text AS state, \
    postal_code, property_type, value_amount, year_built, owner_user_id, created_at, updated_at";

fn property_from_row(row: &Row) -> Result<Property, DbError> {
    let type_name: String = row.try_get("property_type")?;
    let property_type = PropertyType::parse(&type_name)
        .ok_or_else(|| DbError::Other(format!("unknown property type {type_name:?}")))?;
    Ok(Property {
        id: row.try_get("id")?,
        fields: PropertyFields {
            display_name: row.try_get("display_name")?,
            address: Address {
                line1: row.try_get("address_line1")?,
                line2: row.try_get("address_line2")?,
                city: row.try_get("city")?,
                state: row.try_get("state")?,
                postal_code: row.try_get("postal_code")?,
            },
            property_type,
            value: row.try_get("value_amount")?,
            year_built: row.try_get("year_built")?,
        },
        owner_user_id: row.try_get::<_, Option<Uuid>>("owner_user_id")?.map(UserId),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(
    tx: &Transaction<'_>,
    org: OrganizationId,
    id: Uuid,
    fields: &PropertyFields,
    owner: Option<UserId>,
) -> Result<Property, DbError> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO properties (id, organization_id, display_name, address_line1, address_line2, \
                 city, state, postal_code, property_type, value_amount, value_currency, year_built, owner_user_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $10::numeric IS NULL THEN NULL ELSE 'USD' END, $11, $12) \
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &org.0,
                &fields.display_name.trim(),
                &fields.address.line1.trim(),
                &fields.address.line2.trim(),
                &fields.address.city.trim(),
                &fields.address.state,
                &fields.address.postal_code,
                &fields.property_type.as_str(),
                &fields.value,
                &fields.year_built,
                &owner.map(|u| u.0),
            ],
        )
        .await?;
    property_from_row(&row)
}

pub async fn find(tx: &Transaction<'_>, id: Uuid) -> Result<Option<Property>, DbError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM properties WHERE id = $1"),
            &[&id],
        )
        .await?;
    row.as_ref().map(property_from_row).transpose()
}

pub async fn list(
    tx: &Transaction<'_>,
    before: Option<Uuid>,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<Property>, DbError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM properties \
                 WHERE ($1::uuid IS NULL OR id < $1) AND ($2::text IS NULL OR state = $2) \
                 ORDER BY id DESC LIMIT $3"
            ),
            &[&before, &state, &limit],
        )
        .await?;
    rows.iter().map(property_from_row).collect()
}

pub async fn update(
    tx: &Transaction<'_>,
    id: Uuid,
    fields: &PropertyFields,
) -> Result<Option<Property>, DbError> {
    let row = tx
        .query_opt(
            &format!(
                "UPDATE properties SET display_name = $2, address_line1 = $3, address_line2 = $4, city = $5, \
                 state = $6, postal_code = $7, property_type = $8, value_amount = $9, \
                 value_currency = CASE WHEN $9::numeric IS NULL THEN NULL ELSE 'USD' END, \
                 year_built = $10, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &fields.display_name.trim(),
                &fields.address.line1.trim(),
                &fields.address.line2.trim(),
                &fields.address.city.trim(),
                &fields.address.state,
                &fields.address.postal_code,
                &fields.property_type.as_str(),
                &fields.value,
                &fields.year_built,
            ],
        )
        .await?;
    row.as_ref().map(property_from_row).transpose()
}
