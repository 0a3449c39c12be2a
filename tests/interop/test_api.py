"""REST API v1 against the real server: CRUD, validation, duplicates, tenant isolation,
no password ever in a response, 401 without a token."""

import json

import pytest

import harness
from harness import SipClient, assert_error

# every password used in this module; none may ever show up in any API response
PASSWORDS = []


def pw(tag):
    p = f"Pw-{tag}-{harness.rand_token(10)}"
    PASSWORDS.append(p)
    return p


@pytest.fixture(scope="module")
def orbit(module_factory):
    return module_factory(config={"auth": {"algorithms": ["SHA-256", "MD5"]}, "guard": {"enabled": False}},
                          name="orbit-api")


@pytest.fixture(scope="module")
def api(orbit):
    return orbit.api


def new_tenant(api, name=None):
    dom = f"t{harness.rand_token(8)}.example"
    r = api.post("/api/v1/tenants", {"name": name or f"Tenant {dom}", "domain": dom})
    assert r.status == 201, r
    return r.json


def no_forbidden_keys(obj):
    text = json.dumps(obj).lower()
    for k in ('"password"', '"password_hash"', '"ha1"', '"secret"'):
        assert k not in text, f"response exposes {k}: {obj}"


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/tenants"),
    ("POST", "/api/v1/tenants"),
    ("GET", "/api/v1/tenants/orbit.local"),
    ("GET", "/api/v1/tenants/orbit.local/extensions"),
    ("GET", "/api/v1/tenants/orbit.local/registrations"),
    ("POST", "/api/v1/tenants/orbit.local/tokens"),
])
def test_401_without_or_with_bad_token(api, method, path):
    body = {"name": "x", "domain": "x.example"} if method == "POST" else None
    r = api.request(method, path, body, token=None)
    assert_error(r, 401)
    r = api.request(method, path, body, token="not-a-real-token")
    assert_error(r, 401)


def test_healthz_openapi_metrics(orbit, api):
    assert orbit.healthz() == (200, {"status": "ok"})
    r = api.get("/api/v1/openapi.json")
    assert r.status == 200, r
    doc = r.json
    assert isinstance(doc, dict) and str(doc.get("openapi", "")).startswith("3"), r.text[:300]
    paths = doc.get("paths", {})
    assert any(p.startswith("/api/v1/tenants") for p in paths), list(paths)
    r = api.get("/metrics", token=None)
    if r.status == 401:
        r = api.get("/metrics")
    assert r.status == 200, r
    assert "# TYPE" in r.text or "# HELP" in r.text, r.text[:500]


# ------------------------------------------------------------------ tenants


def test_bootstrap_tenant_exists(api, orbit):
    r = api.get(f"/api/v1/tenants/{orbit.domain}")
    assert r.status == 200, r
    assert r.json["domain"] == orbit.domain


def test_tenant_crud(api):
    dom = f"crud{harness.rand_token(6)}.example"
    r = api.post("/api/v1/tenants", {"name": "Crud Co", "domain": dom})
    assert r.status == 201, r
    t = r.json
    assert t["name"] == "Crud Co" and t["domain"] == dom and t.get("id"), t

    # get by id and by domain
    for ref in (t["id"], dom):
        r = api.get(f"/api/v1/tenants/{ref}")
        assert r.status == 200, r
        assert r.json["id"] == t["id"] and r.json["domain"] == dom, r

    r = api.get("/api/v1/tenants")
    assert r.status == 200, r
    assert isinstance(r.json.get("items"), list), r
    assert dom in [x["domain"] for x in r.json["items"]], r

    r = api.patch(f"/api/v1/tenants/{dom}", {"name": "Crud Co Renamed"})
    assert r.status == 200, r
    assert r.json["name"] == "Crud Co Renamed" and r.json["domain"] == dom, r
    assert api.get(f"/api/v1/tenants/{t['id']}").json["name"] == "Crud Co Renamed"

    r = api.delete(f"/api/v1/tenants/{t['id']}")
    assert r.status in (200, 204), r
    r = api.get(f"/api/v1/tenants/{dom}")
    assert_error(r, 404)
    assert dom not in [x["domain"] for x in api.get("/api/v1/tenants").json["items"]]


def test_tenant_duplicate_domain_409(api):
    t = new_tenant(api)
    r = api.post("/api/v1/tenants", {"name": "Other", "domain": t["domain"]})
    assert_error(r, 409)


@pytest.mark.parametrize("domain", ["not a domain", "", "bad_domain!.example", "-leading.example",
                                    "a" * 300 + ".example"])
def test_tenant_invalid_domain_422(api, domain):
    r = api.post("/api/v1/tenants", {"name": "Bad", "domain": domain})
    assert_error(r, 422, field="domain")


def test_tenant_unknown_404(api):
    assert_error(api.get("/api/v1/tenants/no-such-tenant.example"), 404)
    assert_error(api.patch("/api/v1/tenants/no-such-tenant.example", {"name": "x"}), 404)
    assert_error(api.delete("/api/v1/tenants/no-such-tenant.example"), 404)


def test_malformed_json_400(api):
    r = api.request("POST", "/api/v1/tenants", raw_body=b"{not json")
    assert_error(r, 400)


# ------------------------------------------------------------------ extensions


def test_extension_crud(api, orbit):
    t = new_tenant(api)
    base = f"/api/v1/tenants/{t['domain']}/extensions"
    p1 = pw("crud")
    r = api.post(base, {"number": "200", "password": p1, "display_name": "Alice"})
    assert r.status == 201, r
    assert r.json["number"] == "200" and r.json["display_name"] == "Alice", r
    no_forbidden_keys(r.json)

    # by tenant id as well
    r = api.get(f"/api/v1/tenants/{t['id']}/extensions/200")
    assert r.status == 200, r
    assert r.json["display_name"] == "Alice"
    no_forbidden_keys(r.json)

    r = api.get(base)
    assert r.status == 200 and [x["number"] for x in r.json["items"]] == ["200"], r
    no_forbidden_keys(r.json)

    r = api.patch(f"{base}/200", {"display_name": "Alice B."})
    assert r.status == 200 and r.json["display_name"] == "Alice B.", r
    no_forbidden_keys(r.json)

    r = api.delete(f"{base}/200")
    assert r.status in (200, 204), r
    assert_error(api.get(f"{base}/200"), 404)
    assert api.get(base).json["items"] == []


def test_extension_boundaries_and_validation(api):
    t = new_tenant(api)
    base = f"/api/v1/tenants/{t['domain']}/extensions"
    # accepted boundaries: 1 digit, 15 digits, 8-char password
    for number in ("7", "123456789012345"):
        p8 = harness.rand_token(8)
        PASSWORDS.append(p8)
        r = api.post(base, {"number": number, "password": p8, "display_name": "B"})
        assert r.status == 201, r
    bad = [
        ({"number": "12a", "password": pw("v"), "display_name": "x"}, "number"),
        ({"number": "", "password": pw("v"), "display_name": "x"}, "number"),
        ({"number": "1234567890123456", "password": pw("v"), "display_name": "x"}, "number"),
        ({"number": "+100", "password": pw("v"), "display_name": "x"}, "number"),
        ({"number": "301", "password": "short7!", "display_name": "x"}, "password"),
        ({"number": "302", "display_name": "x"}, "password"),
    ]
    for body, field in bad:
        r = api.post(base, body)
        assert_error(r, 422, field=field)
    # nothing invalid was created
    numbers = sorted(x["number"] for x in api.get(base).json["items"])
    assert numbers == ["123456789012345", "7"], numbers
    # PATCH validation too
    r = api.patch(f"{base}/7", {"password": "short"})
    assert_error(r, 422, field="password")


def test_extension_duplicate_409_and_per_tenant_numbers(api):
    a, b = new_tenant(api), new_tenant(api)
    body = {"number": "100", "password": pw("dup"), "display_name": "X"}
    assert api.post(f"/api/v1/tenants/{a['domain']}/extensions", body).status == 201
    assert_error(api.post(f"/api/v1/tenants/{a['domain']}/extensions", body), 409)
    # the same number in another tenant is fine
    r = api.post(f"/api/v1/tenants/{b['domain']}/extensions", body)
    assert r.status == 201, r


def test_extension_in_unknown_tenant_404(api):
    r = api.post("/api/v1/tenants/nope.example/extensions",
                 {"number": "100", "password": pw("x"), "display_name": "x"})
    assert_error(r, 404)
    assert_error(api.get("/api/v1/tenants/orbit.local/extensions/99999"), 404)


def test_password_change_takes_effect_on_sip(api, orbit):
    """PATCH password: the old one is refused on REGISTER, the new one works."""
    old, new = pw("old"), pw("new")
    orbit.create_extension("4100", old)
    r = api.patch(f"/api/v1/tenants/{orbit.domain}/extensions/4100", {"password": new})
    assert r.status == 200, r
    no_forbidden_keys(r.json)
    with SipClient(orbit.sip_addr) as c:
        _, final = c.register("4100", orbit.domain, old, prefer_alg="SHA-256")
        assert final is not None and final.status == 403, final
        _, final = c.register("4100", orbit.domain, new, prefer_alg="SHA-256")
        assert final is not None and final.status == 200, final
    regs = orbit.registrations(extension="4100")
    assert len(regs) == 1, regs
    assert regs[0]["user_agent"] == "orbit-interop-pyclient", regs


# ------------------------------------------------------------------ tokens / isolation


def test_tenant_token_isolation(api, orbit):
    a, b = new_tenant(api, "A Corp"), new_tenant(api, "B Corp")
    for t in (a, b):
        r = api.post(f"/api/v1/tenants/{t['domain']}/extensions",
                     {"number": "500", "password": pw("iso"), "display_name": "Five"})
        assert r.status == 201, r
    r = api.post(f"/api/v1/tenants/{a['domain']}/tokens", {"name": "a-token"})
    assert r.status == 201, r
    assert r.json.get("id") and r.json.get("name") == "a-token" and r.json.get("token"), r
    tok_a = r.json["token"]
    A = api.with_token(tok_a)

    # own tenant: readable and writable
    assert A.get(f"/api/v1/tenants/{a['domain']}").status == 200
    assert A.get(f"/api/v1/tenants/{a['domain']}/extensions").status == 200
    assert A.get(f"/api/v1/tenants/{a['id']}/registrations").status == 200
    r = A.post(f"/api/v1/tenants/{a['domain']}/extensions",
               {"number": "501", "password": pw("iso"), "display_name": "Own"})
    assert r.status == 201, r
    assert A.patch(f"/api/v1/tenants/{a['domain']}/extensions/501", {"display_name": "Own2"}).status == 200

    # other tenant: nothing, by domain or by id
    for ref in (b["domain"], b["id"]):
        for method, path, body in [
            ("GET", f"/api/v1/tenants/{ref}", None),
            ("PATCH", f"/api/v1/tenants/{ref}", {"name": "pwned"}),
            ("DELETE", f"/api/v1/tenants/{ref}", None),
            ("GET", f"/api/v1/tenants/{ref}/extensions", None),
            ("GET", f"/api/v1/tenants/{ref}/extensions/500", None),
            ("PATCH", f"/api/v1/tenants/{ref}/extensions/500", {"display_name": "pwned"}),
            ("DELETE", f"/api/v1/tenants/{ref}/extensions/500", None),
            ("POST", f"/api/v1/tenants/{ref}/extensions", {"number": "666", "password": pw("iso"),
                                                            "display_name": "evil"}),
            ("GET", f"/api/v1/tenants/{ref}/registrations", None),
            ("POST", f"/api/v1/tenants/{ref}/tokens", {"name": "steal"}),
        ]:
            r = A.request(method, path, body)
            assert r.status in (403, 404), f"tenant A token reached tenant B: {r!r}"
            assert_error(r, r.status)

    # B unchanged
    rb = api.get(f"/api/v1/tenants/{b['domain']}")
    assert rb.status == 200 and rb.json["name"] == "B Corp", rb
    rx = api.get(f"/api/v1/tenants/{b['domain']}/extensions/500")
    assert rx.status == 200 and rx.json["display_name"] == "Five", rx
    assert [x["number"] for x in api.get(f"/api/v1/tenants/{b['domain']}/extensions").json["items"]] == ["500"]

    # listing tenants: only its own, or 403
    r = A.get("/api/v1/tenants")
    if r.status == 200:
        assert [x["domain"] for x in r.json["items"]] == [a["domain"]], r
    else:
        assert_error(r, 403)
    # creating tenants needs the admin token
    assert_error(A.post("/api/v1/tenants", {"name": "Evil", "domain": f"evil{harness.rand_token(5)}.example"}), 403)


def test_tenant_token_cannot_see_other_registrations(api, orbit):
    """A registration in the bootstrap tenant is invisible to another tenant's token."""
    p = pw("reg")
    orbit.create_extension("4200", p)
    with SipClient(orbit.sip_addr) as c:
        _, final = c.register("4200", orbit.domain, p)
    assert final is not None and final.status == 200, final
    other = new_tenant(api)
    tok = api.post(f"/api/v1/tenants/{other['domain']}/tokens", {"name": "o"}).json["token"]
    O = api.with_token(tok)
    r = O.get(f"/api/v1/tenants/{orbit.domain}/registrations")
    assert r.status in (403, 404), r
    r = O.get(f"/api/v1/tenants/{other['domain']}/registrations")
    assert r.status == 200 and r.json["items"] == [], r


def test_no_password_in_any_response(api, orbit):
    """Runs last in this module: scans every API response this module has seen."""
    # make sure there is something to look at
    p = pw("scan")
    orbit.create_extension("4300", p)
    for t in api.get("/api/v1/tenants").json["items"]:
        r = api.get(f"/api/v1/tenants/{t['domain']}/extensions")
        for x in r.json["items"]:
            api.get(f"/api/v1/tenants/{t['domain']}/extensions/{x['number']}")
            no_forbidden_keys(x)
    assert len(api.log) > 20
    leaks = [(r.method, r.path, pwd) for r in api.log for pwd in PASSWORDS if pwd in r.text]
    assert leaks == [], f"passwords leaked in responses: {leaks}"
