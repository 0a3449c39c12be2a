//! Configuration: a TOML file, overridden by flags and environment.
//! Everything else (tenants, extensions, ...) lives in the database.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "ORBIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the database and generated secrets.
    #[arg(long, env = "ORBIT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// SIP listen address for UDP and TCP (repeat for several, e.g. IPv4 and IPv6).
    #[arg(long, env = "ORBIT_SIP_LISTEN", value_delimiter = ',')]
    pub sip_listen: Vec<SocketAddr>,
    /// SIP over TLS listen address (needs --tls-cert and --tls-key).
    #[arg(long, env = "ORBIT_TLS_LISTEN", value_delimiter = ',')]
    pub tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain for SIP over TLS.
    #[arg(long, env = "ORBIT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for SIP over TLS.
    #[arg(long, env = "ORBIT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// HTTP listen address (API, metrics).
    #[arg(long, env = "ORBIT_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// RTP port range for anchored media, LOW-HIGH.
    #[arg(long, env = "ORBIT_RTP_PORTS")]
    pub rtp_ports: Option<String>,
    /// Address written into SDP for anchored media.
    #[arg(long, env = "ORBIT_MEDIA_IP")]
    pub media_ip: Option<IpAddr>,
    /// Database URL (default: SQLite file in the data directory).
    #[arg(long, env = "ORBIT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "ORBIT_LOG_FORMAT")]
    pub log_format: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// Domain of the tenant created on the first start with an empty database.
    pub bootstrap_domain: String,
    pub log_format: String,
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub media: MediaConfig,
    pub auth: AuthSection,
    pub guard: GuardSection,
    pub registrar: RegistrarSection,
    pub calls: CallsSection,
    pub subscriptions: SubscriptionsSection,
    /// Whether `sip.listen` was left at its default (then an IPv6 bind failure is not fatal).
    #[serde(skip)]
    pub default_listen: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    pub listen: Vec<SocketAddr>,
    pub tls_listen: Vec<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_message_size: usize,
    pub rate_limit_per_source: u32,
    pub max_transactions: usize,
    pub max_tcp_connections: usize,
    pub tcp_idle_timeout_s: u64,
    /// Address phones reach Orbit at, written into Via and Contact of what
    /// Orbit sends; default: the first `listen` address if it is specific,
    /// else the address of the default route.
    pub advertise: Option<IpAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    pub rtp_ports: String,
    pub media_ip: Option<IpAddr>,
    /// Where uploaded music-on-hold files are kept (default: `moh` in the
    /// data directory).
    pub moh_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsSection {
    pub ring_timeout_s: u64,
    pub max_calls: usize,
    /// End a call when no RTP arrived from either side for this long; 0: never.
    pub rtp_timeout_s: u64,
    /// On SIGTERM, how long active calls may go on before they are hung up.
    pub shutdown_grace_s: u64,
    pub min_session_expires_s: u32,
    /// A new call or subscription still unhandled this long after it
    /// reached the host gets 503 with Retry-After (overload); 0: never.
    pub overload_queue_ms: u64,
}

impl Default for CallsSection {
    fn default() -> Self {
        CallsSection {
            ring_timeout_s: 60,
            max_calls: 5_000,
            rtp_timeout_s: 60,
            shutdown_grace_s: 30,
            min_session_expires_s: 90,
            overload_queue_ms: 200,
        }
    }
}

/// Bounds of SUBSCRIBE/NOTIFY (BLF and Visual Park keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionsSection {
    /// Live subscriptions per tenant; beyond, 503.
    pub max_per_tenant: usize,
    /// Live subscriptions per tenant and contact (one phone); beyond, 503.
    pub max_per_contact: usize,
}

impl Default for SubscriptionsSection {
    fn default() -> Self {
        SubscriptionsSection {
            max_per_tenant: 10_000,
            max_per_contact: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    pub algorithms: Vec<String>,
    pub nonce_ttl_s: u64,
    pub allow_no_qop: bool,
    pub check_digest_uri: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardSection {
    pub enabled: bool,
    pub delay_after: u32,
    pub delay_ms: u64,
    pub block_after: u32,
    pub window_s: u64,
    pub block_s: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarSection {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            database_url: None,
            bootstrap_domain: "orbit.local".into(),
            log_format: "text".into(),
            sip: SipConfig::default(),
            http: HttpConfig::default(),
            media: MediaConfig::default(),
            auth: AuthSection::default(),
            guard: GuardSection::default(),
            registrar: RegistrarSection::default(),
            calls: CallsSection::default(),
            subscriptions: SubscriptionsSection::default(),
            default_listen: false,
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: vec![
                "0.0.0.0:5060".parse().expect("literal"),
                "[::]:5060".parse().expect("literal"),
            ],
            tls_listen: vec!["0.0.0.0:5061".parse().expect("literal")],
            tls_cert: None,
            tls_key: None,
            max_message_size: 65_535,
            rate_limit_per_source: 500,
            max_transactions: 524_288,
            max_tcp_connections: 10_000,
            tcp_idle_timeout_s: 600,
            advertise: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:8080".parse().expect("literal"),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_ports: "10000-20000".into(),
            media_ip: None,
            moh_dir: None,
        }
    }
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            algorithms: vec!["SHA-256".into(), "MD5".into()],
            nonce_ttl_s: 300,
            allow_no_qop: false,
            check_digest_uri: true,
        }
    }
}

impl Default for GuardSection {
    fn default() -> Self {
        GuardSection {
            enabled: true,
            delay_after: 5,
            delay_ms: 1000,
            block_after: 20,
            window_s: 60,
            block_s: 300,
        }
    }
}

impl Default for RegistrarSection {
    fn default() -> Self {
        RegistrarSection {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}

impl Config {
    pub fn load(args: &ServeArgs) -> anyhow::Result<Config> {
        let mut c: Config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => Config::default(),
        };
        c.default_listen =
            args.sip_listen.is_empty() && c.sip.listen == SipConfig::default().listen;
        if let Some(d) = &args.data_dir {
            c.data_dir = d.clone();
        }
        if !args.sip_listen.is_empty() {
            c.sip.listen = args.sip_listen.clone();
        }
        if !args.tls_listen.is_empty() {
            c.sip.tls_listen = args.tls_listen.clone();
        }
        if args.tls_cert.is_some() {
            c.sip.tls_cert = args.tls_cert.clone();
        }
        if args.tls_key.is_some() {
            c.sip.tls_key = args.tls_key.clone();
        }
        if let Some(h) = args.http_listen {
            c.http.listen = h;
        }
        if let Some(r) = &args.rtp_ports {
            c.media.rtp_ports = r.clone();
        }
        if args.media_ip.is_some() {
            c.media.media_ip = args.media_ip;
        }
        if args.database_url.is_some() {
            c.database_url = args.database_url.clone();
        }
        if let Some(f) = &args.log_format {
            c.log_format = f.clone();
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.rtp_range()?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("log_format must be text or json, not {:?}", self.log_format);
        }
        if self.sip.listen.is_empty() {
            bail!("sip.listen needs at least one address");
        }
        if self.sip.tls_cert.is_some() != self.sip.tls_key.is_some() {
            bail!("TLS needs both tls_cert and tls_key");
        }
        if self.sip.max_message_size < 1024 || self.sip.max_message_size > 1 << 20 {
            bail!("sip.max_message_size must be between 1024 and 1048576");
        }
        self.algorithms()?;
        let r = &self.registrar;
        if r.min_expires == 0
            || r.min_expires > r.max_expires
            || r.default_expires < r.min_expires
            || r.default_expires > r.max_expires
        {
            bail!("registrar: need 0 < min_expires <= default_expires <= max_expires");
        }
        if r.max_contacts == 0 {
            bail!("registrar.max_contacts must be at least 1");
        }
        if self.guard.enabled
            && (self.guard.delay_after == 0 || self.guard.block_after < self.guard.delay_after)
        {
            bail!("guard: need 0 < delay_after <= block_after");
        }
        if self.auth.nonce_ttl_s == 0 {
            bail!("auth.nonce_ttl_s must be at least 1");
        }
        let s = &self.sip;
        if !(1024..=4_194_304).contains(&s.max_transactions) {
            bail!("sip.max_transactions must be between 1024 and 4194304");
        }
        if s.max_tcp_connections == 0 {
            bail!("sip.max_tcp_connections must be at least 1");
        }
        if s.tcp_idle_timeout_s < 5 {
            bail!("sip.tcp_idle_timeout_s must be at least 5");
        }
        let c = &self.calls;
        if !(1..=600).contains(&c.ring_timeout_s) {
            bail!("calls.ring_timeout_s must be between 1 and 600");
        }
        if c.max_calls == 0 {
            bail!("calls.max_calls must be at least 1");
        }
        if c.shutdown_grace_s > 3600 {
            bail!("calls.shutdown_grace_s must be at most 3600");
        }
        if c.overload_queue_ms > 10_000 {
            bail!("calls.overload_queue_ms must be at most 10000");
        }
        if c.min_session_expires_s < 90 {
            bail!("calls.min_session_expires_s must be at least 90 (RFC 4028)");
        }
        let sb = &self.subscriptions;
        if !(1..=1_000_000).contains(&sb.max_per_tenant) {
            bail!("subscriptions.max_per_tenant must be between 1 and 1000000");
        }
        if !(1..=10_000).contains(&sb.max_per_contact) {
            bail!("subscriptions.max_per_contact must be between 1 and 10000");
        }
        if self.guard.enabled && (self.guard.window_s == 0 || self.guard.block_s == 0) {
            bail!("guard.window_s and guard.block_s must be at least 1");
        }
        Ok(())
    }

    pub fn rtp_range(&self) -> anyhow::Result<(u16, u16)> {
        let (lo, hi) = self
            .media
            .rtp_ports
            .split_once('-')
            .context("rtp_ports must look like LOW-HIGH, e.g. 10000-20000")?;
        let lo: u16 = lo.trim().parse().context("rtp_ports: LOW is not a port")?;
        let hi: u16 = hi.trim().parse().context("rtp_ports: HIGH is not a port")?;
        if lo < 1024 || lo >= hi || !lo.is_multiple_of(2) {
            bail!("rtp_ports: need an even LOW >= 1024 below HIGH");
        }
        Ok((lo, hi))
    }

    pub fn algorithms(&self) -> anyhow::Result<Vec<orbit_auth::Algorithm>> {
        let mut out = Vec::new();
        for a in &self.auth.algorithms {
            match orbit_auth::Algorithm::from_token(a) {
                Some(alg) if !out.contains(&alg) => out.push(alg),
                Some(_) => {}
                None => bail!("auth.algorithms: {a:?} is not SHA-256 or MD5"),
            }
        }
        if out.is_empty() {
            bail!("auth.algorithms needs at least one of SHA-256, MD5");
        }
        Ok(out)
    }

    /// The address peers reach Orbit's SIP listener at.
    pub fn advertised_sip(&self) -> SocketAddr {
        let first = self.sip.listen[0];
        let ip = self
            .sip
            .advertise
            .or_else(|| (!first.ip().is_unspecified()).then(|| first.ip()))
            .unwrap_or_else(default_route_ip);
        SocketAddr::new(ip, first.port())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("orbit.db").display()
            ),
        }
    }
}

/// The local address of the default route (no packet is sent), or
/// loopback on a machine without one.
fn default_route_ip() -> IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_bad_values_are_named() {
        let dir = std::env::temp_dir().join(format!("orbit-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("orbit.toml");
        std::fs::write(&file, "bootstrap_domain = \"pbx.test\"\n[registrar]\nmin_expires = 30\n[auth]\nalgorithms = [\"MD5\"]\n").unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            http_listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.bootstrap_domain, "pbx.test");
        assert_eq!(c.registrar.min_expires, 30);
        assert_eq!(c.http.listen.port(), 9000);
        assert_eq!(c.algorithms().unwrap(), vec![orbit_auth::Algorithm::Md5]);
        std::fs::write(&file, "[media]\nrtp_ports = \"20000-10000\"\n").unwrap();
        assert!(Config::load(&args)
            .unwrap_err()
            .to_string()
            .contains("rtp_ports"));
        std::fs::write(&file, "[subscriptions]\nmax_per_tenant = 50000\n").unwrap();
        assert_eq!(
            Config::load(&args).unwrap().subscriptions.max_per_tenant,
            50_000
        );
        std::fs::write(&file, "[subscriptions]\nmax_per_contact = 0\n").unwrap();
        assert!(Config::load(&args)
            .unwrap_err()
            .to_string()
            .contains("subscriptions.max_per_contact"));
        std::fs::write(&file, "unknown_key = 1\n").unwrap();
        assert!(format!("{:#}", Config::load(&args).unwrap_err()).contains("unknown_key"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
