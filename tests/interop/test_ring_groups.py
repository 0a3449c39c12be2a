"""Ring groups over the REST API of the real server: CRUD round trip, 422s naming the field,
numbers shared with extensions (409 both ways), members leaving on extension delete,
tenant-token isolation, and persistence over a restart (member order kept)."""

import pytest

import harness
from harness import assert_error

PW = "ring-group-pass-01"


@pytest.fixture(scope="module")
def orbit(module_factory):
    return module_factory(config={"guard": {"enabled": False}}, name="orbit-ring-groups")


@pytest.fixture(scope="module")
def api(orbit):
    return orbit.api


def new_tenant(api, extensions=()):
    dom = f"rg{harness.rand_token(8).lower()}.example"
    r = api.post("/api/v1/tenants", {"name": f"Tenant {dom}", "domain": dom})
    assert r.status == 201, r
    for n in extensions:
        r = api.post(f"/api/v1/tenants/{dom}/extensions", {"number": n, "password": PW})
        assert r.status == 201, r
    return dom


def test_ring_group_crud_round_trip(api):
    dom = new_tenant(api, ["101", "102", "103"])
    base = f"/api/v1/tenants/{dom}/ring-groups"
    assert api.get(base).json == {"items": []}

    r = api.post(base, {"number": "600", "name": "Sales", "members": ["103", "101"],
                        "strategy": "sequential"})
    assert r.status == 201, r
    g = r.json
    assert g["number"] == "600" and g["name"] == "Sales", g
    assert g["members"] == ["103", "101"], g
    assert g["strategy"] == "sequential" and g["ring_time_s"] == 20, g
    assert g["no_answer_destination"] is None, g
    assert g.get("created_at") and g.get("updated_at"), g

    r = api.post(base, {"number": "601", "name": "Overflow", "strategy": "ring_all", "ring_time_s": 30,
                        "members": ["102"], "no_answer_destination": "600"})
    assert r.status == 201, r

    r = api.get(base)
    assert r.status == 200, r
    assert [x["number"] for x in r.json["items"]] == ["600", "601"], r
    r = api.get(f"{base}/600")
    assert r.status == 200 and r.json == g, r

    r = api.patch(f"{base}/600", {"members": ["102", "103", "101"], "ring_time_s": 12,
                                  "no_answer_destination": "601"})
    assert r.status == 200, r
    assert r.json["members"] == ["102", "103", "101"], r
    assert r.json["ring_time_s"] == 12 and r.json["name"] == "Sales", r
    assert r.json["strategy"] == "sequential" and r.json["no_answer_destination"] == "601", r
    r = api.patch(f"{base}/600", {"no_answer_destination": None, "strategy": "ring_all"})
    assert r.status == 200, r
    assert r.json["no_answer_destination"] is None and r.json["strategy"] == "ring_all", r
    assert api.get(f"{base}/600").json["members"] == ["102", "103", "101"]

    # deleting an extension takes it out of every group, in order, and clears destinations
    r = api.patch(f"{base}/601", {"no_answer_destination": "103"})
    assert r.status == 200, r
    assert api.delete(f"/api/v1/tenants/{dom}/extensions/103").status == 204
    assert api.get(f"{base}/600").json["members"] == ["102", "101"]
    assert api.get(f"{base}/601").json["no_answer_destination"] is None

    r = api.delete(f"{base}/600")
    assert r.status == 204, r
    assert_error(api.get(f"{base}/600"), 404)
    assert_error(api.delete(f"{base}/600"), 404)
    assert [x["number"] for x in api.get(base).json["items"]] == ["601"]

    # deleting the tenant removes its ring groups
    assert api.delete(f"/api/v1/tenants/{dom}").status == 204
    assert_error(api.get(base), 404)


def test_ring_group_numbers_are_shared_with_extensions(api):
    dom = new_tenant(api, ["101"])
    base = f"/api/v1/tenants/{dom}/ring-groups"
    assert_error(api.post(base, {"number": "101", "name": "G", "strategy": "ring_all"}), 409, "number")
    assert api.post(base, {"number": "600", "name": "G", "strategy": "ring_all"}).status == 201
    assert_error(api.post(base, {"number": "600", "name": "G2", "strategy": "ring_all"}), 409, "number")
    assert_error(api.post(f"/api/v1/tenants/{dom}/extensions", {"number": "600", "password": PW}),
                 409, "number")


@pytest.mark.parametrize("change,field", [
    ({"number": None}, "number"),
    ({"number": "6x0"}, "number"),
    ({"number": "1234567890123456"}, "number"),
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"strategy": None}, "strategy"),
    ({"strategy": "round_robin"}, "strategy"),
    ({"members": "101"}, "members"),
    ({"members": ["101", "101"]}, "members"),
    ({"members": ["999"]}, "members"),
    ({"members": [str(500 + i) for i in range(51)]}, "members"),
    ({"ring_time_s": 4}, "ring_time_s"),
    ({"ring_time_s": 301}, "ring_time_s"),
    ({"ring_time_s": "20"}, "ring_time_s"),
    ({"no_answer_destination": "600"}, "no_answer_destination"),
    ({"no_answer_destination": "999"}, "no_answer_destination"),
    ({"colour": "red"}, "colour"),
])
def test_ring_group_422_names_the_field(api, change, field):
    dom = new_tenant(api, ["101"])
    body = {"number": "600", "name": "Sales", "members": ["101"], "strategy": "ring_all"}
    for k, v in change.items():
        if v is None:
            body.pop(k)
        else:
            body[k] = v
    assert_error(api.post(f"/api/v1/tenants/{dom}/ring-groups", body), 422, field)
    assert api.get(f"/api/v1/tenants/{dom}/ring-groups").json == {"items": []}


def test_ring_group_unknown_member_is_named(api):
    dom = new_tenant(api, ["101"])
    new_tenant(api, ["202"])
    base = f"/api/v1/tenants/{dom}/ring-groups"
    for bad in ("909", "202"):  # unknown, and another tenant's extension
        err = assert_error(api.post(base, {"number": "600", "name": "G", "members": ["101", bad],
                                           "strategy": "ring_all"}), 422, "members")
        assert bad in err["message"], err
    assert api.post(base, {"number": "600", "name": "G", "members": ["101"], "strategy": "ring_all"}).status == 201
    err = assert_error(api.patch(f"{base}/600", {"members": ["101", "777"]}), 422, "members")
    assert "777" in err["message"], err
    assert_error(api.patch(f"{base}/600", {"ring_time_s": 0}), 422, "ring_time_s")
    assert_error(api.patch(f"{base}/600", {"number": "601"}), 422, "number")
    assert api.get(f"{base}/600").json["members"] == ["101"]


def test_ring_group_tenant_token_isolation(api):
    a = new_tenant(api, ["100"])
    b = new_tenant(api, ["200"])
    r = api.post(f"/api/v1/tenants/{b}/ring-groups",
                 {"number": "700", "name": "B group", "members": ["200"], "strategy": "ring_all"})
    assert r.status == 201, r
    tok = api.post(f"/api/v1/tenants/{a}/tokens", {"name": "a"}).json["token"]
    A = api.with_token(tok)
    for method, path, body in [
        ("GET", f"/api/v1/tenants/{b}/ring-groups", None),
        ("GET", f"/api/v1/tenants/{b}/ring-groups/700", None),
        ("PATCH", f"/api/v1/tenants/{b}/ring-groups/700", {"name": "stolen"}),
        ("DELETE", f"/api/v1/tenants/{b}/ring-groups/700", None),
        ("POST", f"/api/v1/tenants/{b}/ring-groups", {"number": "701", "name": "x", "strategy": "ring_all"}),
    ]:
        assert_error(A.request(method, path, body), 404)
    # its own tenant is fine
    r = A.post(f"/api/v1/tenants/{a}/ring-groups",
               {"number": "700", "name": "A group", "members": ["100"], "strategy": "sequential"})
    assert r.status == 201, r
    assert [g["name"] for g in A.get(f"/api/v1/tenants/{a}/ring-groups").json["items"]] == ["A group"]
    g = api.get(f"/api/v1/tenants/{b}/ring-groups/700").json
    assert g["name"] == "B group" and g["members"] == ["200"], g
    assert_error(api.get(f"/api/v1/tenants/{b}/ring-groups", token=None), 401)


def test_ring_groups_survive_restart(orbit_factory):
    srv = orbit_factory(config={"guard": {"enabled": False}}, name="orbit-ring-groups-restart")
    for n in ("101", "102", "103", "104"):
        srv.create_extension(n, PW)
    base = f"/api/v1/tenants/{srv.domain}/ring-groups"
    r = srv.api.post(base, {"number": "600", "name": "Front desk", "members": ["104", "101", "103", "102"],
                            "strategy": "sequential", "ring_time_s": 7})
    assert r.status == 201, r
    r = srv.api.post(base, {"number": "601", "name": "Overflow", "members": ["102"], "strategy": "ring_all",
                            "no_answer_destination": "600"})
    assert r.status == 201, r
    r = srv.api.patch(f"{base}/600", {"members": ["103", "104", "101"], "no_answer_destination": "102"})
    assert r.status == 200, r
    before = srv.api.get(base).json

    rc = srv.stop()
    assert rc == 0, f"orbit did not exit cleanly on SIGTERM (exit code {rc})"
    srv.start()

    after = srv.api.get(base).json
    assert after == before, (before, after)
    g = srv.api.get(f"{base}/600").json
    assert g["members"] == ["103", "104", "101"] and g["ring_time_s"] == 7, g
    assert g["no_answer_destination"] == "102", g
    # the rules still hold after the reload
    assert_error(srv.api.post(f"/api/v1/tenants/{srv.domain}/extensions", {"number": "601", "password": PW}),
                 409, "number")
