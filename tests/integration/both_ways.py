"""A store's contract tested both ways: over the in-memory fake the unit tests use, and over its table
adapter on Azurite. Each fixture that wants both names its two and this makes either."""
import contextlib
from typing import AsyncIterator, Callable, TypeVar

from azure.data.tables.aio import TableClient, TableServiceClient

Store = TypeVar("Store")
BOTH = ["azurite", "memory"]  # pytest.fixture(params=BOTH)


@contextlib.asynccontextmanager
async def store_under_test(where: str, connection_string: str, in_memory: Callable[[], Store],
                           on_table: Callable[[TableClient], Store], table_name: str) -> AsyncIterator[Store]:
    """The fake (`where` "memory"), or the adapter over a new table `table_name` on Azurite, created."""
    if where == "memory":
        yield in_memory()
        return
    async with TableServiceClient.from_connection_string(connection_string) as service:
        store = on_table(service.get_table_client(table_name))
        await store.create_table()  # type: ignore[attr-defined]
        yield store
