"""Networks: every network maps (x, t) -> logits of task t and has one head per task.

`build(arch, family, ...)`: arch is "mlp" or "alexnet"; family is the approach's network family
("plain", "hat", "dwa", "progressive", "pathnet"; LwF and LFL use "plain"). Variants register as "arch"
(plain) or "arch-family"."""

from __future__ import annotations

import inspect
import typing

import torch
from torch import nn

from dwa_core.coerce import ConfigError, coerce_value
from dwa_core.models import dwa, hat, pathnet, progressive  # noqa: F401  (each registers its variants)
from dwa_core.models.init import seeded_init
from dwa_core.models.registry import NETWORKS

ARCHITECTURES = ("mlp", "alexnet")


# Old names of network sizes, still accepted in network_params (presets, sweeps, the CLI): every
# family now says `hidden` (units per layer) and `layers` (number of hidden layers).
ALIASES = {"nhid": "hidden", "nlayers": "layers"}


def canonical_params(params: dict | None) -> dict:
    """network_params with old size names (ALIASES) renamed. Raises ConfigError when a size is given
    under both names."""
    out = {}
    for key, value in (params or {}).items():
        new = ALIASES.get(key, key)
        if new in out or (new != key and new in (params or {})):
            raise ConfigError(f"network_params: {key!r} is the old name of {new!r}; give only one")
        out[new] = value
    return out


def network_name(arch: str, family: str) -> str:
    return arch if family == "plain" else f"{arch}-{family}"


def build(arch: str, family: str, input_shape, task_classes, params: dict | None = None,
          weight_init: str | None = "kaiming:xavier", seed: int = 0) -> nn.Module:
    """Build and initialise the network `arch` of `family` for a benchmark's shape and heads.

    Every module is initialised from its own stream, seeded by (`seed`, its name) (`init.seeded_init`):
    the weights do not depend on the number of tasks, nor on the global random state, which is
    left as it was. `weight_init` is the scheme (None: PyTorch's and the modules' own defaults).
    Raises ConfigError for an unknown network, a bad parameter, or an input it does not fit."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"network: must be 'auto' or one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    name = network_name(arch, family)
    if name not in NETWORKS:
        raise ConfigError(f"network: no {family!r} variant of {arch!r}; available: "
                          f"{', '.join(NETWORKS.names())}")
    cls = NETWORKS.get(name)
    params = network_params(cls, name, canonical_params(params))
    try:
        with torch.random.fork_rng(devices=[]):  # construction draws are replaced just below
            model = cls(tuple(input_shape), list(task_classes), **params)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ConfigError(f"network {name} cannot be built for input {_shape(input_shape)} with "
                          f"{params or 'its defaults'}: {err}") from err
    check_input_shape(model, name, input_shape)
    try:
        seeded_init(model, weight_init or None, seed)
    except (ZeroDivisionError, ValueError) as err:  # an empty layer: fan-in or fan-out 0
        raise ConfigError(f"network {name} cannot be initialised with {params or 'its defaults'}: "
                          f"{err}") from err
    if hasattr(model, "after_weight_init"):  # e.g. DWA's mask_start biases, which the init zeroes
        model.after_weight_init()
    return model


def network_params(cls: type, name: str, params: dict | None) -> dict:
    """`params` checked against the keyword options of `cls`'s constructor (and of the base
    constructors its **kwargs reach), coerced to their annotated types ("800" -> 800) and checked
    against their bounds (`Size`: >= 1, ...); an unknown key, a wrong type or a value out of bounds
    is a ConfigError."""
    options = constructor_options(cls)
    params = dict(params or {})
    unknown = sorted(set(params) - set(options))
    if unknown:
        raise ConfigError(f"network_params ({name}): unknown {', '.join(unknown)}; "
                          f"valid: {', '.join(options)}")
    return {k: coerce_value(v, options[k], f"network_params ({name}).{k}") for k, v in params.items()}


def check_network_params(arch: str, family: str, params: dict | None) -> None:
    """network_params checked before any data is loaded: against the `family` variant of `arch`, or,
    for arch "auto" (the benchmark decides), of every architecture that has one: a key no variant
    knows, or a value that every variant knowing the key rejects (type, bounds), is a ConfigError
    (naming the first variant's reason)."""
    params = canonical_params(params)
    variants = _variant_options(arch, family)
    for key, value in params.items():
        accepting = [n for n, options in variants.items() if key in options]
        if not accepting:
            valid = sorted({o for options in variants.values() for o in options})
            raise ConfigError(f"network_params ({' / '.join(variants)}): unknown {key}; "
                              f"valid: {', '.join(valid)}")
        errors = []
        for n in accepting:
            try:
                coerce_value(value, variants[n][key], f"network_params ({n}).{key}")
            except ConfigError as err:
                errors.append(err)
        if len(errors) == len(accepting):
            raise errors[0]


def params_for_family(arch: str, family: str, params: dict | None) -> dict:
    """The part of `params` that the `family` variant of `arch` accepts (for arch "auto", any of the
    architectures' variants): what a run of another family keeps of a config's network_params, e.g.
    a plain reference run derived from a DWA run drops DWA's `mask_start` but keeps `fc_units`."""
    options = {o for variant in _variant_options(arch, family).values() for o in variant}
    return {k: v for k, v in canonical_params(params).items() if k in options}


def _variant_options(arch: str, family: str) -> dict:
    """{network name: its constructor options} of the `family` variant of `arch`, or for arch "auto"
    of every architecture that has one."""
    names = [network_name(a, family) for a in (ARCHITECTURES if arch == "auto" else (arch,))]
    return {n: constructor_options(NETWORKS.get(n)) for n in names if n in NETWORKS}


def constructor_parameters(cls: type) -> dict[str, tuple]:
    """{option: (annotation (Any when unannotated), default)} of the keyword options (those with a
    default) of `cls.__init__`, followed through **kwargs into the base classes' constructors. An
    option's `Annotated[..., fields.Spec(...)]` documents it (fields.spec_of)."""
    options: dict = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is nn.Module:
            continue
        signature = inspect.signature(klass.__init__)
        hints = typing.get_type_hints(klass.__init__, include_extras=True)
        for p in signature.parameters.values():
            if p.default is not inspect.Parameter.empty and p.name not in options:
                options[p.name] = (hints.get(p.name, typing.Any), p.default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return options


def constructor_options(cls: type) -> dict:
    """{option: annotation} of `constructor_parameters(cls)`."""
    return {name: annotation for name, (annotation, _) in constructor_parameters(cls).items()}


def _shape(input_shape) -> str:
    return "x".join(str(d) for d in input_shape)


@torch.no_grad()
def check_input_shape(model: nn.Module, name: str, input_shape) -> None:
    """Run one zero image through head 0 in eval mode (RNG untouched): a network that does not fit
    the benchmark's input (AlexNet on 8x8 digits) is a ConfigError here, not a kernel error in
    training."""
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            model(torch.zeros(1, *input_shape), 0)
    except RuntimeError as err:
        raise ConfigError(f"network {name} does not fit the benchmark's input {_shape(input_shape)} "
                          f"(use --network mlp, or a benchmark shape it fits, e.g. benchmark_params "
                          f"shape=3x32x32): {str(err).splitlines()[0]}") from err
    finally:
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

