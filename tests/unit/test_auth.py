import pytest

from sms.auth import Authenticator, new_key
from sms.errors import Unauthenticated
from sms.model import utcnow
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
