//! Encryption at rest: a [`KeyRing`] seals spool records (and dead-letter files) with an AEAD and
//! opens them again, under any key it holds, so keys can be rotated while old records stay readable.
//!
//! # Sealed envelope
//! `[0xFE][u8 envelope version = 1][u8 purpose][u32 LE key id][24-byte nonce][ciphertext][16-byte tag]`
//!
//! - The cipher is XChaCha20-Poly1305 with a fresh random 192-bit nonce per envelope: random nonces
//!   of that size never realistically repeat, however many records one key seals (a 96-bit random
//!   nonce, as in plain ChaCha20-Poly1305 or AES-GCM, is good for about 2^32 messages per key only).
//! - The first 7 bytes are the associated data: changing the key id, the purpose or the version
//!   breaks the tag, like changing any byte of the ciphertext.
//! - The purpose says what the plaintext is, so a sealed dead-letter file cannot be passed off as a
//!   spool record or the other way round.
//! - `0xFE` never starts a plain spool record (version 1 starts with a signal tag, 1 or 2; version 2
//!   with `0xFF`) nor a JSON-lines dead-letter file (`{`), so sealed and plaintext data, written
//!   before encryption was turned on, are told apart by their first byte.
//!
//! Pure: no file IO here. The collector reads the key file and hands the keys in.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chacha20poly1305::aead::{AeadInOut, Generate, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};

/// A key's id: stored in every envelope it seals.
pub type KeyId = u32;

/// Bytes of one key (256 bits).
pub const KEY_BYTES: usize = 32;
/// First byte of every sealed envelope.
pub const MARKER: u8 = 0xFE;
/// The envelope version [`KeyRing::seal`] writes.
pub const VERSION: u8 = 1;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// Marker, version, purpose, key id: the associated data.
const AAD_BYTES: usize = 1 + 1 + 1 + 4;
const HEADER_BYTES: usize = AAD_BYTES + NONCE_BYTES;
/// Bytes sealing adds to a plaintext.
pub const OVERHEAD: usize = HEADER_BYTES + TAG_BYTES;

/// What a sealed envelope holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// One spool record ([`crate::record`]).
    SpoolRecord = 1,
    /// A whole dead-letter file (JSON lines).
    DeadLetter = 2,
}

/// Why a key ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// No keys at all.
    #[error("no keys given")]
    Empty,
    /// The current key id names no key.
    #[error("the current key id {0} is not among the keys")]
    MissingCurrent(KeyId),
    /// The same id twice.
    #[error("key id {0} is given twice")]
    Duplicate(KeyId),
}

/// Why an envelope could not be opened. Nothing of the plaintext is revealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Shorter than an empty envelope.
    #[error("sealed data of {0} bytes is shorter than its envelope")]
    Short(usize),
    /// Not a sealed envelope at all.
    #[error("data is not sealed")]
    NotSealed,
    /// An envelope version this build cannot read.
    #[error("sealed envelope has version {0}, newer than this promptlog reads ({VERSION})")]
    Version(u8),
    /// Sealed for another purpose (e.g. a dead-letter file where a spool record was expected).
    #[error("sealed envelope holds purpose {found}, expected {expected}")]
    Purpose { found: u8, expected: u8 },
    /// Sealed with a key the ring does not hold (removed from the key file, or another key file).
    #[error("sealed with key id {0}, which the encryption key file does not hold")]
    UnknownKey(KeyId),
    /// Sealed data, but no keys are configured at all (encryption was turned off).
    #[error("sealed with key id {0}, but no encryption keys are configured")]
    NoKeys(KeyId),
    /// The tag does not match: the data was changed, or the key under that id is not the one that
    /// sealed it.
    #[error("sealed data under key id {0} fails authentication (damaged, tampered with, or a different key)")]
    Tampered(KeyId),
}

/// Keys by id and the current one, which seals everything new. Cheap to clone (shared).
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    current: KeyId,
    ciphers: BTreeMap<KeyId, XChaCha20Poly1305>,
}

impl fmt::Debug for KeyRing {
    /// Ids only: key material never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing").field("current", &self.inner.current).field("ids", &self.ids()).finish()
    }
}

impl KeyRing {
    /// A ring sealing with `current` and opening with any of `keys`.
    pub fn new(
        current: KeyId,
        keys: impl IntoIterator<Item = (KeyId, [u8; KEY_BYTES])>,
    ) -> Result<KeyRing, KeyRingError> {
        let mut ciphers = BTreeMap::new();
        for (id, key) in keys {
            let cipher = XChaCha20Poly1305::new(&Key::from(key));
            if ciphers.insert(id, cipher).is_some() {
                return Err(KeyRingError::Duplicate(id));
            }
        }
        if ciphers.is_empty() {
            return Err(KeyRingError::Empty);
        }
        if !ciphers.contains_key(&current) {
            return Err(KeyRingError::MissingCurrent(current));
        }
        Ok(KeyRing { inner: Arc::new(Inner { current, ciphers }) })
    }

    /// The id new envelopes are sealed with.
    pub fn current(&self) -> KeyId {
        self.inner.current
    }

    /// Whether the ring holds the key `id`.
    pub fn holds(&self, id: KeyId) -> bool {
        self.inner.ciphers.contains_key(&id)
    }

    /// Every key id held, ascending.
    pub fn ids(&self) -> Vec<KeyId> {
        self.inner.ciphers.keys().copied().collect()
    }

    /// Seals `plaintext` under the current key with a fresh random nonce.
    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> Bytes {
        let id = self.inner.current;
        let cipher = &self.inner.ciphers[&id];
        let nonce = XNonce::generate();
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.extend_from_slice(&[MARKER, VERSION, purpose as u8]);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let (aad, rest) = out.split_at_mut(AAD_BYTES);
        let tag = cipher
            .encrypt_inout_detached(&nonce, aad, (&mut rest[NONCE_BYTES..]).into())
            .expect("XChaCha20-Poly1305 seals any message below 256 GiB");
        out.extend_from_slice(&tag);
        Bytes::from(out)
    }

    /// Opens an envelope sealed for `purpose` under any key of the ring.
    pub fn open(&self, purpose: Purpose, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let id = envelope_key(purpose, sealed)?;
        let cipher = self.inner.ciphers.get(&id).ok_or(SealError::UnknownKey(id))?;
        let (aad, rest) = sealed.split_at(AAD_BYTES);
        let (nonce, body) = rest.split_at(NONCE_BYTES);
        let (ciphertext, tag) = body.split_at(body.len() - TAG_BYTES);
        let nonce = XNonce::try_from(nonce).expect("24 bytes");
        let tag = Tag::try_from(tag).expect("16 bytes");
        let mut plaintext = ciphertext.to_vec();
        cipher
            .decrypt_inout_detached(&nonce, aad, plaintext.as_mut_slice().into(), &tag)
            .map_err(|_| SealError::Tampered(id))?;
        Ok(plaintext)
    }
}

/// Whether `data` is a sealed envelope (rather than plaintext written without encryption).
pub fn is_sealed(data: &[u8]) -> bool {
    data.first() == Some(&MARKER)
}

/// The key id of an envelope sealed for `purpose`, after checking its header (not its tag).
pub fn envelope_key(purpose: Purpose, sealed: &[u8]) -> Result<KeyId, SealError> {
    if !is_sealed(sealed) {
        return Err(SealError::NotSealed);
    }
    if sealed.len() < OVERHEAD {
        return Err(SealError::Short(sealed.len()));
    }
    if sealed[1] != VERSION {
        return Err(SealError::Version(sealed[1]));
    }
    if sealed[2] != purpose as u8 {
        return Err(SealError::Purpose { found: sealed[2], expected: purpose as u8 });
    }
    Ok(KeyId::from_le_bytes(sealed[3..7].try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: [u8; KEY_BYTES] = [1; KEY_BYTES];
    const K2: [u8; KEY_BYTES] = [2; KEY_BYTES];
    const SECRET: &[u8] = b"prompt: my card is 4111 1111 1111 1111";

    fn ring(current: KeyId, keys: &[(KeyId, [u8; KEY_BYTES])]) -> KeyRing {
        KeyRing::new(current, keys.iter().copied()).unwrap()
    }

    #[test]
    fn seal_and_open_round_trip_and_hide_the_plaintext() {
        let ring = ring(1, &[(1, K1)]);
        for plaintext in [SECRET, b"", &[0xFE; 1000][..]] {
            let sealed = ring.seal(Purpose::SpoolRecord, plaintext);
            assert_eq!(sealed.len(), plaintext.len() + OVERHEAD);
            assert!(is_sealed(&sealed));
            assert_eq!(envelope_key(Purpose::SpoolRecord, &sealed), Ok(1));
            assert_eq!(ring.open(Purpose::SpoolRecord, &sealed).unwrap(), plaintext);
        }
        let sealed = ring.seal(Purpose::SpoolRecord, SECRET);
        assert!(!sealed.windows(4).any(|w| w == b"card"), "the plaintext does not show through");
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = ring(1, &[(1, K1)]);
        let (a, b) = (ring.seal(Purpose::SpoolRecord, SECRET), ring.seal(Purpose::SpoolRecord, SECRET));
        assert_ne!(a[AAD_BYTES..HEADER_BYTES], b[AAD_BYTES..HEADER_BYTES], "nonces differ");
        assert_ne!(a, b, "equal plaintexts give unequal envelopes");
    }

    #[test]
    fn any_changed_byte_is_detected() {
        let ring = ring(1, &[(1, K1)]);
        let sealed = ring.seal(Purpose::SpoolRecord, SECRET);
        for i in 0..sealed.len() {
            let mut bad = sealed.to_vec();
            bad[i] ^= 0x01;
            assert!(ring.open(Purpose::SpoolRecord, &bad).is_err(), "a flipped bit at byte {i} went unnoticed");
        }
        // Body and tag bytes fail authentication in particular (header bytes may fail earlier).
        let mut bad = sealed.to_vec();
        bad[HEADER_BYTES] ^= 0x80;
        assert_eq!(ring.open(Purpose::SpoolRecord, &bad), Err(SealError::Tampered(1)));
        let last = sealed.len() - 1;
        let mut bad = sealed.to_vec();
        bad[last] ^= 0x80;
        assert_eq!(ring.open(Purpose::SpoolRecord, &bad), Err(SealError::Tampered(1)));
        for cut in 0..sealed.len() {
            assert!(ring.open(Purpose::SpoolRecord, &sealed[..cut]).is_err(), "cut to {cut} bytes");
        }
    }

    #[test]
    fn a_changed_key_id_is_detected_even_when_that_key_exists() {
        // Both keys equal: only the associated data can tell the envelopes apart.
        let ring = ring(1, &[(1, K1), (2, K1)]);
        let mut moved = ring.seal(Purpose::SpoolRecord, SECRET).to_vec();
        moved[3..7].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(ring.open(Purpose::SpoolRecord, &moved), Err(SealError::Tampered(2)));
    }

    #[test]
    fn unknown_key_ids_and_wrong_keys_are_errors_not_panics() {
        let sealed = ring(7, &[(7, K1)]).seal(Purpose::SpoolRecord, SECRET);
        assert_eq!(ring(1, &[(1, K1)]).open(Purpose::SpoolRecord, &sealed), Err(SealError::UnknownKey(7)));
        // Same id, other key material (e.g. a key file from another installation).
        assert_eq!(ring(7, &[(7, K2)]).open(Purpose::SpoolRecord, &sealed), Err(SealError::Tampered(7)));
    }

    #[test]
    fn rotation_keeps_old_envelopes_readable_and_seals_new_ones_with_the_current_key() {
        let old = ring(1, &[(1, K1)]).seal(Purpose::SpoolRecord, SECRET);
        let rotated = ring(2, &[(1, K1), (2, K2)]);
        assert_eq!(rotated.open(Purpose::SpoolRecord, &old).unwrap(), SECRET);
        let new = rotated.seal(Purpose::SpoolRecord, SECRET);
        assert_eq!(envelope_key(Purpose::SpoolRecord, &new), Ok(2));
        assert_eq!(ring(2, &[(2, K2)]).open(Purpose::SpoolRecord, &new).unwrap(), SECRET);
        assert_eq!(ring(1, &[(1, K1)]).open(Purpose::SpoolRecord, &new), Err(SealError::UnknownKey(2)));
    }

    #[test]
    fn a_purpose_mismatch_is_refused() {
        let ring = ring(1, &[(1, K1)]);
        let dead_letter = ring.seal(Purpose::DeadLetter, SECRET);
        assert_eq!(ring.open(Purpose::DeadLetter, &dead_letter).unwrap(), SECRET);
        assert_eq!(ring.open(Purpose::SpoolRecord, &dead_letter), Err(SealError::Purpose { found: 2, expected: 1 }));
        let mut relabelled = dead_letter.to_vec();
        relabelled[2] = Purpose::SpoolRecord as u8;
        assert_eq!(ring.open(Purpose::SpoolRecord, &relabelled), Err(SealError::Tampered(1)));
    }

    #[test]
    fn other_versions_and_plaintext_are_told_apart() {
        let ring = ring(1, &[(1, K1)]);
        let mut future = ring.seal(Purpose::SpoolRecord, SECRET).to_vec();
        future[1] = 2;
        assert_eq!(ring.open(Purpose::SpoolRecord, &future), Err(SealError::Version(2)));
        assert_eq!(ring.open(Purpose::SpoolRecord, b"{\"table\":\"llm_calls\"}"), Err(SealError::NotSealed));
        assert!(!is_sealed(&[0xFF, 2]) && !is_sealed(&[1]) && !is_sealed(b""));
    }

    #[test]
    fn bad_rings_are_refused_and_debug_shows_no_key() {
        assert_eq!(KeyRing::new(1, []).unwrap_err(), KeyRingError::Empty);
        assert_eq!(KeyRing::new(3, [(1, K1), (2, K2)]).unwrap_err(), KeyRingError::MissingCurrent(3));
        assert_eq!(KeyRing::new(1, [(1, K1), (1, K2)]).unwrap_err(), KeyRingError::Duplicate(1));
        let ring = ring(2, &[(1, [0xAB; KEY_BYTES]), (2, K2)]);
        assert_eq!(ring.ids(), [1, 2]);
        let debug = format!("{ring:?}");
        assert_eq!(debug, "KeyRing { current: 2, ids: [1, 2] }");
    }
}
