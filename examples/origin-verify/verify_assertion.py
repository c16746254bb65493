"""How an origin verifies X-Gateway-Assertion in Python: PyJWT (2.6 or later, with `cryptography`), by the
gateway's JWKS through PyJWKClient, or with HS256 by its ASSERTION_SECRET.

Run as a small origin that answers 401 to anything without a valid assertion (point the gateway's ORIGIN_URL at it):
    python3 examples/origin-verify/verify_assertion.py --jwks-url https://gateway.example.com/.well-known/jwks.json
"""

import argparse
import base64
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

# How long the gateway lets its JWKS be cached (its Cache-Control max-age), seconds.
JWKS_MAX_AGE = 300
ASSERTION_TYPE = "gridgate-assertion+jwt"
MAX_AGE = 60


class NotThroughGateway(Exception):
    """The request carries no assertion the gateway made for it."""


def gateway_jwks(jwks_url):
    """The gateway's public keys, kept at most JWKS_MAX_AGE; an unknown kid refetches. Create one per process."""
    return jwt.PyJWKClient(jwks_url, lifespan=JWKS_MAX_AGE)


def hs256_kid(secret):
    """The kid the gateway puts on HS256 assertions signed with `secret` (docs/origin-integration.md)."""
    mac = hmac.new(secret.encode(), b"gridgate assertion key id", hashlib.sha256).digest()[:9]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _key_for(header, jwks, secrets):
    alg = header.get("alg")
    if alg == "HS256" and secrets:
        for secret in secrets:
            if hmac.compare_digest(hs256_kid(secret), str(header.get("kid"))):
                return secret.encode()
        raise NotThroughGateway("no ASSERTION_SECRET with this kid")
    if alg in ("EdDSA", "ES256") and jwks is not None:
        return jwks.get_signing_key(header.get("kid")).key
    raise NotThroughGateway(f"algorithm {alg!r} is not accepted")


def verify_gateway_assertion(method, path, headers, jwks=None, secrets=(), issuer="gridgate", leeway=5):
    """Returns the verified assertion claims of a request, or raises.

    `path` is the path and query as the origin received them; `headers` a case-insensitive mapping (as
    http.server, Flask and Django give it) or a dict with lower-case names. `jwks` is a gateway_jwks(...) client;
    `secrets` the gateway's ASSERTION_SECRET (and, during a switch, the previous one) only while it signs HS256.
    """
    token = headers.get("x-gateway-assertion")
    if not token:
        raise NotThroughGateway("no X-Gateway-Assertion")
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != ASSERTION_TYPE:
            raise NotThroughGateway("not a gateway assertion")
        claims = jwt.decode(
            token,
            _key_for(header, jwks, secrets),
            algorithms=[header["alg"]],
            audience="origin",
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except (jwt.PyJWTError, jwt.PyJWKClientError) as error:
        raise NotThroughGateway(f"invalid assertion: {error}") from error
    if not isinstance(claims["iat"], int) or time.time() - claims["iat"] > MAX_AGE + leeway:
        raise NotThroughGateway("assertion is too old")
    if claims.get("method") != method or claims.get("path") != path:
        raise NotThroughGateway("assertion is for another request")
    member_id = claims.get("memberEntityId")
    if (
        headers.get("x-member-entity-identifier") != claims.get("memberEntityIdentifier")
        or headers.get("x-organisation-entity-identifier") != claims.get("organisationEntityIdentifier")
        or (member_id is not None and headers.get("x-member-entity-id") != str(member_id))
    ):
        raise NotThroughGateway("identity headers do not match the assertion")
    return claims


def serve(jwks_url, port, issuer):
    jwks = gateway_jwks(jwks_url)

    class Origin(BaseHTTPRequestHandler):
        def answer(self):
            try:
                claims = verify_gateway_assertion(self.command, self.path, self.headers, jwks=jwks, issuer=issuer)
                identity = ("memberEntityIdentifier", "organisationEntityIdentifier", "scope", "jti")
                status, body = 200, {name: claims.get(name) for name in identity}
            except NotThroughGateway as error:
                status, body = 401, {"error": "not through the gateway", "reason": str(error)}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = answer

    print(f"origin on http://127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Origin).serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="An origin that serves only requests through the gateway.")
    parser.add_argument("--jwks-url", required=True, help="the gateway's /.well-known/jwks.json")
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--issuer", default="gridgate")
    arguments = parser.parse_args()
    serve(arguments.jwks_url, arguments.port, arguments.issuer)
