//! Invitations travel by SMTP to a real mail server (aiosmtpd), through the
//! outbox; re-sending rotates the link, revoking kills it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cg_identity::IdentityConfig;
use cg_identity::outbox::MailConfig;
use cg_proto::identity::v1 as identity;
use cg_proto::identity::v1::identity_service_client::IdentityServiceClient;
use cg_testkit::TestStack;
use tonic::Code;

use crate::assertions::assert_reason;
use crate::fixtures::create_enterprise;
use crate::identity_fixtures::PASSWORD;

/// aiosmtpd printing every message it receives.
struct MailServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl MailServer {
    fn start() -> MailServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Debugging"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (install it: python3 -m pip install -r tests/requirements.txt)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start (is it installed?)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        MailServer { child, lines, port }
    }

    /// Waits for a message to `recipient`; returns the invitation code in it.
    fn token_sent_to(&self, recipient: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut to_recipient = false;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no message to {recipient}; received:\n{}", seen.join("\n"))
            });
            if line.starts_with("To:") {
                to_recipient = line.contains(recipient);
            }
            if to_recipient && line.trim().starts_with("cgi_") {
                return line.trim().to_owned();
            }
            seen.push(line);
        }
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn accept(
    stack: &TestStack,
    token: &str,
) -> Result<tonic::Response<identity::AcceptInvitationResponse>, tonic::Status> {
    IdentityServiceClient::new(stack.gateway().await)
        .accept_invitation(identity::AcceptInvitationRequest {
            token: token.to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "New".to_owned(),
        })
        .await
}

// Multi-threaded: the test waits for mail synchronously while the
// platform's delivery worker runs on the other thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_arrive_by_smtp_and_resend_and_revoke_work() {
    let mail = MailServer::start();
    let identity_config = IdentityConfig {
        mail: MailConfig {
            smtp_url: Some(format!("smtp://127.0.0.1:{}", mail.port)),
            from: Some("ClaimGuardian <no-reply@claimguardian.test>".to_owned()),
        },
        ..IdentityConfig::default()
    };
    let stack = TestStack::spawn_with_identity(identity_config).await;
    create_enterprise(&stack, "mailco").await;
    let mut client = IdentityServiceClient::new(stack.gateway().await);

    let created = client
        .create_invitation(stack.in_tenant(
            "mailco",
            identity::CreateInvitationRequest {
                email: "newbie@mailco.example".to_owned(),
                role: identity::Role::Member.into(),
            },
        ))
        .await
        .expect("invite")
        .into_inner();
    let mailed = mail.token_sent_to("newbie@mailco.example");
    assert_eq!(
        mailed, created.token,
        "the e-mail carries the invitation's link"
    );

    // Re-sending rotates the link: the first one stops working.
    let invitation_id = created.invitation.expect("invitation").id;
    let resent = client
        .resend_invitation(stack.in_tenant(
            "mailco",
            identity::ResendInvitationRequest {
                id: invitation_id.clone(),
            },
        ))
        .await
        .expect("resend")
        .into_inner();
    let remailed = mail.token_sent_to("newbie@mailco.example");
    assert_eq!(remailed, resent.token);
    assert_ne!(remailed, mailed);
    assert_reason(
        accept(&stack, &mailed).await,
        Code::NotFound,
        "INVITATION_INVALID",
    );
    accept(&stack, &remailed).await.expect("the new link works");
    assert_reason(
        accept(&stack, &remailed).await,
        Code::NotFound,
        "INVITATION_INVALID",
    );

    // Revoked, an invitation's link is dead.
    let other = client
        .create_invitation(stack.in_tenant(
            "mailco",
            identity::CreateInvitationRequest {
                email: "other@mailco.example".to_owned(),
                role: identity::Role::Viewer.into(),
            },
        ))
        .await
        .expect("invite")
        .into_inner();
    client
        .revoke_invitation(stack.in_tenant(
            "mailco",
            identity::RevokeInvitationRequest {
                id: other.invitation.expect("invitation").id,
            },
        ))
        .await
        .expect("revoke");
    assert_reason(
        accept(&stack, &other.token).await,
        Code::NotFound,
        "INVITATION_INVALID",
    );
    let listed = client
        .list_invitations(stack.in_tenant("mailco", identity::ListInvitationsRequest::default()))
        .await
        .expect("list")
        .into_inner()
        .invitations;
    let statuses: Vec<i32> = listed.iter().map(|i| i.status).collect();
    assert_eq!(
        statuses,
        [
            identity::InvitationStatus::Revoked as i32,
            identity::InvitationStatus::Accepted as i32
        ]
    );

    // Delivered bodies are erased: their links were single use.
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.outbox WHERE delivered_at IS NOT NULL AND body_enc IS NOT NULL")
        .fetch_one(&stack.control)
        .await
        .expect("count");
    assert_eq!(kept, 0);
}
