# -*- coding: utf-8 -*-
# Copyright: lbcore contributors
# Apache License 2.0 (see LICENSE)
"""Certificate-bundle checks shared by the pem_bundle module and the tls role.

Kept in module_utils so the checks are unit-tested once and run under the target's
interpreter; they need the ``cryptography`` package there (the roles install
Debian's python3-cryptography).
"""

from __future__ import absolute_import, annotations, division, print_function

import datetime

__metaclass__ = type

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by the module with a clear message
    HAS_CRYPTOGRAPHY = False


class BundleError(ValueError):
    """A bundle that must not be installed; the message says why, never the key."""


_PEM_END = b"-----END CERTIFICATE-----"


def _load_all(data):
    """Every certificate of a PEM text. cryptography < 39 (Debian 12's python3-cryptography
    is 38, the managed hosts' interpreter) has no load_pem_x509_certificates."""
    if hasattr(x509, "load_pem_x509_certificates"):
        return x509.load_pem_x509_certificates(data)
    blocks = [b + _PEM_END for b in data.split(_PEM_END) if b"-----BEGIN CERTIFICATE-----" in b]
    return [x509.load_pem_x509_certificate(b[b.index(b"-----BEGIN") :]) for b in blocks]


def load_certs(pem):
    try:
        certs = _load_all(pem.encode() if isinstance(pem, str) else pem)
    except ValueError:
        raise BundleError("no PEM certificate could be read") from None
    if not certs:
        raise BundleError("no PEM certificate could be read")
    return certs


def load_key(pem):
    try:
        return serialization.load_pem_private_key(
            pem.encode() if isinstance(pem, str) else pem, password=None
        )
    except (ValueError, TypeError):
        raise BundleError("the private key could not be read (PEM, unencrypted)") from None


def _spki(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _signed_by(cert, issuer):
    """Whether ``issuer``'s key verifies ``cert``'s signature."""
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        else:
            return cert.issuer == issuer.subject
    except Exception:  # InvalidSignature and unsupported algorithms alike
        return False
    return True


def check_bundle(cert_pem, chain_pem, key_pem):
    """Verify key ↔ certificate and the chain's order; return (leaf, chain, key)."""
    leaf = load_certs(cert_pem)[0]
    chain = load_certs(chain_pem) if chain_pem and chain_pem.strip() else []
    key = load_key(key_pem)
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise BundleError("the private key does not match the certificate")
    previous = leaf
    for position, cert in enumerate(chain, 1):
        if not _signed_by(previous, cert):
            raise BundleError(
                "the chain is not in order: certificate %d (%s) did not issue %s"
                % (position, cert.subject.rfc4514_string(), previous.subject.rfc4514_string())
            )
        previous = cert
    return leaf, chain, key


def describe(leaf, now=None):
    """Subject, SANs, expiry and fingerprint: everything reported, nothing secret."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if hasattr(leaf, "not_valid_after_utc"):
        not_after = leaf.not_valid_after_utc
    else:  # cryptography < 42: a naive datetime, in UTC
        not_after = leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "sans": list(names),
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_to_expiry": (not_after - now).days,
        "fingerprint_sha256": leaf.fingerprint(hashes.SHA256()).hex(),
    }


def assemble(leaf, chain, key):
    """The PEM HAProxy (and lbcore) load: certificate, chain, then key."""
    parts = [leaf.public_bytes(serialization.Encoding.PEM)]
    parts += [c.public_bytes(serialization.Encoding.PEM) for c in chain]
    parts.append(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return b"".join(parts)
