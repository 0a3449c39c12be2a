//! Music on hold per tenant: an uploaded WAV file (8 kHz mono 16-bit PCM,
//! kept as `<dir>/<tenant id>.wav`) or Orbit's built-in music. One player
//! per source, shared by every call that listens; frames are encoded once
//! per codec.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use orbit_media::{MohPlayer, MohSource};
use orbit_store::MusicInfo;
use tracing::{info, warn};

pub struct MusicLibrary {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    builtin: Option<Music>,
    reorder: Option<Arc<MohPlayer>>,
    /// A tenant's own music (`None`: it plays the built-in one).
    tenants: HashMap<String, Option<Music>>,
}

/// A source and what the API says of it; the player (a task pacing frames
/// every 20 ms) starts only when a call first listens.
#[derive(Clone)]
struct Music {
    source: Arc<MohSource>,
    info: MusicInfo,
    player: Option<Arc<MohPlayer>>,
}

impl Music {
    fn new(source: MohSource, custom: bool) -> Music {
        let info = MusicInfo {
            custom,
            seconds: source.frame_count() as f64 * FRAME_S,
        };
        Music {
            source: Arc::new(source),
            info,
            player: None,
        }
    }

    fn player(&mut self) -> Arc<MohPlayer> {
        self.player
            .get_or_insert_with(|| Arc::new(MohPlayer::spawn(self.source.clone())))
            .clone()
    }
}

const FRAME_S: f64 = 0.02;

impl MusicLibrary {
    pub fn new(dir: PathBuf) -> Arc<Self> {
        Arc::new(MusicLibrary {
            dir,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, tenant_id: &str) -> PathBuf {
        // Tenant ids are UUIDs; nothing else reaches a file name.
        let safe: String = tenant_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        self.dir.join(format!("{safe}.wav"))
    }

    /// The built-in music, synthesised once and shared by every tenant
    /// without a file of its own.
    fn builtin(state: &mut State) -> &mut Music {
        state
            .builtin
            .get_or_insert_with(|| Music::new(MohSource::builtin(), false))
    }

    /// The tenant's file, read and checked once (`None`: none, or refused).
    fn load(&self, tenant_id: &str) -> Option<Music> {
        let path = self.path(tenant_id);
        if !path.exists() {
            return None;
        }
        match MohSource::from_wav_file(&path) {
            Ok(src) => {
                info!(tenant = tenant_id, file = %path.display(), "music on hold loaded");
                Some(Music::new(src, true))
            }
            Err(e) => {
                warn!(tenant = tenant_id, error = %e, "music on hold file refused; playing the built-in music");
                None
            }
        }
    }

    /// Run `f` on the music a tenant plays, loading it the first time.
    fn with_music<T>(&self, tenant_id: &str, f: impl FnOnce(&mut Music) -> T) -> T {
        let mut state = self.state();
        if !state.tenants.contains_key(tenant_id) {
            let loaded = self.load(tenant_id);
            state.tenants.insert(tenant_id.to_string(), loaded);
        }
        match state.tenants.get_mut(tenant_id) {
            Some(Some(own)) => f(own),
            _ => f(Self::builtin(&mut state)),
        }
    }

    /// The reorder tone (480 + 620 Hz, 250 ms on, 250 ms off): what a phone
    /// hears for a moment when a feature it asked for (a park) failed.
    pub fn reorder(&self) -> Arc<MohPlayer> {
        self.state()
            .reorder
            .get_or_insert_with(|| {
                let samples: Vec<i16> = (0..4000)
                    .map(|i| {
                        if i < 2000 {
                            let t = i as f64 / 8000.0;
                            let v = (2.0 * std::f64::consts::PI * 480.0 * t).sin()
                                + (2.0 * std::f64::consts::PI * 620.0 * t).sin();
                            (v * 6000.0) as i16
                        } else {
                            0
                        }
                    })
                    .collect();
                // Fixed, non-empty samples: this cannot fail.
                let source = MohSource::from_samples("reorder", &samples)
                    .unwrap_or_else(|_| MohSource::builtin());
                Arc::new(MohPlayer::spawn(Arc::new(source)))
            })
            .clone()
    }

    /// The player for a tenant (inside a tokio runtime); files are read once.
    pub fn player(&self, tenant_id: &str) -> Arc<MohPlayer> {
        self.with_music(tenant_id, Music::player)
    }
}

impl orbit_store::MusicOnHold for MusicLibrary {
    fn info(&self, tenant_id: &str) -> MusicInfo {
        self.with_music(tenant_id, |m| m.info.clone())
    }

    fn replace(&self, tenant_id: &str, wav: &[u8]) -> Result<MusicInfo, String> {
        let source = MohSource::from_wav_reader("upload", std::io::Cursor::new(wav))
            .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot store the file: {e}"))?;
        // Written whole, then renamed: a restart never finds half a file.
        let path = self.path(tenant_id);
        let tmp = path.with_extension("wav.part");
        std::fs::write(&tmp, wav)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot store the file: {e}"))?;
        let music = Music::new(source, true);
        let info = music.info.clone();
        // Calls on hold now keep the old music until their next hold.
        self.state()
            .tenants
            .insert(tenant_id.to_string(), Some(music));
        Ok(info)
    }

    fn reset(&self, tenant_id: &str) -> Result<(), String> {
        let path = self.path(tenant_id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove the file: {e}")),
        }
        self.state().tenants.insert(tenant_id.to_string(), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbit_store::MusicOnHold;

    fn wav(rate: u32, channels: u16, seconds: f64) -> Vec<u8> {
        let spec = hound_spec(rate, channels);
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
            let n = (rate as f64 * seconds) as usize * channels as usize;
            for i in 0..n {
                w.write_sample(((i as f64 * 0.3).sin() * 8000.0) as i16)
                    .unwrap();
            }
            w.finalize().unwrap();
        }
        cursor.into_inner()
    }

    fn hound_spec(rate: u32, channels: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[tokio::test]
    async fn upload_validates_replaces_and_resets() {
        let dir = std::env::temp_dir().join(format!("orbit-moh-{}", uuid::Uuid::new_v4().simple()));
        let lib = MusicLibrary::new(dir.clone());
        assert!(!lib.info("t1").custom);
        let err = lib.replace("t1", &wav(44_100, 2, 0.1)).unwrap_err();
        assert!(err.contains("8000 Hz mono 16-bit PCM"), "{err}");
        assert!(err.contains("44100 Hz, 2 channel(s)"), "{err}");
        assert!(lib.replace("t1", b"not a wav").is_err());
        assert!(!dir.join("t1.wav").exists(), "a refused file is not kept");
        let info = lib.replace("t1", &wav(8000, 1, 1.0)).unwrap();
        assert!(info.custom);
        assert!((info.seconds - 1.0).abs() < 0.03, "{}", info.seconds);
        // Another library over the same directory (a restart) finds it.
        let again = MusicLibrary::new(dir.clone());
        assert!(again.info("t1").custom);
        assert!(!again.info("t2").custom, "tenants do not share music");
        lib.reset("t1").unwrap();
        assert!(!lib.info("t1").custom);
        let _ = std::fs::remove_dir_all(dir);
    }
}
