"""An OAuth2/OIDC provider for the tests: real RSA and EC key pairs, their JWKS served over HTTP on 127.0.0.1, and
tokens signed with them (or forged, for the refusals)."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://login.example.test/"
AUDIENCE = "orders-api"


class Provider:
    """Signs tokens with its keys and serves their public halves as a JWKS, until stop() (the provider is down)."""

    def __init__(self):
        self.keys = {
            "rsa-1": ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ec-1": ("ES256", ec.generate_private_key(ec.SECP256R1())),
        }
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.fetches = 0

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def env(self, **extra: str) -> dict:
        """A server's settings for verifying this provider's tokens."""
        return {
            "API_AUTH": "jwt",
            "JWT_JWKS_URL": self.jwks_url,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            **extra,
        }

    def jwks(self) -> dict:
        keys = []
        for kid, (algorithm, private_key) in self.keys.items():
            codec = RSAAlgorithm if algorithm.startswith("RS") else ECAlgorithm
            keys.append(
                {**codec.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "alg": algorithm, "use": "sig"}
            )
        return {"keys": keys}

    def start(self) -> "Provider":
        """Serve the JWKS, on the port it had before if it was stopped."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                provider.fetches += 1
                body = json.dumps(provider.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the JWKS endpoint: connections to it are refused."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def claims(self, sub: str, **claims) -> dict:
        """Valid claims for sub; claims replace or add to them."""
        now = int(time.time())
        return {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, **claims}

    def token(self, sub: str = "alice", *, kid: str = "rsa-1", **claims) -> str:
        """A token signed with the key named kid, in its algorithm."""
        algorithm, private_key = self.keys[kid]
        return jwt.encode(self.claims(sub, **claims), private_key, algorithm=algorithm, headers={"kid": kid})

    def public_pem(self, kid: str = "rsa-1") -> bytes:
        public_key = self.keys[kid][1].public_key()
        return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, claims: dict, secret: bytes | None) -> str:
    """A token PyJWT refuses to make: alg none (no signature), or HS256 with a public key as the shared secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> dict:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
