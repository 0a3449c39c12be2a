//! Music on hold per tenant: `<moh_dir>/<tenant domain>.wav` when it exists
//! and is valid, Orbit's built-in music otherwise. One player per source,
//! shared by every call that listens (frames are encoded once per codec).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use orbit_media::{MohPlayer, MohSource};
use tracing::{info, warn};

pub struct MusicLibrary {
    dir: Option<PathBuf>,
    builtin: Option<Arc<MohPlayer>>,
    tenants: HashMap<String, Arc<MohPlayer>>,
}

impl MusicLibrary {
    pub fn new(dir: Option<PathBuf>) -> Self {
        MusicLibrary {
            dir,
            builtin: None,
            tenants: HashMap::new(),
        }
    }

    fn builtin(&mut self) -> Arc<MohPlayer> {
        self.builtin
            .get_or_insert_with(|| Arc::new(MohPlayer::spawn(Arc::new(MohSource::builtin()))))
            .clone()
    }

    /// The player for a tenant; a file is read the first time only.
    pub fn player(&mut self, tenant_domain: &str) -> Arc<MohPlayer> {
        if let Some(p) = self.tenants.get(tenant_domain) {
            return p.clone();
        }
        let player = match &self.dir {
            Some(dir) => {
                let path = dir.join(format!("{tenant_domain}.wav"));
                if path.exists() {
                    match MohSource::from_wav_file(&path) {
                        Ok(src) => {
                            info!(tenant = tenant_domain, file = %path.display(), "music on hold loaded");
                            Arc::new(MohPlayer::spawn(Arc::new(src)))
                        }
                        Err(e) => {
                            warn!(tenant = tenant_domain, file = %path.display(), error = %e,
                                "music on hold file refused; playing the built-in music");
                            self.builtin()
                        }
                    }
                } else {
                    self.builtin()
                }
            }
            None => self.builtin(),
        };
        self.tenants.insert(tenant_domain.to_string(), player.clone());
        player
    }
}
