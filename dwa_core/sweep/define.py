"""Defining sweeps: grids and random draws over dotted config fields, the random/joint reference
runs that HAT's forgetting ratio needs, and sweep definitions stored as TOML/JSON data
(dwa_core/sweeps/*.toml)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dwa_core import models
from dwa_core.aggregate import REFERENCES, reference_key
from dwa_core.config import ConfigError, ExperimentConfig, check, check_path_component
from dwa_core.files import SUFFIXES, load_config_file, merge

SWEEPS_DIR = Path(__file__).parent.parent / "sweeps"

# What a definition file may hold: its tables, and the keys of [sweep] and [search]. A [[variants]]
# entry holds config fields (checked by ExperimentConfig), its own `grid`, and/or `points`: a list of
# {dotted field: value} tables, each one candidate (for one-at-a-time variations around a default,
# where a full product would be too many runs). [select] is read by dwa_core.compare.
TABLES = ("sweep", "base", "grid", "variants", "search", "select")
SWEEP_KEYS = ("name", "seeds", "references", "output_dir", "backend", "workers")
SEARCH_KEYS = ("space", "num_samples", "algorithm", "seed")
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")


# ---- building lists of configs ---------------------------------------------------------------
def with_fields(cfg: ExperimentConfig, **changes) -> ExperimentConfig:
    """A copy of cfg with dotted fields changed: with_fields(cfg, **{"train.lr": 0.1})."""
    return ExperimentConfig.from_dict(merge(cfg.to_dict(), changes))


def with_seeds(cfgs, seeds=None) -> list[ExperimentConfig]:
    """Every config once per seed (seeds None: unchanged)."""
    if seeds is None:
        return list(cfgs)
    return [c.replace(seed=int(s)) for c in cfgs for s in seeds]


def grid(base: ExperimentConfig, axes: dict | None = None, seeds=None) -> list[ExperimentConfig]:
    """The cartesian product of `axes` ({dotted field: [values]}) times `seeds`."""
    axes = axes or {}
    names = list(axes)
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        out.extend(with_seeds([with_fields(base, **dict(zip(names, combo)))], seeds))
    return out


def sample_space(base: ExperimentConfig, space: dict, n: int, seed: int = 0,
                 seeds=None) -> list[ExperimentConfig]:
    """Random search: n draws from `space` ({field: {"choice": [...]} | {"uniform": [a, b]} |
    {"loguniform": [a, b]} | {"randint": [a, b]}}), each run once per seed."""
    rng = np.random.default_rng(seed)
    draws = [with_fields(base, **{k: _draw(rng, spec, k) for k, spec in space.items()}) for _ in range(n)]
    return with_seeds(draws, seeds)


def _draw(rng, spec: dict, key: str):
    (kind, args), = spec.items()
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    if kind == "uniform":
        return float(rng.uniform(*args))
    if kind == "loguniform":
        return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
    if kind == "randint":
        return int(rng.integers(args[0], args[1]))
    raise ConfigError(f"space.{key}: unknown distribution {kind!r} ({', '.join(DISTRIBUTIONS)})")


def with_references(cfgs, base: ExperimentConfig | None = None) -> list[ExperimentConfig]:
    """`cfgs` and a `random` and a `joint` run for every (benchmark, seed) that lacks them (HAT rho).

    A reference is derived from `base` at the run's seed when given (a comparison's protocol: every
    row is measured against references trained at [base]'s settings), else from the first config of
    its (benchmark, seed); either way without approach params and with only the network params a
    plain network accepts (a DWA run's `mask_start` is not a reference's)."""
    from dwa_core import approaches
    cfgs = list(cfgs)
    have = {(reference_key(c), c.approach) for c in cfgs}
    out, seen = list(cfgs), {c.key() for c in cfgs}
    for c in cfgs:
        for approach in REFERENCES:
            if (reference_key(c), approach) in have:
                continue
            source = c if base is None else base.replace(seed=c.seed, max_tasks=c.max_tasks)
            family = approaches.get(approach).family
            ref = source.replace(approach=approach, approach_params={}, name="", network_params=(
                models.params_for_family(source.network, family, source.network_params)))
            have.add((reference_key(c), approach))
            if ref.key() not in seen:
                seen.add(ref.key())
                out.append(ref)
    return out


def unique(cfgs) -> list[ExperimentConfig]:
    """cfgs without repeats (by config key), in order."""
    seen, out = set(), []
    for c in cfgs:
        if c.key() not in seen:
            seen.add(c.key())
            out.append(c)
    return out


# ---- definitions ---------------------------------------------------------------------------------
@dataclass
class SweepDefinition:
    name: str
    configs: list
    output_dir: str
    backend: str = "local"
    workers: int | None = None
    search: dict | None = None  # {"space": ..., "num_samples": n, "algorithm": "random" | "optuna"}
    base: ExperimentConfig | None = None


def variant_configs(base: ExperimentConfig, variant: dict, shared_grid: dict | None = None,
                    seeds=None) -> list[ExperimentConfig]:
    """The candidates of one [[variants]] entry: its fields on `base`, then its `points` (each a
    {dotted field: value} change, `{}` = the entry itself) times the product of `grid` (the
    definition's shared [grid] updated by its own), times seeds."""
    variant = dict(variant)
    axes = {**(shared_grid or {}), **variant.pop("grid", {})}
    points = variant.pop("points", [{}])
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise ConfigError("variants.points: must be a list of tables of dotted fields")
    start = with_fields(base, **variant)
    return [c for point in points for c in grid(with_fields(start, **point), axes, seeds)]


def find_definition(name_or_path) -> Path:
    """A definition file: the path itself, or the name of one shipped in dwa_core/sweeps (with or
    without its suffix). Raises ConfigError listing the shipped ones."""
    path = Path(name_or_path)
    for candidate in (path, SWEEPS_DIR / path, *(SWEEPS_DIR / f"{path}{s}" for s in SUFFIXES)):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in SWEEPS_DIR.glob("*.toml")))
    raise ConfigError(f"sweep definition {path} does not exist (shipped: {shipped})")


def _check_keys(values: dict, allowed, where: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown {'key' if len(unknown) == 1 else 'keys'} "
                          f"{', '.join(map(repr, unknown))}; valid: {', '.join(allowed)}")


def check_definition(raw: dict, path) -> None:
    """Raise ConfigError on a table or a [sweep]/[search] key that a definition cannot hold (a
    misspelt `[grdi]` or `seed = [...]` would otherwise be silently ignored)."""
    _check_keys(raw, TABLES, f"{path}")
    _check_keys(raw.get("sweep", {}), SWEEP_KEYS, f"{path} [sweep]")
    if "name" in raw.get("sweep", {}):  # names the default output folder: one path component
        name = raw["sweep"]["name"]
        check(isinstance(name, str) and name != "", f"{path} [sweep] name", "a non-empty string", name)
        check_path_component(name, f"{path} [sweep] name")
    if "search" in raw:
        _check_keys(raw["search"], SEARCH_KEYS, f"{path} [search]")
        if "space" not in raw["search"]:
            raise ConfigError(f"{path} [search]: needs a `space` table")
    if not isinstance(raw.get("variants", []), list):
        raise ConfigError(f"{path}: variants must be an array of tables ([[variants]])")


def check_configs(cfgs, path) -> None:
    """Validate every config of a definition as a run would (`experiment.validate`: names, approach,
    benchmark and network parameters, device) before the first run starts, so that a bad variant
    fails `--dry-run` and never lets the good runs train first. Raises ConfigError naming the file
    and the run."""
    from dwa_core.experiment import validate

    for cfg in cfgs:
        try:
            validate(cfg)
        except ConfigError as err:
            raise ConfigError(f"{path}: run {cfg.run_name()}: {err}") from err


def load_definition(path) -> SweepDefinition:
    """[sweep] name/seeds/references/output_dir/backend/workers, [base] config, [grid] {dotted:
    [values]}, [[variants]] overrides (each may hold its own `grid` table), optional [search] space.
    Raises ConfigError naming the file for a syntax error, an unknown table or key, or a bad value
    (every run is validated here, before any of them starts: check_configs)."""
    path = find_definition(path)
    raw = load_config_file(path)
    check_definition(raw, path)
    meta = raw.get("sweep", {})
    name, seeds = meta.get("name", path.stem), meta.get("seeds")
    base = ExperimentConfig.from_dict(raw.get("base", {}))
    configs = []
    for variant in raw.get("variants", [{}]):
        configs.extend(variant_configs(base, variant, raw.get("grid", {}), seeds))
    search = raw.get("search")
    if search:
        configs = sample_space(base, search["space"], int(search.get("num_samples", 8)),
                               int(search.get("seed", 0)), seeds)
    if meta.get("references", True):
        configs = with_references(configs)
    check_configs(configs, path)
    return SweepDefinition(name, unique(configs), meta.get("output_dir", f"results/sweeps/{name}"),
                           meta.get("backend", "local"), meta.get("workers"), search, base)
