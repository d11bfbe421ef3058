//! The ephemeral SSH key: made in memory for one connection, never written anywhere.
//!
//! EC2 Instance Connect holds a pushed public key for 60 seconds, so a fresh
//! ed25519 key per connection costs nothing and leaves nothing to steal. The
//! 32-byte seed comes from the operating system's CSPRNG (ring), lives in a
//! [`Zeroizing`] buffer, and the private key (ssh-key's ed25519 type) wipes
//! itself when dropped. Nothing here can print or serialise the private half.

use std::fmt;

use russh::keys::ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey};
use russh::keys::{HashAlg, PrivateKey};
use zeroize::Zeroizing;

use super::aws_error;
use crate::error::Result;

/// A one-connection ed25519 key pair.
pub(crate) struct EphemeralKey {
    key: PrivateKey,
}

impl EphemeralKey {
    /// Generates a key from the system's random source.
    pub(crate) fn generate() -> Result<EphemeralKey> {
        use ring::rand::SecureRandom;
        let mut seed = Zeroizing::new([0u8; 32]);
        ring::rand::SystemRandom::new()
            .fill(seed.as_mut())
            .map_err(|_| aws_error("cannot read the system random source to make an SSH key"))?;
        let keypair = Ed25519Keypair::from(Ed25519PrivateKey::from_bytes(&seed));
        Ok(EphemeralKey {
            key: PrivateKey::from(keypair),
        })
    }

    /// The public half in OpenSSH form without a comment (`ssh-ed25519 AAAA…`, 80 characters).
    pub(crate) fn public_openssh(&self) -> String {
        self.key.public_key().to_openssh().unwrap_or_default()
    }

    /// The public key's `SHA256:` fingerprint (for logs; it is not secret).
    pub(crate) fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// Hands the private key to the SSH client, consuming this value.
    pub(crate) fn into_private(self) -> PrivateKey {
        self.key
    }
}

impl fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EphemeralKey({})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_is_the_80_character_form_aws_accepts() {
        let key = EphemeralKey::generate().unwrap();
        let public = key.public_openssh();
        assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
        assert_eq!(public.len(), 80, "{public}");
    }

    #[test]
    fn every_key_is_new_and_debug_shows_only_the_fingerprint() {
        let a = EphemeralKey::generate().unwrap();
        let b = EphemeralKey::generate().unwrap();
        assert_ne!(a.public_openssh(), b.public_openssh());
        let shown = format!("{a:?}");
        assert!(shown.starts_with("EphemeralKey(SHA256:"), "{shown}");
    }
}
