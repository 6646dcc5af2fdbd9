import json

import pytest

from sms.dev import azurite


@pytest.fixture(scope="session")
def emulator():
    """One in-memory Azurite on free loopback ports for the whole session, stopped at the end."""
    with azurite.start() as instance:
        yield instance


@pytest.fixture(scope="session")
def indexed_functions():
    """function_app.app's functions, indexed once as the Python worker does.

    azure-functions keeps its name registry between calls, so a second
    `app.get_functions()` on the same app raises "does not have a unique function name".
    """
    from function_app import app

    return {fn.get_function_name(): fn for fn in app.get_functions()}


@pytest.fixture(scope="session")
def triggers(indexed_functions):
    return {
        name: next(b for b in json.loads(fn.get_function_json())["bindings"] if b["type"].endswith("Trigger"))
        for name, fn in indexed_functions.items()
    }
