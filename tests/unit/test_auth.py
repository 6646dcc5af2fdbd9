import pytest

from sms.domain.errors import Unauthenticated
from sms.domain.model import utcnow
from sms.usecases.auth import Authenticator, new_key
from tests.fakes import InMemoryApiKeyStore

LICENSEE = "a" * 32


async def make(cache_seconds=60.0):
    store = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE, "test")
    await store.add(record)
    return store, Authenticator(store, cache_seconds), key


async def test_a_new_key_authenticates_as_its_licensee():
    _, auth, key = await make()
    assert await auth.licensee_for(key) == LICENSEE


async def test_only_a_hash_of_the_key_is_stored():
    store, _, key = await make()
    (record,) = store.records.values()
    secret = key.split(".", 1)[1]
    assert secret not in repr(record) and len(record.secret_hash) == 64


@pytest.mark.parametrize("mangle, message", [
    (lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), "Invalid API key"),  # right id, wrong secret
    (lambda k: "sms_0000000000000000." + k.split(".", 1)[1], "Invalid API key"),  # unknown id
    (lambda k: "not-a-key", "not in the form"),
    (lambda k: k + "x", "not in the form"),
])
async def test_wrong_keys_are_refused(mangle, message):
    _, auth, key = await make()
    with pytest.raises(Unauthenticated, match=message):
        await auth.licensee_for(mangle(key))


async def test_a_revoked_key_is_refused_once_the_cache_expires():
    store, auth, key = await make(cache_seconds=0)
    await store.revoke(key[4:20], utcnow())
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.licensee_for(key)


async def test_a_known_key_costs_one_lookup_per_cache_period():
    store, auth, key = await make(cache_seconds=60)
    for _ in range(5):
        await auth.licensee_for(key)
    assert store.gets == 1


async def test_an_expired_key_is_refused_saying_when_it_expired():
    from datetime import timedelta

    store = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE, expires_at=utcnow() - timedelta(seconds=1))
    await store.add(record)
    with pytest.raises(Unauthenticated, match="expired at"):
        await Authenticator(store, cache_seconds=0).licensee_for(key)


async def test_a_licensee_has_at_most_two_active_keys():
    from datetime import timedelta

    from sms.usecases.auth import KeyLimitReached, issue_key

    store = InMemoryApiKeyStore()
    first = await issue_key(store, LICENSEE)
    await issue_key(store, LICENSEE)
    with pytest.raises(KeyLimitReached, match="already has 2 active keys"):
        await issue_key(store, LICENSEE)
    await issue_key(store, "c" * 32)  # other licensees are counted apart
    await store.revoke(first[4:20], utcnow())
    third = await issue_key(store, LICENSEE)
    await store.expire(third[4:20], utcnow() - timedelta(seconds=1))
    await issue_key(store, LICENSEE)  # expired keys do not count


async def test_rotation_keeps_the_old_key_working_for_the_grace_period_only():
    from datetime import timedelta

    from sms.usecases.auth import KeyNotChosen, issue_key, rotate_key

    store = InMemoryApiKeyStore()
    auth = Authenticator(store, cache_seconds=0)
    old = await issue_key(store, LICENSEE)
    rotation = await rotate_key(store, LICENSEE, grace=timedelta(hours=1))
    new = rotation.key
    assert rotation.replaced.key_id == old[4:20] and rotation.replaced_until == store.records[old[4:20]].expires_at
    assert await auth.licensee_for(new) == LICENSEE and await auth.licensee_for(old) == LICENSEE
    assert store.records[old[4:20]].expires_at > utcnow()
    with pytest.raises(KeyNotChosen):  # two keys work now: which one to replace must be said
        await rotate_key(store, LICENSEE, grace=timedelta(hours=1))

    await store.expire(old[4:20], utcnow() - timedelta(seconds=1))  # the grace period is over
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.licensee_for(old)
    assert await auth.licensee_for(new) == LICENSEE


async def test_rotating_one_of_two_keys_replaces_that_one_under_its_name_and_leaves_the_other():
    """Issue 25: rotate refused a licensee with two active keys, and named the new key nothing. A user rotating the
    'crm' key expects a new 'crm' key, the old one working for the grace period, and the 'billing' key untouched."""
    from datetime import timedelta

    from sms.usecases.auth import issue_key, rotate_key

    store = InMemoryApiKeyStore()
    crm, billing = await issue_key(store, LICENSEE, "crm"), await issue_key(store, LICENSEE, "billing")
    rotation = await rotate_key(store, LICENSEE, grace=timedelta(hours=2), key_id=crm[4:20])
    new = store.records[rotation.key[4:20]]
    assert new.name == "crm" and new.expires_at is None and rotation.replaced.key_id == crm[4:20]
    assert timedelta(hours=1.9) < store.records[crm[4:20]].expires_at - utcnow() <= timedelta(hours=2)
    assert store.records[billing[4:20]].expires_at is None
    auth = Authenticator(store, cache_seconds=0)
    for key in (crm, billing, rotation.key):  # three work until the grace period ends
        assert await auth.licensee_for(key) == LICENSEE
    await store.revoke(crm[4:20], utcnow())  # that rotation done, billing's can start
    named = await rotate_key(store, LICENSEE, grace=timedelta(hours=2), key_id=billing[4:20], name="billing-2027")
    assert store.records[named.key[4:20]].name == "billing-2027"


async def test_rotate_refuses_a_key_it_cannot_replace_and_a_choice_it_cannot_make():
    from datetime import timedelta

    from sms.domain.errors import NotFound
    from sms.usecases.auth import KeyLimitReached, KeyNotChosen, issue_key, rotate_key

    store = InMemoryApiKeyStore()
    first, second = await issue_key(store, LICENSEE, "a"), await issue_key(store, LICENSEE, "b")
    with pytest.raises(KeyNotChosen, match=f"{first[4:20]} 'a', {second[4:20]} 'b'"):
        await rotate_key(store, LICENSEE, grace=timedelta(hours=1))
    others = await issue_key(store, "c" * 32)
    await store.revoke(second[4:20], utcnow())
    for key_id in ("0" * 16, others[4:20], second[4:20]):  # unknown, another licensee's, revoked
        with pytest.raises(NotFound, match=f"no active key {key_id}"):
            await rotate_key(store, LICENSEE, grace=timedelta(hours=1), key_id=key_id)
    assert len(store.records) == 3  # nothing was added
    # Two keys besides the one replaced would make three that stay: the limit still holds.
    third = await issue_key(store, LICENSEE, "c")
    rotated = await rotate_key(store, LICENSEE, grace=timedelta(hours=1), key_id=third[4:20])
    with pytest.raises(KeyLimitReached):
        await rotate_key(store, LICENSEE, grace=timedelta(hours=1), key_id=first[4:20])
    assert rotated.key[4:20] in store.records


async def test_the_key_cache_is_bounded_and_counts_its_time_from_the_read(monkeypatch):
    from types import SimpleNamespace

    from sms.usecases import auth as auth_module

    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    store = InMemoryApiKeyStore()
    keys = []
    for _ in range(3):
        key, record = new_key(LICENSEE)
        await store.add(record)
        keys.append(key)
    auth = Authenticator(store, cache_seconds=60, max_cached=2)
    for key in keys:
        await auth.licensee_for(key)
    assert store.gets == 3
    await auth.licensee_for(keys[0])  # the least recently used of three was dropped: read again
    assert store.gets == 4
    await auth.licensee_for(keys[2])  # still held
    assert store.gets == 4
    clock.now += 60  # 60 s after the read began: read again
    await auth.licensee_for(keys[2])
    assert store.gets == 5


# -- roles and read-only keys (issue 29) --

async def test_a_key_is_a_full_access_licensee_key_unless_told_otherwise_and_its_principal_says_what_it_may_do():
    from sms.usecases.auth import issue_key

    store = InMemoryApiKeyStore()
    auth = Authenticator(store, cache_seconds=0)
    plain = await auth.principal_for(await issue_key(store, LICENSEE))
    assert (plain.licensee_id, plain.role, plain.read_only, plain.is_admin) == (LICENSEE, "licensee", False, False)
    admin_key = await issue_key(store, LICENSEE, "ops", role="admin", read_only=True)
    admin = await auth.principal_for(admin_key)
    assert (admin.key_id, admin.role, admin.read_only, admin.is_admin) == (admin_key[4:20], "admin", True, True)
    assert store.records[admin.key_id].role == "admin" and store.records[admin.key_id].read_only is True


async def test_a_role_the_gateway_does_not_have_is_refused_naming_it():
    from sms.domain.errors import ValidationFailed
    from sms.usecases.auth import issue_key

    store = InMemoryApiKeyStore()
    with pytest.raises(ValidationFailed, match="'owner'.*admin.*licensee|'owner'.*licensee.*admin") as refused:
        await issue_key(store, LICENSEE, role="owner")
    assert refused.value.field_errors[0].field_name == "Role" and store.records == {}


async def test_full_access_keys_stay_two_per_role_while_read_only_keys_for_staff_go_to_ten():
    """Two full-access keys (one in use, one rotating in) keep the keys that can send few; read-only keys are
    one per person watching the console, so a licensee's staff can each have their own."""
    from sms.usecases.auth import MAX_ACTIVE_KEYS, MAX_READ_ONLY_KEYS, KeyLimitReached, issue_key

    assert (MAX_ACTIVE_KEYS, MAX_READ_ONLY_KEYS) == (2, 10)
    store = InMemoryApiKeyStore()
    for _ in range(2):
        await issue_key(store, LICENSEE)
    with pytest.raises(KeyLimitReached, match=r"already has 2 active keys of this kind \(full-access licensee"):
        await issue_key(store, LICENSEE)
    for _ in range(10):
        await issue_key(store, LICENSEE, read_only=True)
    with pytest.raises(KeyLimitReached, match=r"already has 10 active keys of this kind \(read-only licensee"):
        await issue_key(store, LICENSEE, read_only=True)
    await issue_key(store, LICENSEE, role="admin")  # admin keys are counted apart
    await issue_key(store, LICENSEE, role="admin")
    with pytest.raises(KeyLimitReached, match=r"already has 2 active keys of this kind \(full-access admin"):
        await issue_key(store, LICENSEE, role="admin")


async def test_a_rotation_keeps_the_replaced_keys_role_and_read_only_flag():
    from datetime import timedelta

    from sms.usecases.auth import issue_key, rotate_key

    store = InMemoryApiKeyStore()
    viewer = await issue_key(store, LICENSEE, "viewer", role="admin", read_only=True)
    rotation = await rotate_key(store, LICENSEE, grace=timedelta(hours=1), key_id=viewer[4:20])
    new = store.records[rotation.key[4:20]]
    assert (new.role, new.read_only, new.name) == ("admin", True, "viewer")
    # Counted among the keys of its own kind: nine more read-only admin keys fit beside the two working now.
    for _ in range(8):
        await issue_key(store, LICENSEE, role="admin", read_only=True)
    assert len([k for k in store.records.values() if k.active(utcnow())]) == 10


def test_make_runs_banner_says_its_key_is_an_admin_key():
    from sms.dev.localrun import banner

    assert "Admin API key (every licensee's keys too) for local licensee" in banner("http://127.0.0.1:7071", "sms_x.y")
