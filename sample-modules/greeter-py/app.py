"""`greeter-py` (singleton): a Python module that calls a Rust one through the
host. `hello NAME` increments the Rust `counter/NAME` with `host.call` and
replies `hello NAME, visit #N`. `hello-from MODULE NAME` calls `MODULE/NAME`
instead, so a caller can see a failed call's error come back typed (a missing
module is `not-found`, a refusal is `rejected`).
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types


class Actor(exports.Actor):
    def init(self, key: str) -> None:
        pass

    def on_message(self, from_: types.Sender, message: bytes) -> bytes | None:
        words = message.decode("utf-8", errors="replace").split(" ")
        if words[0] == "hello" and len(words) == 2:
            module, name = "counter", words[1]
        elif words[0] == "hello-from" and len(words) == 3:
            module, name = words[1], words[2]
        else:
            raise Err(types.Error_Rejected("greeter understands `hello NAME` and `hello-from MODULE NAME`"))
        # An Err raised by host.call carries the callee's typed error: re-raise it
        # as ours, so our caller sees not-found as not-found.
        visits = host.call(types.ActorRef(module=module, key=name), b"incr", 1000)
        return f"hello {name}, visit #{visits.decode()}".encode()

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
        return b""

    def restore(self, state: bytes, from_version: int) -> None:
        pass
