//! The tonic adapter: wire ↔ domain conversions around [`ClaimsApi`].

use std::sync::Arc;
use std::time::SystemTime;

use cg_context::context_of;
use cg_proto::claims::v1 as pb;
use cg_proto::claims::v1::claims_service_server::ClaimsService;
use cg_status::FieldViolations;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::ClaimsApi;
use crate::model::{Address, Property, PropertyFields, PropertyType};
use crate::money;
use crate::service::PropertyMask;

/// Serves [`ClaimsService`] over any [`ClaimsApi`].
#[derive(Debug)]
pub struct ClaimsGrpc<T> {
    api: Arc<T>,
}

impl<T> ClaimsGrpc<T> {
    pub fn new(api: Arc<T>) -> Self {
        ClaimsGrpc { api }
    }
}

fn property_type_to_wire(t: PropertyType) -> pb::PropertyType {
    match t {
        PropertyType::SingleFamily => pb::PropertyType::SingleFamily,
        PropertyType::Condo => pb::PropertyType::Condo,
        PropertyType::MultiFamily => pb::PropertyType::MultiFamily,
        PropertyType::Commercial => pb::PropertyType::Commercial,
        PropertyType::MobileHome => pb::PropertyType::MobileHome,
    }
}

fn property_type_from_wire(raw: i32) -> Option<PropertyType> {
    match pb::PropertyType::try_from(raw).ok()? {
        pb::PropertyType::Unspecified => None,
        pb::PropertyType::SingleFamily => Some(PropertyType::SingleFamily),
        pb::PropertyType::Condo => Some(PropertyType::Condo),
        pb::PropertyType::MultiFamily => Some(PropertyType::MultiFamily),
        pb::PropertyType::Commercial => Some(PropertyType::Commercial),
        pb::PropertyType::MobileHome => Some(PropertyType::MobileHome),
    }
}

impl From<Property> for pb::Property {
    fn from(p: Property) -> Self {
        let fields = p.fields;
        pb::Property {
            id: p.id.to_string(),
            display_name: fields.display_name,
            address: Some(pb::Address {
                line1: fields.address.line1,
                line2: fields.address.line2,
                city: fields.address.city,
                state: fields.address.state,
                postal_code: fields.address.postal_code,
            }),
            property_type: property_type_to_wire(fields.property_type).into(),
            value: fields.value.map(money::to_wire),
            year_built: fields.year_built.unwrap_or(0),
            owner_user_id: p.owner_user_id.map(|u| u.to_string()).unwrap_or_default(),
            create_time: Some(Timestamp::from(SystemTime::from(p.created_at))),
            update_time: Some(Timestamp::from(SystemTime::from(p.updated_at))),
        }
    }
}

/// Reads the fields of a wire property. Only the fields in `mask` are
/// checked (all of them on create); the others take neutral values.
fn fields_from_wire(
    p: &pb::Property,
    mask: PropertyMask,
) -> Result<PropertyFields, FieldViolations> {
    let mut violations = FieldViolations::new();
    let address = p.address.clone().unwrap_or_default();
    if mask.address && p.address.is_none() {
        violations.add("property.address", "is required");
    }
    let property_type = if mask.property_type {
        property_type_from_wire(p.property_type).unwrap_or_else(|| {
            violations.add("property.property_type", "is required");
            PropertyType::SingleFamily
        })
    } else {
        PropertyType::SingleFamily
    };
    let value = match (&p.value, mask.value) {
        (Some(value), true) => money::parse_amount(value)
            .map_err(|problem| violations.add("property.value", problem))
            .ok(),
        _ => None,
    };
    violations.check()?;
    Ok(PropertyFields {
        display_name: p.display_name.clone(),
        address: Address {
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            state: address.state,
            postal_code: address.postal_code,
        },
        property_type,
        value,
        year_built: (p.year_built != 0).then_some(p.year_built),
    })
}

const ALL_FIELDS: PropertyMask = PropertyMask {
    display_name: true,
    address: true,
    property_type: true,
    value: true,
    year_built: true,
};

fn mask_from_wire(mask: Option<prost_types::FieldMask>) -> Result<PropertyMask, FieldViolations> {
    let mask = mask.ok_or_else(|| FieldViolations::single("update_mask", "is required"))?;
    if mask.paths.is_empty() {
        return Err(FieldViolations::single("update_mask", "names no field"));
    }
    let mut out = PropertyMask::default();
    let mut violations = FieldViolations::new();
    for path in &mask.paths {
        match path.as_str() {
            "display_name" => out.display_name = true,
            "address" => out.address = true,
            "property_type" => out.property_type = true,
            "value" => out.value = true,
            "year_built" => out.year_built = true,
            other => violations.add("update_mask", format!("`{other}` cannot be updated")),
        }
    }
    violations.check()?;
    Ok(out)
}

fn parse_id(raw: &str, field: &str) -> Result<Uuid, FieldViolations> {
    Uuid::parse_str(raw).map_err(|_| FieldViolations::single(field, "must be a UUID"))
}

#[tonic::async_trait]
impl<T: ClaimsApi> ClaimsService for ClaimsGrpc<T> {
    async fn create_property(
        &self,
        request: Request<pb::CreatePropertyRequest>,
    ) -> Result<Response<pb::CreatePropertyResponse>, Status> {
        let ctx = context_of(&request)?;
        let property = request
            .get_ref()
            .property
            .as_ref()
            .ok_or_else(|| FieldViolations::single("property", "is required"))?;
        let fields = fields_from_wire(property, ALL_FIELDS)?;
        let created = self.api.create_property(ctx, fields).await?;
        Ok(Response::new(pb::CreatePropertyResponse {
            property: Some(created.into()),
        }))
    }

    async fn get_property(
        &self,
        request: Request<pb::GetPropertyRequest>,
    ) -> Result<Response<pb::GetPropertyResponse>, Status> {
        let ctx = context_of(&request)?;
        let id = parse_id(&request.get_ref().id, "id")?;
        let property = self.api.get_property(ctx, id).await?;
        Ok(Response::new(pb::GetPropertyResponse {
            property: Some(property.into()),
        }))
    }

    async fn list_properties(
        &self,
        request: Request<pb::ListPropertiesRequest>,
    ) -> Result<Response<pb::ListPropertiesResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let state = (!req.state.is_empty()).then(|| req.state.clone());
        let page = self
            .api
            .list_properties(ctx, req.page_size, &req.page_token, state)
            .await?;
        Ok(Response::new(pb::ListPropertiesResponse {
            properties: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_property(
        &self,
        request: Request<pb::UpdatePropertyRequest>,
    ) -> Result<Response<pb::UpdatePropertyResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let mask = mask_from_wire(req.update_mask.clone())?;
        let property = req
            .property
            .as_ref()
            .ok_or_else(|| FieldViolations::single("property", "is required"))?;
        let id = parse_id(&property.id, "property.id")?;
        let fields = fields_from_wire(property, mask)?;
        let updated = self.api.update_property(ctx, id, fields, mask).await?;
        Ok(Response::new(pb::UpdatePropertyResponse {
            property: Some(updated.into()),
        }))
    }
}
