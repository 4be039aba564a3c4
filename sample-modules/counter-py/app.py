"""`counter-py` (keyed): the Rust `counter` in Python, built with componentize-py.

Same commands (`incr`, `get`), same decimal replies, same snapshot format (the
value as decimal text), so one can replace the other in a hot swap with state
carried. Errors are returned by raising `componentize_py_types.Err(...)`; any
other exception traps.
"""

import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

# One component instance is one actor: module state is the actor's state.
value = 0


class Actor(exports.Actor):
    def init(self, key: str) -> None:
        # print (stdout and stderr) reaches the node's log and `anthill logs`.
        print(f"counter-py {key} started")

    def on_message(self, from_: types.Sender, message: bytes) -> bytes | None:
        global value
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Err(types.Error_Rejected(f"expected a UTF-8 text message: {e}"))
        if text == "incr":
            value += 1
            return str(value).encode()
        if text == "get":
            return str(value).encode()
        print(f"counter-py: unknown command `{text}`", file=sys.stderr)
        raise Err(types.Error_Rejected(f"counter understands `incr` and `get`, not `{text}`"))

    def on_event(self, topic: str, event: bytes) -> None:
        pass

    def on_join(self, player: int) -> None:
        pass

    def on_leave(self, player: int) -> None:
        pass

    def on_tick(self, now_ms: int) -> None:
        pass

    def on_timer(self, tag: str) -> None:
        pass

    def snapshot(self) -> bytes:
        return str(value).encode()

    def restore(self, state: bytes, from_version: int) -> None:
        global value
        text = state.decode("utf-8", errors="replace").strip()
        if not text.isdigit():
            raise Err(f"snapshot `{text}` is not a decimal counter")
        value = int(text)
