//! What a first start sets up: the admin token, the nonce key and a first
//! tenant, so a newcomer is one step (adding an extension) from registering
//! a phone.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use orbit_auth::NonceKey;
use orbit_store::Store;
use rand::RngCore;

use crate::config::Config;

fn random_b64(n: usize) -> String {
    let mut raw = vec![0u8; n];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The admin token: `ORBIT_ADMIN_TOKEN` if set, else `<data-dir>/admin-token`,
/// generated (mode 0600) and printed once on the first start.
pub fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("ORBIT_ADMIN_TOKEN") {
        if t.trim().len() < 8 {
            anyhow::bail!("ORBIT_ADMIN_TOKEN must be at least 8 characters");
        }
        return Ok(t.trim().to_string());
    }
    let path = data_dir.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let token = format!("orbadm_{}", random_b64(32));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{token}")?;
    println!(
        "Admin API token (saved in {}, shown only now): {token}",
        path.display()
    );
    Ok(token)
}

pub async fn nonce_key(store: &Store) -> anyhow::Result<NonceKey> {
    let stored = store.meta_init("nonce_key", &random_b64(32)).await?;
    let raw = URL_SAFE_NO_PAD
        .decode(stored.trim())
        .context("stored nonce key is not base64")?;
    let key: [u8; 32] = raw
        .try_into()
        .map_err(|_| anyhow::anyhow!("stored nonce key has the wrong length"))?;
    Ok(NonceKey::new(key))
}

/// An address a local curl can use for a listener bound to a wildcard.
fn reachable(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            (std::net::Ipv4Addr::LOCALHOST, listen.port()).into()
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            (std::net::Ipv6Addr::LOCALHOST, listen.port()).into()
        }
        _ => listen,
    }
}

/// On the very first start (empty database), create a tenant for
/// `bootstrap_domain`. Later starts never recreate it, even if deleted.
pub async fn first_tenant(store: &Store, config: &Config) -> anyhow::Result<()> {
    if store.meta("bootstrapped").await?.is_some() {
        return Ok(());
    }
    if store.directory().tenants().is_empty() {
        let t = store
            .create_tenant("Default", &config.bootstrap_domain)
            .await?;
        let token = if std::env::var("ORBIT_ADMIN_TOKEN").is_ok() {
            "$ORBIT_ADMIN_TOKEN".to_string()
        } else {
            format!("$(cat {})", config.data_dir.join("admin-token").display())
        };
        println!(
            "Created tenant {domain}. Add an extension, then register a phone as 100@{domain}:\n  \
             curl -X POST http://{http}/api/v1/tenants/{domain}/extensions -H \"Authorization: Bearer {token}\" \
             -H 'Content-Type: application/json' -d '{{\"number\":\"100\",\"password\":\"choose-a-password\",\"display_name\":\"Reception\"}}'",
            domain = t.domain,
            http = reachable(config.http.listen),
        );
    }
    store.meta_init("bootstrapped", "1").await?;
    Ok(())
}

/// The first portal account, `admin` (system admin), on a start with none:
/// password `ORBIT_ADMIN_PASSWORD` if set, else generated into
/// `<data-dir>/admin-password` (mode 0600) and printed once, as the admin token.
pub async fn first_admin(store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    if store.portal_user_count().await? > 0 {
        return Ok(());
    }
    let password = match std::env::var("ORBIT_ADMIN_PASSWORD") {
        Ok(p) if p.chars().count() >= 8 => p,
        Ok(_) => anyhow::bail!("ORBIT_ADMIN_PASSWORD must be at least 8 characters"),
        Err(_) => {
            let path = data_dir.join("admin-password");
            let password = random_b64(18);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(f, "{password}")?;
            println!(
                "Web portal: sign in at /portal/ as admin with the password saved in {} (shown only now): {password}",
                path.display()
            );
            password
        }
    };
    let hash = tokio::task::spawn_blocking(move || orbit_portal::hash_password(&password)).await?;
    store.create_portal_user("admin", &hash, None).await?;
    Ok(())
}
