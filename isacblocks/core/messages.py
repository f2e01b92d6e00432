"""Message ports and run-time settings of a block (GNU Radio's message passing, GNU Radio 4's settings).

Messages carry events that are not streams.  A message posted to an input port is queued
and handled in the block's own thread before its next work() call, so a handler never runs
while work() does.

**Settings.**  A block declares the parameters that may change while it runs::

    class Gain(SyncBlock):
        settings = {"gain": Setting(lambda block, value: check_real(block.name, "gain", value),
                                    "the factor")}

Every block has one input message port ``"settings"`` taking a dict of setting name ->
value (a PMT dict on a GNU Radio wire).  `setting_ports` may add ports that feed the same
path under the names users already wire (``{"spacing": "spacing"}``: the message is the
value of that one setting; ``{"tradeoff": ("eta", "phi")}``: a dict of some of them).
Updates queue up and are applied between two work() calls, all of them at once: each value
is checked by its `Setting` (which may convert it), the attributes of the same names are set,
then ``settings_changed(old, new)`` is called once with the previous and the new values of the
settings that were given.  `apply_settings` does the same at once (a constructor sets the
first values through it).

An update with an unknown name or a value its check refuses is not applied in part: the
block keeps all its old values and the error, naming the block and the setting, stops the
flowgraph (as any error of a block).  GNU Radio 4 instead answers such an update with the
keys it did not apply and goes on; here a run never goes on with a setting it was asked
for and did not take.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigError

#: The input message port every block has for its settings.
SETTINGS_PORT = "settings"


@dataclass(frozen=True)
class Setting:
    """One run-time setting: ``check(block, value)`` returns the value the block keeps (raising
    an error that names the block and the setting when it is wrong); `doc` says what it is."""

    check: Callable[[Any, Any], Any]
    doc: str = ""


class MessagePorts:
    """Message ports, message handling and settings; a base of `Block` (see the module docstring)."""

    #: The run-time settings of the block: name -> `Setting` (the block's attributes of these names).
    settings: ClassVar[dict[str, Setting]] = {}

    #: Message ports that feed settings: port -> one setting's name (the message is its value) or
    #: a tuple of names (the message is a dict of some of them).
    setting_ports: ClassVar[dict[str, str | tuple[str, ...]]] = {}

    name: str

    def _init_message_ports(self) -> None:
        self._msg_out: dict[str, list[tuple[Any, str]]] = {}
        self._msg_handlers: dict[str, Callable[[Any], None] | None] = {}
        self._inbox: deque[tuple[str, Any]] = deque()
        self._staged: list[dict] = []
        self.message_port_register_in(SETTINGS_PORT, self._stage_settings)
        for port, names in self.setting_ports.items():
            self.message_port_register_in(port, lambda msg, port=port, names=names: self._stage_port(port, names, msg))

    # ------------------------------------------------------------------ ports
    def message_port_register_out(self, port: str) -> None:
        self._msg_out.setdefault(port, [])

    def message_port_register_in(self, port: str, handler: Callable[[Any], None] | None = None) -> None:
        self._msg_handlers[port] = handler

    def set_msg_handler(self, port: str, handler: Callable[[Any], None]) -> None:
        if port not in self._msg_handlers:
            raise ConfigError(f"block {self.name!r}: no input message port {port!r}; "
                              f"registered: {sorted(self._msg_handlers)}")
        self._msg_handlers[port] = handler

    @property
    def message_ports_in(self) -> tuple[str, ...]:
        return tuple(self._msg_handlers)

    @property
    def message_ports_out(self) -> tuple[str, ...]:
        return tuple(self._msg_out)

    def message_port_pub(self, port: str, msg: Any) -> None:
        """Publish `msg` to every subscriber of output message port `port`."""
        if port not in self._msg_out:
            raise ConfigError(f"block {self.name!r}: no output message port {port!r}; "
                              f"registered: {sorted(self._msg_out)}")
        for dst, dst_port in self._msg_out[port]:
            dst.post(dst_port, msg)

    def _subscribe(self, port: str, dst, dst_port: str) -> None:
        self._msg_out[port].append((dst, dst_port))

    def post(self, port: str, msg: Any) -> None:
        """Queue `msg` for input message port `port`; handled before the block's next work()."""
        if port not in self._msg_handlers:
            raise ConfigError(f"block {self.name!r}: no input message port {port!r}; "
                              f"registered: {sorted(self._msg_handlers)}")
        self._inbox.append((port, msg))
        self.detail.wake()

    def handle_messages(self) -> int:
        """Deliver the queued messages to their handlers, then apply the settings they brought;
        returns how many messages were handled."""
        handled = 0
        while self._inbox:
            port, msg = self._inbox.popleft()
            handler = self._msg_handlers.get(port)
            if handler is not None:
                handler(msg)
            handled += 1
        if self._staged:
            update: dict = {}
            for staged in self._staged:
                update.update(staged)
            self._staged = []
            self.apply_settings(update)
        return handled

    # --------------------------------------------------------------- settings
    def _stage_settings(self, msg: Any) -> None:
        if not isinstance(msg, Mapping):
            raise ConfigError(f"block {self.name!r}: message {msg!r} on port {SETTINGS_PORT!r}: expected a dict "
                              f"of setting name -> value; its settings: {sorted(self.settings)}")
        self._staged.append(dict(msg))

    def _stage_port(self, port: str, names: str | tuple[str, ...], msg: Any) -> None:
        if isinstance(names, str):
            self._staged.append({names: msg})
            return
        if not isinstance(msg, Mapping) or not set(msg) <= set(names):
            raise ConfigError(f"block {self.name!r}: {port} message {msg!r}: expected a dict with "
                              f"{' and/or '.join(map(repr, names))}")
        self._staged.append(dict(msg))

    def apply_settings(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Check every value of `update`, set them, then call `settings_changed`; returns the new values.

        Nothing is set unless every name is a declared setting and every value passes its check.
        """
        unknown = [key for key in update if key not in self.settings]
        if unknown:
            raise ConfigError(f"block {self.name!r}: no setting {unknown[0]!r}; its settings: "
                              f"{sorted(self.settings)}")
        new = {key: self.settings[key].check(self, value) for key, value in update.items()}
        old = {key: getattr(self, key, None) for key in new}
        for key, value in new.items():
            setattr(self, key, value)
        self.settings_changed(old, new)
        return new

    def settings_changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Called after settings were applied (between work() calls), with the previous and the new
        values of the settings given (GNU Radio 4's ``settingsChanged``).  Default: nothing."""
