//! Starting and stopping Orbit: store, registrar, SIP endpoint and
//! listeners, the HTTP API; SIGTERM stops them in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use orbit_auth::GuardConfig;
use orbit_registrar::{AuthConfig, Authenticator, Registrar, RegistrarConfig};
use orbit_sip::sanity::Limits;
use orbit_sip::transport::{
    bind_tcp, bind_udp, serve_stream, serve_udp, tls_acceptor, StreamLimits,
};
use orbit_sip::{Endpoint, EndpointConfig};
use orbit_store::Store;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bootstrap;
use crate::config::Config;
use crate::dispatch::{Dispatcher, ALLOW};

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORBIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    // The database holds HA1 values and the nonce key: owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", config.data_dir.display()))?;
    }
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .context("installing metrics recorder")?;
    let store = Store::open(&config.database_url())
        .await
        .context("opening the database")?;
    let admin_token = bootstrap::admin_token(&config.data_dir)?;
    let nonce_key = bootstrap::nonce_key(&store).await?;
    bootstrap::first_tenant(&store, &config).await?;
    bootstrap::first_admin(&store, &config.data_dir).await?;

    let cancel = CancellationToken::new();
    let g = &config.guard;
    let auth = Arc::new(Authenticator::new(
        AuthConfig {
            algorithms: config.algorithms()?,
            nonce_ttl_s: config.auth.nonce_ttl_s,
            allow_no_qop: config.auth.allow_no_qop,
            check_digest_uri: config.auth.check_digest_uri,
            guard: GuardConfig {
                enabled: g.enabled,
                delay_after: g.delay_after,
                delay: Duration::from_millis(g.delay_ms),
                block_after: g.block_after,
                window: Duration::from_secs(g.window_s),
                block_for: Duration::from_secs(g.block_s),
                ..GuardConfig::default()
            },
        },
        nonce_key,
    ));
    let r = &config.registrar;
    let registrar = Registrar::start(
        store.clone(),
        auth.clone(),
        RegistrarConfig {
            min_expires: r.min_expires,
            max_expires: r.max_expires,
            default_expires: r.default_expires,
            max_contacts: r.max_contacts,
        },
        cancel.clone(),
    )
    .await?;

    let (calls, calls_inbox) = orbit_call::calls_channel();
    let endpoint = Endpoint::new(
        Arc::new(Dispatcher {
            registrar: registrar.clone(),
            calls: calls.clone(),
        }),
        EndpointConfig {
            limits: Limits {
                max_message_size: config.sip.max_message_size,
                allow: ALLOW.to_string(),
            },
            max_transactions: config.sip.max_transactions,
            rate_limit_per_source: config.sip.rate_limit_per_source,
        },
    );
    let stream_limits = StreamLimits {
        max_connections: config.sip.max_tcp_connections,
        idle_timeout: Duration::from_secs(config.sip.tcp_idle_timeout_s),
    };
    let mut listening = Vec::new();
    for addr in &config.sip.listen {
        let bound = bind_udp(*addr).and_then(|u| Ok((u, bind_tcp(*addr)?)));
        let (udp, tcp) = match bound {
            Ok(pair) => pair,
            Err(e) if config.default_listen && addr.is_ipv6() => {
                warn!(%addr, error = %e, "IPv6 not available; SIP listens on IPv4 only");
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("binding SIP on {addr}")),
        };
        tokio::spawn(serve_udp(endpoint.clone(), Arc::new(udp), cancel.clone()));
        tokio::spawn(serve_stream(
            endpoint.clone(),
            tcp,
            None,
            stream_limits.clone(),
            cancel.clone(),
        ));
        listening.push(format!("udp+tcp {addr}"));
    }
    if let (Some(cert), Some(key)) = (&config.sip.tls_cert, &config.sip.tls_key) {
        let acceptor = tls_acceptor(cert, key)?;
        for addr in &config.sip.tls_listen {
            let tcp = bind_tcp(*addr).with_context(|| format!("binding SIP TLS on {addr}"))?;
            tokio::spawn(serve_stream(
                endpoint.clone(),
                tcp,
                Some(acceptor.clone()),
                stream_limits.clone(),
                cancel.clone(),
            ));
            listening.push(format!("tls {addr}"));
        }
    }
    tokio::spawn(endpoint.clone().run_timers(cancel.clone()));

    let (rtp_low, rtp_high) = config.rtp_range()?;
    let sip_addr = config.advertised_sip();
    let media_ip = config.media.media_ip.unwrap_or(sip_addr.ip());
    let bind_ip = if media_ip.is_loopback() {
        media_ip
    } else if media_ip.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    let ports = orbit_media::PortPool::new(
        bind_ip,
        rtp_low,
        rtp_high,
        config.calls.max_calls.saturating_mul(2),
    )?;
    let music = orbit_call::MusicLibrary::new(
        config
            .media
            .moh_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("moh")),
    );
    let c = &config.calls;
    orbit_call::Manager::spawn(
        calls_inbox,
        orbit_call::CallConfig {
            local: orbit_call::LocalAddr {
                sip: sip_addr,
                tls_port: config
                    .sip
                    .tls_cert
                    .as_ref()
                    .and(config.sip.tls_listen.first().map(|a| a.port())),
            },
            media_ip,
            ring_timeout: Duration::from_secs(c.ring_timeout_s),
            max_calls: c.max_calls,
            rtp_timeout: Duration::from_secs(c.rtp_timeout_s),
            min_session_expires: c.min_session_expires_s,
            max_subscriptions_per_tenant: config.subscriptions.max_per_tenant,
            max_subscriptions_per_contact: config.subscriptions.max_per_contact,
            shed_after: Duration::from_millis(c.overload_queue_ms),
        },
        orbit_call::Deps {
            endpoint: endpoint.clone(),
            store: store.clone(),
            registrar: registrar.clone(),
            auth: auth.clone(),
            ports,
            music: music.clone(),
        },
    );

    let http = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http.listen))?;
    let api = orbit_http::ApiState {
        store: store.clone(),
        admin_token_hash: orbit_http::admin_token_hash(&admin_token),
        metrics: Arc::new(move || prometheus.render()),
        bindings: registrar.clone(),
        calls: Arc::new(calls.clone()),
        control: Arc::new(calls.clone()),
        music,
    };
    let app =
        orbit_http::bounded(orbit_http::api_router(api.clone()).merge(orbit_portal::router(api)));
    let http_cancel = cancel.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(
            http,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { http_cancel.cancelled().await })
        .await
    });
    info!(sip = ?listening, http = %config.http.listen, advertised = %sip_addr, media = %media_ip, "orbit ready");

    shutdown_signal().await;
    let grace = Duration::from_secs(config.calls.shutdown_grace_s);
    info!(
        active_calls = calls.active_count(),
        grace_s = grace.as_secs(),
        "shutting down: no new calls"
    );
    // Calls in progress may finish; signalling keeps running meanwhile.
    calls.drain(grace).await;
    cancel.cancel();
    registrar.flush().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), http_task).await;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
