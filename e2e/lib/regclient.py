"""A small read-mostly registry client for the checks (standard library).

Independent of Freightliner and of the seeder: one request per call on a
per-thread keep-alive connection, Basic or Bearer auth answered from the
401 challenge (tokens cached by scope), HTTPS with a CA and client cert.
"""
import base64
import http.client
import json
import re
import ssl
import threading
import urllib.parse


def parse_challenge(header):
    scheme, _, rest = (header or "").partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class Client:
    def __init__(self, url, user=None, password=None, ca=None, cert=None, key=None, timeout=60):
        u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        self.scheme, self.netloc = u.scheme, u.netloc
        self.timeout = timeout
        self.ctx = None
        if self.scheme == "https":
            self.ctx = ssl.create_default_context(cafile=ca)
            if cert:
                self.ctx.load_cert_chain(cert, key)
        self.basic = None
        if user is not None:
            self.basic = "Basic " + base64.b64encode(("%s:%s" % (user, password or "")).encode()).decode()
        self.tokens = {}
        self.lock = threading.Lock()
        self.local = threading.local()

    def _conn(self, netloc=None, scheme=None):
        netloc, scheme = netloc or self.netloc, scheme or self.scheme
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self.ctx)
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _send(self, method, path, headers):
        for attempt in (1, 2):
            c = getattr(self.local, "c", None)
            if c is None:
                c = self.local.c = self._conn()
            try:
                c.request(method, path, headers=headers)
                r = c.getresponse()
                data = r.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                c.close()
                self.local.c = None
                if attempt == 2:
                    raise
                continue
            if r.will_close:
                c.close()
                self.local.c = None
            return r, data

    def _token(self, params):
        realm = urllib.parse.urlsplit(params["realm"])
        q = [("service", params.get("service", ""))]
        if params.get("scope"):
            q += [("scope", s) for s in params["scope"].split()]
        c = self._conn(realm.netloc, realm.scheme)
        try:
            c.request("GET", realm.path + "?" + urllib.parse.urlencode(q),
                      headers={"Authorization": self.basic} if self.basic else {})
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        if r.status != 200:
            return None
        body = json.loads(data)
        return body.get("token") or body.get("access_token")

    def request(self, method, path, headers=None):
        """(response, body bytes); auth challenges answered once."""
        headers = dict(headers or {})
        key = path.split("/blobs/")[0].split("/manifests/")[0].split("/tags/")[0].split("?")[0]
        with self.lock:
            auth = self.tokens.get(key) or self.tokens.get("basic")
        if auth:
            headers["Authorization"] = auth
        r, data = self._send(method, path, headers)
        if r.status != 401:
            return r, data
        scheme, params = parse_challenge(r.getheader("WWW-Authenticate"))
        if scheme == "basic" and self.basic:
            auth = self.basic
            with self.lock:
                self.tokens["basic"] = auth
        elif scheme == "bearer" and "realm" in params:
            tok = self._token(params)
            if not tok:
                return r, data
            auth = "Bearer " + tok
            with self.lock:
                self.tokens[key] = auth
        else:
            return r, data
        headers["Authorization"] = auth
        return self._send(method, path, headers)
