//! A deployment as `deploy/` runs it: each service and the gateway as its
//! own `claimguardian serve` process, sharing one database and mesh key.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cg_context::MeshKey;
use cg_proto::tenancy::v1 as tenancy;
use cg_proto::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use claimguardian::database::migrate_all;
use claimguardian::platform::ServiceKind;
use tonic::Request;
use tonic::transport::Channel;

struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn serve(args: &[&str], envs: &[(String, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_claimguardian"))
        .arg("serve")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("CG_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start claimguardian serve")
}

async fn connect_when_ready(addr: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => return channel,
            Err(error) if Instant::now() > deadline => panic!("{addr} never came up: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn separate_service_and_gateway_processes_serve_a_tenant() {
    let database = cg_testkit::test_database().await;
    migrate_all(&database.url, &mut ()).await.expect("migrate");
    let pool = cg_db::connect_control(&database.url, 1)
        .await
        .expect("connect");
    let key = cg_identity::operator_keys::create(&pool, "deploy test")
        .await
        .expect("key")
        .secret_key;
    let mesh_key = MeshKey::generate().to_hex();

    let key_dir = tempfile::tempdir().expect("tempdir");
    claimguardian::audit_keys::load_or_create(key_dir.path()).expect("audit key");
    let key_file = key_dir
        .path()
        .join(claimguardian::audit_keys::SIGNING_KEY_FILE);
    let common = vec![
        ("DATABASE_URL".to_owned(), database.url.clone()),
        ("CG_MESH_KEY".to_owned(), mesh_key),
        ("CG_SECRETS_KEY".to_owned(), MeshKey::generate().to_hex()),
        (
            "CG_AUDIT_SIGNING_KEY_FILE".to_owned(),
            key_file.display().to_string(),
        ),
    ];
    let mut children = Processes(Vec::new());
    let mut gateway_env = common.clone();
    for kind in ServiceKind::ALL {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut env = common.clone();
        env.push(("CG_LISTEN".to_owned(), listen.clone()));
        children.0.push(serve(&["service", kind.name()], &env));
        gateway_env.push((
            format!("CG_{}_URL", kind.name().to_uppercase()),
            format!("http://{listen}"),
        ));
    }
    let gateway_addr = format!("127.0.0.1:{}", free_port());
    gateway_env.push(("CG_LISTEN".to_owned(), gateway_addr.clone()));
    children.0.push(serve(&["gateway"], &gateway_env));

    let mut client = TenancyServiceClient::new(connect_when_ready(&gateway_addr).await);
    let mut request = Request::new(tenancy::CreateOrganizationRequest {
        code: "deployed".to_owned(),
        display_name: "Deployed Mutual".to_owned(),
        primary_contact_email: "ops@deployed.example".to_owned(),
        tier: "standard".to_owned(),
        allowed_states: vec!["FL".to_owned()],
        primary_state: "FL".to_owned(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii"),
    );
    // Services may still be starting: retry while they answer UNAVAILABLE.
    let deadline = Instant::now() + Duration::from_secs(30);
    let created = loop {
        match client
            .create_organization(Request::from_parts(
                request.metadata().clone(),
                Default::default(),
                request.get_ref().clone(),
            ))
            .await
        {
            Ok(response) => break response.into_inner().organization.expect("organization"),
            Err(status)
                if status.code() == tonic::Code::Unavailable && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("create through separate processes: {status:?}"),
        }
    };
    assert_eq!(created.schema_name, "org_deployed");

    // Every service process is up, the audit service with its signing key.
    for kind in ServiceKind::ALL {
        let addr = gateway_env
            .iter()
            .find(|(k, _)| *k == format!("CG_{}_URL", kind.name().to_uppercase()))
            .map(|(_, v)| v.trim_start_matches("http://").to_owned())
            .expect("address");
        let mut health =
            tonic_health::pb::health_client::HealthClient::new(connect_when_ready(&addr).await);
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: kind.grpc_name().to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", kind.name()))
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{}",
            kind.name()
        );
    }
    for child in &mut children.0 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "a server process exited early"
        );
    }
}
