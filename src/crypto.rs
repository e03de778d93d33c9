//! Everything that touches OpenPGP: site keys, detached signatures over bundle headers,
//! the signed-and-encrypted payload stream, and sealed blobs (results sealed to central,
//! personal properties sealed to a centre).
//!
//! Keys are Cv25519 under the RFC 4880 (v4) profile and advertise SEIPDv1 only, so that
//! GnuPG 2.2/2.4 can read what courier writes. Key creation time is back-dated to
//! 2020-01-01: centre clocks are often wrong, and a key "created in the future" by a
//! fast clock would make every signature by it look invalid elsewhere.

use std::io::{self, Read, Write};
use std::time::{Duration, UNIX_EPOCH};

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, Password, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationHelper,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
use openpgp::serialize::SerializeInto;
use openpgp::types::{Features, SymmetricAlgorithm};
use openpgp::{KeyHandle, Packet};

/// The certificate type, re-exported so that callers need not name Sequoia.
pub use openpgp::Cert;

use crate::error::{pgp, Error, Result};

/// The one policy used everywhere.
pub static POLICY: StandardPolicy<'static> = StandardPolicy::new();

/// Key creation time for every generated key (see the module documentation).
const KEY_EPOCH_SECS: u64 = 1_577_836_800; // 2020-01-01T00:00:00Z

/// Generate a site certificate with secret keys: a certification primary key, one signing
/// and one encryption subkey, all Cv25519; encrypted with `passphrase` when given.
pub fn generate(userid: &str, passphrase: Option<&str>) -> Result<Cert> {
    let (cert, _revocation) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_profile(openpgp::Profile::RFC4880)
        .map_err(pgp)?
        .set_features(Features::empty().set_seipdv1())
        .map_err(pgp)?
        .set_creation_time(UNIX_EPOCH + Duration::from_secs(KEY_EPOCH_SECS))
        .set_validity_period(None)
        .add_userid(userid)
        .add_signing_subkey()
        .add_subkey(
            openpgp::types::KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        )
        .set_password(passphrase.map(Password::from))
        .generate()
        .map_err(pgp)?;
    Ok(cert)
}

/// A fingerprint for people, grouped in fours as GnuPG and sq print it, with a wider gap in
/// the middle: `2A70 0A2E F42A A7B1 176F  67E2 B6D5 0881 3ECA 8BA7`. Input accepts both forms.
pub fn grouped(fpr: &str) -> String {
    let chars: Vec<char> = fpr.chars().collect();
    let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    if groups.len() == 10 {
        format!("{}  {}", groups[..5].join(" "), groups[5..].join(" "))
    } else {
        groups.join(" ")
    }
}

/// The fingerprint as 40 upper-case hex digits.
pub fn fingerprint(cert: &Cert) -> String {
    cert.fingerprint().to_hex()
}

/// ASCII-armored public certificate.
pub fn armor_public(cert: &Cert) -> Result<String> {
    let bytes = cert.armored().to_vec().map_err(pgp)?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(e.to_string()))
}

/// ASCII-armored secret key (as stored: encrypted when protected).
pub fn armor_secret(cert: &Cert) -> Result<Vec<u8>> {
    cert.as_tsk().armored().to_vec().map_err(pgp)
}

/// Parse a certificate (public or secret, armored or binary).
pub fn parse_cert(bytes: &[u8]) -> Result<Cert> {
    Cert::from_bytes(bytes).map_err(pgp)
}

/// A site's own secret key, ready to sign and decrypt; with the keys it replaced
/// (`keys rotate`), which decrypt only (what was sealed to them stays readable).
pub struct SecretKey {
    cert: Cert,
    passphrase: Option<Password>,
    retired: Vec<Cert>,
}

impl SecretKey {
    /// Unlock a stored secret key. `Ok(None)` when a passphrase is needed and none given;
    /// `Err(WrongPassphrase)`-like errors are reported by the caller from `false`.
    pub fn unlock(cert: Cert, passphrase: Option<&str>) -> std::result::Result<Self, UnlockError> {
        let key = SecretKey {
            cert,
            passphrase: passphrase.map(Password::from),
            retired: Vec::new(),
        };
        key.signer()?; // proves the passphrase (or its absence) is right
        Ok(key)
    }

    /// The same key, decrypting also with `retired` keys (unlocked with the same passphrase).
    pub fn with_retired(mut self, retired: Vec<Cert>) -> Self {
        self.retired = retired;
        self
    }

    /// Whether any secret key material in `cert` is passphrase-protected.
    pub fn is_protected(cert: &Cert) -> bool {
        cert.keys()
            .secret()
            .any(|k| k.key().secret().is_encrypted())
    }

    /// The public certificate.
    pub fn public(&self) -> Cert {
        self.cert.clone().strip_secret_key_material()
    }

    /// Fingerprint, 40 hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }

    fn unlock_key(
        &self,
        key: openpgp::packet::Key<
            openpgp::packet::key::SecretParts,
            openpgp::packet::key::UnspecifiedRole,
        >,
    ) -> std::result::Result<KeyPair, UnlockError> {
        let key = if key.secret().is_encrypted() {
            let pw = self
                .passphrase
                .as_ref()
                .ok_or(UnlockError::PassphraseNeeded)?;
            key.decrypt_secret(pw)
                .map_err(|_| UnlockError::WrongPassphrase)?
        } else {
            key
        };
        key.into_keypair()
            .map_err(|e| UnlockError::Other(e.to_string()))
    }

    /// The signing key pair.
    pub fn signer(&self) -> std::result::Result<KeyPair, UnlockError> {
        let ka = self
            .cert
            .keys()
            .with_policy(&POLICY, None)
            .secret()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(|| UnlockError::Other("no usable signing key".into()))?;
        self.unlock_key(ka.key().clone().role_into_unspecified())
    }

    /// Every decryption key pair: the current key's first, then the retired keys'.
    pub fn decryptors(&self) -> Result<Vec<KeyPair>> {
        let mut out = Vec::new();
        let keys = std::iter::once(&self.cert)
            .chain(&self.retired)
            .flat_map(|c| {
                c.keys()
                    .with_policy(&POLICY, None)
                    .secret()
                    .for_storage_encryption()
                    .for_transport_encryption()
            });
        for ka in keys {
            out.push(
                self.unlock_key(ka.key().clone().role_into_unspecified())
                    .map_err(|e| Error::KeyUnusable {
                        what: e.to_string(),
                    })?,
            );
        }
        Ok(out)
    }
}

/// The same certificate with every secret key (primary and subkeys) re-protected: each is
/// unlocked with `current` (when it is protected), then encrypted with `new`, or stored
/// unprotected when `new` is `None`. Nothing else of the certificate changes.
pub fn reprotect(
    cert: Cert,
    current: Option<&str>,
    new: Option<&str>,
) -> std::result::Result<Cert, UnlockError> {
    let current = current.map(Password::from);
    let new = new.map(Password::from);
    let mut packets: Vec<Packet> = Vec::new();
    for ka in cert.keys().secret() {
        let mut key = ka.key().clone().role_into_unspecified();
        if key.secret().is_encrypted() {
            let pw = current.as_ref().ok_or(UnlockError::PassphraseNeeded)?;
            key = key
                .decrypt_secret(pw)
                .map_err(|_| UnlockError::WrongPassphrase)?;
        }
        if let Some(pw) = &new {
            key = key
                .encrypt_secret(pw)
                .map_err(|e| UnlockError::Other(e.to_string()))?;
        }
        packets.push(if ka.primary() {
            key.role_into_primary().into()
        } else {
            key.role_into_subordinate().into()
        });
    }
    let (cert, _) = cert
        .insert_packets(packets)
        .map_err(|e| UnlockError::Other(e.to_string()))?;
    Ok(cert)
}

/// Why a secret key could not be unlocked.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("passphrase needed")]
    PassphraseNeeded,
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("{0}")]
    Other(String),
}

fn recipients(cert: &Cert) -> Result<Vec<openpgp::serialize::stream::Recipient<'_>>> {
    let keys: Vec<_> = cert
        .keys()
        .with_policy(&POLICY, None)
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption()
        .map(|ka| ka.into())
        .collect();
    if keys.is_empty() {
        return Err(Error::NoEncryptionKey {
            fingerprint: cert.fingerprint().to_hex(),
        });
    }
    Ok(keys)
}

/// A detached signature over `data` by the site key.
pub fn sign_detached(key: &SecretKey, data: &[u8]) -> Result<Vec<u8>> {
    let signer = key.signer().map_err(|e| Error::KeyUnusable {
        what: e.to_string(),
    })?;
    let mut out = Vec::new();
    {
        let message = Message::new(&mut out);
        let mut w = Signer::new(message, signer)
            .map_err(pgp)?
            .detached()
            .build()
            .map_err(pgp)?;
        w.write_all(data).map_err(|e| pgp(e.into()))?;
        w.finalize().map_err(pgp)?;
    }
    Ok(out)
}

/// A key revocation certificate for the site's own key (`keys export --revocation`): the
/// public certificate with a key revocation signature (type 0x20, reason "key compromised"
/// and `reason`) made by its primary key, ASCII-armored with `comment`. GnuPG imports it
/// (the key then shows as revoked); a centre applies it with `keys revoke-peer`.
pub fn revocation_certificate(key: &SecretKey, reason: &str, comment: &str) -> Result<Vec<u8>> {
    use openpgp::types::ReasonForRevocation;
    let primary = key.cert.primary_key().key().clone().parts_into_secret();
    let mut pair = key
        .unlock_key(primary.map_err(pgp)?.role_into_unspecified())
        .map_err(|e| Error::KeyUnusable {
            what: e.to_string(),
        })?;
    let sig = key
        .cert
        .revoke(
            &mut pair,
            ReasonForRevocation::KeyCompromised,
            reason.as_bytes(),
        )
        .map_err(pgp)?;
    let (public, _) = key
        .public()
        .insert_packets(std::iter::once(Packet::from(sig)))
        .map_err(pgp)?;
    let mut w = openpgp::armor::Writer::with_headers(
        Vec::new(),
        openpgp::armor::Kind::PublicKey,
        [("Comment", comment)],
    )
    .map_err(|e| pgp(e.into()))?;
    openpgp::serialize::Serialize::serialize(&public, &mut w).map_err(pgp)?;
    w.finalize().map_err(|e| pgp(e.into()))
}

/// What a good revocation certificate says: when it was signed (RFC 3339) and its reason.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub signed: String,
    pub reason: String,
}

/// Check that `bytes` (armored or binary OpenPGP) hold a key revocation signature over
/// `pinned`'s primary key, made by that key. Both forms are read: a certificate carrying the
/// revocation (what `keys export --revocation` writes) and a bare revocation signature
/// (GnuPG's `--gen-revoke`). `Err`: what is wrong, one phrase.
pub fn check_revocation(pinned: &Cert, bytes: &[u8]) -> std::result::Result<Revocation, String> {
    use openpgp::policy::{HashAlgoSecurity, Policy};
    use openpgp::types::SignatureType;
    let pile = openpgp::PacketPile::from_bytes(bytes)
        .map_err(|_| "not an OpenPGP revocation certificate (unreadable)".to_string())?;
    let want = pinned.fingerprint();
    let primary = pinned.primary_key().key();
    let mut issuers = Vec::new();
    for packet in pile.descendants() {
        match packet {
            Packet::PublicKey(k) if k.fingerprint() != want => {
                return Err(format!("it revokes key {}, not this key", k.fingerprint()));
            }
            Packet::Signature(sig) if sig.typ() == SignatureType::KeyRevocation => {
                let good = POLICY
                    .signature(sig, HashAlgoSecurity::CollisionResistance)
                    .is_ok()
                    && sig.verify_primary_key_revocation(primary, primary).is_ok();
                if good {
                    let signed = sig
                        .signature_creation_time()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| crate::time::rfc3339(d.as_secs() as i64))
                        .unwrap_or_default();
                    let reason = sig
                        .reason_for_revocation()
                        .map(|(code, text)| revocation_reason(code, text))
                        .unwrap_or_else(|| "no reason given".into());
                    return Ok(Revocation { signed, reason });
                }
                issuers.extend(sig.get_issuers().into_iter().map(|h| h.to_hex()));
            }
            _ => {}
        }
    }
    let ours = want.to_hex();
    let by_us = issuers.iter().any(|i| ours.ends_with(i.as_str()));
    Err(match (issuers.is_empty(), by_us) {
        (true, _) => "it holds no key revocation signature".into(),
        (false, true) => "its signature does not verify with this key: forged or altered".into(),
        (false, false) => format!(
            "it is signed by another key ({}), not by this key",
            issuers.join(", ")
        ),
    })
}

/// A revocation reason for people: its text, else the code's meaning.
fn revocation_reason(code: openpgp::types::ReasonForRevocation, text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.trim().is_empty() {
        code.to_string()
    } else {
        text.trim().to_string()
    }
}

/// A detached signature, ASCII-armored (enrollment files, rollover statements).
pub fn armor_signature(sig: &[u8]) -> Result<String> {
    use openpgp::armor::{Kind as ArmorKind, Writer};
    let mut w = Writer::new(Vec::new(), ArmorKind::Signature).map_err(|e| pgp(e.into()))?;
    w.write_all(sig).map_err(|e| pgp(e.into()))?;
    let bytes = w.finalize().map_err(|e| pgp(e.into()))?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(e.to_string()))
}

/// Check an armored detached signature by `cert` over `data`; `Err` carries the reason.
pub fn verify_armored(cert: &Cert, data: &[u8], armored: &str) -> std::result::Result<(), String> {
    let mut reader = openpgp::armor::Reader::from_bytes(
        armored.as_bytes(),
        openpgp::armor::ReaderMode::Tolerant(Some(openpgp::armor::Kind::Signature)),
    );
    let mut sig = Vec::new();
    reader
        .read_to_end(&mut sig)
        .map_err(|_| "signature is not readable".to_string())?;
    verify_detached(cert, data, &sig)
}

/// Check a detached signature by `cert` over `data`; `Err` carries the reason.
pub fn verify_detached(cert: &Cert, data: &[u8], sig: &[u8]) -> std::result::Result<(), String> {
    let helper = SignerCheck {
        cert: cert.clone(),
        good: false,
    };
    let mut v = DetachedVerifierBuilder::from_bytes(sig)
        .map_err(|e| format!("unreadable signature ({e})"))?
        .with_policy(&POLICY, None, helper)
        .map_err(|e| format!("{e}"))?;
    v.verify_bytes(data).map_err(|e| format!("{e}"))?;
    if v.into_helper().good {
        Ok(())
    } else {
        Err("no good signature by the sender's key".into())
    }
}

/// Verification helper: accepts only a good signature by one given certificate.
struct SignerCheck {
    cert: Cert,
    good: bool,
}

impl VerificationHelper for SignerCheck {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(vec![self.cert.clone()])
    }
    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    match r {
                        Ok(good) if good.ka.cert().fingerprint() == self.cert.fingerprint() => {
                            // The two "quick check" bytes are not covered by the signature
                            // and Sequoia does not compare them: a copy with them changed
                            // must not verify (every byte of a signed file is checked).
                            let prefix = good.sig.digest_prefix();
                            match good.sig.computed_digest() {
                                Some(d) if d.len() >= 2 && d[..2] == prefix[..] => self.good = true,
                                _ => {
                                    return Err(anyhow::anyhow!(
                                        "the signature's digest prefix does not match what it signs"
                                    ))
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => return Err(anyhow::anyhow!("{e}")),
                    }
                }
            }
        }
        if self.good {
            Ok(())
        } else {
            Err(anyhow::anyhow!("no good signature by the sender's key"))
        }
    }
}

/// Wrap `sink` in a writer stack that signs with `key` and encrypts to `recipient`:
/// a standard OpenPGP message (`gpg --decrypt` reads it). Call `finalize()` on the
/// returned writer to finish the message.
pub fn sign_encrypt_writer<'a, W: Write + Send + Sync + 'a>(
    sink: W,
    key: &SecretKey,
    recipient: &'a Cert,
) -> Result<Message<'a>> {
    let signer = key.signer().map_err(|e| Error::KeyUnusable {
        what: e.to_string(),
    })?;
    let message = Message::new(sink);
    let message = Encryptor::for_recipients(message, recipients(recipient)?)
        .symmetric_algo(SymmetricAlgorithm::AES256)
        .build()
        .map_err(pgp)?;
    let message = Signer::new(message, signer)
        .map_err(pgp)?
        .build()
        .map_err(pgp)?;
    LiteralWriter::new(message).build().map_err(pgp)
}

/// Seal `data` to `recipient` (encrypted, not signed): used for results at rest at the
/// centre and for personal properties sent to a centre.
pub fn seal(recipient: &Cert, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + 256);
    {
        let message = Message::new(&mut out);
        let message = Encryptor::for_recipients(message, recipients(recipient)?)
            .symmetric_algo(SymmetricAlgorithm::AES256)
            .build()
            .map_err(pgp)?;
        let mut w = LiteralWriter::new(message).build().map_err(pgp)?;
        w.write_all(data).map_err(|e| pgp(e.into()))?;
        w.finalize().map_err(pgp)?;
    }
    Ok(out)
}

/// Open a sealed blob with the site's own key.
pub fn unseal(key: &SecretKey, blob: &[u8]) -> Result<Vec<u8>> {
    let helper = Decrypt {
        keys: key.decryptors()?,
    };
    let mut d = DecryptorBuilder::from_bytes(blob)
        .map_err(pgp)?
        .with_policy(&POLICY, None, helper)
        .map_err(pgp)?;
    let mut out = Vec::new();
    d.read_to_end(&mut out).map_err(|e| Error::Pgp(e.into()))?;
    Ok(out)
}

/// A reader of the plaintext of a signed-and-encrypted message. The sender's signature and
/// the message's integrity (MDC) are checked when the end of the literal data is read: a
/// missing or bad signature turns the final read into an error, so callers must read to the
/// end (see [`drain`]).
///
/// Built on Sequoia's packet parser rather than its streaming `Decryptor`: the latter
/// buffers ahead to hold back unverified plaintext, and was measured here to pull the
/// whole remaining message into memory when a read came up short (tens of megabytes on an
/// exam-day bundle). Courier does not need that hold-back — the ciphertext's hash was
/// checked against the signed header before decryption, and nothing read is kept unless
/// the end of the message verifies — so the literal data streams through a fixed buffer.
pub struct Plaintext<'a> {
    literal: Option<PacketParser<'a>>,
    sender: Cert,
    done: bool,
}

/// Open a signed-and-encrypted message for reading (see [`Plaintext`]).
pub fn decrypt_verify_reader<'a, R: Read + Send + Sync + 'a>(
    source: R,
    key: &SecretKey,
    sender: &Cert,
) -> Result<Plaintext<'a>> {
    let mut keys = key.decryptors()?;
    let mut pkesks: Vec<PKESK> = Vec::new();
    let mut decrypted = false;
    let mut ppr = PacketParser::from_reader(source).map_err(pgp)?;
    while let PacketParserResult::Some(mut pp) = ppr {
        match &pp.packet {
            Packet::PKESK(p) => pkesks.push(p.clone()),
            Packet::SEIP(_) if !decrypted => {
                decrypted = pkesks.iter().any(|p| {
                    keys.iter_mut().any(|pair| match p.decrypt(pair, None) {
                        Some((algo, sk)) => pp.decrypt(algo, &sk).is_ok(),
                        None => false,
                    })
                });
                if !decrypted {
                    return Err(Error::Pgp(anyhow::anyhow!(
                        "not encrypted to this site's key"
                    )));
                }
            }
            Packet::OnePassSig(_) if decrypted => {}
            Packet::Literal(_) if decrypted => {
                return Ok(Plaintext {
                    literal: Some(pp),
                    sender: sender.clone(),
                    done: false,
                });
            }
            other => {
                return Err(Error::Pgp(anyhow::anyhow!(
                    "unexpected {} packet in the payload",
                    other.tag()
                )));
            }
        }
        ppr = pp.recurse().map_err(pgp)?.1;
    }
    Err(Error::Pgp(anyhow::anyhow!("the payload holds no data")))
}

impl Plaintext<'_> {
    /// After the literal data: the signatures, the MDC, and the end of a well-formed message.
    fn finish(&mut self) -> anyhow::Result<()> {
        let pp = self
            .literal
            .take()
            .ok_or_else(|| anyhow::anyhow!("payload already finished"))?;
        let (_, mut ppr) = pp.recurse()?;
        let (mut signed, mut integrity) = (false, false);
        while let PacketParserResult::Some(pp) = ppr {
            let (packet, next) = pp
                .recurse()
                .map_err(|_| openpgp::Error::ManipulatedMessage)?;
            match packet {
                Packet::Signature(sig) => signed |= signed_by(&self.sender, &sig),
                #[allow(deprecated)]
                Packet::MDC(mdc) => {
                    if !mdc.valid() {
                        return Err(openpgp::Error::ManipulatedMessage.into());
                    }
                    integrity = true;
                }
                other => anyhow::bail!("unexpected {} packet after the payload", other.tag()),
            }
            ppr = next;
        }
        if let PacketParserResult::EOF(eof) = ppr {
            eof.is_message()?;
        }
        if !integrity {
            anyhow::bail!("payload has no integrity check (MDC)");
        }
        if !signed {
            anyhow::bail!("payload is not signed by the sender's key");
        }
        Ok(())
    }
}

/// Whether `sig` is a good document signature by one of `sender`'s signing keys.
fn signed_by(sender: &Cert, sig: &openpgp::packet::Signature) -> bool {
    use openpgp::policy::{HashAlgoSecurity, Policy};
    if POLICY
        .signature(sig, HashAlgoSecurity::CollisionResistance)
        .is_err()
    {
        return false;
    }
    sender
        .keys()
        .with_policy(&POLICY, None)
        .revoked(false)
        .for_signing()
        .any(|ka| sig.verify_document(ka.key()).is_ok())
}

impl Read for Plaintext<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let Some(pp) = self.literal.as_mut() else {
            return Ok(0);
        };
        let n = pp.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        self.done = true;
        self.finish()
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        Ok(0)
    }
}

/// Read a reader to its end, discarding the bytes.
pub fn drain(r: &mut impl Read) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}

/// Decryption helper for sealed blobs (encrypted, not signed).
struct Decrypt {
    keys: Vec<KeyPair>,
}

impl VerificationHelper for Decrypt {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(Vec::new())
    }
    fn check(&mut self, _structure: MessageStructure) -> openpgp::Result<()> {
        Ok(()) // sealed blobs carry no signature; the bundle around them is signed
    }
}

impl DecryptionHelper for Decrypt {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        for pkesk in pkesks {
            for pair in self.keys.iter_mut() {
                let matches = match pkesk.recipient() {
                    Some(handle) => handle.aliases(KeyHandle::from(pair.public().keyid())),
                    None => true,
                };
                if !matches {
                    continue;
                }
                if let Some((algo, sk)) = pkesk.decrypt(pair, sym_algo) {
                    if decrypt(algo, &sk) {
                        return Ok(None);
                    }
                }
            }
        }
        Err(anyhow::anyhow!("not encrypted to this site's key"))
    }
}

/// A writer that passes bytes on and keeps their SHA-256 and count: the payload's digest in
/// a bundle's header, a package's name while it is spooled.
pub struct HashingWriter<W> {
    inner: W,
    hash: sha2::Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: sha2::Digest::new(),
            len: 0,
        }
    }

    /// The SHA-256 (lowercase hex) and the number of bytes written so far.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(sha2::Digest::finalize(self.hash)), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
