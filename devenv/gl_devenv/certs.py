"""Certificates and keys for a local control plane, made with `cryptography`.

One cluster CA signs the API server's serving certificate and every client certificate;
a separate front-proxy CA signs the aggregation layer's client certificate (the API
server trusts request headers only from that CA); an RSA key pair signs service-account
tokens. Files are written once and reused, so a restarted cluster keeps its identity.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
SERVING_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local")
SERVING_IPS = ("127.0.0.1", "::1", "10.0.0.1")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY))


def _load(pair: Pair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def ensure_ca(directory: Path, name: str, common_name: str) -> Pair:
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    key = _key()
    subject = _name(common_name)
    cert = (_builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pair.key)
    return pair


def ensure_leaf(directory: Path, name: str, ca: Pair, common_name: str, *, organizations: tuple[str, ...] = (),
                server: bool = False, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> Pair:
    """A client certificate, or a serving one (``server=True``) valid for ``dns`` and ``ips``."""
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    ca_cert, ca_key = _load(ca)
    key = _key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (_builder(_name(common_name, organizations), ca_cert.subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if server:
        alt = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pair.key)
    return pair


def ensure_service_account_keys(directory: Path) -> Pair:
    """RSA key pair that signs and verifies service-account tokens (``cert`` is the public key)."""
    pair = Pair(directory / "sa.pub", directory / "sa.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(key, pair.key)
    pair.cert.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    return pair


@dataclass(frozen=True)
class ClusterPki:
    ca: Pair
    apiserver: Pair
    admin: Pair
    controller_manager: Pair
    scheduler: Pair
    kwok: Pair
    front_proxy_ca: Pair
    front_proxy_client: Pair
    service_account: Pair
    kubelet_client: Pair


def ensure_pki(directory: Path) -> ClusterPki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = ensure_ca(directory, "ca", "greenlang-local-ca")
    front_proxy_ca = ensure_ca(directory, "front-proxy-ca", "greenlang-local-front-proxy-ca")
    return ClusterPki(
        ca=ca,
        apiserver=ensure_leaf(directory, "apiserver", ca, "kube-apiserver", server=True, dns=SERVING_DNS,
                              ips=SERVING_IPS),
        admin=ensure_leaf(directory, "admin", ca, "admin", organizations=("system:masters",)),
        controller_manager=ensure_leaf(directory, "controller-manager", ca, "system:kube-controller-manager"),
        scheduler=ensure_leaf(directory, "scheduler", ca, "system:kube-scheduler"),
        # kwok plays every kubelet; system:masters spares us the node authorizer's per-node rules.
        kwok=ensure_leaf(directory, "kwok", ca, "kwok", organizations=("system:masters",)),
        front_proxy_ca=front_proxy_ca,
        front_proxy_client=ensure_leaf(directory, "front-proxy-client", front_proxy_ca, "front-proxy-client"),
        service_account=ensure_service_account_keys(directory),
        # How the API server reaches a real node's kubelet (logs, exec, port-forward).
        kubelet_client=ensure_leaf(directory, "apiserver-kubelet-client", ca, "kube-apiserver-kubelet-client",
                                   organizations=("system:masters",)),
    )
