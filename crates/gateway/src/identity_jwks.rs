//! Identity's JWKS, fetched over the internal mesh with the gateway's own
//! service context, for verifying access tokens locally.

use std::sync::Arc;
use std::time::Duration;

use cg_context::{CONTEXT_HEADER, MeshKey, TenantContext};
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_proto::identity::v1::{GetJwksRequest, Jwk};
use tonic::Request;
use tonic::transport::Channel;

use crate::access_token::{JwksError, JwksSource};

/// Fetches the JWKS from the identity service.
#[derive(Debug, Clone)]
pub struct IdentityJwks {
    channel: Channel,
    mesh_key: Arc<MeshKey>,
}

impl IdentityJwks {
    pub fn new(channel: Channel, mesh_key: Arc<MeshKey>) -> Self {
        IdentityJwks { channel, mesh_key }
    }
}

#[async_trait::async_trait]
impl JwksSource for IdentityJwks {
    async fn fetch(&self) -> Result<Vec<Jwk>, JwksError> {
        let ctx = TenantContext::service("gateway", None);
        let token = self.mesh_key.mint(&ctx, Duration::from_secs(30));
        let mut request = Request::new(GetJwksRequest {});
        request.metadata_mut().insert(
            CONTEXT_HEADER,
            token
                .parse()
                .map_err(|_| JwksError("context token is not ASCII".to_owned()))?,
        );
        let response = IdentityServiceClient::new(self.channel.clone())
            .get_jwks(request)
            .await?;
        Ok(response.into_inner().keys)
    }
}

/// A source for a gateway without an identity upstream: no keys.
#[derive(Debug, Clone, Copy)]
pub struct NoJwks;

#[async_trait::async_trait]
impl JwksSource for NoJwks {
    async fn fetch(&self) -> Result<Vec<Jwk>, JwksError> {
        Err(JwksError("no identity service is configured".to_owned()))
    }
}
