//! Generated gRPC code for every ClaimGuardian service, the encoded descriptor set, and the access policy of each method.
#![forbid(unsafe_code)]
#![allow(missing_docs, clippy::all, missing_debug_implementations)]

pub mod policy;

/// The encoded `FileDescriptorSet` of every ClaimGuardian proto and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/claimguardian_descriptor.bin"));

macro_rules! proto_package {
    ($name:ident, $package:literal) => {
        pub mod $name {
            pub mod v1 {
                tonic::include_proto!($package);
            }
        }
    };
}

proto_package!(access, "claimguardian.access.v1");
proto_package!(r#type, "claimguardian.r#type.v1");
proto_package!(tenancy, "claimguardian.tenancy.v1");
proto_package!(identity, "claimguardian.identity.v1");
proto_package!(billing, "claimguardian.billing.v1");
proto_package!(audit, "claimguardian.audit.v1");
proto_package!(claims, "claimguardian.claims.v1");
