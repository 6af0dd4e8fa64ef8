"""The one check that every typed config's ``from_dict`` shares: a mapping with known keys only."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def check_keys(
    data: Any, allowed: Sequence[str], *, what: str, hint: str = "", error: type[ValueError] = ValueError
) -> None:
    """Raise ``error`` unless ``data`` is a mapping whose keys are all in ``allowed``.

    ``what`` names the mapping in the messages (``"model"``, ``"grid.noise[1]"``); ``hint``
    follows "must be a mapping" (e.g. ``" such as {kind: mlp}"``).
    """
    if not isinstance(data, Mapping):
        raise error(f"{what} must be a mapping{hint}, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise error(f"{what}: unknown key(s) {unknown}; allowed: {list(allowed)}")
