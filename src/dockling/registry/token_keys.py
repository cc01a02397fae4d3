"""The keys Bearer tokens are signed and verified with: an HMAC secret (HS256), or RSA and
EC P-256 keys (RS256, ES256) from PEM files.

Docker's token services and CNCF Distribution sign with RSA or EC keys and name the key
in the token's `kid` header by its libtrust fingerprint: the SHA-256 of the DER public key,
its first 240 bits in base32, grouped by four with colons.  A registry given the service's
certificates (Distribution's `rootcertbundle`) verifies by that `kid`.  So a dockling
token service signing with a private key issues tokens Distribution accepts, and a
dockling registry given certificates accepts tokens of such a service.

An algorithm is tied to its key's type: an HS256 token is never checked against a public
key used as an HMAC secret, nor RS256 against anything but an RSA key.  The PEM parsing
and the signatures come from the `cryptography` package, imported only for PEM keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

from dockling import errors

MIN_SECRET_BYTES = 16


class Key:
    """One key: `alg`, `kid`, and signing when it holds a secret or private key."""

    alg = ""
    kid = ""
    can_sign = False

    def sign(self, data: bytes) -> bytes:
        raise NotImplementedError

    def verify(self, data: bytes, signature: bytes) -> bool:
        raise NotImplementedError


class HmacKey(Key):
    alg = "HS256"
    can_sign = True

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        # The key id lets a verifier holding several keys pick one; it reveals nothing.
        self.kid = hashlib.sha256(b"kid:" + secret).hexdigest()[:16]

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self.secret, data, hashlib.sha256).digest()

    def verify(self, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(data), signature)


def libtrust_key_id(public_der: bytes) -> str:
    """Docker libtrust's key id of a DER (SubjectPublicKeyInfo) public key."""
    digest = hashlib.sha256(public_der).digest()[:30]
    text = base64.b32encode(digest).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


class AsymmetricKey(Key):
    """An RSA (RS256) or EC P-256 (ES256) key; signs only with the private half."""

    def __init__(self, public: Any, private: Any = None) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if isinstance(public, rsa.RSAPublicKey):
            self.alg = "RS256"
        elif isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
            self.alg = "ES256"
        else:
            raise errors.InvalidParameter("token keys must be RSA or EC P-256 (RS256 or ES256)")
        self.public = public
        self.private = private
        self.can_sign = private is not None
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = libtrust_key_id(der)

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if self.private is None:
            raise errors.InvalidParameter("this token key can only verify (no private key)")
        if self.alg == "RS256":
            return bytes(self.private.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        # JWS wants ES256 signatures as r || s, 32 bytes each, not DER.
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, data: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        try:
            if self.alg == "RS256":
                self.public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                if len(signature) != 64:
                    return False
                r = int.from_bytes(signature[:32], "big")
                s = int.from_bytes(signature[32:], "big")
                self.public.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def load_keys(path: Path) -> list[Key]:
    """The keys in `path`: a PEM file (a private key, public keys, certificates; several
    may follow each other) or, otherwise, an HMAC secret (its bytes, whitespace trimmed)."""
    data = path.read_bytes()
    if b"-----BEGIN" not in data:
        secret = data.strip()
        if len(secret) < MIN_SECRET_BYTES:
            raise errors.InvalidParameter(
                f"{path}: a token key needs at least {MIN_SECRET_BYTES} bytes"
            )
        return [HmacKey(secret)]
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise errors.Unavailable(
            "RSA/EC token keys need the cryptography package: pip install 'dockling[registry]'"
        ) from None
    keys: list[Key] = []
    for block in _pem_blocks(data):
        label = block.split(b"\n", 1)[0]
        try:
            if b"CERTIFICATE" in label:
                keys.append(AsymmetricKey(x509.load_pem_x509_certificate(block).public_key()))
            elif b"PUBLIC KEY" in label:
                keys.append(AsymmetricKey(serialization.load_pem_public_key(block)))
            elif b"PRIVATE KEY" in label:
                private = serialization.load_pem_private_key(block, password=None)
                keys.append(AsymmetricKey(private.public_key(), private))
        except (ValueError, TypeError) as exc:
            raise errors.InvalidParameter(f"{path}: unreadable PEM block: {exc}") from None
    if not keys:
        raise errors.InvalidParameter(f"{path}: no key or certificate in this PEM file")
    return keys


def _pem_blocks(data: bytes) -> list[bytes]:
    blocks: list[bytes] = []
    rest = data
    while b"-----BEGIN" in rest:
        start = rest.index(b"-----BEGIN")
        end_marker = rest.find(b"-----END", start)
        if end_marker < 0:
            break
        end = rest.find(b"-----", end_marker + 8)
        end = len(rest) if end < 0 else end + 5
        blocks.append(rest[start:end] + b"\n")
        rest = rest[end:]
    return blocks
