"""One call from a path set to credit: channel grouping, repeat collapsing, the model.

:func:`attribute` is the entry point the API and analysts use; it applies the
optional transforms in the one order that makes sense (group channels first, since
grouping can make neighbouring touches the same channel, then collapse repeats) and
then runs the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidParameter
from .models import Model, get_model
from .paths import PathSet
from .result import Credit


def attribute(
    paths: PathSet,
    model_or_name: Model | str,
    *,
    collapse_repeats: bool = False,
    channel_groups: Mapping[str, str] | None = None,
    **options: Any,
) -> Credit:
    """Credit the conversions and value of ``paths`` with one model.

    Parameters
    ----------
    paths : PathSet
        The paths to attribute.
    model_or_name : model or str
        A model object, or a registered model name (see
        :data:`attribution.models.MODEL_NAMES`) built with ``options``.
    collapse_repeats : bool, default False
        Merge consecutive touches in the same state (channel, or channel and stage)
        before the model runs. Each model's docstring says whether this changes it.
    channel_groups : mapping of str to str, optional
        Rename channels before anything else, e.g. ``{"google": "search",
        "bing": "search"}``; channels mapped to one name become one channel.
    **options
        Hyper-parameters of the model named by ``model_or_name``. Not allowed with a
        model object, which already holds its own.

    Returns
    -------
    Credit
        The model's credit. Its per-touch split (``touch_conversions``,
        ``touch_value``) is aligned with the transformed paths, which
        :func:`prepare` returns.

    Raises
    ------
    InvalidParameter
        A bad option, or options given together with a model object.
    UnknownModel
        ``model_or_name`` is not a registered name.
    """
    if isinstance(model_or_name, str):
        model = get_model(model_or_name, **options)
    elif options:
        key = sorted(options)[0]
        raise InvalidParameter(key, options[key], "given to the model object, not to attribute()")
    else:
        model = model_or_name
    prepared = prepare(paths, collapse_repeats=collapse_repeats, channel_groups=channel_groups)
    return model.attribute(prepared)


def prepare(
    paths: PathSet,
    *,
    collapse_repeats: bool = False,
    channel_groups: Mapping[str, str] | None = None,
) -> PathSet:
    """The path set :func:`attribute` hands to the model: grouped, then collapsed."""
    if not isinstance(collapse_repeats, bool):
        raise InvalidParameter("collapse_repeats", collapse_repeats, "true or false")
    if channel_groups:
        paths = paths.group_channels(channel_groups)
    if collapse_repeats:
        paths = paths.collapse_repeats()
    return paths
