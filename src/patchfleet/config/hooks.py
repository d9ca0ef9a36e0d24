"""The hooks config of an install (AWS-RunPatchBaselineWithHooks, section 3.2): model and file.

Three hooks: ``pre_install``, ``post_install`` and ``on_exit``. Each is *either* an inline
``command`` (a shell string, run by ``sh -c``) *or* a ``script``: a file on the controller (path
relative to the config file's directory), checked when the config is loaded, read when the hook
runs and sent to the node as an argument of a fixed ``sh -c`` wrapper, which writes it to a
temporary file and runs it with the interpreter of its ``#!`` line (``sh`` without one).
:meth:`HookSpec.argv` is that command; :mod:`patchfleet.ops.hooks` runs it.

Unknown keys are errors naming the key and the allowed ones; the file goes through the strict
YAML loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from patchfleet.config.yaml_loader import load_yaml_file
from patchfleet.domain.inventory import format_validation_error
from patchfleet.errors import ConfigError

__all__ = [
    "DEFAULT_HOOK_TIMEOUT",
    "MAX_SCRIPT_BYTES",
    "PHASES",
    "HookPhase",
    "HookSpec",
    "Hooks",
    "load_hooks",
    "load_hooks_file",
]

HookPhase = Literal["pre_install", "post_install", "on_exit"]
PHASES: tuple[HookPhase, ...] = ("pre_install", "post_install", "on_exit")
MAX_SCRIPT_BYTES = 100_000
"""A script travels as one argument; Linux caps one argument at 128 KiB (MAX_ARG_STRLEN)."""
DEFAULT_HOOK_TIMEOUT = 600.0

# $1 = script body. Written to a temp file, run with its #! interpreter (works on noexec /tmp),
# removed on exit, also when the remote `timeout` sends TERM.
_SCRIPT_RUNNER = (
    'f=$(mktemp "${TMPDIR:-/tmp}/patchfleet-hook.XXXXXX") || exit 125\n'
    "trap 'rm -f \"$f\"' EXIT\n"
    "trap 'exit 143' TERM HUP INT\n"
    'printf %s "$1" > "$f" || exit 125\n'
    'IFS= read -r first < "$f" || first=\n'
    'case $first in\n'
    "  '#!'*) set -- ${first#??} \"$f\" ;;\n"
    '  *) set -- sh "$f" ;;\n'
    "esac\n"
    '"$@"\n'
)


class HookSpec(BaseModel):
    """One hook: ``command`` or ``script`` (exactly one), and a ``timeout`` in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = None
    script: Path | None = None
    timeout: float = Field(default=DEFAULT_HOOK_TIMEOUT, gt=0, le=86_400)

    @model_validator(mode="after")
    def _one_of(self, info: ValidationInfo) -> HookSpec:
        if self.command is not None and self.script is not None:
            raise ValueError("set either 'command' or 'script', not both")
        if self.command is None and self.script is None:
            raise ValueError("set 'command' (a shell command) or 'script' (a file path)")
        if self.command is not None:
            if not self.command.strip():
                raise ValueError("'command' is empty")
            if "\x00" in self.command:
                raise ValueError("'command' contains a NUL byte")
        if self.script is not None:
            base = Path((info.context or {}).get("base_dir") or ".")
            path = self.script if self.script.is_absolute() else base / self.script
            path = path.resolve()
            if not path.is_file():
                raise ValueError(f"script file {str(self.script)!r} not found (looked at {path})")
            size = path.stat().st_size
            if size > MAX_SCRIPT_BYTES:
                raise ValueError(
                    f"script file {path} is {size} bytes; hooks are sent as one argument, at "
                    f"most {MAX_SCRIPT_BYTES} bytes: put the bulk on the node and call it"
                )
            object.__setattr__(self, "script", path)
        return self

    def argv(self) -> tuple[str, ...]:
        """The command for the node (the script file is read now)."""
        if self.command is not None:
            return ("sh", "-c", self.command, "patchfleet-hook")
        assert self.script is not None
        try:
            body = self.script.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read hook script {self.script}: {err}") from None
        if "\x00" in body:
            raise ConfigError(f"hook script {self.script} contains a NUL byte")
        return ("sh", "-c", _SCRIPT_RUNNER, "patchfleet-hook", body)

    @property
    def label(self) -> str:
        return f"script {self.script.name}" if self.script else "command"


class Hooks(BaseModel):
    """The ``hooks:`` config block. A missing hook is AWS-Noop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pre_install: HookSpec | None = None
    post_install: HookSpec | None = None
    on_exit: HookSpec | None = None

    def get(self, phase: HookPhase) -> HookSpec | None:
        spec: HookSpec | None = getattr(self, phase)
        return spec


def load_hooks(data: Any, source: str, base_dir: str | Path | None = None) -> Hooks:
    """Validate a ``hooks`` mapping; script paths are relative to ``base_dir`` (default: the
    directory of ``source`` when it is a file, else the working directory)."""
    if base_dir is None:
        src = Path(source)
        base_dir = src.parent if src.suffix else Path.cwd()
    try:
        return Hooks.model_validate(data or {}, context={"base_dir": str(base_dir)})
    except ValidationError as err:
        raise format_validation_error(err, source, Hooks) from None


def load_hooks_file(path: Path) -> Hooks:
    """Read and validate a hooks file; script paths are relative to its folder."""
    return load_hooks(load_yaml_file(path, "hooks file not found"), str(path))
