//! The tonic adapter: wire ↔ domain conversions around [`TenancyApi`].

use std::sync::Arc;
use std::time::SystemTime;

use cg_context::context_of;
use cg_proto::tenancy::v1 as pb;
use cg_proto::tenancy::v1::tenancy_service_server::TenancyService;
use cg_proto::r#type::v1::Money;
use cg_status::FieldViolations;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use crate::TenancyApi;
use crate::feature_override::{FeatureOverrideChange, FeatureSetting, check_feature_code};
use crate::model::{NewOrganization, Organization, OrganizationCode, OrganizationStatus, Tier};
use crate::service::OrganizationUpdate;

/// Serves [`TenancyService`] over any [`TenancyApi`].
#[derive(Debug)]
pub struct TenancyGrpc<T> {
    api: Arc<T>,
}

impl<T> TenancyGrpc<T> {
    pub fn new(api: Arc<T>) -> Self {
        TenancyGrpc { api }
    }
}

fn timestamp(time: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(Timestamp::from(SystemTime::from(time)))
}

impl From<OrganizationStatus> for pb::OrganizationStatus {
    fn from(status: OrganizationStatus) -> Self {
        match status {
            OrganizationStatus::Active => pb::OrganizationStatus::Active,
            OrganizationStatus::Suspended => pb::OrganizationStatus::Suspended,
        }
    }
}

impl From<Organization> for pb::Organization {
    fn from(org: Organization) -> Self {
        pb::Organization {
            id: org.id.to_string(),
            code: org.code,
            display_name: org.display_name,
            domains: org.domains,
            primary_contact_email: org.primary_contact_email,
            tier: org.tier,
            status: pb::OrganizationStatus::from(org.status).into(),
            allowed_states: org.allowed_states,
            primary_state: org.primary_state,
            data_residency_region: org.data_residency_region,
            schema_name: org.schema_name,
            create_time: timestamp(org.created_at),
            update_time: timestamp(org.updated_at),
            suspension_reason: org.suspension_reason,
        }
    }
}

impl From<Tier> for pb::Tier {
    fn from(tier: Tier) -> Self {
        pb::Tier {
            code: tier.code,
            display_name: tier.display_name,
            rank: tier.rank,
            limits: Some(pb::TierLimits {
                users: tier.max_users,
                properties: tier.max_properties,
                claims: tier.max_claims,
                ai_requests_per_month: tier.max_ai_requests_monthly,
                states: tier.max_states,
            }),
            features: tier.features,
            monthly_base_price: tier.monthly_base_price.map(|amount| Money {
                currency_code: tier.currency_code.clone(),
                amount: amount.to_string(),
            }),
        }
    }
}

impl From<pb::CreateOrganizationRequest> for NewOrganization {
    fn from(req: pb::CreateOrganizationRequest) -> Self {
        NewOrganization {
            code: req.code,
            display_name: req.display_name,
            domains: req.domains,
            primary_contact_email: req.primary_contact_email,
            tier: req.tier,
            allowed_states: req.allowed_states,
            primary_state: req.primary_state,
            data_residency_region: req.data_residency_region,
        }
    }
}

impl TryFrom<pb::UpdateOrganizationRequest> for OrganizationUpdate {
    type Error = FieldViolations;
    fn try_from(req: pb::UpdateOrganizationRequest) -> Result<Self, FieldViolations> {
        let mask = req
            .update_mask
            .ok_or_else(|| FieldViolations::single("update_mask", "is required"))?;
        let org = req
            .organization
            .ok_or_else(|| FieldViolations::single("organization", "is required"))?;
        if mask.paths.is_empty() {
            return Err(FieldViolations::single("update_mask", "names no field"));
        }
        let mut update = OrganizationUpdate::default();
        let mut violations = FieldViolations::new();
        for path in &mask.paths {
            match path.as_str() {
                "display_name" => update.display_name = Some(org.display_name.clone()),
                "domains" => update.domains = Some(org.domains.clone()),
                "primary_contact_email" => {
                    update.primary_contact_email = Some(org.primary_contact_email.clone())
                }
                "allowed_states" => update.allowed_states = Some(org.allowed_states.clone()),
                "primary_state" => update.primary_state = Some(org.primary_state.clone()),
                other => violations.add("update_mask", format!("`{other}` cannot be updated")),
            }
        }
        violations.check()?;
        Ok(update)
    }
}

fn setting_from_wire(raw: i32) -> Result<FeatureSetting, &'static str> {
    match pb::FeatureOverride::try_from(raw) {
        Ok(pb::FeatureOverride::Unspecified) => Ok(FeatureSetting::Tier),
        Ok(pb::FeatureOverride::Enabled) => Ok(FeatureSetting::Enabled),
        Ok(pb::FeatureOverride::Disabled) => Ok(FeatureSetting::Disabled),
        Err(_) => Err("must be a FeatureOverride value"),
    }
}

impl TryFrom<pb::SetFeatureOverrideRequest> for FeatureOverrideChange {
    type Error = FieldViolations;
    fn try_from(req: pb::SetFeatureOverrideRequest) -> Result<Self, FieldViolations> {
        let organization = OrganizationCode::parse(&req.code);
        let feature = check_feature_code(&req.feature);
        let setting = setting_from_wire(req.r#override);
        match (organization, feature, setting) {
            (Ok(organization), Ok(()), Ok(setting)) => Ok(FeatureOverrideChange {
                organization,
                feature: req.feature,
                setting,
            }),
            (organization, feature, setting) => {
                let mut violations = FieldViolations::new();
                for (field, result) in [
                    ("code", organization.map(drop)),
                    ("feature", feature),
                    ("override", setting.map(drop)),
                ] {
                    if let Err(problem) = result {
                        violations.add(field, problem);
                    }
                }
                Err(violations)
            }
        }
    }
}

fn status_filter(raw: i32) -> Result<Option<OrganizationStatus>, FieldViolations> {
    match pb::OrganizationStatus::try_from(raw) {
        Ok(pb::OrganizationStatus::Unspecified) => Ok(None),
        Ok(pb::OrganizationStatus::Active) => Ok(Some(OrganizationStatus::Active)),
        Ok(pb::OrganizationStatus::Suspended) => Ok(Some(OrganizationStatus::Suspended)),
        Err(_) => Err(FieldViolations::single("status", "unknown status")),
    }
}

#[tonic::async_trait]
impl<T: TenancyApi> TenancyService for TenancyGrpc<T> {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let ctx = context_of(&request)?.clone();
        let org = self
            .api
            .create_organization(&ctx, request.into_inner().into())
            .await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(org.into()),
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        let org = self.api.get_organization(context_of(&request)?).await?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(org.into()),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let status = status_filter(req.status)?;
        let page = self
            .api
            .list_organizations(ctx, req.page_size, &req.page_token, status)
            .await?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<Response<pb::UpdateOrganizationResponse>, Status> {
        let ctx = context_of(&request)?.clone();
        // The organization updated is always the caller's; naming another
        // one finds nothing, exactly as reading it would.
        let named = request
            .get_ref()
            .organization
            .as_ref()
            .map_or("", |org| org.id.as_str());
        let own = ctx.tenant.as_ref().map(|tenant| tenant.org_id);
        if !named.is_empty() && named.parse().ok() != own {
            return Err(cg_status::not_found("organization", named));
        }
        let update = OrganizationUpdate::try_from(request.into_inner())?;
        let org = self.api.update_organization(&ctx, update).await?;
        Ok(Response::new(pb::UpdateOrganizationResponse {
            organization: Some(org.into()),
        }))
    }

    async fn suspend_organization(
        &self,
        request: Request<pb::SuspendOrganizationRequest>,
    ) -> Result<Response<pb::SuspendOrganizationResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let org = self
            .api
            .set_status(ctx, &req.code, OrganizationStatus::Suspended, &req.reason)
            .await?;
        Ok(Response::new(pb::SuspendOrganizationResponse {
            organization: Some(org.into()),
        }))
    }

    async fn reactivate_organization(
        &self,
        request: Request<pb::ReactivateOrganizationRequest>,
    ) -> Result<Response<pb::ReactivateOrganizationResponse>, Status> {
        let ctx = context_of(&request)?;
        let org = self
            .api
            .set_status(ctx, &request.get_ref().code, OrganizationStatus::Active, "")
            .await?;
        Ok(Response::new(pb::ReactivateOrganizationResponse {
            organization: Some(org.into()),
        }))
    }

    async fn change_organization_tier(
        &self,
        request: Request<pb::ChangeOrganizationTierRequest>,
    ) -> Result<Response<pb::ChangeOrganizationTierResponse>, Status> {
        let ctx = context_of(&request)?;
        let req = request.get_ref();
        let org = self.api.change_tier(ctx, &req.code, &req.tier).await?;
        Ok(Response::new(pb::ChangeOrganizationTierResponse {
            organization: Some(org.into()),
        }))
    }

    async fn list_tiers(
        &self,
        _request: Request<pb::ListTiersRequest>,
    ) -> Result<Response<pb::ListTiersResponse>, Status> {
        let tiers = self.api.list_tiers().await?;
        Ok(Response::new(pb::ListTiersResponse {
            tiers: tiers.into_iter().map(Into::into).collect(),
        }))
    }

    async fn check_feature_access(
        &self,
        request: Request<pb::CheckFeatureAccessRequest>,
    ) -> Result<Response<pb::CheckFeatureAccessResponse>, Status> {
        let ctx = context_of(&request)?;
        let access = self
            .api
            .check_feature_access(ctx, &request.get_ref().feature)
            .await?;
        Ok(Response::new(pb::CheckFeatureAccessResponse {
            has_access: access.has_access,
            current_tier: access.current_tier,
            required_tier: access.required_tier.unwrap_or_default(),
        }))
    }

    async fn set_feature_override(
        &self,
        request: Request<pb::SetFeatureOverrideRequest>,
    ) -> Result<Response<pb::SetFeatureOverrideResponse>, Status> {
        let ctx = context_of(&request)?.clone();
        let change = FeatureOverrideChange::try_from(request.into_inner())?;
        let org = self.api.set_feature_override(&ctx, change).await?;
        Ok(Response::new(pb::SetFeatureOverrideResponse {
            organization: Some(org.into()),
        }))
    }

    async fn get_tenant_schema_status(
        &self,
        request: Request<pb::GetTenantSchemaStatusRequest>,
    ) -> Result<Response<pb::GetTenantSchemaStatusResponse>, Status> {
        let status = self.api.schema_status(context_of(&request)?).await?;
        Ok(Response::new(pb::GetTenantSchemaStatusResponse {
            schema_name: status.schema_name,
            current_version: status.current_version,
            latest_version: status.latest_version,
            pending_versions: status.pending_versions,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(code: &str, feature: &str, setting: i32) -> pb::SetFeatureOverrideRequest {
        pb::SetFeatureOverrideRequest {
            code: code.to_owned(),
            feature: feature.to_owned(),
            r#override: setting,
        }
    }

    #[test]
    fn a_feature_override_request_maps_each_value() {
        for (wire, setting) in [
            (pb::FeatureOverride::Unspecified, FeatureSetting::Tier),
            (pb::FeatureOverride::Enabled, FeatureSetting::Enabled),
            (pb::FeatureOverride::Disabled, FeatureSetting::Disabled),
        ] {
            let change = FeatureOverrideChange::try_from(request("acme-2", "sso", wire.into()))
                .expect("valid");
            assert_eq!(change.organization.as_str(), "acme-2");
            assert_eq!(change.feature, "sso");
            assert_eq!(change.setting, setting);
        }
    }

    #[test]
    fn a_feature_override_request_names_every_bad_field() {
        let violations =
            FeatureOverrideChange::try_from(request("Acme", "", 7)).expect_err("three bad fields");
        assert_eq!(
            violations.fields().collect::<Vec<_>>(),
            ["code", "feature", "override"]
        );
        let violations =
            FeatureOverrideChange::try_from(request("", "sso", 1)).expect_err("no organization");
        assert_eq!(violations.fields().collect::<Vec<_>>(), ["code"]);
    }
}
